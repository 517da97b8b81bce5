//! # Saving the game across restarts
//!
//! On shutdown the server writes players, scores, round, seq, session secrets and the event
//! history to `<data dir>/state.json`: to a temporary file first, `fsync`ed, then renamed over
//! the old one, so a crash at any moment leaves either the old or the new file, never half of
//! one. On start it reads it back; a missing file means a fresh game, a corrupt one is moved
//! aside (`state.json.bad-<time>`) and reported, and the server starts fresh rather than not at
//! all. The file holds session secrets, so it is written with mode 0600.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::game::{GameState, PlayerId};

pub const STATE_FILE: &str = "state.json";
/// Bumped when the layout changes; other versions are treated as corrupt.
pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedState {
    pub version: u32,
    pub saved_ts: u64,
    pub last_seq: u64,
    pub next_player_id: PlayerId,
    pub state: GameState,
    /// Session secrets as hex, by player id, so players keep their tokens.
    pub secrets: Vec<(PlayerId, String)>,
    /// The event history, oldest first, as the JSON each transport sent.
    pub history: Vec<String>,
}

/// Why a state file could not be used.
#[derive(Debug)]
pub enum LoadError {
    Io(io::Error),
    Corrupt { moved_to: PathBuf, reason: String },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "could not read the state file: {e}"),
            LoadError::Corrupt { moved_to, reason } => {
                write!(
                    f,
                    "the state file is unusable ({reason}); kept aside as {}",
                    moved_to.display()
                )
            }
        }
    }
}

pub fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STATE_FILE)
}

/// Writes `saved` to `path` atomically (temp file, fsync, rename, fsync the directory).
pub fn save(path: &Path, saved: &SavedState) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let json = serde_json::to_vec(saved).map_err(io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&json)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Reads the saved state: `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<SavedState>, LoadError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Io(e)),
    };
    let reason = match serde_json::from_slice::<SavedState>(&bytes) {
        Ok(saved) if saved.version == STATE_VERSION => return Ok(Some(saved)),
        Ok(saved) => format!("version {} instead of {STATE_VERSION}", saved.version),
        Err(e) => e.to_string(),
    };
    let moved_to = path.with_extension(format!("json.bad-{}", crate::hub::now_ms()));
    fs::rename(path, &moved_to).map_err(LoadError::Io)?;
    Err(LoadError::Corrupt { moved_to, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SavedState {
        SavedState {
            version: STATE_VERSION,
            saved_ts: 1,
            last_seq: 3,
            next_player_id: 2,
            state: GameState::default(),
            secrets: vec![(1, "00".repeat(16))],
            history: vec![
                r#"{"seq":3,"ts":1,"type":"player_joined","player":1,"name":"Ada"}"#.into(),
            ],
        }
    }

    #[test]
    fn a_saved_state_reads_back_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path());
        assert!(load(&path).unwrap().is_none());
        save(&path, &sample()).unwrap();
        assert_eq!(load(&path).unwrap(), Some(sample()));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[test]
    fn a_corrupt_state_file_is_kept_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path());
        fs::write(&path, b"{\"version\":1, truncated").unwrap();
        match load(&path) {
            Err(LoadError::Corrupt { moved_to, .. }) => {
                assert!(moved_to.exists());
                assert!(!path.exists());
            }
            other => panic!("{other:?}"),
        }
        assert!(load(&path).unwrap().is_none(), "the next start is fresh");
    }
}
