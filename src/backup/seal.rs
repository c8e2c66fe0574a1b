//! The backup file's encryption: a plaintext header, then the archive in AES-256-GCM chunks
//! (the STREAM construction of `aead::stream`, a 7-byte random nonce prefix, a 32-bit chunk
//! counter and a last-chunk flag), so a reordered, dropped, truncated or altered chunk fails to
//! open, and so does a file cut after any whole chunk. The key comes from an operator passphrase
//! (Argon2id, the salt and costs in the header) or from a key file.
//!
//! ```text
//! "KYCDBAK1" | u32 BE header length | header JSON | { u32 BE frame (bit 31 = last) | chunk }*
//! ```
//! Every chunk authenticates the header's SHA-256 as associated data.

use std::io::{self, Read, Write};
use std::path::Path;

use aes_gcm::aead::stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::aead::{KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"KYCDBAK1";
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 1 << 20;
const LAST: u32 = 1 << 31;
const TAG: usize = 16;
/// Largest header accepted when reading (a file is not trusted before it opens).
const MAX_HEADER: u32 = 64 * 1024;
/// Shortest passphrase accepted.
pub const MIN_PASSPHRASE: usize = 12;

/// What opens a backup.
pub enum Secret {
    /// A passphrase, stretched with Argon2id.
    Passphrase(Zeroizing<String>),
    /// The contents of a key file (at least 32 bytes), hashed.
    KeyFile(Zeroizing<Vec<u8>>),
}

impl Secret {
    /// Reads a passphrase file (its first line) or a key file.
    pub fn from_file(path: &Path, key_file: bool) -> Result<Secret, SealError> {
        let bytes = Zeroizing::new(
            std::fs::read(path)
                .map_err(|e| SealError::Secret(format!("cannot read {}: {e}", path.display())))?,
        );
        if key_file {
            if bytes.len() < 32 {
                return Err(SealError::Secret(format!(
                    "{}: a key file holds at least 32 bytes (e.g. head -c 32 /dev/urandom)",
                    path.display()
                )));
            }
            return Ok(Secret::KeyFile(bytes));
        }
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| SealError::Secret(format!("{}: not UTF-8 text", path.display())))?;
        let first = text.lines().next().unwrap_or_default().to_owned();
        Secret::passphrase(first)
    }

    /// A passphrase of at least [`MIN_PASSPHRASE`] characters.
    pub fn passphrase(text: String) -> Result<Secret, SealError> {
        let text = Zeroizing::new(text);
        if text.chars().count() < MIN_PASSPHRASE {
            return Err(SealError::Secret(format!(
                "the passphrase needs at least {MIN_PASSPHRASE} characters"
            )));
        }
        Ok(Secret::Passphrase(text))
    }
}

/// Why a backup file could not be written or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// No usable passphrase or key file.
    #[error("{0}")]
    Secret(String),
    /// Not a kycd backup, or a version this kycd cannot read.
    #[error("not a kycd backup: {0}")]
    Format(String),
    /// A chunk failed authentication: the wrong passphrase or key, or a damaged file.
    #[error("the backup does not open: wrong passphrase or key file, or the file is damaged (chunk {0})")]
    Tampered(u64),
    /// The file ends before its last chunk.
    #[error("the backup is truncated: it ends before its last chunk")]
    Truncated,
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<SealError> for io::Error {
    fn from(e: SealError) -> io::Error {
        match e {
            SealError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// The plaintext header: how the key was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    /// Format version (1).
    pub version: u32,
    /// The kycd that wrote it.
    pub kycd: String,
    /// When it was written (RFC 3339, UTC).
    pub created_at: String,
    /// `argon2id` or `key-file`.
    pub kdf: String,
    /// Argon2id salt, hex.
    #[serde(default)]
    pub salt: String,
    /// Argon2id memory (KiB), passes and lanes.
    #[serde(default)]
    pub m_kib: u32,
    #[serde(default)]
    pub t: u32,
    #[serde(default)]
    pub p: u32,
    /// The STREAM nonce prefix, hex (7 bytes).
    pub nonce_prefix: String,
}

fn derive(secret: &Secret, header: &Header) -> Result<Zeroizing<[u8; 32]>, SealError> {
    let mut key = Zeroizing::new([0u8; 32]);
    match (secret, header.kdf.as_str()) {
        (Secret::Passphrase(p), "argon2id") => {
            let salt = hex::decode(&header.salt)
                .map_err(|_| SealError::Format("bad salt".into()))?;
            let params = argon2::Params::new(header.m_kib, header.t, header.p, Some(32))
                .map_err(|e| SealError::Format(format!("Argon2 parameters: {e}")))?;
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(p.as_bytes(), &salt, key.as_mut())
                .map_err(|e| SealError::Format(format!("Argon2: {e}")))?;
        }
        (Secret::KeyFile(bytes), "key-file") => {
            let digest = Sha256::new()
                .chain_update(b"kycd backup key file\0")
                .chain_update(bytes.as_slice())
                .finalize();
            key.copy_from_slice(&digest);
        }
        (Secret::Passphrase(_), "key-file") => {
            return Err(SealError::Secret(
                "this backup was made with a key file: give --key-file".into(),
            ))
        }
        (Secret::KeyFile(_), "argon2id") => {
            return Err(SealError::Secret(
                "this backup was made with a passphrase: give --passphrase-file or KYCD_BACKUP_PASSPHRASE".into(),
            ))
        }
        (_, other) => return Err(SealError::Format(format!("unknown key derivation {other}"))),
    }
    Ok(key)
}

/// Writes the archive encrypted to `out`; `finish` writes the last chunk.
pub struct SealWriter<W: Write> {
    out: W,
    stream: Option<EncryptorBE32<Aes256Gcm>>,
    aad: [u8; 32],
    pending: Vec<u8>,
}

impl<W: Write> SealWriter<W> {
    /// Writes the header for `secret` and returns the writer of the encrypted body.
    pub fn new(mut out: W, secret: &Secret) -> Result<SealWriter<W>, SealError> {
        let mut prefix = [0u8; 7];
        rand::rngs::OsRng.fill_bytes(&mut prefix);
        let mut header = Header {
            version: 1,
            kycd: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: crate::workflow::jobs::rfc3339(crate::store::now()),
            kdf: "key-file".into(),
            salt: String::new(),
            m_kib: 0,
            t: 0,
            p: 0,
            nonce_prefix: hex::encode(prefix),
        };
        if let Secret::Passphrase(_) = secret {
            let mut salt = [0u8; 16];
            rand::rngs::OsRng.fill_bytes(&mut salt);
            header.kdf = "argon2id".into();
            header.salt = hex::encode(salt);
            (header.m_kib, header.t, header.p) = (64 * 1024, 3, 1);
        }
        let key = derive(secret, &header)?;
        let json = serde_json::to_vec(&header).expect("header serialises");
        out.write_all(MAGIC)?;
        out.write_all(&(json.len() as u32).to_be_bytes())?;
        out.write_all(&json)?;
        let cipher = Aes256Gcm::new_from_slice(key.as_ref()).expect("32-byte key");
        Ok(SealWriter {
            out,
            stream: Some(EncryptorBE32::from_aead(cipher, (&prefix).into())),
            aad: Sha256::digest(&json).into(),
            pending: Vec::with_capacity(CHUNK),
        })
    }

    fn emit(&mut self, last: bool) -> io::Result<()> {
        let msg = std::mem::take(&mut self.pending);
        let payload = Payload {
            msg: &msg,
            aad: &self.aad,
        };
        let sealed = if last {
            let stream = self.stream.take().expect("not finished");
            stream.encrypt_last(payload)
        } else {
            let stream = self.stream.as_mut().expect("not finished");
            stream.encrypt_next(payload)
        }
        .map_err(|_| io::Error::other("encryption failed"))?;
        let frame = sealed.len() as u32 | if last { LAST } else { 0 };
        self.out.write_all(&frame.to_be_bytes())?;
        self.out.write_all(&sealed)?;
        self.pending = msg;
        self.pending.clear();
        Ok(())
    }

    /// Encrypts what is left as the last chunk and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.emit(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pending.len() == CHUNK {
            self.emit(false)?;
        }
        let n = buf.len().min(CHUNK - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads the archive out of an encrypted backup; every byte it returns has been authenticated,
/// and the end of the archive is only reported after the last chunk opened.
pub struct OpenReader<R: Read> {
    input: R,
    stream: Option<DecryptorBE32<Aes256Gcm>>,
    aad: [u8; 32],
    plain: Zeroizing<Vec<u8>>,
    at: usize,
    chunk: u64,
    header: Header,
}

impl<R: Read> OpenReader<R> {
    /// Reads the header and derives the key.
    pub fn new(mut input: R, secret: &Secret) -> Result<OpenReader<R>, SealError> {
        let mut magic = [0u8; 8];
        input
            .read_exact(&mut magic)
            .map_err(|_| SealError::Format("too short".into()))?;
        if &magic != MAGIC {
            return Err(SealError::Format("no KYCDBAK1 signature".into()));
        }
        let mut len = [0u8; 4];
        input.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len);
        if len > MAX_HEADER {
            return Err(SealError::Format(format!("header of {len} bytes")));
        }
        let mut json = vec![0u8; len as usize];
        input.read_exact(&mut json)?;
        let header: Header =
            serde_json::from_slice(&json).map_err(|e| SealError::Format(format!("header: {e}")))?;
        if header.version != 1 {
            return Err(SealError::Format(format!(
                "format version {} (this kycd reads 1)",
                header.version
            )));
        }
        // Costs beyond what this kycd writes are refused: a crafted header must not make
        // restore allocate gigabytes.
        if header.kdf == "argon2id"
            && (header.m_kib > 1024 * 1024 || header.t > 16 || header.p > 16)
        {
            return Err(SealError::Format("Argon2 costs out of range".into()));
        }
        let prefix: [u8; 7] = hex::decode(&header.nonce_prefix)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| SealError::Format("bad nonce prefix".into()))?;
        let key = derive(secret, &header)?;
        let cipher = Aes256Gcm::new_from_slice(key.as_ref()).expect("32-byte key");
        Ok(OpenReader {
            input,
            stream: Some(DecryptorBE32::from_aead(cipher, (&prefix).into())),
            aad: Sha256::digest(&json).into(),
            plain: Zeroizing::new(Vec::new()),
            at: 0,
            chunk: 0,
            header,
        })
    }

    /// The header (readable before any chunk is opened).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Opens the next chunk; `Ok(false)` after the last one.
    fn next_chunk(&mut self) -> Result<bool, SealError> {
        if self.stream.is_none() {
            // After the last chunk, the file must end.
            let mut extra = [0u8; 1];
            return match self.input.read(&mut extra)? {
                0 => Ok(false),
                _ => Err(SealError::Format("bytes after the last chunk".into())),
            };
        }
        let mut frame = [0u8; 4];
        if let Err(e) = self.input.read_exact(&mut frame) {
            return Err(match e.kind() {
                io::ErrorKind::UnexpectedEof => SealError::Truncated,
                _ => SealError::Io(e),
            });
        }
        let frame = u32::from_be_bytes(frame);
        let (last, len) = (frame & LAST != 0, (frame & !LAST) as usize);
        if !(TAG..=CHUNK + TAG).contains(&len) {
            return Err(SealError::Tampered(self.chunk));
        }
        let mut sealed = vec![0u8; len];
        if let Err(e) = self.input.read_exact(&mut sealed) {
            return Err(match e.kind() {
                io::ErrorKind::UnexpectedEof => SealError::Truncated,
                _ => SealError::Io(e),
            });
        }
        let payload = Payload {
            msg: &sealed,
            aad: &self.aad,
        };
        let plain = if last {
            self.stream
                .take()
                .expect("checked above")
                .decrypt_last(payload)
        } else {
            self.stream
                .as_mut()
                .expect("checked above")
                .decrypt_next(payload)
        }
        .map_err(|_| SealError::Tampered(self.chunk))?;
        self.plain = Zeroizing::new(plain);
        self.at = 0;
        self.chunk += 1;
        Ok(true)
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.plain.len() {
            if !self.next_chunk()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.plain.len() - self.at);
        buf[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Secret {
        Secret::KeyFile(Zeroizing::new(vec![7u8; 32]))
    }

    fn seal(data: &[u8], secret: &Secret) -> Vec<u8> {
        let mut w = SealWriter::new(Vec::new(), secret).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn open(file: &[u8], secret: &Secret) -> Result<Vec<u8>, io::Error> {
        let mut r = OpenReader::new(file, secret).map_err(io::Error::from)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_across_chunks_and_refuses_any_change() {
        let data: Vec<u8> = (0..(2 * CHUNK + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let file = seal(&data, &key());
        assert_eq!(open(&file, &key()).unwrap(), data);
        // A flipped bit anywhere after the header, a cut at a chunk boundary or inside a chunk,
        // trailing bytes, another key: each refused.
        let mut flipped = file.clone();
        let at = file.len() - 100;
        flipped[at] ^= 1;
        assert!(open(&flipped, &key()).is_err());
        let header_end = 12 + u32::from_be_bytes(file[8..12].try_into().unwrap()) as usize;
        let first_chunk_end = header_end + 4 + CHUNK + TAG;
        assert!(
            open(&file[..first_chunk_end], &key()).is_err(),
            "cut after a whole chunk"
        );
        assert!(open(&file[..file.len() - 1], &key()).is_err());
        let mut longer = file.clone();
        longer.push(0);
        assert!(open(&longer, &key()).is_err());
        let other = Secret::KeyFile(Zeroizing::new(vec![8u8; 32]));
        assert!(open(&file, &other).is_err());
        // The header is authenticated too: a changed creation date fails every chunk.
        let mut dated = file.clone();
        let at = 12
            + String::from_utf8_lossy(&file[12..header_end])
                .find("\"created_at\":\"")
                .unwrap()
            + "\"created_at\":\"".len();
        dated[at] = if dated[at] == b'1' { b'2' } else { b'1' };
        assert!(matches!(
            OpenReader::new(dated.as_slice(), &key()).map(|mut r| r.read_to_end(&mut Vec::new())),
            Ok(Err(_))
        ));
    }

    #[test]
    fn a_passphrase_backup_opens_only_with_that_passphrase() {
        let pass = || Secret::passphrase("correct horse battery".into()).unwrap();
        let file = seal(b"archive", &pass());
        assert_eq!(open(&file, &pass()).unwrap(), b"archive");
        let wrong = Secret::passphrase("wrong horse battery".into()).unwrap();
        assert!(open(&file, &wrong).is_err());
        assert!(
            open(&file, &key()).is_err(),
            "a key file does not open a passphrase backup"
        );
        assert!(Secret::passphrase("short".into()).is_err());
    }
}
