//! TLS for both roles: the server's identity, what the client trusts, and
//! opt-in key logging.
//!
//! Everything uses the ring provider, the one crypto provider of kstress.
//! Both roles offer HTTP/2 through ALPN; the server also accepts HTTP/1.1
//! so that curl and browsers can fetch `/metrics` and profiles.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, KeyLog, RootCertStore, SignatureScheme};

use crate::Error;

/// ALPN identifier of HTTP/2.
pub(crate) const ALPN_H2: &[u8] = b"h2";
/// ALPN identifier of HTTP/1.1.
pub(crate) const ALPN_HTTP11: &[u8] = b"http/1.1";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain and key the server presents.
pub struct ServerIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    certificate_pem: String,
}

impl fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ServerIdentity {
    /// A fresh self-signed certificate, so that the server needs no setup.
    /// It names `localhost`, the loopback addresses and `listen_ip` (when
    /// it is a concrete address), which covers every URL a local client
    /// would use.
    pub fn self_signed(listen_ip: IpAddr) -> Result<Self, Error> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if !listen_ip.is_unspecified() && !listen_ip.is_loopback() {
            names.push(listen_ip.to_string());
        }
        let generated = rcgen::generate_simple_self_signed(names)?;
        let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
            .map_err(|reason| Error::Certificate(reason.to_owned()))?;
        Ok(Self {
            chain: vec![generated.cert.der().clone()],
            key,
            certificate_pem: generated.cert.pem(),
        })
    }

    /// The chain and key from PEM files, for a server that clients should
    /// verify against a real CA.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, Error> {
        let cert_pem = read(cert)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| Error::Pem {
                path: cert.to_owned(),
                reason: source.to_string(),
            })?;
        if chain.is_empty() {
            return Err(Error::Pem {
                path: cert.to_owned(),
                reason: "no CERTIFICATE section".to_owned(),
            });
        }
        let key_pem = read(key)?;
        let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| Error::Pem {
            path: key.to_owned(),
            reason: source.to_string(),
        })?;
        Ok(Self {
            chain,
            key: key_der,
            certificate_pem: String::from_utf8_lossy(&cert_pem).into_owned(),
        })
    }

    /// The server certificate chain in PEM; a client given it with `--ca`
    /// trusts exactly this server.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    pub(crate) fn server_config(
        &self,
        keylog: Option<Arc<KeyLogWriter>>,
    ) -> Result<Arc<rustls::ServerConfig>, Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
        if let Some(keylog) = keylog {
            config.key_log = keylog;
        }
        Ok(Arc::new(config))
    }
}

/// Which server certificates the client accepts. There is no implicit
/// default: the server's generated certificate is self-signed, so the user
/// chooses between naming the certificate to trust and not checking it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientTrust {
    /// The certificates in this PEM file: a CA, or the server's own
    /// self-signed certificate (see `--cert-out`).
    Ca(PathBuf),
    /// Any certificate. The handshake signatures are still checked, so the
    /// connection is encrypted, but the server is not authenticated.
    Insecure,
}

impl ClientTrust {
    /// How the failure to verify a server should be explained to the user.
    pub(crate) fn hint(&self) -> &'static str {
        match self {
            ClientTrust::Ca(_) => {
                "the client trusts only the certificates given with --ca; pass the server's \
                 certificate (written by its --cert-out) or CA, or use --insecure"
            }
            ClientTrust::Insecure => "",
        }
    }

    pub(crate) fn client_config(
        &self,
        keylog: Option<Arc<KeyLogWriter>>,
    ) -> Result<Arc<rustls::ClientConfig>, Error> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let mut config = match self {
            ClientTrust::Ca(path) => {
                let pem = read(path)?;
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|source| Error::Pem {
                        path: path.clone(),
                        reason: source.to_string(),
                    })?;
                    roots.add(cert).map_err(|source| Error::Pem {
                        path: path.clone(),
                        reason: source.to_string(),
                    })?;
                }
                if roots.is_empty() {
                    return Err(Error::Pem {
                        path: path.clone(),
                        reason: "no CERTIFICATE section".to_owned(),
                    });
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            ClientTrust::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate {
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth(),
        };
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        if let Some(keylog) = keylog {
            config.key_log = keylog;
        }
        Ok(Arc::new(config))
    }
}

/// Accepts any server certificate but still verifies that the server
/// holds the certificate's key.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Where TLS secrets go when the user asked for them: the explicit flag
/// wins, then a non-empty `SSLKEYLOGFILE` (the variable browsers and curl
/// honour). With neither, nothing is logged: key logging is never on by
/// default.
pub fn keylog_path(
    flag: Option<PathBuf>,
    sslkeylogfile: Option<&std::ffi::OsStr>,
) -> Option<PathBuf> {
    flag.or_else(|| {
        sslkeylogfile
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    })
}

/// Appends TLS secrets in the NSS key log format, which Wireshark reads to
/// decrypt captured traffic.
///
/// Opening the file up front turns a bad path into an error at start
/// rather than silently lost secrets; write failures later are reported
/// once per failure as warnings because a TLS handshake cannot fail on them.
pub struct KeyLogWriter {
    path: PathBuf,
    file: Mutex<File>,
}

impl fmt::Debug for KeyLogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLogWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl KeyLogWriter {
    /// Opens `path` for appending, creating it readable by the owner only:
    /// the file holds secrets.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(|source| Error::KeyLog {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// The file the secrets go to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stderr warning to show while key logging is on.
    pub fn warning(&self) -> String {
        format!(
            "warning: TLS key logging is on: session secrets are appended to {}; \
             anyone who can read it can decrypt the captured traffic",
            self.path.display()
        )
    }
}

impl KeyLog for KeyLogWriter {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let mut line =
            String::with_capacity(label.len() + 2 * (client_random.len() + secret.len()) + 3);
        line.push_str(label);
        line.push(' ');
        push_hex(&mut line, client_random);
        line.push(' ');
        push_hex(&mut line, secret);
        line.push('\n');
        // One write per line on an append-mode file keeps lines whole even
        // when both roles of one process log to the same file.
        if let Err(err) = self.file.lock().write_all(line.as_bytes()) {
            tracing::warn!(path = %self.path.display(), %err, "cannot write TLS key log");
        }
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_logging_is_off_unless_asked() {
        assert_eq!(keylog_path(None, None), None);
        assert_eq!(keylog_path(None, Some("".as_ref())), None);
        assert_eq!(
            keylog_path(None, Some("/tmp/env.keys".as_ref())),
            Some(PathBuf::from("/tmp/env.keys"))
        );
        assert_eq!(
            keylog_path(
                Some("/tmp/flag.keys".into()),
                Some("/tmp/env.keys".as_ref())
            ),
            Some(PathBuf::from("/tmp/flag.keys"))
        );
    }

    #[test]
    fn key_log_lines_are_nss_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        let writer = KeyLogWriter::open(&path).unwrap();
        writer.log(
            "CLIENT_TRAFFIC_SECRET_0",
            &[0x00, 0xab],
            &[0xff, 0x10, 0x01],
        );
        writer.log("SERVER_TRAFFIC_SECRET_0", &[0x01], &[0x02]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "CLIENT_TRAFFIC_SECRET_0 00ab ff1001\nSERVER_TRAFFIC_SECRET_0 01 02\n"
        );
        assert!(writer.warning().contains(&path.display().to_string()));
    }

    #[test]
    fn self_signed_identity_builds_a_server_config() {
        let identity = ServerIdentity::self_signed("127.0.0.1".parse().unwrap()).unwrap();
        assert!(
            identity
                .certificate_pem()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        let config = identity.server_config(None).unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = ClientTrust::Ca(path.clone())
            .client_config(None)
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("no CERTIFICATE"), "{message}");
    }
}
