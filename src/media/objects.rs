//! The local object directory: sealed blobs named by the SHA-256 of their ciphertext.
//!
//! Writes are atomic (temporary file, fsync, rename, directory fsync), so a crash leaves either
//! the whole blob or nothing. Reads check the content against its name, so a tampered or
//! truncated file is an error, never garbage handed to the decryptor.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Blobs under `<data_dir>/objects/aa/bbbb…`.
#[derive(Debug, Clone)]
pub struct ObjectDir {
    root: PathBuf,
}

impl ObjectDir {
    /// Opens (creating) the directory.
    pub fn open(root: &Path) -> io::Result<ObjectDir> {
        fs::create_dir_all(root.join("tmp"))?;
        Ok(ObjectDir {
            root: root.to_owned(),
        })
    }

    fn path_of(&self, address: &str) -> io::Result<PathBuf> {
        if address.len() != 64 || !address.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad object address",
            ));
        }
        Ok(self.root.join(&address[..2]).join(&address[2..]))
    }

    /// Stores `sealed` and returns its address.
    pub fn put(&self, sealed: &[u8]) -> io::Result<String> {
        let address = hex::encode(Sha256::digest(sealed));
        let dest = self.path_of(&address)?;
        let dir = dest.parent().expect("two-level path");
        fs::create_dir_all(dir)?;
        let mut suffix = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut suffix);
        let tmp = self.root.join("tmp").join(hex::encode(suffix));
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(sealed)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &dest)?;
        File::open(dir)?.sync_all()?;
        Ok(address)
    }

    /// Reads a blob, failing if its content no longer matches its address.
    pub fn get(&self, address: &str) -> io::Result<Vec<u8>> {
        let bytes = fs::read(self.path_of(address)?)?;
        if hex::encode(Sha256::digest(&bytes)) != address {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "object content does not match its address",
            ));
        }
        Ok(bytes)
    }

    /// Deletes a blob; `Ok(false)` if it was already gone.
    pub fn delete(&self, address: &str) -> io::Result<bool> {
        match fs::remove_file(self.path_of(address)?) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_delete_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let objects = ObjectDir::open(dir.path()).unwrap();
        let a = objects.put(b"sealed bytes").unwrap();
        assert_eq!(objects.get(&a).unwrap(), b"sealed bytes");
        let path = objects.path_of(&a).unwrap();
        fs::write(&path, b"sealed bytez").unwrap();
        assert_eq!(
            objects.get(&a).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert!(objects.delete(&a).unwrap());
        assert!(!objects.delete(&a).unwrap());
        assert!(objects.get("../../etc/passwd").is_err());
        assert_eq!(
            fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0,
            "no temp files left"
        );
    }
}
