//! A strict TikTok simulator: Login Kit v2 OAuth, the Content Posting API, the upload host
//! and a control API for tests, all on one local HTTP server.
//!
//! Tests start it in-process with [`start`]; the `tiktok-sim` binary runs it for local demos.

mod api;
mod app;
mod chunks;
mod clock;
mod config;
mod control;
mod error;
mod faults;
mod media_check;
mod oauth;
mod persist;
mod posting;
mod pull;
mod rate_limit;
mod request_log;
mod seed;
mod server;
mod state;
mod upload;
mod video_check;
mod webhooks;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use chunks::{
    CHUNK_ERROR_MESSAGE, ChunkPlan, MAX_CHUNK, MAX_CHUNKS, MAX_LAST_CHUNK, MIN_CHUNK,
};
pub use config::{PkceEncoding, PkceMode, Settings, SimConfig};
pub use error::SimError;
pub use faults::{FaultAction, FaultRule};

use app::App;
use state::State;

/// A running simulator.
pub struct SimHandle {
    base_url: String,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    webhook_worker: JoinHandle<()>,
    app: Arc<App>,
    /// The temporary state directory, when none was given: removed at
    /// shutdown, or when the handle is dropped without one (a test that
    /// ends early), so runs leave nothing in the temp folder.
    temp_dir: Option<TempStateDir>,
}

/// A directory the simulator made for itself, removed when dropped.
struct TempStateDir(PathBuf);

impl Drop for TempStateDir {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.0) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot remove the simulator's temporary directory");
            }
        }
    }
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Stops accepting connections, lets open requests finish (briefly), stops pulls and
    /// removes the temporary state directory if one was made.
    pub async fn shutdown(self) {
        tracing::debug!("simulator shutting down");
        let _ = self.shutdown.send(true);
        let server = self.server;
        if let Err(e) = server.await {
            tracing::warn!(error = %e, "simulator server task ended abnormally");
        }
        tracing::debug!("simulator server stopped");
        self.app.abort_all_pulls();
        self.webhook_worker.abort();
        // Removed once nothing writes into it any more.
        drop(self.temp_dir);
    }
}

/// Starts the simulator and returns once it accepts connections.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    let (dir, persist_dir, temp_dir) = match config.state_dir {
        Some(dir) => (dir.clone(), Some(dir), None),
        None => {
            let dir = std::env::temp_dir().join(format!(
                "tiktok-sim-{}-{}",
                std::process::id(),
                state::random_token(12)
            ));
            (dir.clone(), None, Some(TempStateDir(dir)))
        }
    };
    let spool_dir = dir.join("spool");
    tokio::fs::create_dir_all(&spool_dir)
        .await
        .map_err(|source| SimError::Io {
            path: spool_dir.clone(),
            source,
        })?;
    let state = match &persist_dir {
        Some(dir) => persist::load(dir)?.unwrap_or_else(|| State::fresh(config.settings.clone())),
        None => State::fresh(config.settings.clone()),
    };

    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| SimError::Bind {
            addr: config.bind,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| SimError::Bind {
        addr: config.bind,
        source,
    })?;
    let host = if local.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        local.ip()
    };
    let base_url = format!("http://{}", std::net::SocketAddr::new(host, local.port()));

    // TikTok refuses media URLs that redirect, so the pull client never follows them.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(3600))
        .build()?;
    let app = Arc::new(App::new(
        state,
        persist_dir,
        spool_dir,
        base_url.clone(),
        http,
    ));
    // Writes the initial state so a fresh state_dir holds a state.json from the start.
    app.update(|_| ());
    pull::resume_all(&app);

    let queue = app::lock(&app.webhook_queue)
        .take()
        .expect("a new App has its webhook queue");
    let webhook_worker = webhooks::spawn_worker(Arc::clone(&app), queue);

    let (shutdown, shutdown_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(Arc::clone(&app), listener, shutdown_rx));
    tracing::info!(%base_url, "tiktok-sim listening");
    Ok(SimHandle {
        base_url,
        shutdown,
        server,
        webhook_worker,
        app,
        temp_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_of(handle: &SimHandle) -> PathBuf {
        match &handle.temp_dir {
            Some(dir) => dir.0.clone(),
            None => panic!("a simulator without a state_dir makes its own"),
        }
    }

    /// Tests that end without a shutdown drop their handle: the temporary
    /// state must go with it, or every test run leaves a folder behind.
    #[tokio::test]
    async fn the_temporary_state_goes_at_shutdown_and_on_drop() {
        let shut = start(SimConfig::default()).await.expect("starts");
        let dir = dir_of(&shut);
        assert!(dir.join("spool").is_dir());
        shut.shutdown().await;
        assert!(!dir.exists(), "{} left after shutdown", dir.display());

        let dropped = start(SimConfig::default()).await.expect("starts");
        let dir = dir_of(&dropped);
        assert!(dir.join("spool").is_dir());
        drop(dropped);
        assert!(!dir.exists(), "{} left after drop", dir.display());
    }
}
