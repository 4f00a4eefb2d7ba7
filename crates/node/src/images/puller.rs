//! How many pulls may reach the runtime at once.
//!
//! Upstream has two pullers: a serial one (`serializeImagePulls: true`, the
//! kubelet default) that feeds one worker from a queue, and a parallel one
//! bounded by `maxParallelImagePulls`. Both reduce to a fair (FIFO)
//! semaphore, with one slot, with N slots, or with no bound at all.

use std::future::Future;
use std::num::NonZeroUsize;

use tokio::sync::Semaphore;

/// Whether image pulls are serialized or run in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullMode {
    /// One pull at a time, in request order (the kubelet default).
    Serialized,
    /// Concurrent pulls, at most `max_parallel_pulls` in flight when set.
    Parallel {
        /// Upper bound on pulls in flight; `None` leaves them unbounded.
        max_parallel_pulls: Option<NonZeroUsize>,
    },
}

/// Admits pulls to the runtime according to a [`PullMode`].
#[derive(Debug)]
pub(crate) struct Puller {
    slots: Option<Semaphore>,
}

impl Puller {
    pub(crate) fn new(mode: PullMode) -> Self {
        let slots = match mode {
            PullMode::Serialized => Some(1),
            PullMode::Parallel { max_parallel_pulls } => max_parallel_pulls.map(NonZeroUsize::get),
        };
        Self {
            slots: slots.map(Semaphore::new),
        }
    }

    /// Runs `pull` once a slot is free, holding the slot until it completes.
    pub(crate) async fn run<F: Future>(&self, pull: F) -> F::Output {
        let _slot = match &self.slots {
            Some(slots) => Some(
                slots
                    .acquire()
                    .await
                    .expect("the pull semaphore is owned by the puller and never closed"),
            ),
            None => None,
        };
        pull.await
    }
}
