//! A progress line on the terminal while a run is going.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::record::{LiveTotals, Measurement};

/// How often the line is redrawn; also the window of the rate shown.
const TICK: Duration = Duration::from_millis(500);

/// How often a progress line is printed when stderr is not a terminal:
/// often enough that a log shows the run is alive, rarely enough to read.
const LINE_EVERY: Duration = Duration::from_secs(10);

/// Shows elapsed time, requests, the current request rate and errors on
/// stderr: a redrawn line on a terminal, otherwise a plain line every ten
/// seconds (logs and CI output get no control characters).
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    task: Option<JoinHandle<()>>,
    drawn: bool,
}

impl Progress {
    /// Starts drawing for `measurement`. With a run `duration` the bar
    /// fills up; without one (runs that end on a count or on Ctrl-C) it
    /// spins. Needs a Tokio runtime.
    pub fn start(measurement: &Measurement, duration: Option<Duration>) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self {
                bar: ProgressBar::hidden(),
                task: Some(tokio::spawn(print_lines(measurement.clone()))),
                drawn: false,
            };
        }
        let bar = match duration {
            Some(duration) => {
                let bar = ProgressBar::new(duration.as_secs().max(1));
                bar.set_style(
                    ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar
            }
            None => {
                let bar = ProgressBar::new_spinner();
                bar.set_style(
                    ProgressStyle::with_template("{elapsed_precise} {spinner} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar
            }
        };
        bar.set_draw_target(ProgressDrawTarget::stderr());
        let task = tokio::spawn(draw(bar.clone(), measurement.clone()));
        Self {
            bar,
            task: Some(task),
            drawn: true,
        }
    }

    /// A progress display that never draws.
    pub fn hidden() -> Self {
        Self {
            bar: ProgressBar::hidden(),
            task: None,
            drawn: false,
        }
    }

    /// Whether a progress bar is being drawn on a terminal.
    pub fn is_visible(&self) -> bool {
        self.drawn
    }

    /// Stops drawing and clears the line, so that the summary table follows
    /// on a clean terminal.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn draw(bar: ProgressBar, measurement: Measurement) {
    let mut status = Status::new(&measurement);
    let mut ticker = tokio::time::interval(TICK);
    loop {
        ticker.tick().await;
        bar.set_position(measurement.elapsed().as_secs());
        bar.set_message(status.line());
    }
}

async fn print_lines(measurement: Measurement) {
    let mut status = Status::new(&measurement);
    let mut ticker = tokio::time::interval(LINE_EVERY);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        eprintln!(
            "progress {:.0}s: {}",
            measurement.elapsed().as_secs_f64(),
            status.line()
        );
    }
}

/// The figures of a progress line, with the request rate since the last
/// one.
struct Status {
    measurement: Measurement,
    last: (Instant, LiveTotals),
}

impl Status {
    fn new(measurement: &Measurement) -> Self {
        Self {
            measurement: measurement.clone(),
            last: (Instant::now(), LiveTotals::default()),
        }
    }

    fn line(&mut self) -> String {
        let now = Instant::now();
        let totals = self.measurement.live();
        let window = now.duration_since(self.last.0).as_secs_f64();
        let rate = if window > 0.0 {
            totals.requests.saturating_sub(self.last.1.requests) as f64 / window
        } else {
            0.0
        };
        self.last = (now, totals);
        let phase = self.measurement.phase();
        let phase = if phase.is_empty() {
            phase
        } else {
            format!("{phase}  ")
        };
        format!(
            "{phase}{} requests  {rate:.0}/s  {} errors",
            totals.requests, totals.errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hidden_progress_draws_nothing_and_finishes() {
        let progress = Progress::hidden();
        assert!(!progress.is_visible());
        progress.finish();
    }

    #[tokio::test]
    async fn without_a_terminal_no_bar_is_drawn() {
        // Test harnesses capture stderr, so it is not a terminal here.
        if std::io::stderr().is_terminal() {
            return;
        }
        let measurement = Measurement::new([]).unwrap();
        let progress = Progress::start(&measurement, Some(Duration::from_secs(5)));
        assert!(!progress.is_visible());
        progress.finish();
    }
}
