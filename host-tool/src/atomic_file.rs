//! Output files that are either complete or absent.
//!
//! In: a destination path and the bytes (or a writer) for it. Out: the file, written to a
//! temporary name in the same directory and renamed over the destination, so that a failure or
//! an interruption never leaves a partial file under the destination's name. Every command that
//! writes a file (`extract`, `convert`, `run`, `emit`, `export-onnx`) goes through here.

use std::io;
use std::path::Path;

/// Runs `write` on a temporary path beside `path`, then renames the result over `path`.
/// On any error the temporary file is removed and `path` is left as it was.
pub fn write_with<E: From<io::Error>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".nnblob-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    write(tmp.path())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes `bytes` to `path` as [`write_with`] does.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |tmp| std::fs::write(tmp, bytes))
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
    fn a_successful_write_replaces_the_destination_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        std::fs::write(&out, b"old content, longer than the new").unwrap();
        write_bytes(&out, b"new").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
