//! Optional virus scan of uploads through clamd's INSTREAM command (unix socket or TCP).
//!
//! Protocol: send `zINSTREAM\0`, then chunks each prefixed by a 4-byte big-endian length, then a
//! zero length; clamd answers `stream: OK\0` or `stream: <signature> FOUND\0`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where clamd listens and what to do when it cannot be reached.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AntivirusConfig {
    /// `unix:/run/clamav/clamd.ctl` or `host:port`; unset = no scanning.
    pub clamd: Option<String>,
    /// Accept uploads when clamd is unreachable (fail open) instead of answering 503.
    pub fail_open: bool,
    /// Connect/read/write timeout in seconds.
    pub timeout_secs: u64,
}

impl Default for AntivirusConfig {
    fn default() -> Self {
        AntivirusConfig {
            clamd: None,
            fail_open: false,
            timeout_secs: 10,
        }
    }
}

/// What clamd said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing found.
    Clean,
    /// A signature matched.
    Infected(String),
}

/// Chunk size sent per INSTREAM frame.
const CHUNK: usize = 64 * 1024;

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn connect(addr: &str, timeout: Duration) -> std::io::Result<Box<dyn Stream>> {
    if let Some(path) = addr.strip_prefix("unix:") {
        let s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        Ok(Box::new(s))
    } else {
        let sock = addr.parse().map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad clamd address")
        })?;
        let s = TcpStream::connect_timeout(&sock, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        Ok(Box::new(s))
    }
}

/// Streams `data` to clamd at `addr` and returns its verdict; blocking.
pub fn scan(addr: &str, timeout: Duration, data: &[u8]) -> std::io::Result<Verdict> {
    let mut s = connect(addr, timeout)?;
    s.write_all(b"zINSTREAM\0")?;
    for chunk in data.chunks(CHUNK) {
        s.write_all(&(chunk.len() as u32).to_be_bytes())?;
        s.write_all(chunk)?;
    }
    s.write_all(&0u32.to_be_bytes())?;
    s.flush()?;
    let mut reply = Vec::new();
    s.take(4096).read_to_end(&mut reply)?;
    let text = String::from_utf8_lossy(&reply);
    let text = text.trim_end_matches(['\0', '\n']).trim();
    let body = text.strip_prefix("stream:").unwrap_or(text).trim();
    if body == "OK" {
        Ok(Verdict::Clean)
    } else if let Some(sig) = body.strip_suffix("FOUND") {
        Ok(Verdict::Infected(sig.trim().to_owned()))
    } else {
        Err(std::io::Error::other(format!(
            "unexpected clamd reply: {text}"
        )))
    }
}
