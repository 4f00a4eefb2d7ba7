//! Container timelines in the style of the upstream container lifecycle
//! node test: each container appends `<epoch> <uptime> <name> <verb>` lines
//! to a shared log and its termination message, and the test orders them.

use k8s_openapi::api::core::v1::Pod;

/// A shell command that logs Starting / Started / Delaying / Exiting to
/// `/persistent/<name>.log` and the termination log, sleeping as told.
pub fn command(name: &str, start_delay: u32, delay: u32, exit_code: i32) -> Vec<String> {
    let stamp = "`date +%s` `cat /proc/uptime | awk '{print $1}'`";
    let log = format!("/persistent/{name}.log");
    let say = |what: String| {
        format!("echo {stamp} '{name} {what}' | tee -a {log} >> /dev/termination-log; ")
    };
    let mut script = format!("touch {log}; cat {log} >> /dev/termination-log; ");
    script.push_str(&say(format!("Starting {start_delay}")));
    if start_delay > 0 {
        script.push_str(&format!("sleep {start_delay}; "));
    }
    script.push_str("touch started; ");
    script.push_str(&say("Started".into()));
    script.push_str(&say(format!("Delaying {delay}")));
    if delay > 0 {
        script.push_str(&format!("sleep {delay}; "));
    }
    script.push_str(&say("Exiting".into()));
    script.push_str(&format!("exit {exit_code}"));
    vec!["sh".into(), "-c".into(), script]
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub uptime: f64,
    pub container: String,
    pub verb: String,
}

/// All lines of all termination messages (current or last state), in order.
pub fn parse(pod: &Pod) -> Timeline {
    let mut text = String::new();
    for status in super::statuses(pod) {
        let current = status.state.as_ref().and_then(|s| s.terminated.as_ref());
        let last = status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref());
        if let Some(message) = current.or(last).and_then(|t| t.message.as_ref()) {
            text.push_str(message);
        }
    }
    let mut entries: Vec<Entry> = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() >= 4).then(|| Entry {
                uptime: fields[1].parse().expect("uptime"),
                container: fields[2].to_owned(),
                verb: fields[3].to_owned(),
            })
        })
        .collect();
    entries.sort_by(|a, b| a.uptime.total_cmp(&b.uptime));
    entries.dedup();
    Timeline(entries)
}

#[derive(Debug)]
pub struct Timeline(pub Vec<Entry>);

impl Timeline {
    fn find(&self, name: &str, verb: &str, from: usize) -> Option<usize> {
        (from..self.0.len()).find(|&i| self.0[i].container == name && self.0[i].verb == verb)
    }

    pub fn starts(&self, name: &str) -> bool {
        self.find(name, "Started", 0).is_some()
    }

    pub fn exits(&self, name: &str) -> bool {
        self.find(name, "Exiting", 0).is_some()
    }

    /// `lhs` started before `rhs` began starting.
    pub fn starts_before(&self, lhs: &str, rhs: &str) -> bool {
        self.find(lhs, "Started", 0)
            .is_some_and(|at| self.find(rhs, "Starting", at + 1).is_some())
    }

    /// `lhs` exited before `rhs` began starting.
    pub fn exits_before(&self, lhs: &str, rhs: &str) -> bool {
        self.find(lhs, "Exiting", 0)
            .is_some_and(|at| self.find(rhs, "Starting", at + 1).is_some())
    }

    /// Each started before the other finished.
    pub fn run_together(&self, lhs: &str, rhs: &str) -> bool {
        let (Some(ls), Some(rs)) = (self.find(lhs, "Started", 0), self.find(rhs, "Started", 0))
        else {
            return false;
        };
        let lf = self.find(lhs, "Exiting", 0);
        let rf = self.find(rhs, "Exiting", 0);
        lf.is_none_or(|lf| rs < lf) && rf.is_none_or(|rf| ls < rf)
    }
}
