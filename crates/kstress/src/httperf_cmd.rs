//! `kstress httperf`: HTTP/2 + TLS block-transfer throughput, server and
//! optionally client in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::units::{parse_duration, parse_size};
use anyhow::Context as _;
use clap::{ArgGroup, Args};
use httperf::{
    BlockRequest, Client, ClientConfig, ClientTrust, Http2Tuning, KeyLogWriter, RateMeter,
    ReceivedBytes, RunEnd, Server, ServerConfig, ServerIdentity,
};

/// The tool in a few lines, shown after the options in --help.
const ABOUT: &str = "\
Every process serves HTTPS (HTTP/2 and HTTP/1.1):
  GET /blocks?size=B&n=N&periodMS=P   N blocks of B bytes, one every P ms
  GET /metrics                        Prometheus metrics
  GET /debug/pprof/profile?seconds=S  CPU profile (pprof; &format=svg for a flamegraph)
Without --cert/--key the server generates a self-signed certificate; --cert-out saves it.

With --base-url the process is also a client: --threads request loops share --connections
TLS connections and fetch blocks until --duration ends (or Ctrl-C), then print throughput
and latencies. The client trusts only what it is told: --ca FILE (the server's certificate
or its CA) authenticates the server, --insecure accepts any certificate and only encrypts.

Example:
  kstress httperf --listen 127.0.0.1:8443 --cert-out /tmp/httperf.pem &
  kstress httperf --base-url https://127.0.0.1:8443 --ca /tmp/httperf.pem \\
      --threads 8 --connections 2 --size 1MiB -n 64 --duration 10s --output out";

/// Listen address of a server-only process.
const SERVER_LISTEN: &str = "127.0.0.1:8443";
/// Listen address of a process that is also a client: any free port, so
/// that a client next to a server on the default port does not collide.
const CLIENT_LISTEN: &str = "127.0.0.1:0";

/// Options of `kstress httperf`; [`ABOUT`] is what the user reads.
#[derive(Args, Debug)]
#[command(
    group(ArgGroup::new("trust").args(["ca", "insecure"])),
    after_help = ABOUT,
)]
pub struct HttperfArgs {
    /// Address to serve HTTPS on [default: 127.0.0.1:8443, or any free
    /// loopback port with --base-url].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Server certificate chain (PEM); a self-signed one is generated
    /// without it.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key of --cert (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Write the server's certificate (PEM) to this file, for the --ca of
    /// clients of a self-signed server.
    #[arg(long)]
    cert_out: Option<PathBuf>,
    /// Largest /blocks response (size x n) the server agrees to send.
    #[arg(long, default_value = "16GiB", value_parser = parse_size)]
    max_response_bytes: u64,

    /// Also act as a client of this server, e.g. https://127.0.0.1:8443;
    /// needs --ca or --insecure.
    #[arg(long, requires = "trust")]
    base_url: Option<String>,
    /// Concurrent request loops (HTTP/2 streams).
    #[arg(long, default_value_t = 1, requires = "base_url")]
    threads: usize,
    /// TLS connections the request loops are spread over.
    #[arg(long, default_value_t = 1, requires = "base_url")]
    connections: usize,
    /// Bytes per block, e.g. 1MiB.
    #[arg(long, default_value = "1MiB", value_parser = parse_size, requires = "base_url")]
    size: u64,
    /// Blocks per request.
    #[arg(short = 'n', long, default_value_t = 16, requires = "base_url")]
    n: u64,
    /// Milliseconds between blocks, at least 1 (there is no unthrottled
    /// mode; larger blocks carry more bytes per second).
    #[arg(long, default_value_t = 1, requires = "base_url")]
    period_ms: u64,
    /// How long the client runs, e.g. 30s or 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration, requires = "base_url")]
    duration: Duration,
    /// Stop after this many requests in total (all loops together).
    #[arg(long, requires = "base_url")]
    requests: Option<u64>,
    /// Trust only the certificates in this PEM file: the server's own
    /// (see --cert-out) or its CA.
    #[arg(long, requires = "base_url", conflicts_with = "insecure")]
    ca: Option<PathBuf>,
    /// Accept any server certificate: the traffic is encrypted but the
    /// server is not authenticated.
    #[arg(long, requires = "base_url")]
    insecure: bool,
    /// Largest HTTP/2 DATA frame the client accepts (SETTINGS_MAX_FRAME_SIZE),
    /// 16KiB to 16MiB-1; larger frames cost less per byte.
    #[arg(long, default_value = "16KiB", value_parser = parse_frame_size, requires = "base_url")]
    max_frame_size: u32,
    /// Directory to write results.json into.
    #[arg(long, requires = "base_url")]
    output: Option<PathBuf>,

    /// Append TLS secrets (NSS key log format, for Wireshark) to this
    /// file; SSLKEYLOGFILE does the same. Off unless asked.
    #[arg(long)]
    keylog_file: Option<PathBuf>,
    /// Verbosity: 2 logs transmit and receive rates every second. For
    /// more detail set RUST_LOG=httperf=debug.
    #[arg(short = 'v', long = "verbosity", default_value_t = 0)]
    verbosity: u8,
}

/// Runs the server, and the client when --base-url is given.
pub async fn run(args: HttperfArgs) -> anyhow::Result<()> {
    let keylog = httperf::keylog_path(
        args.keylog_file.clone(),
        std::env::var_os("SSLKEYLOGFILE").as_deref(),
    )
    .map(|path| KeyLogWriter::open(&path).map(Arc::new))
    .transpose()?;
    if let Some(keylog) = &keylog {
        eprintln!("{}", keylog.warning());
    }
    let server = start_server(&args, keylog.clone()).await?;
    let result = match args.base_url.clone() {
        Some(base_url) => run_client(&server, base_url, args, keylog.clone()).await,
        None => {
            announce(&server);
            serve_until_interrupted(&server, args.verbosity).await
        }
    };
    server.shutdown().await;
    if let Some(keylog) = &keylog {
        eprintln!("{}", keylog.warning());
    }
    result
}

async fn start_server(
    args: &HttperfArgs,
    keylog: Option<Arc<KeyLogWriter>>,
) -> anyhow::Result<Server> {
    let default_listen = if args.base_url.is_some() {
        CLIENT_LISTEN
    } else {
        SERVER_LISTEN
    };
    let listen = match args.listen {
        Some(listen) => listen,
        None => default_listen.parse().context("default listen address")?,
    };
    let identity = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => ServerIdentity::from_pem_files(cert, key)?,
        _ => ServerIdentity::self_signed(listen.ip())?,
    };
    if let Some(path) = &args.cert_out {
        std::fs::write(path, identity.certificate_pem())
            .with_context(|| format!("cannot write the certificate to {}", path.display()))?;
    }
    let mut config = ServerConfig::new(listen, identity);
    config.max_response_bytes = args.max_response_bytes;
    config.keylog = keylog;
    Ok(Server::start(config).await?)
}

/// Tells the user (and scripts, which read the URL from it) where the
/// server is.
fn announce(server: &Server) {
    eprintln!(
        "httperf: serving {} (/blocks, /metrics, /debug/pprof/profile)",
        server.url()
    );
}

async fn run_client(
    server: &Server,
    base_url: String,
    args: HttperfArgs,
    keylog: Option<Arc<KeyLogWriter>>,
) -> anyhow::Result<()> {
    let trust = match (args.insecure, args.ca) {
        (true, _) => ClientTrust::Insecure,
        (false, Some(ca)) => ClientTrust::Ca(ca),
        (false, None) => anyhow::bail!("--base-url needs --ca FILE or --insecure"),
    };
    let request = BlockRequest::new(args.size, args.n, args.period_ms)
        .context("invalid --size, -n or --period-ms")?;
    let client = Client::connect(ClientConfig {
        base_url,
        threads: args.threads,
        connections: args.connections,
        request,
        duration: args.duration,
        max_requests: args.requests,
        trust,
        keylog,
        tuning: Http2Tuning {
            max_frame_size: args.max_frame_size,
            ..Http2Tuning::default()
        },
    })
    .await?;
    announce(server);
    let received = client.received();
    let report = client.run(interrupted());
    tokio::pin!(report);
    let mut rates = RateLog::new(server, Some(received), args.verbosity);
    let report = loop {
        tokio::select! {
            report = &mut report => break report?,
            () = rates.tick() => {}
        }
    };
    print!("{report}");
    if let Some(dir) = &args.output {
        let path = report.write_json(dir)?;
        eprintln!("results written to {}", path.display());
    }
    let (requests, failed) = (report.requests(), report.errors());
    if report.end() == RunEnd::ConnectionsLost {
        anyhow::bail!(
            "the run ended early, at {:.1} s of {:.1} s: the server closed every connection \
             ({requests} requests completed, {failed} failed)",
            report.elapsed().as_secs_f64(),
            args.duration.as_secs_f64(),
        );
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {requests} requests failed");
    }
    Ok(())
}

async fn serve_until_interrupted(server: &Server, verbosity: u8) -> anyhow::Result<()> {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut rates = RateLog::new(server, None, verbosity);
    loop {
        tokio::select! {
            result = &mut ctrl_c => return result.context("cannot wait for Ctrl-C"),
            () = rates.tick() => {}
        }
    }
}

fn parse_frame_size(text: &str) -> Result<u32, String> {
    let bytes = parse_size(text)?;
    u32::try_from(bytes)
        .ok()
        .filter(|size| (httperf::MIN_FRAME_SIZE..=httperf::MAX_FRAME_SIZE).contains(size))
        .ok_or_else(|| {
            format!(
                "must be from {} to {} bytes",
                httperf::MIN_FRAME_SIZE,
                httperf::MAX_FRAME_SIZE
            )
        })
}

/// Completes on Ctrl-C; never, when the signal cannot be watched.
async fn interrupted() {
    if let Err(err) = tokio::signal::ctrl_c().await {
        tracing::warn!(%err, "cannot wait for Ctrl-C; the run ends with --duration");
        std::future::pending::<()>().await;
    }
}

/// The once-a-second rate lines of `-v 2`.
struct RateLog<'a> {
    server: &'a Server,
    received: Option<ReceivedBytes>,
    meter: RateMeter,
    ticks: Option<tokio::time::Interval>,
}

impl<'a> RateLog<'a> {
    fn new(server: &'a Server, received: Option<ReceivedBytes>, verbosity: u8) -> Self {
        let meter = RateMeter::new(
            server.stats().sent_bytes_total,
            received.as_ref().map(ReceivedBytes::get),
        );
        let ticks = (verbosity >= 2).then(|| {
            let start = tokio::time::Instant::now() + Duration::from_secs(1);
            tokio::time::interval_at(start, Duration::from_secs(1))
        });
        Self {
            server,
            received,
            meter,
            ticks,
        }
    }

    /// Waits for the next second and logs it; never completes below `-v 2`.
    async fn tick(&mut self) {
        match &mut self.ticks {
            Some(ticks) => {
                ticks.tick().await;
                let rates = self.meter.sample(
                    self.server.stats().sent_bytes_total,
                    self.received.as_ref().map(ReceivedBytes::get),
                );
                eprintln!("httperf: {rates}");
            }
            None => std::future::pending().await,
        }
    }
}
