//! The face pipeline as the rest of kycd uses it: models loaded once (embedded in the binary, or
//! from `--models-dir`), warmed up before the service reports ready, and the 1:1 match.

use std::sync::{Condvar, Mutex};

use image::RgbImage;
use serde::Serialize;

use super::facematch::{self, AnalyzedFace, FaceAnalyzer, Role};
use super::liveness::active::{self, ActiveReport, Challenges};
use super::liveness::mesh::FaceMesh;
use super::liveness::{
    capture_hints, LivenessThresholds, PassiveAnalyzer, PassiveVerdict, SpoofType,
};
use super::quality::{Quality, QualityWarning};
use super::runtime::{Models, RuntimeOptions, Tensor};
use super::Result;

/// Loaded models and the analyzer over them; shared by every request.
pub struct Vision {
    /// The raw models (liveness uses the anti-spoof and mesh models directly).
    pub models: Models,
    /// Detection, checks, quality and embedding.
    pub analyzer: FaceAnalyzer,
    /// Passive liveness over the same analyzer.
    pub passive: PassiveAnalyzer,
    /// The face mesh, for active liveness.
    pub mesh: FaceMesh,
    /// Document OCR (PP-OCRv5).
    pub ocr: crate::document::ocr::Ocr,
    slots: Slots,
}

/// A counting semaphore: callers arrive on the (large) blocking pool, but at most one pipeline per
/// core runs at once, so a burst queues instead of thrashing caches and memory.
struct Slots {
    free: Mutex<usize>,
    returned: Condvar,
}

impl Slots {
    fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n.max(1)),
            returned: Condvar::new(),
        }
    }

    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        {
            let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
            while *free == 0 {
                free = self.returned.wait(free).unwrap_or_else(|p| p.into_inner());
            }
            *free -= 1;
        }
        // Give the slot back even if `f` panics.
        struct Release<'a>(&'a Slots);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                self.0.returned.notify_one();
            }
        }
        let _release = Release(self);
        f()
    }
}

/// A face match as the API reports it.
#[derive(Debug, Clone, Serialize)]
pub struct MatchReport {
    /// `similarity >= threshold`.
    #[serde(rename = "match")]
    pub is_match: bool,
    /// Calibrated similarity in [0, 1].
    pub similarity: f32,
    /// Raw cosine of the embeddings, for audit.
    pub cosine: f32,
    /// The threshold applied.
    pub threshold: f32,
    /// What was found in each image.
    pub faces: MatchFaces,
}

/// A liveness verdict as the API reports it.
#[derive(Debug, Clone, Serialize)]
pub struct LivenessReport {
    /// Live by every passive signal and, when frames were sent, by the sequence checks.
    pub is_live: bool,
    /// The attack the evidence points to; `none` when live.
    pub spoof_type: SpoofType,
    /// Confidence in `is_live`, in [0, 1].
    pub confidence: f32,
    /// Capture advice for the user.
    pub hints: Vec<&'static str>,
    /// The detector's confidence in the main image's face, in [0, 1].
    pub face_score: f32,
    /// Quality of the main image's face.
    pub quality: Quality,
    /// Quality warnings.
    pub warnings: Vec<QualityWarning>,
    /// The passive verdict on the main image, with every signal.
    pub passive: PassiveVerdict,
    /// The sequence verdict, when frames were sent.
    pub active: Option<ActiveReport>,
    /// The thresholds applied.
    pub thresholds: LivenessThresholds,
}

/// The two analysed faces of a match.
#[derive(Debug, Clone, Serialize)]
pub struct MatchFaces {
    /// The first image (the selfie).
    pub a: AnalyzedFace,
    /// The second image (the reference: a document or another photo).
    pub b: AnalyzedFace,
}

impl Vision {
    /// Loads and verifies every model as `config` says: from its `dir` when given, else the
    /// copies in the binary; on its backend.
    pub fn load(config: &crate::config::ModelsConfig) -> Result<Vision> {
        let dir = config.dir.as_deref();
        let opts = RuntimeOptions::from_config(config);
        let models = match dir {
            Some(d) => Models::load_dir_with(d, &opts)?,
            None => Models::load_embedded_with(&opts)?,
        };
        let analyzer = FaceAnalyzer::new(&models);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Vision {
            ocr: crate::document::ocr::Ocr::load(dir, &opts)?,
            passive: PassiveAnalyzer::new(&models, analyzer.clone()),
            mesh: FaceMesh::new(&models),
            models,
            analyzer,
            slots: Slots::new(cores),
        })
    }

    /// Runs every model once on a blank input, so the first request does not pay for lazy
    /// allocation, and so a model that loads but cannot run stops start-up.
    pub fn warm_up(&self) -> Result<()> {
        match self
            .analyzer
            .analyze(&RgbImage::new(320, 240), Role::Selfie)
        {
            Ok(_) | Err(super::VisionError::NoFace) => {}
            Err(e) => return Err(e),
        }
        let zeros = |shape: Vec<usize>| {
            let n = shape.iter().product();
            Tensor::new(shape, vec![0.0; n])
        };
        self.models
            .recognizer
            .run(zeros(vec![1, 3, 112, 112])?, &["fc1"])?;
        self.models
            .antispoof_v2
            .run(zeros(vec![1, 3, 80, 80])?, &["prob"])?;
        self.models
            .antispoof_v1se
            .run(zeros(vec![1, 3, 80, 80])?, &["prob"])?;
        self.models
            .face_mesh
            .run(zeros(vec![1, 192, 192, 3])?, &["conv2d_20", "conv2d_30"])?;
        self.ocr.warm_up()?;
        Ok(())
    }

    /// Runs `f` holding one of the per-core inference slots (for pipelines defined elsewhere,
    /// such as document reading).
    pub fn exclusive<T>(&self, f: impl FnOnce(&Vision) -> T) -> T {
        self.slots.run(|| f(self))
    }

    /// Compares the face of a selfie `a` (exactly one face) with the largest face of `b`.
    /// Blocking; at most one match per core runs at a time.
    pub fn match_faces(&self, a: &RgbImage, b: &RgbImage, threshold: f32) -> Result<MatchReport> {
        self.slots.run(|| self.match_now(a, b, threshold))
    }

    /// Judges the selfie `live` (and the frame sequence, if any) under `t`. Blocking; at most
    /// one pipeline per core runs at a time.
    pub fn liveness(
        &self,
        live: &RgbImage,
        frames: &[RgbImage],
        challenges: Challenges,
        t: &LivenessThresholds,
    ) -> Result<LivenessReport> {
        self.slots
            .run(|| self.liveness_with_face(live, frames, challenges, t))
            .map(|(report, _)| report)
    }

    /// [`Vision::liveness`] without taking a slot (call it inside [`Vision::exclusive`]), also
    /// returning the selfie's analysed face so a match can reuse it instead of analysing again.
    pub fn liveness_with_face(
        &self,
        live: &RgbImage,
        frames: &[RgbImage],
        challenges: Challenges,
        t: &LivenessThresholds,
    ) -> Result<(LivenessReport, AnalyzedFace)> {
        let main = self.passive.analyze(live, t)?;
        let active = if frames.is_empty() {
            None
        } else {
            Some(active::analyze(
                &self.passive,
                &self.mesh,
                frames,
                challenges,
                t,
            )?)
        };
        let mut hints = capture_hints(&main.face.warnings);
        let passive = main.verdict;
        let mut is_live = passive.is_live;
        let mut confidence = passive.confidence;
        let mut spoof_type = passive.spoof_type;
        if !passive.is_live {
            hints.push("use the live camera: no photo, screen or print in front of it");
        }
        if let Some(a) = active.as_ref().filter(|a| !a.passed) {
            if is_live {
                // Live on the still, failed on the sequence: the sequence decides.
                is_live = false;
                spoof_type = SpoofType::Unknown;
                confidence = 0.9;
            }
            for f in &a.failures {
                hints.push(match *f {
                    "no_blink" => "blink once when asked",
                    "no_head_turn" => "turn your head slowly to one side and back",
                    "identity_changed" => "keep the same person in front of the camera",
                    "static_sequence" => "record a live sequence, not a still picture",
                    _ => "use the live camera: no photo, screen or print in front of it",
                });
            }
        }
        hints.dedup();
        let report = LivenessReport {
            is_live,
            spoof_type,
            confidence,
            hints,
            face_score: main.face.face.score,
            quality: main.face.quality.clone(),
            warnings: main.face.warnings.clone(),
            passive,
            active,
            thresholds: *t,
        };
        Ok((report, main.face))
    }

    fn match_now(&self, a: &RgbImage, b: &RgbImage, threshold: f32) -> Result<MatchReport> {
        let fa = self.analyzer.analyze(a, Role::Selfie)?;
        self.match_analyzed(fa, b, threshold)
    }

    /// Matches an already analysed selfie face against the largest face of `b`, without taking a
    /// slot (call it inside [`Vision::exclusive`]).
    pub fn match_analyzed(
        &self,
        fa: AnalyzedFace,
        b: &RgbImage,
        threshold: f32,
    ) -> Result<MatchReport> {
        let fb = self.analyzer.analyze(b, Role::Document)?;
        let m = facematch::compare_with(&fa, &fb, threshold);
        Ok(MatchReport {
            is_match: m.is_match,
            similarity: m.similarity,
            cosine: m.cosine,
            threshold: m.threshold,
            faces: MatchFaces { a: fa, b: fb },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn slots_bound_concurrency_and_survive_panics() {
        let slots = Arc::new(Slots::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (slots, running, peak) = (slots.clone(), running.clone(), peak.clone());
                std::thread::spawn(move || {
                    slots.run(|| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        let s = slots.clone();
        let _ = std::thread::spawn(move || s.run(|| panic!("inference bug"))).join();
        assert_eq!(*slots.free.lock().unwrap(), 2, "the slot came back");
    }
}
