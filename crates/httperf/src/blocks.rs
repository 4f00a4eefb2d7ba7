//! `GET /blocks?size=B&n=N&periodMS=P`: the query and the paced body.
//!
//! The body is the hot path of the whole tool. Every block is cut from one
//! static zero-filled buffer, so a response allocates nothing per block:
//! each frame is a `Bytes` slice of static memory, and the only per-block
//! work is a timer tick and a counter increment.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use prometheus_client::metrics::counter::Counter;
use tokio::time::{Interval, MissedTickBehavior};

use crate::metrics::GaugeGuard;

/// Largest piece of a block handed to the HTTP layer at once. Larger
/// blocks go out as several pieces (invisible to the client, which sees one
/// byte stream); smaller pieces would mean more wakeups per byte, larger
/// ones more memory queued per stream.
const CHUNK: usize = 256 * 1024;

/// The bytes every block is made of.
static ZEROES: [u8; CHUNK] = [0; CHUNK];

/// Upper bound of `periodMS`: one hour. Longer periods are surely typos,
/// and they keep every timer far from overflow.
pub const MAX_PERIOD_MS: u64 = 3_600_000;

/// A valid `/blocks` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRequest {
    /// Bytes per block.
    pub size: u64,
    /// Number of blocks.
    pub n: u64,
    /// Time between the starts of consecutive blocks.
    pub period: Duration,
}

/// Why a `/blocks` query was refused; the message names the parameter so
/// that a 400 explains itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A required parameter is absent.
    #[error("missing query parameter {0:?}: it must be a positive integer")]
    Missing(&'static str),
    /// A parameter is not a positive integer (zero, negative, not a number).
    #[error("query parameter {name:?} must be a positive integer, got {value:?}")]
    NotPositive {
        /// The parameter.
        name: &'static str,
        /// What the request gave.
        value: String,
    },
    /// `periodMS` is above [`MAX_PERIOD_MS`].
    #[error("query parameter \"periodMS\" must be at most {MAX_PERIOD_MS} (one hour), got {0}")]
    PeriodTooLong(u64),
    /// The response would exceed the server's cap.
    #[error(
        "size x n = {requested} bytes exceeds this server's cap of {cap} bytes per response \
         (--max-response-bytes)"
    )]
    TooLarge {
        /// size x n.
        requested: u128,
        /// The server's `--max-response-bytes`.
        cap: u64,
    },
}

impl BlockRequest {
    /// Parses and checks the query of a `/blocks` request against the
    /// server's per-response cap. Repeated parameters use their first value.
    pub fn parse(query: Option<&str>, max_response_bytes: u64) -> Result<Self, QueryError> {
        let query = query.unwrap_or_default();
        let param = |name: &'static str| -> Result<u64, QueryError> {
            let value = form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == name)
                .map(|(_, value)| value)
                .ok_or(QueryError::Missing(name))?;
            match value.parse::<u64>() {
                Ok(parsed) if parsed > 0 => Ok(parsed),
                _ => Err(QueryError::NotPositive {
                    name,
                    value: value.into_owned(),
                }),
            }
        };
        Self::checked(
            param("size")?,
            param("n")?,
            param("periodMS")?,
            max_response_bytes,
        )
    }

    /// A request for the client role to send; zero values are refused
    /// like the server refuses them.
    pub fn new(size: u64, n: u64, period_ms: u64) -> Result<Self, QueryError> {
        for (name, value) in [("size", size), ("n", n), ("periodMS", period_ms)] {
            if value == 0 {
                return Err(QueryError::NotPositive {
                    name,
                    value: "0".to_owned(),
                });
            }
        }
        Self::checked(size, n, period_ms, u64::MAX)
    }

    fn checked(
        size: u64,
        n: u64,
        period_ms: u64,
        max_response_bytes: u64,
    ) -> Result<Self, QueryError> {
        if period_ms > MAX_PERIOD_MS {
            return Err(QueryError::PeriodTooLong(period_ms));
        }
        let requested = u128::from(size) * u128::from(n);
        if requested > u128::from(max_response_bytes) {
            return Err(QueryError::TooLarge {
                requested,
                cap: max_response_bytes,
            });
        }
        Ok(Self {
            size,
            n,
            period: Duration::from_millis(period_ms),
        })
    }

    /// The body length, size x n.
    pub fn total_bytes(&self) -> u64 {
        self.size.saturating_mul(self.n)
    }

    /// The request's path and query, e.g. `/blocks?size=1024&n=4&periodMS=10`.
    pub fn path_and_query(&self) -> String {
        format!(
            "/blocks?size={}&n={}&periodMS={}",
            self.size,
            self.n,
            self.period.as_millis()
        )
    }
}

/// The streaming body of one `/blocks` response.
///
/// Block `i` starts no earlier than `i` periods after the response started
/// (the first one at once). A receiver slower than the period delays the
/// following blocks rather than getting a burst to catch up, like a Go
/// ticker that drops ticks.
#[derive(Debug)]
pub(crate) struct BlockBody {
    size: u64,
    /// Blocks not yet started.
    blocks_left: u64,
    /// Bytes of the current block not yet handed out.
    in_block: u64,
    ticks: Interval,
    sent: Counter,
    _streaming: GaugeGuard,
}

impl BlockBody {
    pub fn new(request: BlockRequest, sent: Counter, streaming: GaugeGuard) -> Self {
        let mut ticks = tokio::time::interval(request.period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            size: request.size,
            blocks_left: request.n,
            in_block: 0,
            ticks,
            sent,
            _streaming: streaming,
        }
    }

    fn remaining(&self) -> u64 {
        self.blocks_left
            .saturating_mul(self.size)
            .saturating_add(self.in_block)
    }
}

impl Body for BlockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.in_block == 0 {
            if this.blocks_left == 0 {
                return Poll::Ready(None);
            }
            ready!(this.ticks.poll_tick(cx));
            this.blocks_left -= 1;
            this.in_block = this.size;
        }
        // Both bounds fit in usize: CHUNK does, and the minimum is at most CHUNK.
        let len = usize::try_from(this.in_block).map_or(CHUNK, |left| left.min(CHUNK));
        this.in_block -= len as u64;
        this.sent.inc_by(len as u64);
        Poll::Ready(Some(Ok(Frame::data(
            Bytes::from_static(&ZEROES).slice(..len),
        ))))
    }

    fn is_end_stream(&self) -> bool {
        self.blocks_left == 0 && self.in_block == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: u64 = 1 << 30;

    fn parse(query: &str) -> Result<BlockRequest, QueryError> {
        BlockRequest::parse(Some(query), CAP)
    }

    #[test]
    fn a_valid_query_parses() {
        let request = parse("size=1024&n=3&periodMS=20").unwrap();
        assert_eq!(
            request,
            BlockRequest {
                size: 1024,
                n: 3,
                period: Duration::from_millis(20)
            }
        );
        assert_eq!(request.total_bytes(), 3072);
        assert_eq!(
            request.path_and_query(),
            "/blocks?size=1024&n=3&periodMS=20"
        );
    }

    #[test]
    fn every_bad_parameter_is_named() {
        assert_eq!(
            BlockRequest::parse(None, CAP),
            Err(QueryError::Missing("size"))
        );
        assert_eq!(parse("size=1&periodMS=1"), Err(QueryError::Missing("n")));
        assert_eq!(parse("size=1&n=1"), Err(QueryError::Missing("periodMS")));
        for (query, name, value) in [
            ("size=0&n=1&periodMS=1", "size", "0"),
            ("size=-5&n=1&periodMS=1", "size", "-5"),
            ("size=abc&n=1&periodMS=1", "size", "abc"),
            ("size=1&n=&periodMS=1", "n", ""),
            ("size=1&n=1.5&periodMS=1", "n", "1.5"),
            ("size=1&n=1&periodMS=-1", "periodMS", "-1"),
            ("size=1&n=1&periodMS=0", "periodMS", "0"),
        ] {
            assert_eq!(
                parse(query),
                Err(QueryError::NotPositive {
                    name,
                    value: value.to_owned()
                }),
                "{query}"
            );
        }
        let message = parse("size=1&n=x&periodMS=1").unwrap_err().to_string();
        assert!(message.contains("\"n\""), "{message}");
    }

    #[test]
    fn the_cap_and_period_bound_hold_without_overflow() {
        assert_eq!(
            parse(&format!("size={}&n={}&periodMS=1", u64::MAX, u64::MAX)),
            Err(QueryError::TooLarge {
                requested: u128::from(u64::MAX) * u128::from(u64::MAX),
                cap: CAP
            })
        );
        assert!(parse(&format!("size={CAP}&n=1&periodMS=1")).is_ok());
        assert!(matches!(
            parse(&format!("size={CAP}&n=2&periodMS=1")),
            Err(QueryError::TooLarge { .. })
        ));
        assert_eq!(
            parse("size=1&n=1&periodMS=3600001"),
            Err(QueryError::PeriodTooLong(3_600_001))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn blocks_are_cut_into_pieces_and_paced() {
        use http_body_util::BodyExt as _;

        let request = BlockRequest {
            size: CHUNK as u64 + 10,
            n: 3,
            period: Duration::from_millis(100),
        };
        let gauge = prometheus_client::metrics::gauge::Gauge::<i64>::default();
        let sent = Counter::default();
        let mut body = BlockBody::new(request, sent.clone(), GaugeGuard::raise(&gauge));
        assert_eq!(body.size_hint().exact(), Some(request.total_bytes()));

        let start = tokio::time::Instant::now();
        let mut pieces = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            pieces.push((data.len(), start.elapsed().as_millis()));
        }
        assert_eq!(
            pieces,
            vec![
                (CHUNK, 0),
                (10, 0),
                (CHUNK, 100),
                (10, 100),
                (CHUNK, 200),
                (10, 200)
            ]
        );
        assert!(body.is_end_stream());
        assert_eq!(sent.get(), request.total_bytes());
        assert_eq!(gauge.get(), 1);
        drop(body);
        assert_eq!(gauge.get(), 0);
    }
}
