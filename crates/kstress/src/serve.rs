//! `kstress serve`: the embedded API server in the foreground.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use apiserver::{AuthorizationMode, ServerConfig, TlsMaterial};
use clap::Args;

use crate::embedded::{Cluster, ClusterArgs};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to serve HTTPS on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,

    /// Where to write a kubeconfig for this server (CA, URL and token).
    #[arg(long, default_value = "kstress.kubeconfig")]
    kubeconfig_out: PathBuf,

    /// Bearer token clients must present (random by default).
    #[arg(long, env = "KSTRESS_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Serving certificate (PEM); a fresh CA and certificate by default.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<String>,

    /// Private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<String>,

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
        (Some(cert), Some(key)) => Some(TlsMaterial::from_files(cert, key)?),
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
    wait_for_signal().await?;
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

/// Returns on Ctrl-C or SIGTERM.
async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
