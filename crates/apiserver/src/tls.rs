//! Serving certificates: a fresh cluster CA and a serving certificate
//! signed by it, or a certificate and key given by the operator.

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
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
    /// A new CA and a serving certificate for loopback names and `extra_ips`.
    pub fn generate(extra_ips: &[IpAddr]) -> Result<TlsMaterial, TlsError> {
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
        let mut params = CertificateParams::new(vec![
            "localhost".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default.svc".to_string(),
        ])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        let mut ips: Vec<IpAddr> = vec![
            "127.0.0.1".parse().expect("literal"),
            "::1".parse().expect("literal"),
        ];
        ips.extend(extra_ips.iter().copied().filter(|ip| !ip.is_unspecified()));
        for ip in ips {
            params.subject_alt_names.push(SanType::IpAddress(ip));
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

    /// Reads a certificate chain and key from PEM files.
    pub fn from_files(cert_path: &str, key_path: &str) -> Result<TlsMaterial, TlsError> {
        let read = |path: &str| {
            std::fs::read_to_string(path).map_err(|source| TlsError::Read {
                path: path.to_string(),
                source,
            })
        };
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        Ok(TlsMaterial {
            ca_pem: cert_pem.clone(),
            cert_pem,
            key_pem,
            ca_key_pem: None,
        })
    }

    /// A rustls server configuration offering HTTP/2 and HTTP/1.1. With a
    /// client CA (PEM), clients may present a certificate signed by it;
    /// clients without one still connect, as anonymous or token users.
    pub fn server_config(
        &self,
        client_ca: Option<&str>,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let certs: Vec<CertificateDer<'static>> =
            rustls_pemfile::certs(&mut self.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|source| TlsError::Read {
                    path: "certificate".into(),
                    source,
                })?;
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
