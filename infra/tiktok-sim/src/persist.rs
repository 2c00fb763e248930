//! Keeping the state across restarts: `state_dir/state.json`, replaced atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::SimError;
use crate::state::State;

pub const STATE_FILE: &str = "state.json";

/// Loads the saved state, or `None` when there is none yet.
pub fn load(state_dir: &Path) -> Result<Option<State>, SimError> {
    let path = state_dir.join(STATE_FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SimError::Io { path, source }),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|source| SimError::StateFile { path, source })
}

/// Writes the state to a temporary file and renames it over `state.json`, so a crash never
/// leaves a half-written file behind.
pub fn save(state_dir: &Path, state: &State) -> Result<(), SimError> {
    let path = state_dir.join(STATE_FILE);
    let tmp: PathBuf = state_dir.join(format!("{STATE_FILE}.tmp"));
    let json = serde_json::to_vec_pretty(state).map_err(|source| SimError::StateFile {
        path: path.clone(),
        source,
    })?;
    let io_err = |source| SimError::Io {
        path: tmp.clone(),
        source,
    };
    let mut file = std::fs::File::create(&tmp).map_err(io_err)?;
    file.write_all(&json).map_err(io_err)?;
    file.sync_data().map_err(io_err)?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(|source| SimError::Io { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(load(dir.path()).expect("load empty").is_none());
        let mut state = State::fresh(Settings::default());
        state.clock.advance_secs(42);
        save(dir.path(), &state).expect("save");
        let loaded = load(dir.path()).expect("load").expect("state present");
        assert_eq!(loaded.clock, state.clock);
        assert_eq!(loaded.next_id, state.next_id);
    }
}
