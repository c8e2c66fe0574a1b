//! Online backups of a node on the embedded store, while it serves: a consistent snapshot of the
//! SQLite database (the online-backup API, one step, so concurrent writers never restart it),
//! the sealed media blobs the snapshot refers to, the master key, the admin token and the node
//! id, in a tar archive encrypted under an operator passphrase or key file ([`seal`]). The last
//! entry is a manifest — every file's size and SHA-256, the objects' count and bytes, the
//! snapshot's jobs by status — authenticated with the master key inside the backup, so a restore
//! knows the key is the one the database was sealed under.
//!
//! `verify` reads a backup end to end without writing anything; `restore` verifies first, then
//! unpacks into a staging directory beside the target, checks the database's integrity and
//! renames it into place: a failed restore leaves no half-written data directory.
//!
//! PostgreSQL and S3 have backups of their own (pg_dump / pg_basebackup, bucket versioning);
//! a node on them is refused with that advice.

pub mod seal;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::Config;
use crate::store::crypto::MasterKey;
use crate::store::files;
use seal::{OpenReader, SealError, SealWriter, Secret};

/// Data-directory files backed up when they exist, besides `kycd.db` and `master.key`.
const OPTIONAL_FILES: [&str; 2] = ["admin.token", "node.id"];
/// The MAC purpose binding a manifest to the master key.
const MANIFEST_MAC: &str = "kycd backup manifest";
/// Largest manifest read back (a backup is not trusted before it verifies).
const MAX_MANIFEST: u64 = 64 * 1024 * 1024;
/// Largest small file (master key, token, node id) read back.
const MAX_SMALL: u64 = 64 * 1024;

/// Why a backup, verification or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The node keeps its data where `kycd backup` does not reach.
    #[error("{0}")]
    NotEmbedded(String),
    /// The file's encryption or framing.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The archive inside does not match its manifest.
    #[error("the backup is inconsistent: {0}")]
    Manifest(String),
    /// The data directory to back up or restore into.
    #[error("{0}")]
    Target(String),
    /// SQLite refused the snapshot or the restored database.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One file of the archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Name in the archive (and in the data directory).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// The archive's last entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// `kycd-backup`.
    pub format: String,
    /// The kycd that wrote it.
    pub kycd: String,
    /// When the snapshot was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The database's schema version (`PRAGMA user_version`).
    pub schema_version: i64,
    /// Every file but the objects.
    pub files: Vec<FileEntry>,
    /// Sealed media blobs the snapshot refers to (each named by its SHA-256).
    pub objects: u64,
    /// Their bytes.
    pub object_bytes: u64,
    /// Blobs the snapshot referred to that retention deleted before they were copied.
    pub objects_missing: Vec<String>,
    /// Jobs in the snapshot by status: every job accepted before the backup started.
    pub jobs: BTreeMap<String, i64>,
    /// HMAC-SHA256 of this manifest (with this field empty) under the backed-up master key.
    pub master_key_mac: String,
}

impl Manifest {
    fn mac(&self, key: &MasterKey) -> String {
        let mut unsigned = self.clone();
        unsigned.master_key_mac.clear();
        let bytes = serde_json::to_vec(&unsigned).expect("manifest serialises");
        hex::encode(key.mac(MANIFEST_MAC, &bytes))
    }
}

/// What `create` and `verify` report.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The manifest.
    pub manifest: Manifest,
    /// SHA-256 of the whole backup file, hex.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
}

/// Progress of a long step, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A step of `total` bytes starts.
    Start(&'a str, u64),
    /// `n` more bytes of it are done.
    Advance(u64),
    /// It is done.
    Finish,
}

struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    fn digest(&self) -> String {
        hex::encode(self.hash.clone().finalize())
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Hashes and counts what a reader hands on, readable while the reader is borrowed deep inside
/// the decryption and the archive.
#[derive(Clone, Default)]
struct Tap(std::rc::Rc<std::cell::RefCell<(Sha256, u64)>>);

struct Tapped<R> {
    inner: R,
    tap: Tap,
}

impl Tap {
    fn over<R: Read>(&self, inner: R) -> Tapped<R> {
        Tapped {
            inner,
            tap: self.clone(),
        }
    }

    fn bytes(&self) -> u64 {
        self.0.borrow().1
    }

    fn digest(&self) -> String {
        hex::encode(self.0.borrow().0.clone().finalize())
    }
}

impl<R: Read> Read for Tapped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut state = self.tap.0.borrow_mut();
        state.0.update(&buf[..n]);
        state.1 += n as u64;
        Ok(n)
    }
}

fn random_suffix() -> String {
    let mut raw = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

/// Removes a file when dropped (the plaintext database snapshot).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn append<W: Write, R: Read>(
    tar: &mut tar::Builder<W>,
    name: &str,
    size: u64,
    reader: R,
) -> Result<FileEntry, BackupError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    let mut hashing = Hashing::new(reader.take(size));
    tar.append_data(&mut header, name, &mut hashing)?;
    if hashing.bytes != size {
        return Err(BackupError::Target(format!(
            "{name} changed size while it was copied"
        )));
    }
    Ok(FileEntry {
        path: name.to_owned(),
        size,
        sha256: hashing.digest(),
    })
}

/// Backs up the node of `config` into `out` (written as `out.partial`, renamed when complete,
/// with `out.sha256` beside it).
pub fn create(
    config: &Config,
    out: &Path,
    secret: &Secret,
    progress: &mut dyn FnMut(Event),
) -> Result<Summary, BackupError> {
    if config.store.url.is_some() {
        return Err(BackupError::NotEmbedded(
            "this node's database is PostgreSQL: back it up with pg_dump or pg_basebackup, and \
             the bucket with its own versioning; kycd backup covers the embedded store"
                .into(),
        ));
    }
    if config.objects.url.is_some() {
        return Err(BackupError::NotEmbedded(
            "this node's media is in an S3 bucket: back the bucket up with its own versioning \
             or replication; kycd backup covers the data directory's objects/"
                .into(),
        ));
    }
    let db = config.db_path();
    if !db.exists() {
        return Err(BackupError::Target(format!(
            "no database at {}: is --data-dir the node's data directory?",
            db.display()
        )));
    }
    let master = MasterKey::load(&config.master_key_path())
        .map_err(|e| BackupError::Target(e.to_string()))?;
    if out.exists() {
        return Err(BackupError::Target(format!(
            "{} exists: choose a new file",
            out.display()
        )));
    }

    let scratch_dir = config.data_dir.join("backups");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&scratch_dir)?;
    let snap = Scratch(scratch_dir.join(format!(".snapshot-{}.db", random_suffix())));
    progress(Event::Start("database snapshot", 0));
    files::snapshot(&db, &snap.0)?;
    progress(Event::Finish);
    let created_at = crate::workflow::jobs::rfc3339(crate::store::now());
    let files::SnapshotFacts {
        schema_version,
        objects: addresses,
        jobs,
    } = files::snapshot_facts(&snap.0)?;

    let partial = PathBuf::from(format!("{}.partial", out.display()));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| BackupError::Target(format!("cannot create {}: {e}", partial.display())))?;
    let result = (|| -> Result<Summary, BackupError> {
        let sealed = SealWriter::new(Hashing::new(BufWriter::new(file)), secret)?;
        let mut tar = tar::Builder::new(sealed);
        let mut files = Vec::new();
        let size = fs::metadata(&snap.0)?.len();
        files.push(append(&mut tar, "kycd.db", size, File::open(&snap.0)?)?);
        let key_bytes = Zeroizing::new(fs::read(config.master_key_path())?);
        files.push(append(
            &mut tar,
            "master.key",
            key_bytes.len() as u64,
            key_bytes.as_slice(),
        )?);
        for name in OPTIONAL_FILES {
            let path = config.data_dir.join(name);
            if let Ok(bytes) = fs::read(&path) {
                let bytes = Zeroizing::new(bytes);
                files.push(append(
                    &mut tar,
                    name,
                    bytes.len() as u64,
                    bytes.as_slice(),
                )?);
            }
        }

        let objects_dir = config.objects_dir();
        let mut sizes = Vec::with_capacity(addresses.len());
        for a in &addresses {
            crate::media::objects::check_address(a)?;
            let path = objects_dir.join(&a[..2]).join(&a[2..]);
            sizes.push(fs::metadata(&path).ok().map(|m| (path, m.len())));
        }
        let total: u64 = sizes.iter().flatten().map(|(_, n)| n).sum();
        progress(Event::Start("media", total));
        let (mut count, mut bytes, mut missing) = (0u64, 0u64, Vec::new());
        for (a, found) in addresses.iter().zip(sizes) {
            let opened = found.and_then(|(path, size)| File::open(&path).ok().map(|f| (f, size)));
            let Some((f, size)) = opened else {
                // Retention deleted it after the snapshot: the restored node will find the
                // media row expired and sweep it.
                missing.push(a.clone());
                continue;
            };
            let entry = append(
                &mut tar,
                &format!("objects/{}/{}", &a[..2], &a[2..]),
                size,
                f,
            )?;
            if entry.sha256 != *a {
                return Err(BackupError::Target(format!(
                    "object {a} in {} is damaged (its content no longer matches its name)",
                    objects_dir.display()
                )));
            }
            count += 1;
            bytes += size;
            progress(Event::Advance(size));
        }
        progress(Event::Finish);

        let mut manifest = Manifest {
            format: "kycd-backup".into(),
            kycd: env!("CARGO_PKG_VERSION").into(),
            created_at,
            schema_version,
            files,
            objects: count,
            object_bytes: bytes,
            objects_missing: missing,
            jobs,
            master_key_mac: String::new(),
        };
        manifest.master_key_mac = manifest.mac(&master);
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(0);
        tar.append_data(&mut header, "manifest.json", json.as_slice())?;
        let sealed = tar.into_inner()?;
        let mut hashing = sealed.finish()?;
        hashing.flush()?;
        let sha256 = hashing.digest();
        let bytes = hashing.bytes;
        let file = hashing
            .inner
            .into_inner()
            .map_err(|e| BackupError::Io(e.into_error()))?;
        file.sync_all()?;
        Ok(Summary {
            manifest,
            sha256,
            bytes,
        })
    })();
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
    };
    fs::rename(&partial, out)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    fs::write(
        format!("{}.sha256", out.display()),
        format!("{}  {name}\n", summary.sha256),
    )?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(summary)
}

/// Writes one archive entry (its name, its content) during a restore's second pass.
type Unpack<'a> = dyn FnMut(&str, &mut dyn Read) -> io::Result<()> + 'a;

/// What an archive entry may be called: the data directory's files, or a blob by address.
fn allowed(name: &str) -> bool {
    match name {
        "kycd.db" | "master.key" | "manifest.json" => true,
        n if OPTIONAL_FILES.contains(&n) => true,
        _ => name
            .strip_prefix("objects/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(dir, file)| {
                let address = format!("{dir}{file}");
                dir.len() == 2 && crate::media::objects::check_address(&address).is_ok()
            }),
    }
}

/// Reads the whole backup; calls `write` with each entry's name and content when given (the
/// second pass of a restore). Checks every chunk, every entry against the manifest, the
/// objects against their addresses and the manifest against the master key inside.
fn read_through(
    path: &Path,
    secret: &Secret,
    progress: &mut dyn FnMut(Event),
    mut write: Option<&mut Unpack>,
) -> Result<Summary, BackupError> {
    let file = File::open(path)
        .map_err(|e| BackupError::Target(format!("cannot open {}: {e}", path.display())))?;
    let total = file.metadata()?.len();
    let tap = Tap::default();
    let opened = OpenReader::new(tap.over(io::BufReader::new(file)), secret)?;
    progress(Event::Start("backup", total));
    let mut archive = tar::Archive::new(opened);
    let mut seen: Vec<FileEntry> = Vec::new();
    let (mut objects, mut object_bytes) = (0u64, 0u64);
    let mut manifest: Option<Manifest> = None;
    let mut master: Option<Zeroizing<Vec<u8>>> = None;
    let mut done = 0u64;
    let io_err = |e: io::Error| match e.into_inner() {
        Some(inner) => match inner.downcast::<SealError>() {
            Ok(seal) => BackupError::Seal(*seal),
            Err(other) => BackupError::Io(io::Error::other(other)),
        },
        None => BackupError::Manifest("the archive inside is malformed".into()),
    };
    for entry in archive.entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        let name = entry
            .path()
            .map_err(io_err)?
            .to_str()
            .map(str::to_owned)
            .unwrap_or_default();
        if !allowed(&name) || entry.header().entry_type() != tar::EntryType::Regular {
            return Err(BackupError::Manifest(format!("unexpected entry {name:?}")));
        }
        if seen.iter().any(|e| e.path == name) || (name == "manifest.json" && manifest.is_some()) {
            return Err(BackupError::Manifest(format!("{name} twice")));
        }
        if manifest.is_some() {
            return Err(BackupError::Manifest("entries after the manifest".into()));
        }
        let size = entry.header().size().map_err(io_err)?;
        if name == "manifest.json" {
            if size > MAX_MANIFEST {
                return Err(BackupError::Manifest("manifest too large".into()));
            }
            let mut json = Vec::new();
            (&mut entry)
                .take(MAX_MANIFEST)
                .read_to_end(&mut json)
                .map_err(io_err)?;
            manifest = Some(
                serde_json::from_slice(&json)
                    .map_err(|e| BackupError::Manifest(format!("manifest: {e}")))?,
            );
            continue;
        }
        let small = !name.starts_with("objects/") && name != "kycd.db";
        if small && size > MAX_SMALL {
            return Err(BackupError::Manifest(format!("{name} too large")));
        }
        let mut hashing_entry = Hashing::new((&mut entry).take(size));
        if name == "master.key" {
            let mut key = Zeroizing::new(Vec::new());
            hashing_entry.read_to_end(&mut key).map_err(io_err)?;
            if let Some(w) = write.as_mut() {
                w(&name, &mut key.as_slice())?;
            }
            master = Some(key);
        } else if let Some(w) = write.as_mut() {
            w(&name, &mut hashing_entry).map_err(io_err)?;
        } else {
            io::copy(&mut hashing_entry, &mut io::sink()).map_err(io_err)?;
        }
        if hashing_entry.bytes != size {
            return Err(BackupError::Manifest(format!("{name} is short")));
        }
        let sha256 = hashing_entry.digest();
        if let Some(rest) = name.strip_prefix("objects/") {
            if sha256 != rest.replace('/', "") {
                return Err(BackupError::Manifest(format!(
                    "{name} does not match its address"
                )));
            }
            objects += 1;
            object_bytes += size;
        } else {
            seen.push(FileEntry {
                path: name,
                size,
                sha256,
            });
        }
        let now = tap.bytes();
        progress(Event::Advance(now.saturating_sub(done)));
        done = now;
    }
    // The tar end marker is not the end of the file: read on to the last chunk, which fails
    // on a truncated or extended file.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(io_err)?;
    progress(Event::Finish);

    let manifest = manifest.ok_or_else(|| BackupError::Manifest("no manifest".into()))?;
    if manifest.format != "kycd-backup" {
        return Err(BackupError::Manifest(format!("format {}", manifest.format)));
    }
    let mut listed = manifest.files.clone();
    listed.sort_by(|a, b| a.path.cmp(&b.path));
    seen.sort_by(|a, b| a.path.cmp(&b.path));
    if listed != seen {
        return Err(BackupError::Manifest(
            "the files differ from the manifest's list".into(),
        ));
    }
    if (objects, object_bytes) != (manifest.objects, manifest.object_bytes) {
        return Err(BackupError::Manifest(format!(
            "{objects} objects of {object_bytes} bytes, the manifest says {} of {}",
            manifest.objects, manifest.object_bytes
        )));
    }
    let key = master.ok_or_else(|| BackupError::Manifest("no master key".into()))?;
    let key = MasterKey::from_bytes(&key)
        .map_err(|e| BackupError::Manifest(format!("master key: {e}")))?;
    if manifest.mac(&key) != manifest.master_key_mac {
        return Err(BackupError::Manifest(
            "the manifest was not made with the master key in the backup".into(),
        ));
    }
    let sha256 = tap.digest();
    let sidecar = PathBuf::from(format!("{}.sha256", path.display()));
    if let Ok(text) = fs::read_to_string(&sidecar) {
        let expected = text.split_whitespace().next().unwrap_or_default();
        if expected != sha256 {
            return Err(BackupError::Manifest(format!(
                "the file's SHA-256 is {sha256}, {} says {expected}",
                sidecar.display()
            )));
        }
    }
    Ok(Summary {
        manifest,
        sha256,
        bytes: tap.bytes(),
    })
}

/// Reads the whole backup and checks it, writing nothing.
pub fn verify(
    path: &Path,
    secret: &Secret,
    progress: &mut dyn FnMut(Event),
) -> Result<Summary, BackupError> {
    read_through(path, secret, progress, None)
}

/// Restores `backup` into `data_dir`, which must not exist or be empty.
pub fn restore(
    backup: &Path,
    secret: &Secret,
    data_dir: &Path,
    progress: &mut dyn FnMut(Event),
) -> Result<Summary, BackupError> {
    if let Ok(mut entries) = fs::read_dir(data_dir) {
        if entries.next().is_some() {
            return Err(BackupError::Target(format!(
                "{} is not empty: restore into a new directory",
                data_dir.display()
            )));
        }
    }
    let first = verify(backup, secret, progress)?;

    let parent = match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent)?;
    let name = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let staging = parent.join(format!(".{name}.restoring-{}", random_suffix()));
    fs::DirBuilder::new().mode(0o700).create(&staging)?;
    let outcome = (|| -> Result<Summary, BackupError> {
        let mut write = |entry: &str, content: &mut dyn Read| -> io::Result<()> {
            let dest = staging.join(entry);
            if let Some(dir) = dest.parent() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&dest)?;
            io::copy(content, &mut f)?;
            f.sync_all()
        };
        let second = read_through(backup, secret, &mut |_| {}, Some(&mut write))?;
        if second.sha256 != first.sha256 {
            return Err(BackupError::Target(
                "the backup file changed during the restore".into(),
            ));
        }
        let check = files::check(&staging.join("kycd.db"), true)?;
        if check != "ok" {
            return Err(BackupError::Manifest(format!(
                "the database fails its integrity check: {check}"
            )));
        }
        Ok(second)
    })();
    match outcome {
        Ok(summary) => {
            if data_dir.exists() {
                fs::remove_dir(data_dir)?;
            }
            fs::rename(&staging, data_dir)?;
            File::open(&parent)?.sync_all()?;
            Ok(summary)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_data_directory_files_and_addressed_blobs_are_entries() {
        let a = "ab".to_owned() + &"0".repeat(62);
        assert!(allowed("kycd.db"));
        assert!(allowed(&format!("objects/ab/{}", &a[2..])));
        assert!(!allowed("../etc/passwd"));
        assert!(!allowed("objects/ab/../../x"));
        assert!(!allowed(&format!("objects/abc/{}", &a[3..])));
        assert!(!allowed("replay.db"));
    }
}
