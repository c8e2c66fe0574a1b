//! Face embeddings with SFace (`sface_2021dec_fp32.onnx`): an aligned 112×112 RGB crop in, a
//! unit-length 128-d vector out, and the cosine between two of them.
//!
//! The graph subtracts 127.5 and scales by 1/128 itself, so the input is raw RGB 0–255. Embeddings
//! are biometric data: they must never be logged, and `Debug` deliberately prints only the length.

use std::sync::Arc;

use image::RgbImage;

use super::align::ALIGNED_SIZE;
use super::frame::{self, ChannelOrder};
use super::runtime::Model;
use super::{Result, VisionError};

/// Length of an SFace embedding.
pub const EMBEDDING_DIM: usize = 128;

/// An L2-normalised face embedding.
#[derive(Clone, PartialEq)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Normalises a raw vector to unit length; `None` if it is empty, the zero vector or not finite.
    pub fn from_raw(raw: Vec<f32>) -> Option<Embedding> {
        let norm = raw.iter().map(|v| v * v).sum::<f32>().sqrt();
        if raw.is_empty() || !norm.is_finite() || norm <= f32::EPSILON {
            return None;
        }
        Some(Embedding(raw.into_iter().map(|v| v / norm).collect()))
    }

    /// The unit vector.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Cosine similarity with another embedding, in [−1, 1].
    pub fn cosine(&self, other: &Embedding) -> f32 {
        cosine(&self.0, &other.0)
    }
}

impl std::fmt::Debug for Embedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Embedding({} dims)", self.0.len())
    }
}

/// Cosine similarity of two vectors (not assumed normalised); 0 if either is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|v| v * v).sum::<f32>().sqrt();
    let nb = b.iter().map(|v| v * v).sum::<f32>().sqrt();
    if na <= f32::EPSILON || nb <= f32::EPSILON {
        return 0.0;
    }
    (dot / (na * nb)).clamp(-1.0, 1.0)
}

/// SFace recogniser.
#[derive(Clone)]
pub struct FaceEmbedder {
    model: Arc<dyn Model>,
}

impl FaceEmbedder {
    /// An embedder over a loaded SFace model (`Models::recognizer`).
    pub fn new(model: Arc<dyn Model>) -> Self {
        FaceEmbedder { model }
    }

    /// Embeds an aligned 112×112 crop (see [`super::align::align_face`]).
    pub fn embed(&self, aligned: &RgbImage) -> Result<Embedding> {
        if aligned.dimensions() != (ALIGNED_SIZE, ALIGNED_SIZE) {
            return Err(VisionError::Model(format!(
                "SFace needs a {ALIGNED_SIZE}×{ALIGNED_SIZE} crop, got {:?}",
                aligned.dimensions()
            )));
        }
        let input = frame::to_nchw(aligned, ChannelOrder::Rgb, ALIGNED_SIZE, ALIGNED_SIZE)?;
        let out = self.model.run(input, &["fc1"])?;
        let raw = out.into_iter().next().map(|t| t.data).unwrap_or_default();
        if raw.len() != EMBEDDING_DIM {
            return Err(VisionError::Model(format!(
                "SFace returned {} values, expected {EMBEDDING_DIM}",
                raw.len()
            )));
        }
        Embedding::from_raw(raw)
            .ok_or_else(|| VisionError::Model("SFace returned a zero or non-finite vector".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::align::align_face;
    use crate::vision::detect::{DetectorConfig, FaceDetector};
    use crate::vision::testutil;

    #[test]
    fn cosine_basics() {
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 2.0]), 0.0);
        assert!((cosine(&[1.0, 1.0], &[2.0, 2.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert!(Embedding::from_raw(vec![0.0; 4]).is_none());
        let e = Embedding::from_raw(vec![3.0, 4.0]).unwrap();
        assert_eq!(e.as_slice(), &[0.6, 0.8]);
        assert_eq!(format!("{e:?}"), "Embedding(2 dims)");
    }

    #[test]
    fn embedding_is_unit_length_and_stable_under_mirroring() {
        let models = testutil::models();
        let detector = FaceDetector::new(models.detector.clone(), DetectorConfig::default());
        let embedder = FaceEmbedder::new(models.recognizer.clone());
        let img = testutil::face("obama.jpg");
        let face = &detector.detect(&img).unwrap()[0];
        let e = embedder.embed(&align_face(&img, &face.landmarks)).unwrap();
        assert_eq!(e.as_slice().len(), EMBEDDING_DIM);
        let norm: f32 = e.as_slice().iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-4);
        // The same face mirrored is still the same person to the model.
        let flipped = image::imageops::flip_horizontal(&img);
        let ff = &detector.detect(&flipped).unwrap()[0];
        let ef = embedder
            .embed(&align_face(&flipped, &ff.landmarks))
            .unwrap();
        assert!(e.cosine(&ef) > 0.7, "mirror cosine {}", e.cosine(&ef));
        assert!(embedder.embed(&image::RgbImage::new(10, 10)).is_err());
    }
}
