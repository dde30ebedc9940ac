//! Atomic file writes: every file of the output folder outside a run's own folder is
//! written under a temporary name in its final folder and renamed into place, so that a
//! crash or a full disk leaves either the old file or the new one, never a 0-byte or
//! truncated one. A leaf: imports nothing of the crate.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A name no other writer (thread or process) uses at the same time.
pub(crate) fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The marker in the temporary names of [`write_atomic`]: `.<name>.tmp-<suffix>`.
const TMP_MARK: &str = ".tmp-";

/// The file that `name` is a temporary of, when `name` is one that [`write_atomic`]
/// made (left behind only when the process was killed between creating and renaming it).
pub(crate) fn temporary_target(name: &str) -> Option<&str> {
    let rest = name.strip_prefix('.')?;
    let at = rest.rfind(TMP_MARK)?;
    let suffix = &rest[at + TMP_MARK.len()..];
    let ours = !suffix.is_empty() && suffix.chars().all(|c| c.is_ascii_digit() || c == '-');
    (ours && at > 0).then(|| &rest[..at])
}

fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{TMP_MARK}{}", unique_suffix()))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed to
/// disk, then renamed over `path`. On failure the temporary file is removed and `path`
/// is as it was.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// [`write_atomic`] with the content written by `fill` (the seam the tests use to fail a
/// write part-way).
fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut fs::File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temporary_path(path);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `path` made absolute, resolving links where it exists.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    path.canonicalize()
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_failing_part_way_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        write_atomic(&path, b"old and good").unwrap();
        let err = write_atomic_with(&path, |f| {
            f.write_all(b"half of the ne")?;
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(fs::read(&path).unwrap(), b"old and good");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.png"], "the temporary file is removed");

        // Without an old file, a failed write leaves nothing at all.
        let fresh = dir.path().join("b.png");
        assert!(write_atomic_with(&fresh, |_| Err(io::Error::other("no"))).is_err());
        assert!(!fresh.exists());
    }

    #[test]
    fn temporary_names_are_recognised_with_their_target() {
        let tmp = temporary_path(Path::new("/x/report.html"));
        let name = tmp.file_name().unwrap().to_str().unwrap();
        assert_eq!(temporary_target(name), Some("report.html"));
        assert_eq!(temporary_target("report.html"), None);
        assert_eq!(temporary_target(".notes.tmp-later"), None);
    }
}
