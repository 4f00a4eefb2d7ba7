//! `kstress serve`: the embedded API server in the foreground.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use apiserver::{AuthorizationMode, ServerConfig, SubjectAltName, TlsError, TlsMaterial};
use clap::Args;
use rustls::CertificateError;

use crate::embedded::{Cluster, ClusterArgs};
use crate::signals;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to serve HTTPS on; 0.0.0.0 or [::] serves every address
    /// (the kubeconfig then points at loopback).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,

    /// Where to write a kubeconfig for this server (CA, URL and token).
    #[arg(long, default_value = "kstress.kubeconfig")]
    kubeconfig_out: PathBuf,

    /// Bearer token clients must present (random by default).
    #[arg(long, env = "KSTRESS_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Serving certificate (PEM), maybe followed by its chain; a fresh CA
    /// and certificate by default.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<String>,

    /// Private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<String>,

    /// The CA (PEM) that signed --tls-cert, written into the kubeconfig
    /// and trusted by the in-process clients [default: the last
    /// certificate of --tls-cert].
    #[arg(long, requires = "tls_cert")]
    tls_ca: Option<String>,

    /// More DNS names or IP addresses of the generated serving certificate
    /// (repeatable or comma-separated); it always covers loopback,
    /// localhost, the host name and the host's addresses.
    #[arg(long, value_delimiter = ',', conflicts_with = "tls_cert")]
    tls_san: Vec<SubjectAltName>,

    /// More users by bearer token: CSV lines `token,user,uid,"group1,group2"`
    /// (kube-apiserver's --token-auth-file format).
    #[arg(long)]
    token_auth_file: Option<PathBuf>,

    /// CA bundle (PEM) that signs client certificates (CN = user, O =
    /// groups); by default the generated cluster CA.
    #[arg(long)]
    client_ca: Option<PathBuf>,

    /// How requests are authorized: AlwaysAllow or RBAC. The admin token in
    /// the written kubeconfig is in system:masters and allowed everything.
    #[arg(long, default_value = "AlwaysAllow")]
    authorization_mode: AuthorizationMode,

    #[command(flatten)]
    cluster: ClusterArgs,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(given_tls(cert, key, args.tls_ca.as_deref(), args.listen)?),
        _ => None,
    };
    let client_ca = match &args.client_ca {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the client CA {}", path.display()))?,
        ),
        None => None,
    };
    let config = ServerConfig {
        listen: args.listen,
        tls,
        tls_sans: args.tls_san,
        token: args.token,
        token_auth_file: args.token_auth_file,
        client_ca,
        authorization: args.authorization_mode,
        ..ServerConfig::default()
    };
    let cluster = Cluster::start(&args.cluster, config).await?;
    write_private(&args.kubeconfig_out, &cluster.kubeconfig()).with_context(|| {
        format!(
            "cannot write the kubeconfig to {}",
            args.kubeconfig_out.display()
        )
    })?;
    println!("kstress API server listening on {}", cluster.url());
    println!("kubeconfig written to {}", args.kubeconfig_out.display());
    println!(
        "try: kubectl --kubeconfig {} get namespaces",
        args.kubeconfig_out.display()
    );
    println!("stop with Ctrl-C");
    signals::wait_for_interrupt().await?;
    eprintln!("shutting down");
    cluster.stop().await;
    Ok(())
}

/// Writes a file readable by its owner only: a kubeconfig holds a token.
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

/// Reads the given serving certificate, key and CA, and checks before
/// anything starts that clients trusting that CA accept the certificate
/// where the in-process clients and the kubeconfig connect: otherwise the
/// server's own controllers would be the first to fail, with a TLS error.
fn given_tls(
    cert: &str,
    key: &str,
    ca: Option<&str>,
    listen: SocketAddr,
) -> anyhow::Result<TlsMaterial> {
    let material = TlsMaterial::from_files(cert, key, ca)?;
    let ip = apiserver::connect_ip(listen.ip());
    match material.verify_for(ip) {
        Ok(()) => Ok(material),
        Err(err) => match explain(&err, cert, ca, ip) {
            Some(sentence) => Err(anyhow!(sentence)),
            None => Err(err.into()),
        },
    }
}

/// The common ways a given certificate fails, in terms of the flags that
/// fix them.
fn explain(err: &TlsError, cert: &str, ca: Option<&str>, ip: IpAddr) -> Option<String> {
    let reason = match err {
        TlsError::CaAsServerCertificate => {
            return Some(format!(
                "{cert} is a CA certificate, which TLS clients refuse to accept from a server: \
                 serve a certificate signed by it, and name the CA with --tls-ca FILE"
            ));
        }
        TlsError::Untrusted {
            source: rustls::Error::InvalidCertificate(reason),
            ..
        } => reason,
        _ => return None,
    };
    match (reason, ca) {
        (CertificateError::UnknownIssuer, None) => Some(format!(
            "{cert} holds the serving certificate but not the CA that signed it: \
             name that CA with --tls-ca FILE"
        )),
        (CertificateError::UnknownIssuer | CertificateError::BadSignature, Some(ca)) => Some(
            format!("the serving certificate in {cert} is not signed by the CA in --tls-ca {ca}"),
        ),
        (
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            _,
        ) => Some(format!(
            "the serving certificate in {cert} does not cover {ip}, where kstress's own \
                 clients connect: add it to the certificate's subject alternative names"
        )),
        _ => None,
    }
}
