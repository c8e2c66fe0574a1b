//! Media: the one intake path for images, the encrypted object directory, retention and erasure.
//!
//! Every stored byte of an image is sealed with AES-256-GCM under its subject's data key, which
//! is wrapped by the master key; erasing a subject deletes that key first (crypto-shredding), so
//! no copy of the ciphertext — on an SSD's spare blocks or in a backup — can be read afterwards.
//! What is stored is re-encoded from pixels, so no upload metadata (EXIF, GPS, XMP, ICC) survives.

pub mod antivirus;
pub mod intake;
pub mod objects;
pub mod s3;
#[cfg(test)]
pub(crate) mod test_util;

use std::sync::Arc;
use std::time::Duration;

use image::RgbImage;
use rand::RngCore;
use serde::Serialize;
use serde_json::json;

use crate::admission::{Budget, Held};
use crate::audit::NewEntry;
use crate::error::{Code, ErrorCode};
use crate::store::{self, media::MediaRow, Store, StoreError};
use antivirus::{AntivirusConfig, Verdict};
use intake::{Intake, IntakeLimits, Keep};
use objects::Objects;

/// Why an image was refused or media could not be served.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The upload is bigger than allowed.
    #[error("image exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Not JPEG, PNG or WebP by its magic bytes.
    #[error("only JPEG, PNG and WebP images are accepted")]
    UnsupportedType,
    /// The header declares more pixels than allowed.
    #[error("image of {width}×{height} exceeds the limit of {max_pixels} pixels")]
    ImageTooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The limit.
        max_pixels: u64,
    },
    /// The image data is corrupt or truncated.
    #[error("image cannot be decoded: {0}")]
    InvalidImage(String),
    /// The base64 text is malformed.
    #[error("image is not valid base64: {0}")]
    InvalidBase64(&'static str),
    /// clamd found something.
    #[error("upload rejected by the virus scanner")]
    Malware {
        /// The signature name.
        signature: String,
    },
    /// clamd could not be asked and the appliance fails closed.
    #[error("virus scanner unavailable")]
    AntivirusUnavailable,
    /// A field of the request is wrong.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The object directory failed.
    #[error("object storage error: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed, or the thing does not exist.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The memory to decode it is not available now (or never for one caller).
    #[error(transparent)]
    Busy(#[from] crate::admission::Refused),
}

impl ErrorCode for MediaError {
    fn code(&self) -> Code {
        match self {
            MediaError::PayloadTooLarge { .. } => Code::PayloadTooLarge,
            MediaError::UnsupportedType => Code::UnsupportedMediaType,
            MediaError::ImageTooLarge { .. } => Code::ImageTooLarge,
            MediaError::InvalidImage(_) | MediaError::InvalidBase64(_) => Code::InvalidImage,
            MediaError::Malware { .. } => Code::MalwareDetected,
            MediaError::AntivirusUnavailable => Code::AntivirusUnavailable,
            MediaError::Invalid { .. } => Code::InvalidInput,
            MediaError::Io(_) => Code::Internal,
            MediaError::Store(e) => e.code(),
            MediaError::Busy(e) => e.code(),
        }
    }

    fn details(&self) -> serde_json::Value {
        match self {
            MediaError::PayloadTooLarge { limit } => json!({ "limit_bytes": limit }),
            MediaError::ImageTooLarge {
                width,
                height,
                max_pixels,
            } => {
                json!({ "width": width, "height": height, "max_pixels": max_pixels })
            }
            MediaError::Malware { signature } => json!({ "signature": signature }),
            MediaError::Invalid { field, .. } => json!({ "field": field }),
            MediaError::Busy(e) => e.details(),
            _ => json!({}),
        }
    }
}

/// What an image is, which decides how large it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// The best selfie frame.
    Selfie,
    /// Document front.
    DocumentFront,
    /// Document back.
    DocumentBack,
    /// A face crop (selfie or document portrait).
    FaceCrop,
    /// A liveness frame.
    Frame,
}

impl MediaKind {
    /// Every kind.
    pub const ALL: [MediaKind; 5] = [
        MediaKind::Selfie,
        MediaKind::DocumentFront,
        MediaKind::DocumentBack,
        MediaKind::FaceCrop,
        MediaKind::Frame,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Selfie => "selfie",
            MediaKind::DocumentFront => "document_front",
            MediaKind::DocumentBack => "document_back",
            MediaKind::FaceCrop => "face_crop",
            MediaKind::Frame => "frame",
        }
    }

    /// Longest side kept, in pixels: enough to re-check a verification, small enough that a whole
    /// session (selfie + two document sides + crops) stays under ~400 KB.
    fn max_side(self) -> u32 {
        match self {
            MediaKind::Selfie | MediaKind::Frame => 800,
            MediaKind::DocumentFront | MediaKind::DocumentBack => 1280,
            MediaKind::FaceCrop => 320,
        }
    }
}

/// Images one subject may hold at once (a session is a selfie, two document sides, crops and
/// a few frames; a tenant cannot fill the disk under one subject).
pub const MAX_PER_SUBJECT: usize = 64;
/// JPEG quality of stored media.
const STORED_QUALITY: u8 = 80;
/// Media rows deleted per sweeper transaction.
const SWEEP_BATCH: i64 = 500;

/// Proof of an erasure, returned to the tenant.
#[derive(Debug, Clone, Serialize)]
pub struct ErasureReceipt {
    /// The erased subject.
    pub subject_id: String,
    /// What was removed.
    pub deleted: ErasureCounts,
    /// When (RFC 3339, UTC).
    pub at: String,
}

/// Counts in an erasure receipt.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct ErasureCounts {
    /// Media blobs.
    pub media: usize,
    /// Face embeddings in the 1:N index.
    pub embeddings: usize,
    /// Other records holding personal data (the subject's key record included).
    pub records: usize,
}

/// Media operations over the store and the object directory.
pub struct MediaService {
    store: Arc<Store>,
    objects: Objects,
    /// Upload limits.
    pub limits: IntakeLimits,
    antivirus: AntivirusConfig,
    /// Decoded pixels held at once, in all and per tenant.
    decoded: Arc<Budget>,
    /// The 1:N face index, which an erasure empties of the subject's faces.
    face_index: Arc<crate::faces::index::FaceIndex>,
}

/// Copies the blob of every media row in `store` from the directory `from` into `to` (a
/// bucket), checking each arrives under the same name; `progress` is told of each. Returns every
/// row's address and those whose blob the directory no longer had (a sweep raced the copy).
/// Restartable: a blob already there is written again with the same bytes.
pub fn copy_objects(
    store: &Store,
    from: &objects::ObjectDir,
    to: &Objects,
    progress: &mut dyn FnMut(u64),
) -> Result<(Vec<String>, Vec<String>), MediaError> {
    let addresses = store.read(store::media::objects)?;
    let mut missing = Vec::new();
    for address in &addresses {
        match from.get(address) {
            Ok(bytes) => {
                let put = to.put(&bytes)?;
                if &put != address {
                    return Err(MediaError::Io(std::io::Error::other(format!(
                        "blob {address} arrived as {put}"
                    ))));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(address.clone()),
            Err(e) => return Err(e.into()),
        }
        progress(1);
    }
    Ok((addresses, missing))
}

/// What a data key's MAC is taken of to tell two keys apart without comparing them.
const KEY_CHECK: &[u8] = b"kycd media key check";

/// Subject ids are the tenant's own references: short and plain, so they are safe in paths.
pub fn validate_subject_id(id: &str) -> Result<(), MediaError> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return Err(MediaError::Invalid {
            field: "subject_id",
            reason: "1 to 128 characters of A–Z, a–z, 0–9, '-', '_', '.', ':'".into(),
        });
    }
    Ok(())
}

impl MediaService {
    /// A service storing blobs in `objects`.
    pub fn new(
        store: Arc<Store>,
        objects: Objects,
        limits: IntakeLimits,
        antivirus: AntivirusConfig,
        decoded: Arc<Budget>,
    ) -> std::io::Result<Self> {
        Ok(MediaService {
            store,
            decoded,
            face_index: Arc::default(),
            objects,
            limits,
            antivirus,
        })
    }

    /// Scans (when configured) and decodes an upload. Blocking.
    /// The decoded-pixel leases of one request of `owner` (a tenant), released when dropped.
    pub fn hold(&self, owner: &str) -> Held {
        Held::new(self.decoded.clone(), owner)
    }

    /// The same for background work that waits as long as it takes (an accepted job).
    pub fn hold_patiently(&self, owner: &str) -> Held {
        Held::patient(self.decoded.clone(), owner, Duration::from_secs(24 * 3600))
    }

    /// The 1:N face index (this node's; see [`crate::faces`]).
    pub fn face_index(&self) -> &Arc<crate::faces::index::FaceIndex> {
        &self.face_index
    }

    /// The decoded-pixel budget.
    pub fn decoded_budget(&self) -> &Arc<Budget> {
        &self.decoded
    }

    /// Scans (when configured) and decodes an upload under `held`'s budget.
    pub fn accept(&self, bytes: &[u8], held: &mut Held, keep: Keep) -> Result<Intake, MediaError> {
        if bytes.len() > self.limits.max_bytes {
            return Err(MediaError::PayloadTooLarge {
                limit: self.limits.max_bytes,
            });
        }
        if let Some(addr) = &self.antivirus.clamd {
            let timeout = Duration::from_secs(self.antivirus.timeout_secs.max(1));
            match antivirus::scan(addr, timeout, bytes) {
                Ok(Verdict::Clean) => {}
                Ok(Verdict::Infected(signature)) => {
                    tracing::warn!(%signature, "upload rejected by clamd");
                    return Err(MediaError::Malware { signature });
                }
                Err(e) if self.antivirus.fail_open => {
                    tracing::warn!(error = %e, "clamd unreachable; accepting upload (fail_open)");
                }
                Err(e) => {
                    tracing::error!(error = %e, "clamd unreachable; refusing upload");
                    return Err(MediaError::AntivirusUnavailable);
                }
            }
        }
        intake::load_in(bytes, &self.limits, held, keep)
    }

    /// Seals and stores an image of a subject; `None` when the tenant keeps no media, or not
    /// this kind.
    pub fn put(
        &self,
        tenant_id: &str,
        subject_id: &str,
        kind: MediaKind,
        image: &RgbImage,
        now: i64,
    ) -> Result<Option<MediaRow>, MediaError> {
        self.store_image(tenant_id, subject_id, kind, image, now, true)
    }

    /// [`MediaService::put`] for a subject that must already exist (a job's images): erased since,
    /// it is `NotFound` and no new key is made for it.
    pub fn put_existing(
        &self,
        tenant_id: &str,
        subject_id: &str,
        kind: MediaKind,
        image: &RgbImage,
        now: i64,
    ) -> Result<Option<MediaRow>, MediaError> {
        self.store_image(tenant_id, subject_id, kind, image, now, false)
    }

    fn store_image(
        &self,
        tenant_id: &str,
        subject_id: &str,
        kind: MediaKind,
        image: &RgbImage,
        now: i64,
        new_subject: bool,
    ) -> Result<Option<MediaRow>, MediaError> {
        validate_subject_id(subject_id)?;
        let (days, kinds) = self.store.read(|c| store::media::policy(c, tenant_id))?;
        if days <= 0 || !kinds.split(',').any(|k| k == kind.as_str()) {
            return Ok(None);
        }
        let jpeg = intake::encode_jpeg(&shrink(image, kind.max_side()), STORED_QUALITY);
        let mut raw = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut raw);
        let id = format!("med_{}", hex::encode(raw));
        let full = |tx: &store::Tx<'_>| -> Result<(), StoreError> {
            if store::media::list_for_subject(tx, tenant_id, subject_id)?.len() >= MAX_PER_SUBJECT {
                return Err(StoreError::Invalid {
                    field: "subject_id",
                    reason: format!(
                        "a subject may hold at most {MAX_PER_SUBJECT} images; erase or let them expire first"
                    ),
                });
            }
            Ok(())
        };
        let key = self.store.write(|tx| {
            full(tx)?;
            if new_subject {
                self.store.subject_key(tx, tenant_id, subject_id, now)
            } else {
                self.store.existing_subject_key(tx, tenant_id, subject_id)
            }
        })?;
        let sealed = key.seal(&jpeg, id.as_bytes()).map_err(StoreError::from)?;
        // The blob is written outside any transaction (an S3 PUT must not hold the cluster's
        // write lock); the row that points at it is written only if the subject's key is still
        // the one that sealed it, so an erasure in between leaves no row — only unreadable
        // noise, which is deleted here.
        let object = self.objects.put(&sealed)?;
        let row = MediaRow {
            id: id.clone(),
            tenant_id: tenant_id.to_owned(),
            subject_id: subject_id.to_owned(),
            kind: kind.as_str().to_owned(),
            object,
            size: jpeg.len() as i64,
            created_at: now,
            expires_at: now + days * 86_400,
        };
        let written = self.store.write(|tx| {
            full(tx)?;
            let current = self.store.existing_subject_key(tx, tenant_id, subject_id)?;
            if current.mac(KEY_CHECK) != key.mac(KEY_CHECK) {
                // Erased and made again since the blob was sealed: it is noise to the new key.
                return Err(StoreError::NotFound("subject"));
            }
            store::media::insert(tx, &row)
        });
        if let Err(e) = written {
            if let Err(d) = self.objects.delete(&row.object) {
                tracing::warn!(error = %d, media_id = %row.id, "could not delete an unrecorded blob");
            }
            return Err(e.into());
        }
        Ok(Some(row))
    }

    /// Reads back and decrypts a tenant's media (JPEG bytes).
    pub fn get(&self, tenant_id: &str, media_id: &str) -> Result<(MediaRow, Vec<u8>), MediaError> {
        let (row, key) = self.store.read(|c| {
            let row =
                store::media::get(c, tenant_id, media_id)?.ok_or(StoreError::NotFound("media"))?;
            let key = self
                .store
                .existing_subject_key(c, tenant_id, &row.subject_id)?;
            Ok((row, key))
        })?;
        // A sweep or erasure may remove the blob between the row read and here.
        let sealed = self.objects.get(&row.object).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => MediaError::Store(StoreError::NotFound("media")),
            _ => MediaError::Io(e),
        })?;
        let plain = key
            .open(&sealed, row.id.as_bytes())
            .map_err(StoreError::from)?;
        Ok((row, plain.to_vec()))
    }

    /// A subject's media; 404 when the tenant never had such a subject.
    pub fn list(&self, tenant_id: &str, subject_id: &str) -> Result<Vec<MediaRow>, MediaError> {
        validate_subject_id(subject_id)?;
        Ok(self.store.read(|c| {
            let rows = store::media::list_for_subject(c, tenant_id, subject_id)?;
            let pseudonym = subject_reference(&self.store, tenant_id, subject_id)?;
            if rows.is_empty()
                && !store::media::subject_known(c, tenant_id, subject_id, &pseudonym)?
            {
                return Err(StoreError::NotFound("subject"));
            }
            Ok(rows)
        })?)
    }

    /// Deletes every blob whose retention ended at or before `now`; returns how many.
    pub fn sweep_expired(&self, now: i64) -> Result<usize, MediaError> {
        let mut total = 0;
        loop {
            let rows = self
                .store
                .write(|tx| store::media::take_expired(tx, now, SWEEP_BATCH))?;
            for r in &rows {
                // The rows are gone already: one failing file must not strand the rest.
                if let Err(e) = self.objects.delete(&r.object) {
                    tracing::error!(error = %e, media_id = %r.id, "could not delete expired blob");
                }
            }
            total += rows.len();
            if (rows.len() as i64) < SWEEP_BATCH {
                return Ok(total);
            }
        }
    }

    /// Erases a subject: its key first (crypto-shredding), then rows and blobs; audited without
    /// the subject's data. Idempotent: erasing an unknown subject returns zero counts.
    pub fn erase_subject(
        &self,
        tenant_id: &str,
        subject_id: &str,
        actor: &str,
        now: i64,
    ) -> Result<ErasureReceipt, MediaError> {
        validate_subject_id(subject_id)?;
        let pseudonym = subject_reference(&self.store, tenant_id, subject_id)?;
        let changes = self.face_index.lock_changes();
        let erased = self.store.write(|tx| {
            // Faces first: they are under the subject's key, which the media erasure deletes.
            let (faces, job_faces) = store::faces::erase_subject(tx, tenant_id, subject_id, now)?;
            let erased = store::media::erase_subject(tx, tenant_id, subject_id, &pseudonym, now)?;
            let counts = json!({
                "media": erased.media.len(),
                "embeddings": faces + job_faces,
                "key": erased.key,
                "jobs": erased.jobs,
                "deliveries": erased.deliveries,
            });
            store::audit::append(
                tx,
                &NewEntry::new(actor, "subject.erase")
                    .tenant(tenant_id)
                    .target(&pseudonym)
                    .details(counts),
                now,
            )?;
            Ok((erased, faces + job_faces))
        })?;
        let (erased, embeddings) = erased;
        // Out of this node's index at once; other nodes follow the removal events within a second.
        self.face_index.remove_subject(tenant_id, subject_id);
        drop(changes);
        let media = &erased.media;
        if let Err(e) = self.store.checkpoint_truncate() {
            // Readers can hold the WAL open; the next checkpoint finishes the job.
            tracing::warn!(error = %e, "checkpoint after erasure did not complete");
        }
        for m in media {
            if let Err(e) = self.objects.delete(&m.object) {
                // The key is gone, so the blob is already unreadable; the sweep of orphans is
                // a space matter, not a privacy one.
                tracing::warn!(error = %e, media_id = %m.id, "could not delete erased blob");
            }
        }
        Ok(ErasureReceipt {
            subject_id: subject_id.to_owned(),
            deleted: ErasureCounts {
                media: media.len(),
                embeddings,
                records: usize::from(erased.key) + erased.jobs + erased.deliveries,
            },
            at: time::OffsetDateTime::from_unix_timestamp(now)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default(),
        })
    }
}

/// A stable, non-reversible reference to a subject for the audit log and for records kept
/// after an erasure: an HMAC under a key of this installation, so guessable references
/// (`customer-42`) cannot be recovered by trying them.
pub fn subject_reference(
    store: &Store,
    tenant_id: &str,
    subject_id: &str,
) -> Result<String, StoreError> {
    let mac = store
        .data_key(PSEUDONYM_FAMILY)?
        .mac(format!("{tenant_id}\n{subject_id}").as_bytes());
    Ok(format!("subject:{}", &hex::encode(mac)[..24]))
}

/// The data-key family pseudonyms are keyed with.
const PSEUDONYM_FAMILY: &str = "pseudonyms";

fn shrink(image: &RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    if w.max(h) <= max_side {
        return image.clone();
    }
    let size = |side: u32| {
        let scale = f64::from(side) / f64::from(w.max(h));
        (
            ((f64::from(w) * scale).round() as u32).max(1),
            ((f64::from(h) * scale).round() as u32).max(1),
        )
    };
    // Area averaging in integers down to twice the size (no float copy of a 40 MP image on
    // the way), then a triangle filter for the last step: smooth enough that JPEG keeps it small.
    let (tw, th) = size(max_side * 2);
    let half = if w.max(h) > max_side * 2 {
        image::imageops::thumbnail(image, tw, th)
    } else {
        image.clone()
    };
    let (nw, nh) = size(max_side);
    image::imageops::resize(&half, nw, nh, image::imageops::FilterType::Triangle)
}

/// Background loop deleting expired media every `interval`, until the runtime stops.
pub async fn retention_worker(
    media: Arc<MediaService>,
    metrics: Arc<crate::telemetry::metrics::Metrics>,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        let m = media.clone();
        match tokio::task::spawn_blocking(move || m.sweep_expired(store::now())).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                metrics
                    .media_swept
                    .with_label_values(&["retention"])
                    .inc_by(n as u64);
                tracing::info!(deleted = n, "retention sweep");
            }
            Ok(Err(e)) => tracing::error!(error = %e, "retention sweep failed"),
            Err(e) => tracing::error!(error = %e, "retention sweep panicked"),
        }
    }
}

#[cfg(test)]
mod tests;
