//! Serving certificates: a fresh cluster CA and a serving certificate
//! signed by it, or a certificate and key given by the operator.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, DnsName, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} holds no {what}")]
    Missing { path: String, what: &'static str },
    #[error("invalid TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("invalid client CA: {0}")]
    ClientCa(String),
    #[error("no CA key to sign client certificates with: the serving certificate was given")]
    NoCaKey,
    #[error("{path} holds no certificate")]
    NoCertificate { path: String },
    #[error("the serving certificate is a CA certificate, which TLS clients refuse from a server")]
    CaAsServerCertificate,
    #[error(
        "the serving certificate is not valid for {name} with the CA clients are given: {source}"
    )]
    Untrusted {
        name: IpAddr,
        #[source]
        source: rustls::Error,
    },
}

/// A name a generated serving certificate covers besides the ones it
/// always covers: a DNS name or an IP address clients use to reach the
/// server (a load balancer, a public address, a name in DNS).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SubjectAltName {
    Dns(String),
    Ip(IpAddr),
}

impl FromStr for SubjectAltName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(SubjectAltName::Ip(ip));
        }
        DnsName::try_from(text)
            .map(|name| SubjectAltName::Dns(name.as_ref().to_owned()))
            .map_err(|_| format!("{text:?} is neither an IP address nor a DNS name"))
    }
}

impl fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectAltName::Dns(name) => f.write_str(name),
            SubjectAltName::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// The names every generated serving certificate covers: loopback (where
/// in-process clients connect), the in-cluster service names, the host
/// name and every address of the host's interfaces, so that clients on
/// other machines can reach a server listening on all of them.
fn default_names() -> BTreeSet<SubjectAltName> {
    let mut names: BTreeSet<SubjectAltName> = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
    ]
    .into_iter()
    .map(|name| SubjectAltName::Dns(name.to_owned()))
    .collect();
    names.insert(SubjectAltName::Ip(IpAddr::from([127, 0, 0, 1])));
    names.insert(SubjectAltName::Ip(IpAddr::from(
        std::net::Ipv6Addr::LOCALHOST,
    )));
    if let Some(host) = host_name() {
        names.insert(SubjectAltName::Dns(host));
    }
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => names.extend(
            interfaces
                .iter()
                .map(|interface| SubjectAltName::Ip(interface.ip())),
        ),
        Err(err) => {
            tracing::warn!(%err, "cannot list the interface addresses for the serving certificate")
        }
    }
    names
}

/// The host's name, when it is one a certificate can hold.
fn host_name() -> Option<String> {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_str().ok()?;
    DnsName::try_from(name)
        .ok()
        .map(|name| name.as_ref().to_owned())
}

/// The PEM material of a server's TLS identity.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The CA clients should trust (the cluster CA, or the given chain).
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// The cluster CA's key when kstress generated the CA, so that it can
    /// sign client certificates (users with their own groups).
    pub ca_key_pem: Option<String>,
}

/// A client certificate and its key, in PEM.
#[derive(Clone)]
pub struct ClientIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TlsMaterial {
    /// A new CA and a serving certificate for loopback, the host's names
    /// and addresses, and `extra` names.
    pub fn generate(extra: &[SubjectAltName]) -> Result<TlsMaterial, TlsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kstress-ca");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca_key_pem = ca_key.serialize_pem();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        let mut names = default_names();
        names.extend(extra.iter().cloned());
        for name in names {
            params.subject_alt_names.push(match name {
                SubjectAltName::Dns(name) => SanType::DnsName(name.try_into()?),
                SubjectAltName::Ip(ip) => SanType::IpAddress(ip),
            });
        }
        let cert = params.signed_by(&key, &issuer)?;
        Ok(TlsMaterial {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_key_pem: Some(ca_key_pem),
        })
    }

    /// A client certificate signed by the cluster CA for `user` in `groups`
    /// (subject CN and O, as Kubernetes reads them).
    pub fn issue_client_certificate(
        &self,
        user: &str,
        groups: &[&str],
    ) -> Result<ClientIdentity, TlsError> {
        let ca_key_pem = self.ca_key_pem.as_deref().ok_or(TlsError::NoCaKey)?;
        let ca_key = KeyPair::from_pem(ca_key_pem)?;
        let issuer = rcgen::Issuer::from_ca_cert_pem(&self.ca_pem, ca_key)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, user);
        for group in groups {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *group);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &issuer)?;
        Ok(ClientIdentity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Reads a serving certificate (or chain) and its key from PEM files,
    /// and the CA that clients are to trust: `ca_path` when given, else the
    /// last certificate of the chain, which is its root or the one closest
    /// to it. A file with a single certificate is that certificate's own
    /// CA, which works for a self-signed one; whether it really verifies is
    /// for [`TlsMaterial::verify_for`] to say.
    pub fn from_files(
        cert_path: &str,
        key_path: &str,
        ca_path: Option<&str>,
    ) -> Result<TlsMaterial, TlsError> {
        let read = |path: &str| {
            std::fs::read_to_string(path).map_err(|source| TlsError::Read {
                path: path.to_string(),
                source,
            })
        };
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let ca_pem = match ca_path {
            Some(path) => {
                let pem = read(path)?;
                if parse_certs(&pem)?.is_empty() {
                    return Err(TlsError::NoCertificate { path: path.into() });
                }
                pem
            }
            None => {
                let chain = parse_certs(&cert_pem)?;
                let last = chain.last().ok_or_else(|| TlsError::NoCertificate {
                    path: cert_path.into(),
                })?;
                pem_of(last)
            }
        };
        Ok(TlsMaterial {
            ca_pem,
            cert_pem,
            key_pem,
            ca_key_pem: None,
        })
    }

    /// Checks that a client trusting [`TlsMaterial::ca_pem`] accepts the
    /// serving certificate when it connects to `ip`, as the in-process
    /// clients and the written kubeconfig do: a given certificate that
    /// fails here would only fail later, in every client.
    pub fn verify_for(&self, ip: IpAddr) -> Result<(), TlsError> {
        let untrusted = |source| TlsError::Untrusted { name: ip, source };
        let chain = parse_certs(&self.cert_pem)?;
        let (leaf, intermediates) = chain.split_first().ok_or_else(|| TlsError::NoCertificate {
            path: "the serving certificate".into(),
        })?;
        // webpki says so only through an opaque error of its own.
        if x509_parser::parse_x509_certificate(leaf).is_ok_and(|(_, cert)| cert.is_ca()) {
            return Err(TlsError::CaAsServerCertificate);
        }
        let mut roots = RootCertStore::empty();
        for cert in parse_certs(&self.ca_pem)? {
            roots.add(cert).map_err(untrusted)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
            .build()
            .map_err(|err| untrusted(rustls::Error::General(err.to_string())))?;
        verifier
            .verify_server_cert(
                leaf,
                intermediates,
                &ServerName::IpAddress(ip.into()),
                &[],
                UnixTime::now(),
            )
            .map(drop)
            .map_err(untrusted)
    }

    /// A rustls server configuration offering HTTP/2 and HTTP/1.1. With a
    /// client CA (PEM), clients may present a certificate signed by it;
    /// clients without one still connect, as anonymous or token users.
    pub fn server_config(
        &self,
        client_ca: Option<&str>,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let certs = parse_certs(&self.cert_pem)?;
        if certs.is_empty() {
            return Err(TlsError::Missing {
                path: "certificate".into(),
                what: "certificate",
            });
        }
        let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut self.key_pem.as_bytes())
            .map_err(|source| TlsError::Read {
                path: "key".into(),
                source,
            })?
            .ok_or(TlsError::Missing {
                path: "key".into(),
                what: "private key",
            })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match client_ca {
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
                    let cert = cert.map_err(|err| TlsError::ClientCa(err.to_string()))?;
                    roots
                        .add(cert)
                        .map_err(|err| TlsError::ClientCa(err.to_string()))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|err| TlsError::ClientCa(err.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The certificates of a PEM text, in order.
fn parse_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: "certificate".into(),
            source,
        })
}

/// One certificate as PEM text.
fn pem_of(cert: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_alt_name_is_an_ip_address_or_a_dns_name() {
        assert_eq!(
            "192.0.2.1".parse(),
            Ok(SubjectAltName::Ip(IpAddr::from([192, 0, 2, 1])))
        );
        assert_eq!(
            "2001:db8::1"
                .parse::<SubjectAltName>()
                .map(|name| name.to_string()),
            Ok("2001:db8::1".to_owned())
        );
        assert_eq!(
            "api.example.com".parse(),
            Ok(SubjectAltName::Dns("api.example.com".to_owned()))
        );
        assert!("not a name".parse::<SubjectAltName>().is_err());
    }
}
