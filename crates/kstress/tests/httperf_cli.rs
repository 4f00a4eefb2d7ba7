//! `kstress httperf` end to end: the built binary as a server, and again as
//! a client of that server, on loopback.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Bound on anything the test waits for; generous for a loaded 2-core box.
const PATIENCE: Duration = Duration::from_secs(60);

fn kstress() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kstress"));
    command.arg("httperf").env_remove("SSLKEYLOGFILE");
    command
}

/// A server process, killed when dropped so that a failing test leaves
/// nothing behind.
struct ServerProcess {
    child: Child,
    url: String,
}

impl ServerProcess {
    /// Starts `kstress httperf` with `args` and waits for its URL.
    fn start(args: &[&str]) -> Self {
        let mut child = kstress()
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kstress starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut server = Self {
            child,
            url: String::new(),
        };
        loop {
            let line = lines
                .recv_timeout(PATIENCE)
                .expect("the server announces its URL");
            if let Some(rest) = line.strip_prefix("httperf: serving ") {
                server.url = rest.split(' ').next().unwrap_or_default().to_owned();
                return server;
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Ignoring the results: the process may have exited already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client process to completion, within [`PATIENCE`].
fn client(args: &[&str]) -> Output {
    let child = kstress()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kstress starts");
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || done_tx.send(child.wait_with_output()));
    done.recv_timeout(PATIENCE)
        .expect("the client exits in time")
        .expect("the client's output is readable")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a failed run that explains itself in one `error:` line.
fn assert_one_error_line(output: &Output, expected: &str) {
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(expected), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_client_run_writes_results_json() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.pem");
    let server = ServerProcess::start(&["--cert-out", cert.to_str().unwrap()]);
    let out = dir.path().join("out");
    let keys = dir.path().join("client.keys");

    let output = client(&[
        "--base-url",
        &server.url,
        "--ca",
        cert.to_str().unwrap(),
        "--threads",
        "4",
        "--connections",
        "2",
        "--size",
        "64KiB",
        "-n",
        "4",
        "--period-ms",
        "1",
        "--duration",
        "2s",
        "--keylog-file",
        keys.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(" Gbit/s over 2 connections, 4 streams"),
        "{stdout}"
    );
    assert!(
        stderr.contains("warning: TLS key logging is on"),
        "{stderr}"
    );
    let keys = std::fs::read_to_string(keys).unwrap();
    assert!(keys.contains("CLIENT_TRAFFIC_SECRET_0 "), "{keys}");

    let results = read_json(&out.join("results.json"));
    assert_eq!(results["schema"], "kstress.results/v1");
    assert_eq!(results["scenario"], "httperf");
    assert_eq!(results["target"], server.url.as_str());
    assert_eq!(results["config"]["connections"], 2);
    assert_eq!(results["config"]["size"], 65536);
    let response = &results["operations"]["response"];
    let completed = response["count"].as_u64().unwrap();
    assert!(completed > 0, "{response}");
    assert_eq!(response["errors"], 0, "{response}");
    assert_eq!(results["operations"]["first-block"]["count"], completed);
    // Four blocks 1 ms apart take at least 3 ms.
    assert!(response["p50_ms"].as_f64().unwrap() >= 3.0, "{response}");
    let received = results["extra"]["throughput"]["received_bytes"]
        .as_u64()
        .unwrap();
    assert!(received >= completed * 4 * 65536, "{received}");
    assert!(
        results["extra"]["throughput"]["gbit_per_s"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn client_errors_are_one_clear_line() {
    let output = client(&["--base-url", "127.0.0.1:8443", "--insecure"]);
    assert_one_error_line(&output, "invalid base URL");

    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let output = client(&["--base-url", &url, "--insecure"]);
    assert_one_error_line(&output, "cannot connect to 127.0.0.1:");

    let server = ServerProcess::start(&["--max-response-bytes", "1MiB"]);
    let output = client(&[
        "--base-url",
        &server.url,
        "--insecure",
        "--size",
        "1MiB",
        "-n",
        "2",
    ]);
    assert_one_error_line(&output, "--max-response-bytes");

    // Without --ca the server's self-signed certificate is not trusted.
    let dir = tempfile::tempdir().unwrap();
    let stranger = dir.path().join("stranger.pem");
    let other = ServerProcess::start(&["--cert-out", stranger.to_str().unwrap()]);
    let output = client(&[
        "--base-url",
        &server.url,
        "--ca",
        stranger.to_str().unwrap(),
    ]);
    assert_one_error_line(&output, "TLS handshake");
    drop(other);

    let output = client(&["--base-url", &server.url]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("--insecure"));
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_server_that_goes_away_mid_run_fails_the_client_with_its_counts() {
    let server = ServerProcess::start(&[]);
    let mut child = kstress()
        .args(["--base-url", &server.url, "--insecure", "-v", "2"])
        .args(["--size", "64KiB", "-n", "4", "--duration", "60s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kstress starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    // The once-a-second rate line shows blocks arriving: the run is under way.
    let mut seen = Vec::new();
    loop {
        let line = lines
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("the client never received blocks:\n{}", seen.join("\n")));
        let receiving = line
            .rsplit_once("receive ")
            .and_then(|(_, rate)| rate.trim_end_matches(" Gbit/s").parse::<f64>().ok())
            .is_some_and(|rate| rate > 0.0);
        seen.push(line);
        if receiving {
            break;
        }
    }
    drop(server);
    let (done_tx, done) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        let status = child.wait();
        done_tx.send((status, std::io::read_to_string(stdout)))
    });
    let (status, stdout) = done
        .recv_timeout(PATIENCE)
        .expect("the client ends once its server is gone");
    seen.extend(lines.try_iter());
    let stderr = seen.join("\n");
    assert!(
        !status.expect("the client's status").success(),
        "a run cut short must fail:\n{stderr}"
    );
    let error = seen
        .iter()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{stderr}"));
    assert!(
        error.starts_with("error: the run ended early, at ")
            && error.contains(" s of 60.0 s: the server closed every connection (")
            && error.contains(" requests completed, "),
        "{stderr}"
    );
    assert!(
        stdout.expect("the client's stdout").contains("requests: "),
        "the summary is still printed"
    );
}
