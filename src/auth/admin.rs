//! The operator's bearer token for `/admin/v1`.
//!
//! Taken from configuration (`KYCD_ADMIN_TOKEN`) or from `<data_dir>/admin.token`, which is
//! created with a random value and mode 0600 on first start. Compared by SHA-256 digest in
//! constant time, so neither length nor content leaks through timing.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Shortest accepted operator token.
pub const MIN_LEN: usize = 16;

/// The digest of the operator token.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    /// A token from its plain value; refused when shorter than [`MIN_LEN`] once trimmed, so an
    /// empty or truncated token file can never open the admin API.
    pub fn from_value(value: &str) -> std::io::Result<Self> {
        let value = value.trim();
        if value.len() < MIN_LEN {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("admin token must be at least {MIN_LEN} characters"),
            ));
        }
        Ok(AdminToken {
            digest: Sha256::digest(value.as_bytes()).into(),
        })
    }

    /// Reads the token file, creating it with a random token when absent.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        if !path.exists() {
            let mut raw = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut raw);
            let value = format!(
                "adm_{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
            );
            // Written whole to a temporary file, then linked into place: a crash or a second
            // process never sees a half-written (or empty) token.
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            {
                let mut f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(value.as_bytes())?;
                f.sync_all()?;
            }
            // hard_link fails if another process linked its token first; then use theirs.
            let linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => return Self::from_value(&value),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Self::from_value(&std::fs::read_to_string(path)?)
    }

    /// Whether `presented` is the token.
    pub fn matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        d.ct_eq(&self.digest).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        let a = AdminToken::load_or_create(&path).unwrap();
        let value = std::fs::read_to_string(&path).unwrap();
        assert!(a.matches(&value));
        assert!(!a.matches("adm_wrong"));
        let b = AdminToken::load_or_create(&path).unwrap();
        assert!(b.matches(&value));
    }

    #[test]
    fn empty_or_short_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        std::fs::write(&path, b"").unwrap();
        assert!(
            AdminToken::load_or_create(&path).is_err(),
            "an empty file never opens /admin"
        );
        assert!(AdminToken::from_value("                ").is_err());
        assert!(AdminToken::from_value("short").is_err());
        let t = AdminToken::from_value("0123456789abcdef").unwrap();
        assert!(!t.matches(""));
    }
}
