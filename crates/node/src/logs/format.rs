//! Writing and reading CRI-format log files.

use std::collections::HashMap;
use std::path::Path;

use jiff::Timestamp;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// Longest partial line held back before it is written as a `P` record.
const MAX_PARTIAL: usize = 16 * 1024;

/// Appends a container's output to its log file, line by line.
pub struct LogWriter {
    inner: Mutex<Inner>,
}

struct Inner {
    file: tokio::fs::File,
    partial: HashMap<&'static str, Vec<u8>>,
}

impl LogWriter {
    /// Creates (or truncates) the log at `path`, with its parent directories.
    pub async fn create(path: &Path) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let file = tokio::fs::File::create(path).await?;
        Ok(LogWriter {
            inner: Mutex::new(Inner {
                file,
                partial: HashMap::new(),
            }),
        })
    }

    /// Records a chunk of `stream` output.
    pub async fn write(&self, stream: &'static str, chunk: &[u8]) {
        let mut inner = self.inner.lock().await;
        let mut out = Vec::new();
        let pending = inner.partial.entry(stream).or_default();
        for &byte in chunk {
            if byte == b'\n' {
                out.extend(record(stream, 'F', pending));
                pending.clear();
            } else {
                pending.push(byte);
                if pending.len() >= MAX_PARTIAL {
                    out.extend(record(stream, 'P', pending));
                    pending.clear();
                }
            }
        }
        if !out.is_empty() {
            let _ = inner.file.write_all(&out).await;
        }
    }

    /// Writes what is left of an unterminated last line of `stream`.
    pub async fn finish(&self, stream: &'static str) {
        let mut inner = self.inner.lock().await;
        let Some(pending) = inner.partial.remove(stream) else {
            return;
        };
        if !pending.is_empty() {
            let bytes = record(stream, 'P', &pending);
            let _ = inner.file.write_all(&bytes).await;
        }
        let _ = inner.file.flush().await;
    }
}

fn record(stream: &str, tag: char, text: &[u8]) -> Vec<u8> {
    let mut line = format!("{} {stream} {tag} ", Timestamp::now()).into_bytes();
    line.extend_from_slice(text);
    line.push(b'\n');
    line
}

/// The `pods/log` options the node honours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Keep streaming while the container runs.
    pub follow: bool,
    /// Only the last N lines.
    pub tail_lines: Option<usize>,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<usize>,
    /// Only lines written at or after this moment.
    pub since: Option<Timestamp>,
    /// Read the previous run of the container.
    pub previous: bool,
}

/// One parsed record.
struct Record<'a> {
    time: Timestamp,
    partial: bool,
    text: &'a [u8],
}

fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut fields = line.splitn(4, |&b| b == b' ');
    let time = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    let _stream = fields.next()?;
    let partial = fields.next()? == b"P";
    Some(Record {
        time,
        partial,
        text: fields.next().unwrap_or_default(),
    })
}

fn render(record: &Record<'_>, timestamps: bool, out: &mut Vec<u8>) {
    if timestamps {
        out.extend_from_slice(format!("{} ", record.time).as_bytes());
    }
    out.extend_from_slice(record.text);
    if !record.partial {
        out.push(b'\n');
    }
}

/// Renders complete records of `content` for `query`, honouring
/// `sinceSeconds` and `tailLines` (but not `limitBytes`, which applies to
/// the whole stream). Returns the output and how many bytes of `content`
/// were consumed (a trailing incomplete record is left for later).
pub fn read_tail(content: &[u8], query: &LogQuery) -> (Vec<u8>, usize) {
    let consumed = content
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |at| at + 1);
    let records: Vec<Record<'_>> = content[..consumed]
        .split(|&b| b == b'\n')
        .filter_map(parse)
        .filter(|r| query.since.is_none_or(|since| r.time >= since))
        .collect();
    let skip = query
        .tail_lines
        .map_or(0, |tail| records.len().saturating_sub(tail));
    let mut out = Vec::new();
    for record in &records[skip..] {
        render(record, query.timestamps, &mut out);
    }
    (out, consumed)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sample() -> (tempfile::TempDir, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/0.log");
        let writer = LogWriter::create(&path).await.unwrap();
        writer.write("stdout", b"one\ntwo\nthr").await;
        writer.write("stderr", b"oops\n").await;
        writer.write("stdout", b"ee\nfour").await;
        writer.finish("stdout").await;
        writer.finish("stderr").await;
        let content = tokio::fs::read(&path).await.unwrap();
        (dir, content)
    }

    #[tokio::test]
    async fn lines_round_trip_with_partial_last_line() {
        let (_dir, content) = sample().await;
        let (out, consumed) = read_tail(&content, &LogQuery::default());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "one\ntwo\noops\nthree\nfour"
        );
        assert_eq!(consumed, content.len());
    }

    #[tokio::test]
    async fn tail_and_timestamps() {
        let (_dir, content) = sample().await;
        let query = LogQuery {
            tail_lines: Some(2),
            timestamps: true,
            ..LogQuery::default()
        };
        let (out, _) = read_tail(&content, &query);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with(" three"), "{text}");
        let stamp = lines[0].split(' ').next().unwrap();
        assert!(stamp.parse::<Timestamp>().is_ok(), "{stamp}");
    }

    #[tokio::test]
    async fn since_filters_older_lines() {
        let (_dir, content) = sample().await;
        let query = LogQuery {
            since: Some(Timestamp::now() + jiff::SignedDuration::from_secs(60)),
            ..LogQuery::default()
        };
        assert!(read_tail(&content, &query).0.is_empty());
    }
}
