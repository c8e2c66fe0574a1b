//! AES-256-GCM envelope encryption: a master key wraps data keys, data keys seal secrets and
//! personal data.
//!
//! Sealed bytes are `version (1) || nonce (12) || ciphertext || tag (16)`. Every seal binds
//! associated data (the table, column and row id) so a ciphertext moved to another row fails to
//! open instead of decrypting into the wrong place. Deleting a wrapped data key makes everything it
//! sealed unreadable (crypto-shredding).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

/// Sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The ciphertext was altered, truncated, or sealed under another key or context.
    #[error("sealed data failed authentication")]
    Tampered,
    /// The key file is missing, unreadable or of the wrong size.
    #[error("master key {path}: {reason}")]
    KeyFile {
        /// The key file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// A 256-bit AES-GCM key that zeroes its memory on drop.
#[derive(Clone)]
struct Key(Arc<Zeroizing<[u8; KEY_LEN]>>);

impl Key {
    fn bytes(&self) -> &[u8] {
        let inner: &[u8; KEY_LEN] = &self.0;
        inner
    }

    fn generate() -> Key {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Key(Arc::new(bytes))
    }

    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let cipher = Aes256Gcm::new_from_slice(self.bytes()).expect("32-byte key");
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Tampered)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(CryptoError::Tampered);
        }
        let cipher = Aes256Gcm::new_from_slice(self.bytes()).expect("32-byte key");
        cipher
            .decrypt(
                Nonce::from_slice(&sealed[1..1 + NONCE_LEN]),
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Tampered)
    }
}

/// The key that wraps every data key; lives in a 0600 file outside the database.
#[derive(Clone)]
pub struct MasterKey(Key);

impl MasterKey {
    /// A fresh random key (tests, first start).
    pub fn generate() -> MasterKey {
        MasterKey(Key::generate())
    }

    /// Reads the key file, creating it with 32 random bytes and mode 0600 when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, CryptoError> {
        let err = |reason: String| CryptoError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            }
            let key = Key::generate();
            // create_new: two processes starting at once must not both write a key.
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(mut f) => {
                    f.write_all(key.bytes())
                        .and_then(|_| f.sync_all())
                        .map_err(|e| err(e.to_string()))?;
                    return Ok(MasterKey(key));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(err(e.to_string())),
            }
        }
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| err(e.to_string()))?);
        let array: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| err(format!("expected {KEY_LEN} bytes, found {}", bytes.len())))?;
        Ok(MasterKey(Key(Arc::new(Zeroizing::new(array)))))
    }

    /// Reads an existing key file (never creates one).
    pub fn load(path: &Path) -> Result<MasterKey, CryptoError> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| CryptoError::KeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?);
        MasterKey::from_bytes(&bytes).map_err(|reason| CryptoError::KeyFile {
            path: path.display().to_string(),
            reason,
        })
    }

    /// The key of `bytes` (a key file's content: 32 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, String> {
        let array: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| format!("expected {KEY_LEN} bytes, found {}", bytes.len()))?;
        Ok(MasterKey(Key(Arc::new(Zeroizing::new(array)))))
    }

    /// HMAC-SHA256 of `data` under the master key, for `purpose` only (a backup's manifest: proof
    /// that the key in the backup is the one its database was sealed under).
    pub fn mac(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.0.bytes())
            .expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Wraps a data key for storage, bound to its family name.
    pub fn wrap_key(&self, key: &DataKey, family: &str) -> Result<Vec<u8>, CryptoError> {
        self.0.seal(key.0.bytes(), family.as_bytes())
    }

    /// Unwraps a stored data key of `family`.
    pub fn unwrap_key(&self, wrapped: &[u8], family: &str) -> Result<DataKey, CryptoError> {
        let raw = self.0.open(wrapped, family.as_bytes())?;
        let array: [u8; KEY_LEN] = raw
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Tampered)?;
        Ok(DataKey(Key(Arc::new(Zeroizing::new(array)))))
    }
}

/// A key that seals one family of secrets or one subject's data.
#[derive(Clone)]
pub struct DataKey(Key);

impl DataKey {
    /// HMAC-SHA256 of `data` under this key (pseudonyms that only this installation can make).
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.0.bytes())
            .expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// A fresh random data key.
    pub fn generate() -> DataKey {
        DataKey(Key::generate())
    }

    /// Encrypts and authenticates `plaintext`, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0.seal(plaintext, aad)
    }

    /// Decrypts `sealed`; fails unless it is untouched and `aad` is the one it was sealed with.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.0.open(sealed, aad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper_detection() {
        let key = DataKey::generate();
        let sealed = key.seal(b"hello", b"row:1").unwrap();
        assert_eq!(&key.open(&sealed, b"row:1").unwrap()[..], b"hello");
        assert!(key.open(&sealed, b"row:2").is_err(), "other context");
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(key.open(&bad, b"row:1").is_err(), "flipped bit");
        assert!(key.open(&sealed[..10], b"row:1").is_err(), "truncated");
        assert!(
            DataKey::generate().open(&sealed, b"row:1").is_err(),
            "other key"
        );
    }

    #[test]
    fn master_key_file_is_created_0600_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let a = MasterKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = MasterKey::load_or_create(&path).unwrap();
        let dk = DataKey::generate();
        let wrapped = a.wrap_key(&dk, "fam").unwrap();
        let back = b.unwrap_key(&wrapped, "fam").unwrap();
        let sealed = dk.seal(b"x", b"").unwrap();
        assert_eq!(&back.open(&sealed, b"").unwrap()[..], b"x");
        assert!(b.unwrap_key(&wrapped, "other").is_err());
    }

    #[test]
    fn short_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, b"short").unwrap();
        assert!(MasterKey::load_or_create(&path).is_err());
    }
}
