//! Verification jobs as a service: submission (inputs validated, sealed and queued in one
//! transaction), the worker pool, and the job as the tenant sees it. Jobs live in SQLite, so a
//! job accepted before a crash runs after the restart; its result and usage rows are written in
//! one transaction that only a `running` job can take, so each is written once.

use crate::store::Tx;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::config::{Step, WorkflowConfig};
use super::egress;
use super::pipeline::{self, FaceSearch, Settings, Subject};
use super::tenant_config;
use super::webhooks::{self, Deliverer};
use crate::admission::Held;
use crate::audit::NewEntry;
use crate::faces::Faces;
use crate::kya::{Applicant, KyaSettings};
use crate::media::intake::Keep;
use crate::media::{self, MediaError, MediaKind, MediaService};
use crate::store::{self, jobs::JobRow, Store, StoreError};
use crate::tenancy;
use crate::tenancy::meter::{self, Meter, MeterError, Payer};
use crate::tenancy::plans::Module;
use crate::vision::service::Vision;

/// `POST /v1/kyc/verify`'s body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The selfie, base64.
    pub selfie: String,
    /// The document's front (or passport data page), base64.
    pub document_front: String,
    /// The card's back, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_back: Option<String>,
    /// Liveness frames, base64 (3–30).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<String>,
    /// What the applicant declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub applicant: Option<Applicant>,
    /// The client's own reference (also the subject id for erasure when it is a valid one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Where to POST the result, signed with the tenant's callback secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

/// Why a submission was refused or a job could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A field is wrong.
    #[error("{field}: {reason}")]
    Invalid {
        /// Which.
        field: String,
        /// Why.
        reason: String,
    },
    /// An image is wrong.
    #[error("{field}: {source}")]
    Image {
        /// Which.
        field: String,
        /// Why.
        source: MediaError,
    },
    /// A module's monthly quota is used up.
    #[error(transparent)]
    Quota(#[from] MeterError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The tenant's workflow could not be read.
    #[error(transparent)]
    Config(#[from] tenant_config::ConfigError),
}

/// Times a job is started (a crash mid-job restarts it) before it is failed.
const MAX_ATTEMPTS: i64 = 3;
/// Most frames a request may carry.
const MAX_FRAMES: usize = 30;

/// How jobs run and where their webhooks may go.
pub struct JobSettings {
    /// KYA's outside world.
    pub kya: KyaSettings,
    /// Multiplies the webhook retry schedule.
    pub webhook_retry_scale: f64,
    /// Where webhooks and callbacks may be sent.
    pub egress: Arc<egress::Policy>,
    /// This node's name in job claims (stable across its restarts).
    pub node: String,
    /// How long a claim lasts unless renewed; a node that dies leaves its jobs to the others
    /// after this.
    pub lease_secs: i64,
    /// The enrolled faces (the `dedup` step, enrolment of accepted selfies).
    pub faces: Arc<Faces>,
}

/// The job service.
pub struct Jobs {
    store: Arc<Store>,
    media: Arc<MediaService>,
    vision: Arc<Vision>,
    kya: KyaSettings,
    meter: Arc<Meter>,
    metrics: Arc<crate::telemetry::metrics::Metrics>,
    wake: Notify,
    egress: Arc<egress::Policy>,
    node: Arc<str>,
    lease_secs: i64,
    faces: Arc<Faces>,
    /// Webhook delivery (woken when a job's event is queued).
    pub deliverer: Arc<Deliverer>,
}

impl Jobs {
    /// A service over these parts; call [`Jobs::start`] to run workers.
    pub fn new(
        store: Arc<Store>,
        media: Arc<MediaService>,
        vision: Arc<Vision>,
        meter: Arc<Meter>,
        metrics: Arc<crate::telemetry::metrics::Metrics>,
        settings: JobSettings,
    ) -> Self {
        let egress = settings.egress;
        Jobs {
            store: store.clone(),
            media,
            vision,
            kya: settings.kya,
            meter,
            metrics,
            wake: Notify::new(),
            deliverer: Arc::new(Deliverer::new(
                store,
                settings.webhook_retry_scale,
                egress.clone(),
            )),
            egress,
            node: settings.node.into(),
            lease_secs: settings.lease_secs.max(1),
            faces: settings.faces,
        }
    }

    /// The enrolled faces.
    pub fn faces(&self) -> Arc<Faces> {
        self.faces.clone()
    }

    /// Where webhooks and callbacks may go.
    pub fn egress(&self) -> &egress::Policy {
        &self.egress
    }

    /// The meter the jobs bill through.
    pub fn meter(&self) -> Arc<Meter> {
        self.meter.clone()
    }

    /// The metrics registry the jobs report to.
    pub fn metrics(&self) -> Arc<crate::telemetry::metrics::Metrics> {
        self.metrics.clone()
    }

    /// Validates and queues a verification; with an idempotency key already used by the tenant,
    /// returns that job instead (`false`). Blocking.
    pub fn submit(
        &self,
        tenant_id: &str,
        key_id: Option<&str>,
        live: bool,
        request_id: &str,
        request: &VerifyRequest,
        idempotency_key: Option<&str>,
    ) -> Result<(JobRow, bool), JobError> {
        if let Some(k) = idempotency_key {
            if k.is_empty() || k.len() > 255 {
                return Err(invalid("Idempotency-Key", "1 to 255 characters"));
            }
            if let Some(existing) = self
                .store
                .read(|c| store::jobs::by_idempotency_key(c, tenant_id, k))?
            {
                return Ok((existing, false));
            }
        }
        // Each module the workflow will run holds a unit under its quota until the job ends;
        // judged before the images are decoded, so a tenant over quota costs little.
        let modules = billed_modules(&tenant_config::effective(&self.store, tenant_id)?);
        let reservation = self
            .meter
            .reserve(tenant_id, &modules, !live, store::now())?;
        self.check_images(tenant_id, request)?;
        if let Some(r) = &request.reference {
            media::validate_subject_id(r).map_err(|_| {
                invalid(
                    "reference",
                    "1 to 128 characters of A–Z, a–z, 0–9, '-', '_', '.', ':' (it is the subject id erasure goes by)",
                )
            })?;
        }
        if let Some(url) = &request.callback_url {
            if !webhooks::has_callback_secret(&self.store, tenant_id)? {
                return Err(invalid(
                    "callback_url",
                    "the tenant has no callback secret to sign it with; create one with POST /v1/webhooks/callback-secret",
                ));
            }
            self.egress
                .check(url, live)
                .map_err(|reason| invalid("callback_url", &reason.to_string()))?;
        }
        let id = format!("job_{}", random_hex(12));
        // The reference is the subject id, so erasing by it reaches every job filed under it.
        let subject_id = match &request.reference {
            Some(r) => r.clone(),
            None => id.clone(),
        };
        let now = store::now();
        let row = JobRow {
            id: id.clone(),
            tenant_id: tenant_id.to_owned(),
            key_id: key_id.map(str::to_owned),
            request_id: request_id.to_owned(),
            subject_id: subject_id.clone(),
            reference: request.reference.clone(),
            idempotency_key: idempotency_key.map(str::to_owned),
            callback_url: request.callback_url.clone(),
            status: "queued".into(),
            attempts: 0,
            score: None,
            decision: None,
            error: None,
            result: None,
            created_at: now,
            started_at: None,
            finished_at: None,
            sandbox: !live,
        };
        let input = serde_json::to_vec(request).map_err(|e| invalid("body", &e.to_string()))?;
        let outcome = self.store.write(|tx| {
            // Two requests with one key racing: the second finds the first here.
            if let Some(k) = idempotency_key {
                if let Some(existing) = store::jobs::by_idempotency_key(tx, tenant_id, k)? {
                    return Ok((existing, false));
                }
            }
            let key = self.store.subject_key(tx, tenant_id, &subject_id, now)?;
            let sealed = key.seal(&input, id.as_bytes())?;
            store::jobs::insert(tx, &row, &sealed)?;
            // The units stay held until the job ends, on whichever node runs it.
            reservation.bind_to_job(tx, &id)?;
            Ok((row.clone(), true))
        });
        match outcome {
            Ok((_, true)) => reservation.handed_over(),
            // No job was queued: the units go back as the reservation drops.
            _ => drop(reservation),
        }
        let outcome = outcome?;
        self.wake.notify_one();
        Ok(outcome)
    }

    fn check_images(&self, tenant_id: &str, r: &VerifyRequest) -> Result<(), JobError> {
        if r.frames.len() > MAX_FRAMES || (1..3).contains(&r.frames.len()) {
            return Err(invalid("frames", "3 to 30 frames, or none"));
        }
        let fields = [
            ("selfie", Some(&r.selfie)),
            ("document_front", Some(&r.document_front)),
            ("document_back", r.document_back.as_ref()),
        ];
        let frames = r
            .frames
            .iter()
            .enumerate()
            .map(|(i, f)| (format!("frames[{i}]"), f));
        // All under one lease, as the worker will decode them: a job that could never fit its
        // tenant's share is refused now (413), not left to wait in a worker.
        let mut held = self.media.hold(tenant_id);
        for (field, b64) in fields
            .into_iter()
            .filter_map(|(f, b)| b.map(|b| (f.to_owned(), b)))
            .chain(frames)
        {
            decode_with(&self.media, b64, &mut held, keep_for(&field))
                .map_err(|source| JobError::Image { field, source })?;
        }
        Ok(())
    }

    /// The job as its tenant sees it (the result opened with the subject's key).
    pub fn view(&self, job: &JobRow) -> Value {
        let result = job.result.as_ref().and_then(|sealed| {
            let key = self
                .store
                .read(|c| {
                    self.store
                        .existing_subject_key(c, &job.tenant_id, &job.subject_id)
                })
                .ok()?;
            let plain = key.open(sealed, job.id.as_bytes()).ok()?;
            serde_json::from_slice::<Value>(&plain).ok()
        });
        let mut v = json!({
            "job_id": job.id,
            "status": job.status,
            "reference": job.reference,
            "created_at": rfc3339(job.created_at),
            "finished_at": job.finished_at.map(rfc3339),
            "attempts": job.attempts,
        });
        if job.sandbox {
            v["sandbox"] = json!(true);
        }
        if let Some(e) = &job.error {
            v["error"] = json!(e);
        }
        if let Some(Value::Object(r)) = result {
            let scored_review = r.get("decision").is_some_and(|d| d == "review");
            for (k, val) in r {
                v[k] = val;
            }
            // Only a job the score sent to review can have a person's decision.
            let review = if scored_review {
                self.store
                    .read(|c| store::console::review(c, &job.tenant_id, &job.id))
                    .ok()
                    .flatten()
            } else {
                None
            };
            if let Some(review) = review {
                // A person decided what the score left open.
                v["decision"] = json!(job.decision);
                v["review"] = json!({
                    "outcome": review.outcome, "reviewer": review.reviewer,
                    "comment": review.comment, "at": rfc3339(review.at),
                });
            }
        } else if job.status == "completed" {
            // Completed, but the subject was erased since: the decision stays, the data is gone.
            v["score"] = json!(job.score);
            v["decision"] = json!(job.decision);
            v["erased"] = json!(true);
        }
        v
    }

    /// Queues again what this node left running when it stopped, then runs `workers` workers.
    pub fn start(self: &Arc<Self>, workers: usize) -> Result<(), StoreError> {
        let requeued = self
            .store
            .write(|tx| store::jobs::requeue_own(tx, &self.node))?;
        if requeued > 0 {
            tracing::info!(
                requeued,
                "jobs left running by this node's previous process queued again"
            );
        }
        tokio::spawn(self.deliverer.clone().run());
        if workers == 0 {
            tracing::warn!(
                "workflow.workers = 0: this node runs no verification jobs (other nodes must)"
            );
        }
        for _ in 0..workers {
            let me = self.clone();
            tokio::spawn(async move { me.work().await });
        }
        Ok(())
    }

    async fn work(self: Arc<Self>) {
        loop {
            let me = self.clone();
            let claimed = tokio::task::spawn_blocking(move || {
                let now = store::now();
                me.store
                    .write(|tx| store::jobs::claim_next(tx, now, &me.node, now + me.lease_secs))
            })
            .await;
            match claimed {
                Ok(Ok(Some((job, input)))) => {
                    use tracing::Instrument;
                    let span = tracing::info_span!("job", otel.name = "kyc.job", job_id = %job.id, tenant_id = %job.tenant_id);
                    self.process(job, input).instrument(span).await
                }
                Ok(Ok(None)) => {
                    // Nothing queued: sleep until a submission here wakes us, or a few seconds
                    // pass (another node may have queued something, or let a lease run out).
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), self.wake.notified()).await;
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "claiming a job failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => tracing::error!(error = %e, "job claim task failed"),
            }
        }
    }

    async fn process(&self, job: JobRow, sealed: Vec<u8>) {
        use futures_util::FutureExt;
        // A job that took the process down each time it ran is not run again forever.
        let lease = self.keep_lease(&job.id);
        let outcome = if job.attempts > MAX_ATTEMPTS {
            Err(format!("gave up after {MAX_ATTEMPTS} attempts"))
        } else {
            // A panic in a step fails this job, not the worker.
            std::panic::AssertUnwindSafe(self.execute(&job, &sealed))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err("the verification stopped unexpectedly".into()))
        };
        lease.abort();
        let outcome = Arc::new(outcome);
        let mut written = Ok(Ok(false));
        // The store may be busy (the CLI holds the lock, say): try a few times before leaving the
        // job to the next start-up.
        for delay in [0u64, 1, 5, 30] {
            tokio::time::sleep(Duration::from_secs(delay)).await;
            let (store, job2, outcome) = (self.store.clone(), job.clone(), outcome.clone());
            let (meter, node) = (self.meter.clone(), self.node.clone());
            written =
                tokio::task::spawn_blocking(move || finish(&store, &meter, &node, &job2, &outcome))
                    .await;
            if matches!(written, Ok(Ok(_))) {
                break;
            }
        }
        match written {
            Ok(Ok(true)) => {
                self.deliverer.wake.notify_one();
                if matches!(&*outcome, Ok((o, _)) if o.enrol.is_some()) {
                    // The face enrolled with the result joins this node's index now (the others
                    // follow within a second).
                    let faces = self.faces.clone();
                    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || faces.follow()).await {
                        tracing::warn!(error = %e, "following the face index failed");
                    }
                }
                tracing::info!(job = %job.id, "job finished");
            }
            Ok(Ok(false)) => tracing::warn!(job = %job.id, "job already finished elsewhere"),
            Ok(Err(e)) => {
                tracing::error!(job = %job.id, error = %e, "storing the job result failed")
            }
            Err(e) => tracing::error!(job = %job.id, error = %e, "job result task failed"),
        }
    }

    /// Renews this node's claim on a running job every third of the lease until aborted.
    fn keep_lease(&self, job_id: &str) -> tokio::task::JoinHandle<()> {
        let (store, node, id) = (self.store.clone(), self.node.clone(), job_id.to_owned());
        let lease = self.lease_secs;
        tokio::spawn(async move {
            let every = Duration::from_millis((lease as u64 * 1000 / 3).max(200));
            loop {
                tokio::time::sleep(every).await;
                let (store, node, job) = (store.clone(), node.clone(), id.clone());
                let renewed = tokio::task::spawn_blocking(move || {
                    let until = store::now() + lease;
                    store.write(|tx| store::jobs::renew_lease(tx, &job, &node, until))
                })
                .await;
                match renewed {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => {
                        // Another node took it (this one stalled past its lease): its result
                        // will be refused here, and the other node's counts.
                        tracing::warn!(job = %id, "lease lost; another node runs this job");
                        return;
                    }
                    Ok(Err(e)) => tracing::warn!(job = %id, error = %e, "renewing a lease failed"),
                    Err(_) => return,
                }
            }
        })
    }

    async fn execute(
        &self,
        job: &JobRow,
        sealed: &[u8],
    ) -> Result<(pipeline::Outcome, Vec<Module>), String> {
        let store = self.store.clone();
        let media = self.media.clone();
        let row = job.clone();
        let job = job.clone();
        let sealed = sealed.to_vec();
        let kya = self.kya.clone();
        let faces = self.faces.clone();
        // Opening, base64 and image decoding (and an antivirus scan) are blocking work. The
        // decoded pixels are admitted like a request's, waiting as long as it takes: an
        // accepted job is never refused.
        let (subject, settings, _held, kept) = tokio::task::spawn_blocking(
            move || -> Result<(Subject, Settings, Held, serde_json::Map<String, Value>), String> {
                let mut held = media.hold_patiently(&job.tenant_id);
                let key = store
                    .read(|c| store.existing_subject_key(c, &job.tenant_id, &job.subject_id))
                    .map_err(|e| format!("the job's data is gone: {e}"))?;
                let plain = key
                    .open(&sealed, job.id.as_bytes())
                    .map_err(|e| e.to_string())?;
                let request: VerifyRequest =
                    serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
                let mut decode = |b: &str, keep: Keep| {
                    decode_with(&media, b, &mut held, keep).map_err(|e| e.to_string())
                };
                let subject = Subject {
                    selfie: decode(&request.selfie, Keep::Full)?,
                    document_front: decode(&request.document_front, Keep::Full)?,
                    document_back: match request.document_back.as_deref() {
                        Some(b) => Some(decode(b, Keep::Full)?),
                        None => None,
                    },
                    frames: request
                        .frames
                        .iter()
                        .map(|f| decode(f, Keep::Frame))
                        .collect::<Result<_, _>>()?,
                    applicant: request.applicant.clone().unwrap_or_default(),
                };
                // The images a reviewer looks at, kept under the tenant's media policy (kinds and
                // days); a subject already holding its maximum keeps none more, and the job runs.
                let mut kept = serde_json::Map::new();
                let sides = [
                    (MediaKind::Selfie, Some(&subject.selfie)),
                    (MediaKind::DocumentFront, Some(&subject.document_front)),
                    (MediaKind::DocumentBack, subject.document_back.as_ref()),
                ];
                for (kind, image) in sides {
                    if let Some(image) = image {
                        keep(&media, &job, kind, image, &mut kept);
                    }
                }
                let settings = Settings {
                    workflow: tenant_config::effective(&store, &job.tenant_id)
                        .map_err(|e| e.to_string())?,
                    liveness: tenancy::liveness_thresholds(&store, &job.tenant_id)
                        .unwrap_or_default(),
                    kya,
                    faces: Some(FaceSearch {
                        faces,
                        tenant_id: job.tenant_id.clone(),
                        subject_id: job.subject_id.clone(),
                    }),
                };
                Ok((subject, settings, held, kept))
            },
        )
        .await
        .map_err(|e| e.to_string())??;
        let modules = billed_modules(&settings.workflow);
        // Each step's time into the same per-module histogram the standalone routes feed.
        let metrics = self.metrics.clone();
        let observe = move |step: &'static str, ms: u64| {
            let pipeline = if step == "document" { "ocr" } else { step };
            metrics
                .inference_duration
                .with_label_values(&[pipeline])
                .observe(ms as f64 / 1000.0);
        };
        let started = std::time::Instant::now();
        let mut outcome = pipeline::run(self.vision.clone(), subject, &settings, &observe)
            .await
            .map_err(|e| e.to_string())?;
        outcome.media = kept;
        if let Some(jpeg) = outcome.portrait_jpeg.take() {
            let (media, job) = (self.media.clone(), row);
            let crop = tokio::task::spawn_blocking(move || {
                let mut kept = serde_json::Map::new();
                if let Ok(img) = image::load_from_memory(&jpeg) {
                    keep(&media, &job, MediaKind::FaceCrop, &img.to_rgb8(), &mut kept);
                }
                kept
            })
            .await
            .unwrap_or_default();
            outcome.media.extend(crop);
        }
        self.metrics
            .inference_duration
            .with_label_values(&["workflow"])
            .observe(started.elapsed().as_secs_f64());
        Ok((outcome, modules))
    }
}

/// Keeps `image` as the job's media of `kind`, noting its id in `kept`.
fn keep(
    media: &MediaService,
    job: &JobRow,
    kind: MediaKind,
    image: &image::RgbImage,
    kept: &mut serde_json::Map<String, Value>,
) {
    // Only for a subject that still exists: an erasure racing the job must not get a new key.
    match media.put_existing(&job.tenant_id, &job.subject_id, kind, image, store::now()) {
        Ok(Some(row)) => {
            kept.insert(kind.as_str().into(), json!(row.id));
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(job = %job.id, error = %e, kind = kind.as_str(), "image not kept"),
    }
}

fn decode_with(
    media: &MediaService,
    b64: &str,
    held: &mut Held,
    keep: Keep,
) -> Result<image::RgbImage, MediaError> {
    let bytes = media::intake::decode_base64(b64, &media.limits)?;
    Ok(media.accept(&bytes, held, keep)?.image)
}

/// Frames are kept small; the selfie and the document sides whole.
fn keep_for(field: &str) -> Keep {
    if field.starts_with("frames[") {
        Keep::Frame
    } else {
        Keep::Full
    }
}

/// The modules a workflow bills: each step that ran (KYA is part of the workflow, not a module).
pub fn billed_modules(wf: &WorkflowConfig) -> Vec<Module> {
    wf.steps
        .iter()
        .filter_map(|s| match s {
            Step::Liveness => Some(Module::Liveness),
            Step::Ocr => Some(Module::Ocr),
            Step::Validate => Some(Module::Validation),
            Step::FaceMatch => Some(Module::FaceMatch),
            Step::Kya | Step::Dedup => None,
        })
        .collect()
}

/// A job's outcome in the audit trail: ids and outcome, never personal data.
fn audit_job(
    tx: &Tx<'_>,
    job: &JobRow,
    action: &str,
    details: Value,
    now: i64,
) -> Result<(), StoreError> {
    let actor = job.key_id.as_deref().unwrap_or("workflow");
    let entry = NewEntry::new(actor, action)
        .tenant(&job.tenant_id)
        .target(&job.id)
        .details(details);
    store::audit::append(tx, &entry, now).map(drop)
}

/// Writes the result (or the failure) and the usage rows in one transaction; ending the job
/// releases its quota holds, and when the write did not happen they stay for the next try.
fn finish(
    store: &Store,
    meter: &Meter,
    node: &str,
    job: &JobRow,
    outcome: &Result<(pipeline::Outcome, Vec<Module>), String>,
) -> Result<bool, StoreError> {
    let now = store::now();
    let hooks_key = store.data_key(webhooks::FAMILY)?;
    // Sandbox units of a job count against the sandbox's allowance and are never billed.
    let sandbox = job.sandbox;
    // The job's holds are released in the transaction that ends it; what ran is recorded
    // whatever the quota says now (the workflow may have changed since submission).
    let reservation = meter.for_job(&job.tenant_id, sandbox, now);
    // Some(true): completed (units recorded); Some(false): failed; None: already finished.
    let written = store.write(|tx| match &outcome {
        Ok((o, modules)) => {
            let body = serde_json::to_vec(o).unwrap_or_default();
            // Erased while the job ran: keep the erasure — no result, no payload, no new key. The
            // row is read again: an erasure files the job under a pseudonym, and the same
            // reference submitted since may have made a new key the erased job must not use.
            let still_filed = store::jobs::get(tx, &job.tenant_id, &job.id)?
                .is_some_and(|j| j.subject_id == job.subject_id);
            let key = match store.existing_subject_key(tx, &job.tenant_id, &job.subject_id) {
                Ok(_) if !still_filed => {
                    let failed = store::jobs::fail(tx, &job.id, node, "the subject was erased", now)?;
                    return Ok(failed.then_some(false));
                }
                Ok(k) => k,
                Err(StoreError::NotFound(_)) => {
                    let failed = store::jobs::fail(tx, &job.id, node, "the subject was erased", now)?;
                    return Ok(failed.then_some(false));
                }
                Err(e) => return Err(e),
            };
            let sealed = key.seal(&body, job.id.as_bytes())?;
            let done = store::jobs::complete(
                tx,
                &job.id,
                node,
                i64::from(o.verdict.score),
                o.verdict.decision.name(),
                &sealed,
                now,
            )?;
            if done {
                if let Some(face) = &o.selfie {
                    // Kept sealed with the job so `POST /v1/faces {job_id}` can enrol it later.
                    if let Some(sealed) = crate::faces::seal_job_face(&key, &job.id, face) {
                        store::faces::set_job_face(tx, &job.id, &sealed)?;
                    }
                    if let Some(collection) = &o.enrol {
                        let e = crate::faces::Enrolment {
                            tenant_id: &job.tenant_id,
                            subject_id: &job.subject_id,
                            collection: Some(collection),
                            job_id: Some(&job.id),
                        };
                        let held = store::faces::count_for_subject(tx, &job.tenant_id, &job.subject_id)?;
                        if held < crate::faces::MAX_PER_SUBJECT {
                            match Faces::enrol_in(tx, &key, &e, face, now, job.key_id.as_deref().unwrap_or("workflow")) {
                                Ok(_) => {}
                                Err(crate::faces::FacesError::Store(e)) => return Err(e),
                                Err(e) => tracing::warn!(job = %job.id, error = %e, "accepted face not enrolled"),
                            }
                        }
                    }
                }
                let outcome = json!({ "decision": o.verdict.decision.name(), "score": o.verdict.score });
                audit_job(tx, job, "kyc.decision", outcome, now)?;
                let mut data = serde_json::to_value(o).unwrap_or_default();
                data["job_id"] = json!(job.id);
                data["status"] = json!("completed");
                data["reference"] = json!(job.reference);
                let body = webhooks::event_body("kyc.completed", data);
                let callback = job.callback_url.as_deref().map(|u| (u, job.key_id.as_deref()));
                webhooks::enqueue_event(&key, Some(&job.subject_id), tx, &job.tenant_id, "kyc.completed", &body, callback)?;
                let payer = Payer {
                    tenant_id: &job.tenant_id,
                    key_id: job.key_id.as_deref(),
                    sandbox,
                };
                meter::record_in(tx, &hooks_key, &reservation, &job.id, payer, modules, now)?;
            }
            Ok(done.then_some(true))
        }
        Err(e) => {
            let failed = store::jobs::fail(tx, &job.id, node, e, now)?;
            if failed {
                audit_job(tx, job, "kyc.failed", json!({}), now)?;
                let data = json!({ "job_id": job.id, "status": "failed", "reference": job.reference, "error": e });
                let body = webhooks::event_body("kyc.failed", data);
                let callback = job.callback_url.as_deref().map(|u| (u, job.key_id.as_deref()));
                // Sealed with the subject's key, like kyc.completed: it carries the reference,
                // and erasing the subject must shred it. A subject already erased gets no event.
                match store.existing_subject_key(tx, &job.tenant_id, &job.subject_id) {
                    Ok(key) => {
                        webhooks::enqueue_event(&key, Some(&job.subject_id), tx, &job.tenant_id, "kyc.failed", &body, callback)?;
                    }
                    Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(failed.then_some(false))
        }
    });
    if matches!(written, Ok(Some(true))) {
        reservation.settle();
    }
    written.map(|w| w.is_some())
}

fn invalid(field: &str, reason: &str) -> JobError {
    JobError::Invalid {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut raw = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

/// Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl crate::error::ErrorCode for JobError {
    fn code(&self) -> crate::error::Code {
        match self {
            JobError::Invalid { .. } => crate::error::Code::InvalidInput,
            JobError::Image { source, .. } => source.code(),
            JobError::Quota(e) => e.code(),
            JobError::Store(e) => e.code(),
            JobError::Config(e) => e.code(),
        }
    }

    fn details(&self) -> Value {
        match self {
            JobError::Invalid { field, .. } => json!({ "field": field }),
            JobError::Image { field, source } => {
                let mut d = source.details();
                if !d.is_object() {
                    d = json!({});
                }
                d["field"] = json!(field);
                d
            }
            JobError::Quota(e) => e.details(),
            JobError::Store(e) => e.details(),
            JobError::Config(e) => e.details(),
        }
    }
}
