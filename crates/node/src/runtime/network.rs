//! `httpGet` and `tcpSocket` probes against real listeners, for runtimes
//! whose containers open sockets.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A network probe target, resolved from the probe's named or numbered port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkProbe {
    /// `httpGet`: success is a status code in 200..400.
    Http {
        host: String,
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
    },
    /// `tcpSocket`: success is an accepted connection.
    Tcp { host: String, port: u16 },
}

/// Runs `probe` within `timeout`.
pub async fn check(probe: &NetworkProbe, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, run(probe)).await {
        Ok(result) => result,
        Err(_) => Err(format!("probe timed out after {timeout:?}")),
    }
}

async fn run(probe: &NetworkProbe) -> Result<(), String> {
    match probe {
        NetworkProbe::Tcp { host, port } => TcpStream::connect((host.as_str(), *port))
            .await
            .map(drop)
            .map_err(|err| format!("dial tcp {host}:{port}: {err}")),
        NetworkProbe::Http {
            host,
            port,
            path,
            headers,
        } => {
            let mut stream = TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(|err| format!("Get \"http://{host}:{port}{path}\": {err}"))?;
            let mut request = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nConnection: close\r\n"
            );
            for (name, value) in headers {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
            request.push_str("\r\n");
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|err| err.to_string())?;
            let mut head = vec![0u8; 64];
            let read = stream
                .read(&mut head)
                .await
                .map_err(|err| err.to_string())?;
            let line = String::from_utf8_lossy(&head[..read]);
            let code: u16 = line
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse().ok())
                .ok_or_else(|| format!("malformed HTTP response {line:?}"))?;
            if (200..400).contains(&code) {
                Ok(())
            } else {
                Err(format!("HTTP probe failed with statuscode: {code}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    async fn serve_once(response: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(response.as_bytes()).await;
        });
        port
    }

    fn http(port: u16) -> NetworkProbe {
        NetworkProbe::Http {
            host: "127.0.0.1".into(),
            port,
            path: "/healthz".into(),
            headers: vec![],
        }
    }

    #[tokio::test]
    async fn http_probes_judge_the_status_code() {
        let ok = serve_once("HTTP/1.1 204 No Content\r\n\r\n").await;
        assert_eq!(check(&http(ok), Duration::from_secs(5)).await, Ok(()));
        let bad = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
        let err = check(&http(bad), Duration::from_secs(5)).await.unwrap_err();
        assert!(err.contains("503"), "{err}");
    }

    #[tokio::test]
    async fn tcp_probes_need_a_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let probe = NetworkProbe::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        assert_eq!(check(&probe, Duration::from_secs(5)).await, Ok(()));
        drop(listener);
        assert!(check(&probe, Duration::from_secs(5)).await.is_err());
    }
}
