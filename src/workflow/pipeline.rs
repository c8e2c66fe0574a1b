//! One verification, start to end: liveness ∥ document reading, then validation (the reading's
//! MRZ checks), then selfie ↔ document portrait, then KYA, then the score. Shared by the job
//! runner and `kycd verify`; inference runs on blocking threads, each step in an inference slot.

use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

use image::RgbImage;
use serde::Serialize;
use serde_json::{json, Value};

use super::config::{Step, WorkflowConfig};
use super::score::{self, DocumentOutcome, FaceOutcome, KyaOutcome, LivenessOutcome, Outcomes};
use crate::document::mrz::CheckStatus;
use crate::document::read::{self, DocumentReading, Hints, ReadError};
use crate::document::report;
use crate::kya::{self, Applicant, KyaSettings};
use crate::vision::facematch::{self, AnalyzedFace};
use crate::vision::liveness::{active::Challenges, LivenessThresholds};
use crate::vision::service::Vision;
use crate::vision::VisionError;

/// The images and declarations of one verification, decoded.
pub struct Subject {
    /// The selfie.
    pub selfie: RgbImage,
    /// The document's front (or passport data page).
    pub document_front: RgbImage,
    /// The card's back.
    pub document_back: Option<RgbImage>,
    /// Optional liveness frames.
    pub frames: Vec<RgbImage>,
    /// What the applicant declared.
    pub applicant: Applicant,
}

/// What the run needs besides the subject.
#[derive(Clone)]
pub struct Settings {
    /// The tenant's workflow.
    pub workflow: WorkflowConfig,
    /// The tenant's liveness thresholds.
    pub liveness: LivenessThresholds,
    /// KYA set-up.
    pub kya: KyaSettings,
    /// Where the `dedup` step searches (absent where there is no index, as in `kycd verify`).
    pub faces: Option<FaceSearch>,
}

/// The index a verification's selfie is searched in, and whose the selfie is.
#[derive(Clone)]
pub struct FaceSearch {
    /// The enrolled faces.
    pub faces: Arc<crate::faces::Faces>,
    /// The tenant.
    pub tenant_id: String,
    /// The applicant (their own faces are not duplicates).
    pub subject_id: String,
}

/// Enrolled faces of other subjects the dedup step reports at most.
const DEDUP_CANDIDATES: usize = 5;

/// Why a verification could not be completed (as opposed to completed with a bad score).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A model failed: a bug or a broken installation.
    #[error(transparent)]
    Vision(#[from] VisionError),
    /// A blocking task panicked or was cancelled.
    #[error("a pipeline step stopped: {0}")]
    Aborted(String),
}

/// The full result: score, decision, factors, reasons, extracted fields, per-step details and
/// timings.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The verdict.
    #[serde(flatten)]
    pub verdict: score::Verdict,
    /// Normalised document fields.
    pub extracted: Value,
    /// What each step returned.
    pub steps: Value,
    /// Milliseconds per step and in all.
    pub timings: Value,
    /// The selfie's analysed face (kept, sealed, with the job; never in the result).
    #[serde(skip)]
    pub selfie: Option<AnalyzedFace>,
    /// The collection to enrol the selfie into: accepted, and the workflow enrols accepted faces.
    #[serde(skip)]
    pub enrol: Option<String>,
    /// The document portrait's crop (JPEG), for the job runner to keep as media.
    #[serde(skip)]
    pub portrait_jpeg: Option<Vec<u8>>,
    /// The images kept as media (`selfie`, `document_front`, `document_back`, `face_crop` → media
    /// id), under the tenant's media policy; set by the job runner.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub media: serde_json::Map<String, Value>,
}

/// Runs the verification; `progress` hears each step's name and milliseconds as it ends.
pub async fn run(
    vision: Arc<Vision>,
    subject: Subject,
    settings: &Settings,
    progress: &(dyn Fn(&'static str, u64) + Sync),
) -> Result<Outcome, PipelineError> {
    let started = Instant::now();
    let wf = &settings.workflow;
    let has = |s: Step| wf.steps.contains(&s);
    let subject = Arc::new(subject);
    let mut timings = serde_json::Map::new();

    // A span per step (exported as OTLP spans when configured), under the caller's span.
    let job_span = tracing::Span::current();
    let step = move |name: &'static str| tracing::info_span!(parent: &job_span, "step", otel.name = name, step = name);
    // Liveness and the document are independent: both run at once, each in its own slot.
    let liveness_task = has(Step::Liveness).then(|| {
        let (vision, subject, t) = (vision.clone(), subject.clone(), settings.liveness);
        let span = step("liveness");
        tokio::task::spawn_blocking(move || {
            let _in = span.enter();
            let at = Instant::now();
            let r = vision.exclusive(|v| {
                let challenges = Challenges::default();
                v.liveness_with_face(&subject.selfie, &subject.frames, challenges, &t)
            });
            (r, at.elapsed())
        })
    });
    let document_task = has(Step::Ocr).then(|| {
        let (vision, subject) = (vision.clone(), subject.clone());
        let span = step("document");
        tokio::task::spawn_blocking(move || {
            let _in = span.enter();
            let at = Instant::now();
            let r = vision.exclusive(|v| {
                let hints = Hints::default();
                let front = read::read(&v.ocr, &v.analyzer, &subject.document_front, &hints)?;
                let back = match subject
                    .document_back
                    .as_ref()
                    .map(|b| read::read(&v.ocr, &v.analyzer, b, &hints))
                {
                    Some(Ok(b)) => Some(b),
                    Some(Err(ReadError::NoDocument)) | None => None,
                    Some(Err(e)) => return Err(e),
                };
                Ok((front, back))
            });
            (r, at.elapsed())
        })
    });
    let mut steps = serde_json::Map::new();
    let mut outcomes = Outcomes::default();
    let mut selfie_face: Option<AnalyzedFace> = None;
    if let Some(task) = liveness_task {
        let (r, took) = task
            .await
            .map_err(|e| PipelineError::Aborted(e.to_string()))?;
        timings.insert("liveness_ms".into(), json!(took.as_millis() as u64));
        progress("liveness", took.as_millis() as u64);
        match r {
            Ok((report, face)) => {
                outcomes.liveness = Some(LivenessOutcome {
                    is_live: report.is_live,
                    confidence: report.confidence,
                    spoof_type: report.spoof_type.as_str().into(),
                });
                steps.insert(
                    "liveness".into(),
                    json!({
                        "is_live": report.is_live, "spoof_type": report.spoof_type.as_str(),
                        "confidence": report.confidence, "hints": report.hints,
                    }),
                );
                selfie_face = Some(face);
            }
            Err(e) if is_input_problem(&e) => {
                outcomes.liveness = Some(LivenessOutcome {
                    is_live: false,
                    confidence: 1.0,
                    spoof_type: "unknown".into(),
                });
                steps.insert("liveness".into(), json!({ "error": e.to_string() }));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut extracted = json!({});
    let mut reading: Option<(DocumentReading, Option<DocumentReading>)> = None;
    if let Some(task) = document_task {
        let (r, took) = task
            .await
            .map_err(|e| PipelineError::Aborted(e.to_string()))?;
        timings.insert("ocr_ms".into(), json!(took.as_millis() as u64));
        progress("document", took.as_millis() as u64);
        match r {
            Ok(pair) => reading = Some(pair),
            Err(ReadError::NoDocument) => {
                outcomes.document = Some(DocumentOutcome::default());
                steps.insert(
                    "document".into(),
                    json!({ "error": "no identity document found" }),
                );
            }
            Err(ReadError::Vision(e)) if is_input_problem(&e) => {
                outcomes.document = Some(DocumentOutcome::default());
                steps.insert("document".into(), json!({ "error": e.to_string() }));
            }
            Err(ReadError::Vision(e)) => return Err(e.into()),
        }
    }
    if let Some((front, back)) = &reading {
        let body = report::ocr_report(front, back.as_ref());
        extracted = body["fields"].clone();
        let outcome = document_outcome(front, back.as_ref(), &extracted, wf, has(Step::Validate));
        steps.insert(
            "document".into(),
            json!({
                "detected": body["detected"], "mrz": body["mrz"], "quality": body["quality"],
                "missing_areas": body["missing_areas"], "warnings": body["warnings"],
            }),
        );
        outcomes.document = Some(outcome);
    }
    if has(Step::FaceMatch) {
        let _in = step("face_match").entered();
        let at = Instant::now();
        let portrait = reading.as_ref().and_then(|(f, b)| {
            f.portrait_face
                .clone()
                .or_else(|| b.as_ref().and_then(|b| b.portrait_face.clone()))
        });
        let (similarity, detail) = match (&selfie_face, &portrait) {
            (Some(a), Some(b)) => {
                let m = facematch::compare_with(a, b, wf.thresholds.face_match);
                (
                    m.similarity,
                    json!({ "similarity": m.similarity, "threshold": m.threshold, "match": m.is_match }),
                )
            }
            (None, _) => (0.0, json!({ "error": "no usable face in the selfie" })),
            (_, None) => (0.0, json!({ "error": "no portrait found on the document" })),
        };
        outcomes.face_match = Some(FaceOutcome { similarity });
        steps.insert("face_match".into(), detail);
        timings.insert(
            "face_match_ms".into(),
            json!(at.elapsed().as_millis() as u64),
        );
        progress("face_match", at.elapsed().as_millis() as u64);
    }
    if has(Step::Dedup) {
        let at = Instant::now();
        let d = &wf.dedup;
        let (outcome, detail) = match (&selfie_face, &settings.faces) {
            (Some(face), Some(search)) => {
                let (search, embedding) = (search.clone(), face.embedding.clone());
                let (threshold, collection) = (d.threshold, d.collection.clone());
                let span = step("dedup");
                let found = tokio::task::spawn_blocking(move || {
                    let _in = span.enter();
                    search
                        .faces
                        .search(
                            &search.tenant_id,
                            &embedding,
                            collection.as_deref(),
                            DEDUP_CANDIDATES,
                            threshold,
                        )
                        .map(|hits| {
                            hits.into_iter()
                                .filter(|h| h.subject_id != search.subject_id)
                                .collect::<Vec<_>>()
                        })
                })
                .await
                .map_err(|e| PipelineError::Aborted(e.to_string()))?
                .map_err(|e| PipelineError::Aborted(format!("the face index: {e}")))?;
                let detail = json!({ "matches": found, "threshold": threshold });
                (
                    Some(score::DedupOutcome {
                        matches: found,
                        threshold,
                    }),
                    detail,
                )
            }
            (None, _) => (None, json!({ "error": "no usable face in the selfie" })),
            (_, None) => (None, json!({ "error": "no face index here" })),
        };
        outcomes.dedup = outcome;
        steps.insert("dedup".into(), detail);
        timings.insert("dedup_ms".into(), json!(at.elapsed().as_millis() as u64));
        progress("dedup", at.elapsed().as_millis() as u64);
    }
    if has(Step::Kya) {
        let at = Instant::now();
        let document_name = match (
            extracted["surname"].as_str(),
            extracted["given_names"].as_str(),
        ) {
            (Some(s), Some(g)) => Some(format!("{s} {g}")),
            (Some(s), None) => Some(s.to_owned()),
            _ => None,
        };
        let checks = kya::run(&subject.applicant, document_name.as_deref(), &settings.kya)
            .instrument(step("kya"))
            .await;
        let mut k = KyaOutcome::default();
        for c in &checks {
            match c.status {
                kya::Status::Pass => k.passed.push(c.name.to_owned()),
                kya::Status::Fail => k.failed.push(format!("{} ({})", c.name, c.detail)),
                kya::Status::Skipped => k.skipped.push(c.name.to_owned()),
            }
        }
        outcomes.kya = Some(k);
        steps.insert("kya".into(), json!({ "checks": checks }));
        timings.insert("kya_ms".into(), json!(at.elapsed().as_millis() as u64));
        progress("kya", at.elapsed().as_millis() as u64);
    }
    let verdict = score::score(wf, &outcomes);
    let enrol = (verdict.decision == super::config::Decision::Accepted
        && wf.dedup.enrol_accepted
        && selfie_face.is_some())
    .then(|| {
        wf.dedup
            .collection
            .clone()
            .unwrap_or_else(|| "default".into())
    });
    timings.insert(
        "total_ms".into(),
        json!(started.elapsed().as_millis() as u64),
    );
    Ok(Outcome {
        verdict,
        extracted,
        steps: Value::Object(steps),
        timings: Value::Object(timings),
        selfie: selfie_face,
        enrol,
        portrait_jpeg: reading.and_then(|(f, b)| {
            f.face_crop_jpeg
                .or_else(|| b.and_then(|b| b.face_crop_jpeg))
        }),
        media: serde_json::Map::new(),
    })
}

/// Problems with the applicant's images (no face, several faces, too small…) that make a step
/// fail for this applicant rather than the job for everyone.
fn is_input_problem(e: &VisionError) -> bool {
    !matches!(e, VisionError::Model(_))
}

fn document_outcome(
    front: &DocumentReading,
    back: Option<&DocumentReading>,
    fields: &Value,
    wf: &WorkflowConfig,
    validated: bool,
) -> DocumentOutcome {
    let mrz = report::chosen_mrz(front, back);
    let validation = mrz
        .and_then(|m| m.validation.as_ref())
        .filter(|_| validated);
    let failed = |prefix: &str| -> Vec<String> {
        validation
            .iter()
            .flat_map(|v| &v.checks)
            .filter(|c| c.status == CheckStatus::Fail && c.name.starts_with(prefix))
            .map(|c| c.name.to_string())
            .collect()
    };
    let expired_on = (!failed("not_expired").is_empty())
        .then(|| fields["date_of_expiry"].as_str().map(str::to_owned))
        .flatten();
    let confidence = validation.map_or(front.detected.confidence, |v| {
        // Expiry is a rule's business, not the reading's: it does not lower the document factor.
        if v.checks
            .iter()
            .all(|c| c.status != CheckStatus::Fail || c.name == "not_expired")
        {
            0.95f32.max(v.confidence)
        } else {
            v.confidence
        }
    });
    let missing_fields = wf
        .mandatory_fields
        .iter()
        .filter(|f| fields[f.as_str()].as_str().is_none_or(str::is_empty))
        .cloned()
        .collect();
    DocumentOutcome {
        found: true,
        confidence,
        failed_checksums: failed("mrz_checksum"),
        expired_on,
        age_years: fields["date_of_birth"].as_str().and_then(age_today),
        missing_fields,
    }
}

/// Whole years since an ISO `YYYY-MM-DD` date, today (UTC).
fn age_today(birth: &str) -> Option<u32> {
    let mut parts = birth.split('-').map(|p| p.parse::<i32>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    let today = time::OffsetDateTime::now_utc().date();
    let mut age = today.year() - y;
    if (i32::from(u8::from(today.month())), i32::from(today.day())) < (m, d) {
        age -= 1;
    }
    u32::try_from(age).ok()
}
