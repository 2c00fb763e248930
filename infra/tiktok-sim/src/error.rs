//! Errors of starting and running the simulator itself (not API errors, which are
//! answers to clients).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {} is not valid: {source}", path.display())]
    StateFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot build the HTTP client for pulls: {0}")]
    HttpClient(#[from] reqwest::Error),
}
