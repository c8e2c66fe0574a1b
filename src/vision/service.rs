//! The face pipeline as the rest of kycd uses it: models loaded once (embedded in the binary, or
//! from `--models-dir`), warmed up before the service reports ready, and the 1:1 match.

use std::path::Path;

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
        Ok(Vision { models, analyzer })
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
    pub fn match_faces(&self, a: &RgbImage, b: &RgbImage, threshold: f32) -> Result<MatchReport> {
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
