//! Streaming content hashes of local files.
//!
//! One large buffer per call, no memory mapping: the file may change or
//! vanish while it is read, and the caller decides what that means.

use md5::Md5;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Read buffer size: large enough that syscalls are noise next to hashing.
const BUF_LEN: usize = 1 << 20;

/// Smallest read buffer (for small files).
const MIN_BUF_LEN: usize = 16 << 10;

/// Feeds the whole file at `path` to `digest`; returns the bytes read.
fn stream(path: &Path, mut feed: impl FnMut(&[u8])) -> io::Result<u64> {
    let mut file = File::open(path)?;
    // Sized by the file's length now (it may still grow: then it just takes
    // more reads), so hashing many small files does not zero 1 MiB each.
    let len = file.metadata().map_or(BUF_LEN as u64, |m| m.len());
    let buf_len = usize::try_from(len.saturating_add(1))
        .unwrap_or(BUF_LEN)
        .clamp(MIN_BUF_LEN, BUF_LEN);
    let mut buf = vec![0u8; buf_len];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        feed(&buf[..n]);
        total += n as u64;
    }
}

/// SHA-256 of the file's content and the number of bytes hashed.
pub fn sha256_file(path: &Path) -> io::Result<(crate::model::Sha256, u64)> {
    let mut h = Sha256::new();
    let n = stream(path, |b| h.update(b))?;
    Ok((crate::model::Digest(h.finalize().into()), n))
}

/// MD5 of the file's content, the hash the host reports for uploads.
pub fn md5_file(path: &Path) -> io::Result<crate::model::Md5> {
    let mut h = Md5::new();
    stream(path, |b| h.update(b))?;
    Ok(crate::model::Digest(h.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        let (sha, n) = sha256_file(&p).unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            sha.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            md5_file(&p).unwrap().to_hex(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        // Larger than one buffer.
        let big: Vec<u8> = (0..(BUF_LEN * 2 + 17)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &big).unwrap();
        let (sha, n) = sha256_file(&p).unwrap();
        assert_eq!(n, big.len() as u64);
        assert_eq!(sha.to_hex(), hex::encode(Sha256::digest(&big)));
        assert_eq!(
            md5_file(&p).unwrap().to_hex(),
            hex::encode(Md5::digest(&big))
        );
        assert!(sha256_file(&dir.path().join("missing")).is_err());
    }
}
