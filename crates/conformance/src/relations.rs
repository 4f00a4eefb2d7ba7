//! Ordering relations between containers, checked on a [`Timeline`].
//!
//! Each check looks at positions in the ordered timeline, so a relation
//! between a container and itself speaks about successive runs: "a starts
//! before a" holds only when a started again after it first started.

use crate::timeline::{EXITING, STARTED, STARTING, Timeline};

/// A relation that the timeline does not satisfy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Violation(pub String);

type Check = Result<(), Violation>;

fn violation(message: String) -> Check {
    Err(Violation(message))
}

impl Timeline {
    /// `container` got past its start delay at least once.
    pub fn starts(&self, container: &str) -> Check {
        match self.find(container, STARTED, 0) {
            Some(_) => Ok(()),
            None => violation(format!("{container} never started")),
        }
    }

    /// `container` reached its exit at least once.
    pub fn exits(&self, container: &str) -> Check {
        match self.find(container, EXITING, 0) {
            Some(_) => Ok(()),
            None => violation(format!("{container} never exited")),
        }
    }

    /// `container` never got past its start delay.
    pub fn doesnt_start(&self, container: &str) -> Check {
        match self.find(container, STARTED, 0) {
            None => Ok(()),
            Some(_) => violation(format!("{container} started, but must not have")),
        }
    }

    /// `first` started, and `second` began starting after that.
    pub fn starts_before(&self, first: &str, second: &str) -> Check {
        let Some(started) = self.find(first, STARTED, 0) else {
            return violation(format!("{first} never started"));
        };
        match self.find(second, STARTING, started + 1) {
            Some(_) => Ok(()),
            None => violation(format!("{second} did not start after {first} started")),
        }
    }

    /// `first` exited, and `second` began starting after that.
    pub fn exits_before(&self, first: &str, second: &str) -> Check {
        let Some(exited) = self.find(first, EXITING, 0) else {
            return violation(format!("{first} never exited"));
        };
        match self.find(second, STARTING, exited + 1) {
            Some(_) => Ok(()),
            None => violation(format!("{second} did not start after {first} exited")),
        }
    }

    /// Both started, and neither exited before the other had started: the
    /// two ran at the same time.
    pub fn run_together(&self, a: &str, b: &str) -> Check {
        let Some(a_started) = self.find(a, STARTED, 0) else {
            return violation(format!("{a} never started"));
        };
        let Some(b_started) = self.find(b, STARTED, 0) else {
            return violation(format!("{b} never started"));
        };
        for (first, first_started, second, second_started) in
            [(a, a_started, b, b_started), (b, b_started, a, a_started)]
        {
            if let Some(exited) = self.find(first, EXITING, first_started)
                && second_started > exited
            {
                return violation(format!(
                    "{second} started only after {first} exited, they did not run together"
                ));
            }
        }
        Ok(())
    }

    /// `container` began starting at least twice.
    pub fn has_restarted(&self, container: &str) -> Check {
        let Some(first) = self.find(container, STARTING, 0) else {
            return violation(format!("{container} never started"));
        };
        match self.find(container, STARTING, first + 1) {
            Some(_) => Ok(()),
            None => violation(format!("{container} started once and never restarted")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines in time order; the uptime is the line number.
    fn timeline(lines: &[&str]) -> Timeline {
        let text: String = lines
            .iter()
            .enumerate()
            .map(|(i, line)| format!("1700000000 {i}.00 {line}\n"))
            .collect();
        Timeline::parse(&text).unwrap()
    }

    /// The lines of one complete run of a container.
    fn run(name: &str) -> [String; 4] {
        [
            format!("{name} Starting 0"),
            format!("{name} Started"),
            format!("{name} Delaying 1"),
            format!("{name} Exiting"),
        ]
    }

    fn serial(names: &[&str]) -> Timeline {
        let lines: Vec<String> = names.iter().flat_map(|n| run(n)).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        timeline(&refs)
    }

    #[test]
    fn starts_and_exits() {
        let t = timeline(&["a Starting 0", "a Started", "b Starting 5"]);
        assert!(t.starts("a").is_ok());
        assert!(t.starts("b").is_err(), "b never passed its start delay");
        assert!(t.exits("a").is_err());
        assert!(serial(&["a"]).exits("a").is_ok());
    }

    #[test]
    fn starts_before() {
        let t = serial(&["init-1", "init-2"]);
        assert!(t.starts_before("init-1", "init-2").is_ok());
        let err = t.starts_before("init-2", "init-1").unwrap_err();
        assert_eq!(err.0, "init-1 did not start after init-2 started");
        assert!(t.starts_before("missing", "init-1").is_err());
    }

    #[test]
    fn starts_before_itself_needs_a_second_run() {
        assert!(serial(&["a"]).starts_before("a", "a").is_err());
        assert!(serial(&["a", "a"]).starts_before("a", "a").is_ok());
    }

    #[test]
    fn exits_before() {
        let t = serial(&["init-1", "init-2"]);
        assert!(t.exits_before("init-1", "init-2").is_ok());
        assert!(t.exits_before("init-2", "init-1").is_err());
        let overlapping = timeline(&[
            "a Starting 0",
            "a Started",
            "b Starting 0",
            "b Started",
            "a Exiting",
            "b Exiting",
        ]);
        let err = overlapping.exits_before("a", "b").unwrap_err();
        assert_eq!(err.0, "b did not start after a exited");
        assert!(serial(&["b"]).exits_before("a", "b").is_err());
    }

    #[test]
    fn exits_before_itself_needs_a_second_run() {
        assert!(serial(&["a"]).exits_before("a", "a").is_err());
        assert!(serial(&["a", "a"]).exits_before("a", "a").is_ok());
    }

    #[test]
    fn run_together() {
        let overlapping = timeline(&[
            "main Starting 0",
            "main Started",
            "hook Starting 0",
            "hook Started",
            "hook Exiting",
            "main Exiting",
        ]);
        assert!(overlapping.run_together("main", "hook").is_ok());
        assert!(overlapping.run_together("hook", "main").is_ok());

        let one_after_the_other = serial(&["main", "hook"]);
        let err = one_after_the_other
            .run_together("main", "hook")
            .unwrap_err();
        assert_eq!(
            err.0,
            "hook started only after main exited, they did not run together"
        );
        assert!(one_after_the_other.run_together("hook", "main").is_err());
        assert!(serial(&["main"]).run_together("main", "hook").is_err());
    }

    #[test]
    fn doesnt_start() {
        let t = timeline(&["a Starting 600"]);
        assert!(t.doesnt_start("a").is_ok());
        assert!(t.doesnt_start("b").is_ok());
        let err = serial(&["a"]).doesnt_start("a").unwrap_err();
        assert_eq!(err.0, "a started, but must not have");
    }

    #[test]
    fn has_restarted() {
        assert!(serial(&["a", "b", "a"]).has_restarted("a").is_ok());
        let err = serial(&["a", "b"]).has_restarted("a").unwrap_err();
        assert_eq!(err.0, "a started once and never restarted");
        assert!(serial(&["a"]).has_restarted("b").is_err());
    }
}
