//! `kstress serve`'s listen address and serving certificates, through the
//! kubeconfig it writes and real clients (kube-rs, kubectl).

use std::path::Path;
use std::process::Stdio;

use base64::Engine;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use testkit::{Serve, WAIT};
use tokio::process::Command;

const KSTRESS: &str = env!("CARGO_BIN_EXE_kstress");

/// Lists namespaces with a kube-rs client built from the written
/// kubeconfig alone.
async fn assert_lists_namespaces(serve: &Serve) {
    let namespaces: Api<Namespace> = Api::all(serve.client().await);
    let list = namespaces
        .list(&ListParams::default())
        .await
        .expect("namespaces are listed through the written kubeconfig");
    assert!(
        list.items
            .iter()
            .any(|ns| ns.metadata.name.as_deref() == Some("default")),
        "no default namespace in {:?}",
        list.items
    );
}

fn kubeconfig_value(kubeconfig: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(kubeconfig).expect("kubeconfig");
    text.lines()
        .find_map(|line| line.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in the kubeconfig:\n{text}"))
        .to_owned()
}

/// `kubectl get namespaces` through the written kubeconfig, checking the
/// certificate against `server_name` instead of the URL's address.
async fn kubectl_with_server_name(kubeconfig: &Path, server_name: &str) -> (bool, String) {
    let output = tokio::time::timeout(
        WAIT,
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--tls-server-name", server_name, "get", "namespaces"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("kubectl finishes")
    .expect("kubectl (v1.32) is on PATH");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("host name")
        .trim()
        .to_owned()
}

#[tokio::test]
async fn serving_on_every_ipv4_address_is_reached_through_loopback() {
    let serve = Serve::start_on(
        KSTRESS,
        "0.0.0.0:0",
        &["--tls-san".into(), "kstress.example,192.0.2.10".into()],
    )
    .await;
    let server = kubeconfig_value(serve.kubeconfig(), "server");
    assert!(
        server.starts_with("https://127.0.0.1:"),
        "the kubeconfig points at {server}"
    );
    assert_lists_namespaces(&serve).await;
    // The certificate covers the --tls-san names, localhost and the host
    // name; kubectl checks each over the same loopback connection.
    for name in ["kstress.example", "192.0.2.10", "localhost", &host_name()] {
        let (ok, stderr) = kubectl_with_server_name(serve.kubeconfig(), name).await;
        assert!(ok, "the certificate does not cover {name}:\n{stderr}");
    }
    let (ok, _) = kubectl_with_server_name(serve.kubeconfig(), "elsewhere.example").await;
    assert!(!ok, "the certificate covers a name nobody asked for");
}

#[tokio::test]
async fn serving_on_every_ipv6_address_is_reached_through_ipv6_loopback() {
    let serve = Serve::start_on(KSTRESS, "[::]:0", &[]).await;
    let server = kubeconfig_value(serve.kubeconfig(), "server");
    assert!(
        server.starts_with("https://[::1]:"),
        "the kubeconfig points at {server}"
    );
    assert_lists_namespaces(&serve).await;
}

/// PEM files of a test PKI, in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        Pki {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write PEM");
        path.to_str().expect("UTF-8 path").to_owned()
    }
}

fn loopback_params(is_ca: IsCa) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "kstress test");
    params.subject_alt_names = vec![
        SanType::IpAddress("127.0.0.1".parse().expect("IP")),
        SanType::DnsName("localhost".try_into().expect("DNS name")),
    ];
    params.is_ca = is_ca;
    params
}

/// A CA and a serving certificate for loopback signed by it: (CA PEM,
/// leaf PEM, leaf key PEM).
fn ca_and_leaf() -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kstress test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("leaf key");
    let leaf = loopback_params(IsCa::NoCa)
        .signed_by(&key, &issuer)
        .expect("leaf certificate");
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

fn tls_args(cert: &str, key: &str, ca: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "--tls-cert".to_owned(),
        cert.to_owned(),
        "--tls-key".to_owned(),
        key.to_owned(),
    ];
    if let Some(ca) = ca {
        args.extend(["--tls-ca".to_owned(), ca.to_owned()]);
    }
    args
}

/// Runs `kstress serve` with `args`, which must make it fail at start;
/// returns its stderr.
async fn serve_fails(args: &[String]) -> String {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = tokio::time::timeout(
        WAIT,
        Command::new(KSTRESS)
            .args(["serve", "--listen", "127.0.0.1:0", "--kubeconfig-out"])
            .arg(dir.path().join("kubeconfig"))
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("kstress serve exits at start")
    .expect("kstress serve runs");
    assert!(!output.status.success(), "kstress serve {args:?} started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_busy_listen_address_names_its_cause_once() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to occupy");
    let addr = busy.local_addr().expect("its address").to_string();
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = tokio::time::timeout(
        WAIT,
        Command::new(KSTRESS)
            .args(["serve", "--listen", &addr, "--kubeconfig-out"])
            .arg(dir.path().join("kubeconfig"))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("kstress serve exits at start")
    .expect("kstress serve runs");
    assert!(
        !output.status.success(),
        "kstress serve started on a busy port"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "one chain, each cause once:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_ca_signed_certificate_with_its_ca_in_tls_ca_serves_kube_rs() {
    let pki = Pki::new();
    let (ca, leaf, key) = ca_and_leaf();
    let args = tls_args(
        &pki.write("leaf.pem", &leaf),
        &pki.write("leaf.key", &key),
        Some(&pki.write("ca.pem", &ca)),
    );
    let serve = Serve::start(KSTRESS, &args).await;
    assert_lists_namespaces(&serve).await;
    let written = base64::engine::general_purpose::STANDARD
        .decode(kubeconfig_value(
            serve.kubeconfig(),
            "certificate-authority-data",
        ))
        .expect("base64 CA");
    assert_eq!(String::from_utf8(written).expect("PEM"), ca);
}

#[tokio::test]
async fn a_certificate_file_with_its_chain_trusts_the_chain_s_last_certificate() {
    let pki = Pki::new();
    let (ca, leaf, key) = ca_and_leaf();
    let args = tls_args(
        &pki.write("chain.pem", &format!("{leaf}{ca}")),
        &pki.write("leaf.key", &key),
        None,
    );
    let serve = Serve::start(KSTRESS, &args).await;
    assert_lists_namespaces(&serve).await;
}

#[tokio::test]
async fn a_self_signed_certificate_is_its_own_ca_for_kube_rs_and_kubectl() {
    let pki = Pki::new();
    let key = KeyPair::generate().expect("key");
    let cert = loopback_params(IsCa::NoCa)
        .self_signed(&key)
        .expect("certificate");
    let args = tls_args(
        &pki.write("self.pem", &cert.pem()),
        &pki.write("self.key", &key.serialize_pem()),
        None,
    );
    let serve = Serve::start(KSTRESS, &args).await;
    assert_lists_namespaces(&serve).await;
    let (ok, stderr) = kubectl_with_server_name(serve.kubeconfig(), "localhost").await;
    assert!(ok, "kubectl refuses the self-signed certificate:\n{stderr}");
}

#[tokio::test]
async fn a_leaf_without_its_ca_is_refused_at_start_naming_tls_ca() {
    let pki = Pki::new();
    let (_, leaf, key) = ca_and_leaf();
    let cert = pki.write("leaf.pem", &leaf);
    let stderr = serve_fails(&tls_args(&cert, &pki.write("leaf.key", &key), None)).await;
    assert!(
        stderr.contains(&cert) && stderr.contains("--tls-ca"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_ca_certificate_as_the_serving_certificate_is_refused_at_start() {
    let pki = Pki::new();
    let key = KeyPair::generate().expect("key");
    let cert = loopback_params(IsCa::Ca(BasicConstraints::Unconstrained))
        .self_signed(&key)
        .expect("certificate");
    let path = pki.write("ca-as-leaf.pem", &cert.pem());
    let stderr = serve_fails(&tls_args(
        &path,
        &pki.write("ca-as-leaf.key", &key.serialize_pem()),
        None,
    ))
    .await;
    assert!(
        stderr.contains(&path) && stderr.contains("CA certificate") && stderr.contains("--tls-ca"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_tls_ca_that_did_not_sign_the_certificate_is_refused_at_start() {
    let pki = Pki::new();
    let (_, leaf, key) = ca_and_leaf();
    let (other_ca, _, _) = ca_and_leaf();
    let ca = pki.write("other-ca.pem", &other_ca);
    let stderr = serve_fails(&tls_args(
        &pki.write("leaf.pem", &leaf),
        &pki.write("leaf.key", &key),
        Some(&ca),
    ))
    .await;
    assert!(
        stderr.contains("not signed by the CA in --tls-ca"),
        "{stderr}"
    );
}
