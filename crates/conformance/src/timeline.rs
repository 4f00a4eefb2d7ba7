//! Timelines: what the containers of a pod did, in the order they did it.
//!
//! Every lifecycle container appends lines of the form
//! `<epoch seconds> <seconds since boot> <container> <event> [detail]` to
//! its termination log (see [`crate::pods`]). The kubelet hands that log
//! back as the container's termination message, so the API alone is enough
//! to reconstruct the order of events on the node, whatever the cluster.
//! Lines are ordered by time since boot, which has hundredths of a second
//! where the epoch has whole seconds.

use std::fmt;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// A container began running its command; the detail is its start delay.
pub const STARTING: &str = "Starting";
/// A container finished its start delay and counts as started.
pub const STARTED: &str = "Started";
/// A container is about to wait before exiting; the detail is the delay.
pub const DELAYING: &str = "Delaying";
/// A container is about to exit.
pub const EXITING: &str = "Exiting";

/// Reason a kubelet gives a terminated state whose message it overwrote;
/// the previous termination then holds the container's own message.
const STATUS_UNKNOWN: &str = "ContainerStatusUnknown";

/// One line of a container's log.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Wall-clock time in whole seconds since the Unix epoch.
    pub epoch: i64,
    /// Seconds since the node booted, in hundredths.
    pub uptime: f64,
    /// Container (or `PostStart-<container>` hook) that wrote the line.
    pub container: String,
    /// What happened: [`STARTING`], [`STARTED`], [`DELAYING`] or [`EXITING`].
    pub event: String,
}

/// Entries of all containers of a pod, ordered by time since boot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    entries: Vec<Entry>,
}

/// A line that is not `<epoch> <uptime> <container> <event>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timeline line {line:?}: {reason}")]
pub struct ParseError {
    /// The offending line.
    pub line: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Timeline {
    /// Parses log lines (blank lines are ignored) and orders them by time
    /// since boot; lines with equal times keep their order in `text`.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut entries = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(parse_line)
            .collect::<Result<Vec<_>, _>>()?;
        entries.sort_by(|a, b| a.uptime.total_cmp(&b.uptime));
        Ok(Self { entries })
    }

    /// Merges the termination messages of a pod's init and regular
    /// containers, in spec order, into one timeline.
    pub fn from_pod(pod: &Pod) -> Result<Self, ParseError> {
        let status = pod.status.as_ref();
        let statuses = status
            .and_then(|s| s.init_container_statuses.as_deref())
            .unwrap_or_default()
            .iter()
            .chain(
                status
                    .and_then(|s| s.container_statuses.as_deref())
                    .unwrap_or_default(),
            );
        let mut text = String::new();
        for message in statuses.filter_map(termination_message) {
            text.push_str(message);
            if !message.ends_with('\n') {
                text.push('\n');
            }
        }
        Self::parse(&text)
    }

    /// The entries in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Index of the first entry at or after `from` where `container`
    /// reported `event`.
    pub(crate) fn find(&self, container: &str, event: &str, from: usize) -> Option<usize> {
        self.entries
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, e)| e.container == container && e.event == event)
            .map(|(i, _)| i)
    }
}

impl fmt::Display for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return writeln!(f, "(no container reported anything)");
        }
        for e in &self.entries {
            writeln!(f, "{} {:.2} {} {}", e.epoch, e.uptime, e.container, e.event)?;
        }
        Ok(())
    }
}

fn parse_line(line: &str) -> Result<Entry, ParseError> {
    let error = |reason| ParseError {
        line: line.to_owned(),
        reason,
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [epoch, uptime, container, event, ..] = fields[..] else {
        return Err(error("expected at least 4 fields"));
    };
    let epoch = epoch
        .parse()
        .map_err(|_| error("epoch is not an integer"))?;
    let uptime: f64 = uptime
        .parse()
        .map_err(|_| error("uptime is not a number"))?;
    if !uptime.is_finite() {
        return Err(error("uptime is not a finite number"));
    }
    Ok(Entry {
        epoch,
        uptime,
        container: container.to_owned(),
        event: event.to_owned(),
    })
}

/// The message of the container's latest termination: the current state
/// when it is terminated (and not overwritten), else the previous one.
fn termination_message(status: &ContainerStatus) -> Option<&str> {
    let current = status
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .filter(|t| t.reason.as_deref() != Some(STATUS_UNKNOWN));
    current
        .or_else(|| {
            status
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
        })
        .and_then(|t| t.message.as_deref())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, PodStatus,
    };

    use super::*;

    #[test]
    fn parses_and_orders_by_uptime() {
        let timeline = Timeline::parse(
            "1682076094 4906.80 init-1 Exiting\n\
             1682076093 4905.79 init-1 Starting 0\n\
             \n\
             1682076093 4905.80 init-1 Started\n",
        )
        .unwrap();
        let events: Vec<_> = timeline
            .entries()
            .iter()
            .map(|e| e.event.as_str())
            .collect();
        assert_eq!(events, [STARTING, STARTED, EXITING]);
        assert_eq!(timeline.entries()[0].epoch, 1682076093);
        assert_eq!(timeline.entries()[0].uptime, 4905.79);
        assert_eq!(timeline.entries()[0].container, "init-1");
    }

    #[test]
    fn equal_uptimes_keep_their_order() {
        let timeline = Timeline::parse("1 5.00 a Exiting\n1 5.00 b Starting 0\n").unwrap();
        assert_eq!(timeline.entries()[0].container, "a");
        assert_eq!(timeline.entries()[1].container, "b");
    }

    #[test]
    fn rejects_malformed_lines() {
        for (line, reason) in [
            ("1 2.0 init-1", "expected at least 4 fields"),
            ("x 2.0 init-1 Started", "epoch is not an integer"),
            ("1 up init-1 Started", "uptime is not a number"),
            ("1 NaN init-1 Started", "uptime is not a finite number"),
        ] {
            let err = Timeline::parse(line).unwrap_err();
            assert_eq!(err.reason, reason, "{line}");
            assert_eq!(err.line, line);
        }
    }

    fn status(name: &str, state: ContainerState, last: Option<ContainerState>) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            state: Some(state),
            last_state: last,
            ..ContainerStatus::default()
        }
    }

    fn terminated(message: &str, reason: &str) -> ContainerState {
        ContainerState {
            terminated: Some(ContainerStateTerminated {
                message: Some(message.into()),
                reason: Some(reason.into()),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        }
    }

    #[test]
    fn merges_current_and_previous_terminations_of_all_containers() {
        let running = ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..ContainerState::default()
        };
        let pod = Pod {
            status: Some(PodStatus {
                init_container_statuses: Some(vec![status(
                    "init-1",
                    terminated(
                        "1 10.00 init-1 Starting 0\n1 10.50 init-1 Exiting",
                        "Completed",
                    ),
                    None,
                )]),
                container_statuses: Some(vec![
                    status(
                        "regular-1",
                        running,
                        Some(terminated("2 11.00 regular-1 Starting 0\n", "Error")),
                    ),
                    status(
                        "regular-2",
                        terminated("lost", STATUS_UNKNOWN),
                        Some(terminated("3 12.00 regular-2 Started\n", "Completed")),
                    ),
                ]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        let timeline = Timeline::from_pod(&pod).unwrap();
        let containers: Vec<_> = timeline
            .entries()
            .iter()
            .map(|e| e.container.as_str())
            .collect();
        assert_eq!(containers, ["init-1", "init-1", "regular-1", "regular-2"]);
        assert_eq!(
            timeline.to_string(),
            "1 10.00 init-1 Starting\n1 10.50 init-1 Exiting\n\
             2 11.00 regular-1 Starting\n3 12.00 regular-2 Started\n"
        );
    }

    #[test]
    fn a_pod_without_statuses_has_an_empty_timeline() {
        let timeline = Timeline::from_pod(&Pod::default()).unwrap();
        assert!(timeline.entries().is_empty());
        assert_eq!(timeline.to_string(), "(no container reported anything)\n");
    }
}
