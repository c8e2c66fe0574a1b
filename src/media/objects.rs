//! Where sealed blobs live, named by the SHA-256 of their ciphertext: the local object directory
//! (the default) or an S3-compatible bucket (see [`super::s3`]).
//!
//! Local writes are atomic (temporary file, fsync, rename, directory fsync), so a crash leaves
//! either the whole blob or nothing; an S3 PUT is atomic by itself. Reads check the content
//! against its name on both, so a tampered or truncated blob is an error, never garbage handed to
//! the decryptor.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::RngCore;
use sha2::{Digest, Sha256};

/// The blobs of every node: one directory, or one bucket shared by several nodes.
pub enum Objects {
    /// `<data_dir>/objects`.
    Local(ObjectDir),
    /// `s3://bucket/prefix`.
    S3(super::s3::S3Objects),
}

impl Objects {
    /// The bucket `config.url` names, else the directory `local`.
    pub fn open(config: &super::s3::ObjectsConfig, local: &Path) -> io::Result<Objects> {
        match &config.url {
            Some(url) => super::s3::S3Objects::open(url, config).map(Objects::S3),
            None => ObjectDir::open(local).map(Objects::Local),
        }
    }

    /// Stores `sealed` and returns its address.
    pub fn put(&self, sealed: &[u8]) -> io::Result<String> {
        match self {
            Objects::Local(d) => d.put(sealed),
            Objects::S3(s) => s.put(sealed),
        }
    }

    /// Reads a blob, failing if its content no longer matches its address; `NotFound` if gone.
    pub fn get(&self, address: &str) -> io::Result<Vec<u8>> {
        match self {
            Objects::Local(d) => d.get(address),
            Objects::S3(s) => s.get(address),
        }
    }

    /// Deletes a blob; `Ok(false)` if it was already gone.
    pub fn delete(&self, address: &str) -> io::Result<bool> {
        match self {
            Objects::Local(d) => d.delete(address),
            Objects::S3(s) => s.delete(address),
        }
    }

    /// Where the blobs are, for logs.
    pub fn describe(&self) -> String {
        match self {
            Objects::Local(d) => d.root.display().to_string(),
            Objects::S3(s) => s.describe(),
        }
    }
}

/// Fails unless `address` is 64 hex digits (a SHA-256), so it is safe in a path or a key.
pub fn check_address(address: &str) -> io::Result<()> {
    if address.len() != 64 || !address.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad object address",
        ));
    }
    Ok(())
}

/// The address of `sealed`: the hex SHA-256 of its bytes.
pub fn address_of(sealed: &[u8]) -> String {
    hex::encode(Sha256::digest(sealed))
}

/// `bytes` unless they no longer hash to `address`.
pub fn verified(address: &str, bytes: Vec<u8>) -> io::Result<Vec<u8>> {
    if address_of(&bytes) != address {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "object content does not match its address",
        ));
    }
    Ok(bytes)
}

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
        check_address(address)?;
        Ok(self.root.join(&address[..2]).join(&address[2..]))
    }

    /// Stores `sealed` and returns its address.
    pub fn put(&self, sealed: &[u8]) -> io::Result<String> {
        let address = address_of(sealed);
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
        verified(address, fs::read(self.path_of(address)?)?)
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
