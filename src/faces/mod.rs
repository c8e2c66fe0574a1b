//! Faces kept for 1:N search: enrolment (with a quality floor), search within a tenant, removal,
//! and the in-memory index (`index`) that follows the database.
//!
//! The database is the truth: each face's SFace embedding is stored sealed under its subject's
//! data key (erasing the subject shreds it), and every enrolment and removal is an event in
//! `face_events`. The index is rebuilt from the faces at start and then applies the events after
//! the last it saw — on one node it is also updated directly, and with several nodes on one
//! PostgreSQL each node polls the events every second, so a face enrolled through one node is
//! found through the others within about a second.

pub mod index;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use rand::RngCore;
use serde::Serialize;
use serde_json::json;

use crate::audit::NewEntry;
use crate::error::{Code, ErrorCode};
use crate::store::crypto::DataKey;
use crate::store::faces::FaceRow;
use crate::store::{self, Store, StoreError};
use crate::vision::embed::Embedding;
use crate::vision::facematch::{self, AnalyzedFace};
use crate::vision::quality::{Quality, QualityWarning};
use index::{FaceIndex, DIM};

/// Faces one subject may hold (several photos of one person; not a way to fill the index).
pub const MAX_PER_SUBJECT: i64 = 16;
/// Candidates a search may ask for.
pub const MAX_TOP_K: usize = 100;
/// Collection names: short and plain.
const MAX_COLLECTION: usize = 64;
/// Faces read per query while the index is rebuilt.
const LOAD_PAGE: i64 = 2_000;
/// Events applied per poll.
const FOLLOW_PAGE: i64 = 5_000;
/// Events are kept this long (a node away longer rebuilds at start).
pub const EVENTS_KEPT_SECS: i64 = 86_400;

/// Quality warnings that keep a face out of the index: a reference must be good enough that a
/// later search can rely on it. (`face_too_close_to_border` alone is allowed: the face is whole.)
const REFUSED: [QualityWarning; 6] = [
    QualityWarning::FaceTooSmall,
    QualityWarning::Blurry,
    QualityWarning::TooDark,
    QualityWarning::Overexposed,
    QualityWarning::FaceCropped,
    QualityWarning::AngleTooLarge,
];

/// Why a face operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum FacesError {
    /// The face is below the enrolment quality floor.
    #[error("the face is below the enrolment quality floor: {}", .warnings.join(", "))]
    LowQuality {
        /// The warnings that refused it.
        warnings: Vec<&'static str>,
        /// The measurements.
        quality: Box<Quality>,
    },
    /// A field of the request is wrong.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The job cannot give a face (not accepted, or no face kept).
    #[error("{0}")]
    NotEnrollable(String),
    /// The store failed, or the thing does not exist.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::store::crypto::CryptoError> for FacesError {
    fn from(e: crate::store::crypto::CryptoError) -> Self {
        FacesError::Store(e.into())
    }
}

impl ErrorCode for FacesError {
    fn code(&self) -> Code {
        match self {
            FacesError::LowQuality { .. } => Code::FaceQualityTooLow,
            FacesError::Invalid { .. } => Code::InvalidInput,
            FacesError::NotEnrollable(_) => Code::Conflict,
            FacesError::Store(e) => e.code(),
        }
    }

    fn details(&self) -> serde_json::Value {
        match self {
            FacesError::LowQuality { warnings, quality } => {
                json!({ "warnings": warnings, "quality": quality })
            }
            FacesError::Invalid { field, .. } => json!({ "field": field }),
            FacesError::Store(e) => e.details(),
            FacesError::NotEnrollable(_) => json!({}),
        }
    }
}

/// An enrolled face, as the API returns it.
#[derive(Debug, Clone, Serialize)]
pub struct Enrolled {
    /// The new face's id.
    pub face_id: String,
    /// Its subject.
    pub subject_id: String,
    /// Its collection.
    pub collection: String,
    /// The job it came from, if any.
    pub job_id: Option<String>,
    /// The face's measurements.
    pub quality: serde_json::Value,
    /// Soft warnings that did not refuse it.
    pub warnings: Vec<&'static str>,
}

/// A search result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Candidate {
    /// The enrolled face.
    pub face_id: String,
    /// Its subject.
    pub subject_id: String,
    /// The job it was enrolled from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Calibrated similarity in [0, 1] (the face-match scale).
    pub similarity: f32,
    /// Raw cosine of the embeddings.
    pub cosine: f32,
}

/// What was enrolled: a face from an image, or the selfie of a completed job.
pub struct Enrolment<'a> {
    /// The tenant.
    pub tenant_id: &'a str,
    /// The subject the face belongs to.
    pub subject_id: &'a str,
    /// The collection (`default` when none).
    pub collection: Option<&'a str>,
    /// The job it came from.
    pub job_id: Option<&'a str>,
}

/// How long a rebuild took.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Loaded {
    /// Faces in the index.
    pub faces: usize,
    /// Milliseconds.
    pub ms: u64,
}

/// Enrolled faces: the store and the index over it.
pub struct Faces {
    store: Arc<Store>,
    index: Arc<FaceIndex>,
    /// The last event applied.
    seen: AtomicI64,
}

fn to_bytes(e: &[f32]) -> Vec<u8> {
    e.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_bytes(b: &[u8]) -> Option<Embedding> {
    if b.len() != DIM * 4 {
        return None;
    }
    Embedding::from_raw(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// The AAD a job's selfie embedding is sealed with.
fn job_face_aad(job_id: &str) -> String {
    format!("{job_id}:face")
}

/// Seals the selfie embedding of a job with its quality, for [`Faces::enrol_job`].
pub fn seal_job_face(key: &DataKey, job_id: &str, face: &AnalyzedFace) -> Option<Vec<u8>> {
    let mut plain = to_bytes(face.embedding.as_slice());
    plain.extend(serde_json::to_vec(&face.quality).ok()?);
    key.seal(&plain, job_face_aad(job_id).as_bytes()).ok()
}

fn validate_collection(c: Option<&str>) -> Result<&str, FacesError> {
    let c = c.unwrap_or("default");
    if c.is_empty()
        || c.len() > MAX_COLLECTION
        || !c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(FacesError::Invalid {
            field: "collection",
            reason: format!("1 to {MAX_COLLECTION} characters of A–Z, a–z, 0–9, '-', '_', '.'"),
        });
    }
    Ok(c)
}

fn warning_codes(w: &[QualityWarning]) -> Vec<&'static str> {
    w.iter().map(|w| w.code()).collect()
}

impl Faces {
    /// The faces of `store`, with an empty index (call [`Faces::load`]).
    pub fn new(store: Arc<Store>, index: Arc<FaceIndex>) -> Self {
        Faces {
            store,
            index,
            seen: AtomicI64::new(0),
        }
    }

    /// The index.
    pub fn index(&self) -> &Arc<FaceIndex> {
        &self.index
    }

    /// Rebuilds the index from the database; `progress` hears each page's size.
    pub fn load(&self, progress: &mut dyn FnMut(usize)) -> Result<Loaded, FacesError> {
        let started = std::time::Instant::now();
        // Events from here on are applied again by `follow` (applying one twice is harmless).
        let seen = self.store.read(store::faces::last_event)?;
        let mut keys: HashMap<(String, String), Option<DataKey>> = HashMap::new();
        let mut after = String::new();
        let mut faces = 0;
        loop {
            let page = self
                .store
                .read(|c| store::faces::page(c, &after, LOAD_PAGE))?;
            let Some((last, _)) = page.last() else { break };
            after = last.id.clone();
            for (row, wrapped) in &page {
                let slot = (row.tenant_id.clone(), row.subject_id.clone());
                if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry(slot) {
                    slot.insert(match wrapped {
                        Some(w) => Some(self.store.unwrap_subject_key(
                            &row.tenant_id,
                            &row.subject_id,
                            w,
                        )?),
                        None => None,
                    });
                }
                if self.apply(&mut keys, row)? {
                    faces += 1;
                }
            }
            progress(page.len());
        }
        self.seen.store(seen, Ordering::SeqCst);
        Ok(Loaded {
            faces,
            ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Puts a stored face into the index; `false` when its subject's key is gone (erased).
    fn apply(
        &self,
        keys: &mut HashMap<(String, String), Option<DataKey>>,
        row: &FaceRow,
    ) -> Result<bool, FacesError> {
        let slot = (row.tenant_id.clone(), row.subject_id.clone());
        if !keys.contains_key(&slot) {
            let key = match self.store.read(|c| {
                self.store
                    .existing_subject_key(c, &row.tenant_id, &row.subject_id)
            }) {
                Ok(k) => Some(k),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            };
            keys.insert(slot.clone(), key);
        }
        let Some(key) = keys.get(&slot).and_then(Option::as_ref) else {
            return Ok(false);
        };
        let plain = key.open(&row.sealed, row.id.as_bytes())?;
        let Some(embedding) = from_bytes(&plain) else {
            return Ok(false);
        };
        self.add_to_index(row, &embedding);
        Ok(true)
    }

    /// Applies the events other nodes (or this one) wrote since the last call; how many.
    pub fn follow(&self) -> Result<usize, FacesError> {
        let _changes = self.index.lock_changes();
        let mut applied = 0;
        loop {
            let seen = self.seen.load(Ordering::SeqCst);
            let changes = self
                .store
                .read(|c| store::faces::changes_since(c, seen, FOLLOW_PAGE))?;
            let Some(last) = changes.last().map(|c| c.0) else {
                return Ok(applied);
            };
            let mut keys = HashMap::new();
            for (_, tenant_id, face_id, face) in &changes {
                match face {
                    Some(row) => {
                        self.apply(&mut keys, row)?;
                    }
                    None => {
                        self.index.remove(tenant_id, face_id);
                    }
                }
            }
            applied += changes.len();
            self.seen.store(last, Ordering::SeqCst);
        }
    }

    /// Deletes events every node has long applied.
    pub fn prune_events(&self, now: i64) -> Result<usize, FacesError> {
        Ok(self
            .store
            .write(|tx| store::faces::prune_events(tx, now - EVENTS_KEPT_SECS))?)
    }

    /// Enrols the analysed face of an image under the quality floor.
    pub fn enrol(
        &self,
        e: &Enrolment<'_>,
        face: &AnalyzedFace,
        now: i64,
        actor: &str,
    ) -> Result<Enrolled, FacesError> {
        let warnings = face.quality.warnings(&Default::default());
        let refused: Vec<&'static str> = warnings
            .iter()
            .filter(|w| REFUSED.contains(w))
            .map(|w| w.code())
            .collect();
        if !refused.is_empty() {
            return Err(FacesError::LowQuality {
                warnings: refused,
                quality: Box::new(face.quality.clone()),
            });
        }
        let quality = serde_json::to_value(&face.quality).unwrap_or_default();
        self.insert(
            e,
            &face.embedding,
            quality,
            warning_codes(&warnings),
            now,
            actor,
        )
    }

    /// Enrols the selfie of a completed, accepted job of the tenant (under its subject, or
    /// `subject_id` when given).
    pub fn enrol_job(
        &self,
        tenant_id: &str,
        job_id: &str,
        subject_id: Option<&str>,
        collection: Option<&str>,
        now: i64,
        actor: &str,
    ) -> Result<Enrolled, FacesError> {
        let (subject, decision, sealed) = self
            .store
            .read(|c| store::faces::job_face(c, tenant_id, job_id))?
            .ok_or(StoreError::NotFound("job"))?;
        if decision.as_deref() != Some("accepted") {
            return Err(FacesError::NotEnrollable(format!(
                "job {job_id} is {}: only an accepted verification's face is enrolled",
                decision.as_deref().unwrap_or("not finished")
            )));
        }
        let sealed = sealed.ok_or_else(|| {
            FacesError::NotEnrollable(format!(
                "job {job_id} kept no face (its selfie had none, or its subject was erased)"
            ))
        })?;
        let key = self
            .store
            .read(|c| self.store.existing_subject_key(c, tenant_id, &subject))?;
        let plain = key.open(&sealed, job_face_aad(job_id).as_bytes())?;
        let embedding = from_bytes(plain.get(..DIM * 4).unwrap_or_default())
            .ok_or_else(|| FacesError::NotEnrollable("the job's face is unreadable".into()))?;
        let quality: serde_json::Value =
            serde_json::from_slice(plain.get(DIM * 4..).unwrap_or_default()).unwrap_or_default();
        let e = Enrolment {
            tenant_id,
            subject_id: subject_id.unwrap_or(&subject),
            collection,
            job_id: Some(job_id),
        };
        self.insert(&e, &embedding, quality, Vec::new(), now, actor)
    }

    /// Enrols the selfie of a job as it completes, inside the transaction that completes it (the
    /// workflow's `dedup.enrol_accepted`); the index learns of it once `tx` commits, through
    /// [`Faces::follow`] or [`Faces::add_to_index`].
    pub fn enrol_in(
        tx: &store::Tx<'_>,
        key: &DataKey,
        e: &Enrolment<'_>,
        face: &AnalyzedFace,
        now: i64,
        actor: &str,
    ) -> Result<FaceRow, FacesError> {
        let collection = validate_collection(e.collection)?;
        let quality = json!(face.quality);
        let written = write_enrolment(tx, key, e, collection, &face.embedding, quality, now, actor);
        Ok(written?)
    }

    /// Seals and stores a face inside `tx` (no audit entry: the caller's action is audited).
    pub fn store_in(
        tx: &store::Tx<'_>,
        key: &DataKey,
        e: &Enrolment<'_>,
        embedding: &Embedding,
        quality: serde_json::Value,
        now: i64,
    ) -> Result<FaceRow, FacesError> {
        let collection = validate_collection(e.collection)?;
        Ok(insert_row(tx, key, e, collection, embedding, quality, now)?)
    }

    /// Adds a stored face to this node's index.
    pub fn add_to_index(&self, row: &FaceRow, embedding: &Embedding) {
        self.index.insert(
            &row.tenant_id,
            &row.id,
            &row.subject_id,
            &row.collection,
            embedding.as_slice(),
        );
    }

    fn insert(
        &self,
        e: &Enrolment<'_>,
        embedding: &Embedding,
        quality: serde_json::Value,
        warnings: Vec<&'static str>,
        now: i64,
        actor: &str,
    ) -> Result<Enrolled, FacesError> {
        crate::media::validate_subject_id(e.subject_id).map_err(|_| FacesError::Invalid {
            field: "subject_id",
            reason: "1 to 128 characters of A–Z, a–z, 0–9, '-', '_', '.', ':'".into(),
        })?;
        let collection = validate_collection(e.collection)?;
        let _changes = self.index.lock_changes();
        let row = self.store.write(|tx| {
            let held = store::faces::count_for_subject(tx, e.tenant_id, e.subject_id)?;
            if held >= MAX_PER_SUBJECT {
                return Err(StoreError::Invalid {
                    field: "subject_id",
                    reason: format!(
                        "a subject may hold at most {MAX_PER_SUBJECT} faces; delete one first"
                    ),
                });
            }
            let key = self.store.subject_key(tx, e.tenant_id, e.subject_id, now)?;
            let quality = quality.clone();
            write_enrolment(tx, &key, e, collection, embedding, quality, now, actor)
        })?;
        self.add_to_index(&row, embedding);
        Ok(Enrolled {
            face_id: row.id,
            subject_id: row.subject_id,
            collection: row.collection,
            job_id: row.job_id,
            quality,
            warnings,
        })
    }

    /// The tenant's faces most like `query`, at or above `threshold` (similarity), best first.
    pub fn search(
        &self,
        tenant_id: &str,
        query: &Embedding,
        collection: Option<&str>,
        top_k: usize,
        threshold: f32,
    ) -> Result<Vec<Candidate>, FacesError> {
        if !(1..=MAX_TOP_K).contains(&top_k) {
            return Err(FacesError::Invalid {
                field: "top_k",
                reason: format!("must be 1 to {MAX_TOP_K}"),
            });
        }
        if !(0.0..=1.0).contains(&threshold) {
            return Err(FacesError::Invalid {
                field: "threshold",
                reason: "must be within 0–1 (a similarity)".into(),
            });
        }
        let collection = match collection {
            Some(c) => Some(validate_collection(Some(c))?),
            None => None,
        };
        let min_cosine = facematch::cosine_for_similarity(threshold.clamp(1e-6, 1.0 - 1e-6));
        let hits = self
            .index
            .search(tenant_id, query.as_slice(), collection, top_k, min_cosine);
        let ids: Vec<&str> = hits.iter().map(|h| h.face_id.as_str()).collect();
        let jobs: HashMap<String, String> = self
            .store
            .read(|c| store::faces::jobs_of(c, tenant_id, &ids))?
            .into_iter()
            .collect();
        Ok(hits
            .into_iter()
            .map(|h| Candidate {
                job_id: jobs.get(&h.face_id).cloned(),
                similarity: facematch::similarity(h.cosine),
                cosine: h.cosine,
                face_id: h.face_id,
                subject_id: h.subject_id,
            })
            .collect())
    }

    /// An enrolled face of the tenant with its embedding (for search by face and 1:1 match
    /// against a stored reference).
    pub fn embedding_of(
        &self,
        tenant_id: &str,
        face_id: &str,
    ) -> Result<(FaceRow, Embedding), FacesError> {
        let (row, key) = self.store.read(|c| {
            let row =
                store::faces::get(c, tenant_id, face_id)?.ok_or(StoreError::NotFound("face"))?;
            let key = self
                .store
                .existing_subject_key(c, tenant_id, &row.subject_id)?;
            Ok((row, key))
        })?;
        let plain = key.open(&row.sealed, row.id.as_bytes())?;
        let embedding = from_bytes(&plain).ok_or(StoreError::NotFound("face"))?;
        Ok((row, embedding))
    }

    /// Deletes an enrolled face of the tenant; audited.
    pub fn remove(
        &self,
        tenant_id: &str,
        face_id: &str,
        actor: &str,
        now: i64,
    ) -> Result<(), FacesError> {
        let _changes = self.index.lock_changes();
        self.store.write(|tx| {
            if !store::faces::delete(tx, tenant_id, face_id, now)? {
                return Err(StoreError::NotFound("face"));
            }
            store::audit::append(
                tx,
                &NewEntry::new(actor, "face.delete")
                    .tenant(tenant_id)
                    .target(face_id),
                now,
            )
            .map(drop)
        })?;
        self.index.remove(tenant_id, face_id);
        Ok(())
    }
}

/// Seals, stores and audits an enrolment inside `tx`.
#[allow(clippy::too_many_arguments)]
fn write_enrolment(
    tx: &store::Tx<'_>,
    key: &DataKey,
    e: &Enrolment<'_>,
    collection: &str,
    embedding: &Embedding,
    quality: serde_json::Value,
    now: i64,
    actor: &str,
) -> Result<FaceRow, StoreError> {
    let row = insert_row(tx, key, e, collection, embedding, quality, now)?;
    store::audit::append(
        tx,
        &NewEntry::new(actor, "face.enrol")
            .tenant(e.tenant_id)
            .target(&row.id)
            .details(json!({ "collection": collection, "job_id": e.job_id })),
        now,
    )?;
    Ok(row)
}

/// Seals a new face under the subject's key and stores it inside `tx`.
fn insert_row(
    tx: &store::Tx<'_>,
    key: &DataKey,
    e: &Enrolment<'_>,
    collection: &str,
    embedding: &Embedding,
    quality: serde_json::Value,
    now: i64,
) -> Result<FaceRow, StoreError> {
    let mut raw = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut raw);
    let id = format!("face_{}", hex::encode(raw));
    let sealed = key.seal(&to_bytes(embedding.as_slice()), id.as_bytes())?;
    let row = FaceRow {
        id,
        tenant_id: e.tenant_id.to_owned(),
        subject_id: e.subject_id.to_owned(),
        collection: collection.to_owned(),
        sealed,
        job_id: e.job_id.map(str::to_owned),
        quality: quality.to_string(),
        created_at: now,
    };
    store::faces::insert(tx, &row)?;
    Ok(row)
}

/// Background loop applying enrolments and removals written by other nodes (or by this node's
/// job runner) every second and pruning old events hourly, until the runtime stops.
pub async fn follower(faces: Arc<Faces>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut last_prune = 0i64;
    loop {
        tick.tick().await;
        let f = faces.clone();
        let now = store::now();
        let prune = now - last_prune >= 3600;
        match tokio::task::spawn_blocking(move || {
            let applied = f.follow()?;
            if prune {
                f.prune_events(now)?;
            }
            Ok::<_, FacesError>(applied)
        })
        .await
        {
            Ok(Ok(_)) => {
                if prune {
                    last_prune = now;
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "following the face index failed"),
            Err(e) => tracing::error!(error = %e, "face index follower task failed"),
        }
    }
}
