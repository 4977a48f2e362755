//! Output files that are either complete or absent.
//!
//! In: a destination path and the bytes (or a writer) for it, or several such files that stand or
//! fall together. Out: the file, written to a temporary name in the same directory and renamed over
//! the destination, so that a failure or an interruption never leaves a partial file under the
//! destination's name; for a set of files, none is renamed before all are written. Every command
//! that writes a file (`extract`, `convert`, `run`, `emit`, `export-onnx`) goes through here.

use std::io;
use std::path::{Path, PathBuf};

/// Runs `write` on a temporary path beside `path`, then renames the result over `path`.
/// On any error the temporary file is removed and `path` is left as it was.
pub fn write_with<E: From<io::Error>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let tmp = temporary_beside(path)?;
    write(tmp.path())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// An empty temporary file in the directory of `path`, removed when dropped.
fn temporary_beside(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".nnblob-")
        .suffix(".tmp")
        .tempfile_in(dir)
}

/// Writes `bytes` to `path` as [`write_with`] does.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |tmp| std::fs::write(tmp, bytes))
}

/// A file of a set that could not be written; no file of the set was left behind.
#[derive(Debug, thiserror::Error)]
#[error("writing {}", .path.display())]
pub struct SetError {
    /// The destination at fault.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// Writes every `(path, bytes)` all-or-none: each goes to a temporary file beside its path, and the
/// temporary files are renamed into place only once all are written. On an error the temporary
/// files are removed; if a rename fails, the destinations already renamed into place are removed
/// too, so that no file of the set exists under its name (an older file there is gone by then).
/// The paths must differ.
pub fn write_all_bytes(files: &[(&Path, &[u8])]) -> Result<(), SetError> {
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SetError { path, source }
    };
    let mut written = Vec::with_capacity(files.len());
    for &(path, bytes) in files {
        let tmp = temporary_beside(path).map_err(fail(path))?;
        std::fs::write(tmp.path(), bytes).map_err(fail(path))?;
        written.push((path, tmp));
    }
    let mut renamed: Vec<&Path> = Vec::with_capacity(files.len());
    for (path, tmp) in written {
        if let Err(e) = tmp.persist(path) {
            for done in renamed {
                // Best effort: the error reported is the rename's.
                let _ = std::fs::remove_file(done);
            }
            return Err(fail(path)(e.error));
        }
        renamed.push(path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_neither_the_destination_nor_a_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        let failed: io::Result<()> = write_with(&out, |tmp| {
            std::fs::write(tmp, b"partial")?;
            Err(io::Error::other("interrupted"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_set_with_one_unwritable_file_leaves_no_file_of_the_set() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first.bin");
        let missing = dir.path().join("no such directory").join("second.bin");
        let e = write_all_bytes(&[(&first, b"one"), (&missing, b"two")]).unwrap_err();
        assert_eq!(e.path, missing);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_set_whose_later_rename_fails_removes_the_files_renamed_before() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first.bin");
        // A directory in the way: its temporary file is written, its rename fails.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), b"keeps the directory non-empty").unwrap();
        let e = write_all_bytes(&[(&first, b"one"), (&blocked, b"two")]).unwrap_err();
        assert_eq!(e.path, blocked);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["blocked"]);
    }

    #[test]
    fn a_set_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_all_bytes(&[(&a, b"one"), (&b, b"two")]).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"one");
        assert_eq!(std::fs::read(&b).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_successful_write_replaces_the_destination_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        std::fs::write(&out, b"old content, longer than the new").unwrap();
        write_bytes(&out, b"new").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
