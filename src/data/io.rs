//! Reading data files: bounded whole-file reads, and telling whether two names are the
//! same file. Imports only [`super::error`].

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use super::error::DataError;

/// Reads `path` fully, at most `limit` bytes (guards against huge claimed sizes).
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, DataError> {
    let file = fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut buf = Vec::new();
    file.take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| DataError::io(path, e))?;
    Ok(buf)
}

/// Whether `a` and `b` are the same file: the same canonical path (a symlink, `./x` and
/// `x`, `../d/x`), or files of equal length and equal bytes (a copy).
///
/// The bytes are compared block by block and the comparison stops at the first block that
/// differs, so two different files of equal length (every CIFAR-10 batch is 30,730,000
/// bytes) cost one 64 KiB read each, not a hash of both. A file that cannot be opened is
/// not the same as anything (reading it reports the problem).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(ca), Ok(cb)) = (a.canonicalize(), b.canonicalize())
        && ca == cb
    {
        return true;
    }
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(ma), Ok(mb)) if ma.is_file() && mb.is_file() && ma.len() == mb.len() => {}
        _ => return false,
    }
    same_bytes(a, b).unwrap_or(false)
}

fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    const BLOCK: usize = 64 << 10;
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; BLOCK], vec![0u8; BLOCK]);
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na < BLOCK {
            return Ok(true);
        }
    }
}

/// Fills `buf` as far as the file allows; fewer bytes only at the end of the file.
fn read_full(f: &mut fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_file_by_path_link_or_content_and_not_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(d.join("a"), &big).unwrap();
        fs::write(d.join("copy"), &big).unwrap();
        let mut late = big.clone();
        *late.last_mut().unwrap() ^= 1;
        fs::write(d.join("late"), &late).unwrap();
        fs::write(d.join("short"), &big[..1000]).unwrap();
        std::os::unix::fs::symlink(d.join("a"), d.join("link")).unwrap();
        fs::create_dir(d.join("sub")).unwrap();
        assert!(same_file(&d.join("a"), &d.join("sub/../a")));
        assert!(same_file(&d.join("a"), &d.join("link")));
        assert!(same_file(&d.join("a"), &d.join("copy")));
        assert!(
            !same_file(&d.join("a"), &d.join("late")),
            "last byte differs"
        );
        assert!(!same_file(&d.join("a"), &d.join("short")));
        assert!(!same_file(&d.join("a"), &d.join("missing")));
    }
}
