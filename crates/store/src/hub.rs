//! Live watchers of a backend that serves watches itself: a list of
//! registered watchers fed by committed writes, periodic progress marks, and
//! a watch stream that unregisters itself when dropped.
//!
//! The backend keeps the ordering promises: it calls [`Hub::notify`] for
//! every write in revision order, and registers a watcher under the same lock
//! that notifications take, after replaying history up to the hub's
//! revision, so that replay and live events meet without a gap or an
//! overlap.

use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::{Event, Result, Revision, StoreError, WatchBatch, WatchStream};

struct Watcher {
    id: u64,
    prefix: String,
    /// Changes at or before this revision were not asked for or were
    /// replayed already.
    after: Revision,
    tx: mpsc::Sender<Result<WatchBatch>>,
}

impl Watcher {
    /// Queues a batch without waiting. Returns false when the watcher must be
    /// dropped: its stream is gone, or it fell behind, in which case the slot
    /// the channel keeps in reserve carries the overflow error.
    fn send(&self, batch: WatchBatch) -> bool {
        if self.tx.capacity() <= 1 {
            let _ = self.tx.try_send(Err(StoreError::WatcherOverflow));
            return false;
        }
        self.tx.try_send(Ok(batch)).is_ok()
    }
}

/// The registered watchers and the revision of the last write they were
/// told about.
pub(crate) struct Hub {
    revision: Revision,
    watchers: Vec<Watcher>,
    next_watcher: u64,
    buffer: usize,
}

impl Hub {
    /// A hub whose store is at `revision`; each watcher buffers up to
    /// `buffer` batches before it is closed as too slow.
    pub(crate) fn new(revision: Revision, buffer: usize) -> Hub {
        Hub {
            revision,
            watchers: Vec::new(),
            next_watcher: 0,
            buffer: buffer.max(1),
        }
    }

    /// The revision of the last write notified.
    pub(crate) fn revision(&self) -> Revision {
        self.revision
    }

    /// Delivers a committed write to the watchers that asked for it.
    pub(crate) fn notify(&mut self, event: &Event) {
        let revision = event.revision();
        self.revision = revision;
        self.watchers.retain(|w| {
            if revision <= w.after || !event.kv.key.starts_with(&w.prefix) {
                return !w.tx.is_closed();
            }
            w.send(WatchBatch {
                events: vec![event.clone()],
                revision,
            })
        });
    }

    /// Tells every watcher how far the store has got.
    fn progress(&mut self) {
        let revision = self.revision;
        self.watchers.retain(|w| {
            w.send(WatchBatch {
                events: Vec::new(),
                revision,
            })
        });
    }

    /// Registers a watcher of `prefix` for the writes after `after`, which
    /// the caller has replayed up to the hub's revision into `replay` (the
    /// replayed events under the prefix, maybe none). A watch from the past
    /// first gets that replay as one batch marked with the hub's revision,
    /// so it learns at once that it has caught up.
    fn register(
        &mut self,
        prefix: &str,
        after: Revision,
        replay: Vec<Event>,
    ) -> (u64, mpsc::Receiver<Result<WatchBatch>>) {
        // One slot more than the buffer, kept for the overflow error.
        let (tx, rx) = mpsc::channel(self.buffer + 1);
        self.next_watcher += 1;
        let watcher = Watcher {
            id: self.next_watcher,
            prefix: prefix.to_owned(),
            after: after.max(self.revision),
            tx,
        };
        // A fresh channel has room, so the batch is always queued.
        if after >= self.revision
            || watcher.send(WatchBatch {
                events: replay,
                revision: self.revision,
            })
        {
            self.watchers.push(watcher);
        }
        (self.next_watcher, rx)
    }

    fn unregister(&mut self, id: u64) {
        if let Some(i) = self.watchers.iter().position(|w| w.id == id) {
            self.watchers.swap_remove(i);
        }
    }

    /// The number of open watches.
    pub(crate) fn len(&self) -> usize {
        self.watchers.len()
    }
}

/// A [`Hub`] shared by a store, its watch streams and its progress notifier.
pub(crate) struct SharedHub {
    hub: Arc<Mutex<Hub>>,
    progress_interval: Duration,
    /// The progress notifier, spawned by the first watch on the runtime that
    /// made it (and again if that runtime has gone away since).
    progress: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for SharedHub {
    fn drop(&mut self) {
        if let Some(task) = self.progress.get_mut().take() {
            task.abort();
        }
    }
}

impl SharedHub {
    pub(crate) fn new(hub: Hub, progress_interval: Duration) -> SharedHub {
        SharedHub {
            hub: Arc::new(Mutex::new(hub)),
            progress_interval: progress_interval.max(Duration::from_millis(1)),
            progress: Mutex::new(None),
        }
    }

    pub(crate) fn progress_interval(&self) -> Duration {
        self.progress_interval
    }

    pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, Hub> {
        self.hub.lock()
    }

    /// Registers a watcher (see [`Hub::register`]) and returns its stream.
    /// The caller holds the hub's lock, taken before it read the replay.
    pub(crate) fn register(
        &self,
        hub: &mut Hub,
        prefix: &str,
        after: Revision,
        replay: Vec<Event>,
    ) -> WatchStream {
        let (id, rx) = hub.register(prefix, after, replay);
        Box::pin(WatchReceiver {
            rx,
            hub: Arc::downgrade(&self.hub),
            id,
        })
    }

    /// Starts the progress notifier unless it is running. It is started
    /// lazily because a store may be opened outside a runtime, and restarted
    /// because the runtime of the first watch may have ended since.
    pub(crate) fn ensure_progress(&self) -> Result<()> {
        let mut task = self.progress.lock();
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return Ok(());
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::Internal("a store watch needs a tokio runtime".into()))?;
        *task = Some(runtime.spawn(notify_progress(
            Arc::downgrade(&self.hub),
            self.progress_interval,
        )));
        Ok(())
    }
}

/// Sends progress notifications until the hub is dropped. It holds the hub
/// only weakly, so that it never keeps the store alive.
async fn notify_progress(hub: Weak<Mutex<Hub>>, interval: Duration) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        hub.lock().progress();
    }
}

/// The receiving end of a watch; dropping it unregisters the watcher at once.
struct WatchReceiver {
    rx: mpsc::Receiver<Result<WatchBatch>>,
    hub: Weak<Mutex<Hub>>,
    id: u64,
}

impl Stream for WatchReceiver {
    type Item = Result<WatchBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for WatchReceiver {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.lock().unregister(self.id);
        }
    }
}
