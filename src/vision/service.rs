//! The face pipeline as the rest of kycd uses it: models loaded once (embedded in the binary, or
//! from `--models-dir`), warmed up before the service reports ready, and the 1:1 match.

use std::path::Path;
use std::sync::{Condvar, Mutex};

use image::RgbImage;
use serde::Serialize;

use super::facematch::{self, AnalyzedFace, FaceAnalyzer, Role};
use super::runtime::{Models, RuntimeOptions, Tensor};
use super::Result;

/// Loaded models and the analyzer over them; shared by every request.
pub struct Vision {
    /// The raw models (liveness uses the anti-spoof and mesh models directly).
    pub models: Models,
    /// Detection, checks, quality and embedding.
    pub analyzer: FaceAnalyzer,
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

/// The two analysed faces of a match.
#[derive(Debug, Clone, Serialize)]
pub struct MatchFaces {
    /// The first image (the selfie).
    pub a: AnalyzedFace,
    /// The second image (the reference: a document or another photo).
    pub b: AnalyzedFace,
}

impl Vision {
    /// Loads and verifies every model: from `dir` when given, else the copies in the binary.
    pub fn load(dir: Option<&Path>, threads: Option<usize>) -> Result<Vision> {
        let opts = RuntimeOptions { threads };
        let models = match dir {
            Some(d) => Models::load_dir_with(d, &opts)?,
            None => Models::load_embedded_with(&opts)?,
        };
        let analyzer = FaceAnalyzer::new(&models);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Vision {
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
        Ok(())
    }

    /// Compares the face of a selfie `a` (exactly one face) with the largest face of `b`.
    /// Blocking; at most one match per core runs at a time.
    pub fn match_faces(&self, a: &RgbImage, b: &RgbImage, threshold: f32) -> Result<MatchReport> {
        self.slots.run(|| self.match_now(a, b, threshold))
    }

    fn match_now(&self, a: &RgbImage, b: &RgbImage, threshold: f32) -> Result<MatchReport> {
        let fa = self.analyzer.analyze(a, Role::Selfie)?;
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
