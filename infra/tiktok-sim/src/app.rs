//! The shared context every handler gets: the persisted state behind one lock, plus the
//! runtime-only parts (rate windows, request log, faults, running transfers).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::faults::Faults;
use crate::persist;
use crate::rate_limit::RateLimiter;
use crate::request_log::RequestLog;
use crate::state::State;
use crate::webhooks::{self, Webhooks};

/// Locks a mutex, ignoring poisoning: every critical section leaves the data consistent
/// before anything that could panic, and a simulator must keep answering.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct App {
    state: Mutex<State>,
    /// Where `state.json` is written; `None` when state is not kept.
    persist_dir: Option<PathBuf>,
    /// Where partial uploads are spooled.
    pub spool_dir: PathBuf,
    pub base_url: String,
    pub rate: Mutex<RateLimiter>,
    pub log: Mutex<RequestLog>,
    pub faults: Mutex<Faults>,
    /// Upload ids with a chunk being received right now.
    pub uploads_in_flight: Mutex<HashSet<String>>,
    /// Running pulls, so a cancel or reset can stop them.
    pub pulls: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    pub http: reqwest::Client,
    /// Webhook deliveries made so far, and the queue to the sending worker.
    pub webhooks: Mutex<Webhooks>,
    /// The worker's end of that queue, until [`crate::start`] hands it to the worker.
    pub webhook_queue: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<usize>>>,
}

impl App {
    pub fn new(
        state: State,
        persist_dir: Option<PathBuf>,
        spool_dir: PathBuf,
        base_url: String,
        http: reqwest::Client,
    ) -> Self {
        let (webhooks, webhook_queue) = Webhooks::new();
        let log = RequestLog::with_capacity(
            state
                .settings
                .request_log_capacity
                .clamp(1, crate::request_log::MAX_CAPACITY),
        );
        Self {
            state: Mutex::new(state),
            persist_dir,
            spool_dir,
            base_url,
            rate: Mutex::default(),
            log: Mutex::new(log),
            faults: Mutex::default(),
            uploads_in_flight: Mutex::default(),
            pulls: Mutex::default(),
            http,
            webhooks: Mutex::new(webhooks),
            webhook_queue: Mutex::new(Some(webhook_queue)),
        }
    }

    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&lock(&self.state))
    }

    /// Changes the state and saves it before the lock is released, so saves happen in the
    /// same order as the changes. With a `webhook_url` set, every publish whose status the
    /// change moved gets its webhook queued, wherever the change came from (API, upload,
    /// pull, control).
    pub fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = lock(&self.state);
        let before = state
            .settings
            .webhook_url
            .is_some()
            .then(|| webhooks::snapshot(&state));
        let result = f(&mut state);
        if let Some(before) = before {
            let events = webhooks::status_events(&before, &state);
            if !events.is_empty() {
                webhooks::enqueue(self, &state, events);
            }
        }
        if let Some(dir) = &self.persist_dir
            && let Err(e) = persist::save(dir, &state)
        {
            tracing::error!(error = %e, "cannot save simulator state");
        }
        result
    }

    pub fn now_ms(&self) -> i64 {
        self.read(State::now_ms)
    }

    pub fn spool_path(&self, upload_id: &str) -> PathBuf {
        self.spool_dir.join(format!("{upload_id}.part"))
    }

    /// Marks an upload as receiving a chunk; `None` when another chunk is already on its way.
    pub fn begin_chunk(self: &Arc<Self>, upload_id: &str) -> Option<InFlightChunk> {
        if lock(&self.uploads_in_flight).insert(upload_id.to_owned()) {
            Some(InFlightChunk {
                app: Arc::clone(self),
                upload_id: upload_id.to_owned(),
            })
        } else {
            None
        }
    }

    pub fn abort_pull(&self, publish_id: &str) {
        if let Some(handle) = lock(&self.pulls).remove(publish_id) {
            handle.abort();
        }
    }

    pub fn abort_all_pulls(&self) {
        for (_, handle) in lock(&self.pulls).drain() {
            handle.abort();
        }
    }
}

/// Clears the in-flight mark when a chunk is done, however it ended.
pub struct InFlightChunk {
    app: Arc<App>,
    upload_id: String,
}

impl Drop for InFlightChunk {
    fn drop(&mut self) {
        lock(&self.app.uploads_in_flight).remove(&self.upload_id);
    }
}
