//! # Saving the game across restarts
//!
//! On shutdown the server writes players, scores, round, seq, session secrets and the event
//! history to `<data dir>/state.json`: to a temporary file first, `fsync`ed, then renamed over
//! the old one, so a crash at any moment leaves either the old or the new file, never half of
//! one. On start it reads it back; a missing file means a fresh game, an unusable one is moved
//! aside (`state.json.bad-<time>`) and reported, and the server starts fresh rather than not at
//! all.
//!
//! The data folder is not trusted more than a request is:
//!
//! * **Saving** first removes a stale `state.json.tmp` (left by a crash, or planted), then
//!   creates it afresh with `O_CREAT | O_EXCL | O_NOFOLLOW` and mode 0600. Opening an existing
//!   temp file instead would write *through* a planted symlink (overwriting its target with
//!   session secrets) or keep a planted file's 0644 mode; with `O_EXCL` a file that reappears
//!   between the removal and the creation makes the save fail, loudly, instead.
//! * **Loading** opens `state.json` with `O_NOFOLLOW` (a symlink is refused, not followed to
//!   `/dev/zero` or to another user's file) and `O_NONBLOCK` (a FIFO cannot hang the start),
//!   requires a regular file, and reads at most [`max_state_bytes`] — so a huge or endless file
//!   costs a bounded read, not all memory.
//! * **Restoring** checks every field against the rules live input obeys (`Hub::restore`,
//!   `game/restore.rs`); a file that breaks one is set aside like a corrupt one ([`set_aside`]).

use std::fs;
use std::io::{self, Read, Write};
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

/// The least we accept reading, whatever the settings: far above any real save at defaults.
const MIN_STATE_LIMIT: u64 = 16 << 20;

/// The largest state file we read: 16 MiB, or 1 KiB per history event and per player if that
/// is more. A saved event or player is a few hundred bytes at most (names are 20 characters),
/// so any file this server wrote fits; a larger one is refused unread.
pub fn max_state_bytes(history: usize, max_players: usize) -> u64 {
    let per_item = (history as u64)
        .saturating_add(max_players as u64)
        .saturating_mul(1024);
    per_item.saturating_add(1 << 20).max(MIN_STATE_LIMIT)
}

fn temp_path(path: &Path) -> PathBuf {
    path.with_extension("json.tmp")
}

/// Writes `saved` to `path` atomically (fresh temp file, fsync, rename, fsync the directory).
pub fn save(path: &Path, saved: &SavedState) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let json = serde_json::to_vec(saved).map_err(io::Error::other)?;
    let tmp = temp_path(path);
    // Unlinking removes a symlink itself, never its target.
    match fs::remove_file(&tmp) {
        Ok(()) => tracing::warn!(file = %tmp.display(), "removed a stale temporary state file"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
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

/// Moves an unusable state file aside as `state.json.bad-<ms>` (a symlink is moved, not its
/// target) and says why, for the log.
pub fn set_aside(path: &Path, reason: String) -> LoadError {
    let now = crate::log::now_ms();
    // rename() replaces an existing file: never one kept aside earlier in the same ms.
    let moved_to = (0..1000)
        .map(|n| match n {
            0 => path.with_extension(format!("json.bad-{now}")),
            n => path.with_extension(format!("json.bad-{now}-{n}")),
        })
        .find(|p| fs::symlink_metadata(p).is_err())
        .unwrap_or_else(|| path.with_extension(format!("json.bad-{now}")));
    match fs::rename(path, &moved_to) {
        Ok(()) => LoadError::Corrupt { moved_to, reason },
        Err(e) => LoadError::Io(io::Error::new(
            e.kind(),
            format!("{reason}; and it could not be moved aside: {e}"),
        )),
    }
}

/// Reads the saved state: `Ok(None)` when there is none. Reads at most `limit` bytes, from a
/// regular file reached without following a symlink; anything else is set aside.
pub fn load(path: &Path, limit: u64) -> Result<Option<SavedState>, LoadError> {
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(set_aside(path, "it is a symbolic link".into()))
        }
        Err(e) => return Err(LoadError::Io(e)),
    };
    let meta = file.metadata().map_err(LoadError::Io)?;
    if !meta.is_file() {
        return Err(set_aside(path, "it is not a regular file".into()));
    }
    if meta.len() > limit {
        return Err(set_aside(
            path,
            format!("it has {} bytes; at most {limit} are read", meta.len()),
        ));
    }
    // The size can change after the check: read one byte past the limit to notice.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(LoadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(set_aside(
            path,
            format!("it grew past {limit} bytes while being read"),
        ));
    }
    let reason = match serde_json::from_slice::<SavedState>(&bytes) {
        Ok(saved) if saved.version == STATE_VERSION => return Ok(Some(saved)),
        Ok(saved) => format!("version {} instead of {STATE_VERSION}", saved.version),
        Err(e) => e.to_string(),
    };
    Err(set_aside(path, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 1 << 20;

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
        assert!(load(&path, LIMIT).unwrap().is_none());
        save(&path, &sample()).unwrap();
        assert_eq!(load(&path, LIMIT).unwrap(), Some(sample()));
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
        match load(&path, LIMIT) {
            Err(LoadError::Corrupt { moved_to, .. }) => {
                assert!(moved_to.exists());
                assert!(!path.exists());
            }
            other => panic!("{other:?}"),
        }
        assert!(
            load(&path, LIMIT).unwrap().is_none(),
            "the next start is fresh"
        );
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn kept_aside(dir: &Path) -> Vec<PathBuf> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("state.json.bad-"))
            .collect()
    }

    #[test]
    fn a_planted_temp_symlink_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path());
        let victim = dir.path().join("victim.txt");
        fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, path.with_extension("json.tmp")).unwrap();
        save(&path, &sample()).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
        assert_eq!(mode(&path), 0o600);
        assert_eq!(load(&path, LIMIT).unwrap(), Some(sample()));
    }

    #[test]
    fn a_planted_world_readable_temp_file_does_not_lend_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path());
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, b"stale").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
        save(&path, &sample()).unwrap();
        assert_eq!(mode(&path), 0o600, "the secrets stay private");
        assert!(!tmp.exists());
    }

    #[test]
    fn a_state_file_linked_to_dev_zero_is_set_aside_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path());
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        match load(&path, LIMIT) {
            Err(LoadError::Corrupt { moved_to, reason }) => {
                assert!(reason.contains("symbolic link"), "{reason}");
                // The link itself was moved, not its target.
                assert!(fs::symlink_metadata(&moved_to)
                    .unwrap()
                    .file_type()
                    .is_symlink());
            }
            other => panic!("{other:?}"),
        }
        assert!(
            load(&path, LIMIT).unwrap().is_none(),
            "the next start is fresh"
        );
    }

    #[test]
    fn a_fifo_or_a_directory_as_state_file_is_set_aside_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path());
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file system node.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        match load(&path, LIMIT) {
            Err(LoadError::Corrupt { reason, .. }) => {
                assert!(reason.contains("not a regular file"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        fs::create_dir(&path).unwrap();
        assert!(matches!(load(&path, LIMIT), Err(LoadError::Corrupt { .. })));
        assert_eq!(kept_aside(dir.path()).len(), 2);
    }

    #[test]
    fn a_state_file_over_the_limit_is_set_aside_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path());
        save(&path, &sample()).unwrap();
        let size = fs::metadata(&path).unwrap().len();
        match load(&path, size - 1) {
            Err(LoadError::Corrupt { reason, .. }) => assert!(reason.contains("bytes"), "{reason}"),
            other => panic!("{other:?}"),
        }
        // A sparse 1 TiB file costs nothing to refuse.
        let huge = fs::File::create(&path).unwrap();
        huge.set_len(1 << 40).unwrap();
        assert!(matches!(load(&path, LIMIT), Err(LoadError::Corrupt { .. })));
    }

    #[test]
    fn the_read_limit_fits_any_save_and_grows_with_the_settings() {
        assert_eq!(max_state_bytes(1024, 1000), 16 << 20);
        assert!(max_state_bytes(1_000_000, 1000) > 1_000_000 * 1024);
        assert_eq!(max_state_bytes(usize::MAX, usize::MAX), u64::MAX);
    }
}
