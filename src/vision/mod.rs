//! Face vision: detection, alignment, embedding, quality and 1:1 face match.
//!
//! This module owns everything between decoded pixels and a match verdict: the ONNX models
//! (behind the small [`runtime::Model`] trait, run with rten), YuNet face detection
//! ([`detect`]), five-point alignment ([`align`]), SFace embeddings ([`embed`]), image-quality
//! measurements ([`quality`]) and the selfie-vs-document pipeline ([`facematch`]). Every verdict
//! comes from the models run on the caller's pixels; nothing here fabricates a score.
//!
//! It must not do I/O beyond reading model files, must not log images, embeddings or other
//! personal data, and must not block an async reactor: callers run it in `spawn_blocking` or the
//! inference pool. The pre- and post-processing of each model follows `models/MODELS.md`.

pub mod align;
pub mod antispoof;
pub mod detect;
pub mod embed;
pub mod facematch;
pub mod frame;
pub mod liveness;
pub mod quality;
pub mod runtime;
pub mod service;

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, VisionError>;

/// Why an image could not yield a usable face, or why inference failed.
///
/// [`VisionError::code`] gives the stable machine code (part of the API contract, never renamed)
/// and [`VisionError::reason`] the FacePhi-compatible name, for the compatibility layer.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// The detector found no face above its score threshold.
    #[error("no face found in the image")]
    NoFace,
    /// A selfie showed more than one confident face.
    #[error("{count} faces found where exactly one is expected")]
    MultipleFaces {
        /// How many faces counted as confident.
        count: usize,
    },
    /// The face is too small to give a reliable embedding.
    #[error(
        "face too small: {inter_eye_px:.1} px between the eyes, at least {min_px:.0} px needed"
    )]
    FaceTooSmall {
        /// Measured distance between the eye centres in original pixels.
        inter_eye_px: f32,
        /// The configured minimum.
        min_px: f32,
    },
    /// Part of the face (an eye, the nose or a mouth corner) lies outside the image.
    #[error("face cut by the image border")]
    FaceCropped,
    /// The head is turned or tilted beyond what the embedding model handles.
    #[error("head pose too far from frontal (yaw {yaw:.0}°, pitch {pitch:.0}°, roll {roll:.0}°)")]
    AngleTooLarge {
        /// Estimated yaw in degrees.
        yaw: f32,
        /// Estimated pitch in degrees.
        pitch: f32,
        /// Estimated roll in degrees.
        roll: f32,
    },
    /// The bytes are not a decodable JPEG, PNG or WebP image, or the image is empty.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// A model file failed its checksum, failed to load, or inference failed.
    #[error("model error: {0}")]
    Model(String),
}

impl VisionError {
    /// The stable snake_case code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            VisionError::NoFace => "no_face",
            VisionError::MultipleFaces { .. } => "multiple_faces",
            VisionError::FaceTooSmall { .. } => "face_too_small",
            VisionError::FaceCropped => "face_cropped",
            VisionError::AngleTooLarge { .. } => "angle_too_large",
            VisionError::InvalidImage(_) => "invalid_image",
            VisionError::Model(_) => "model_error",
        }
    }

    /// The FacePhi-style diagnostic name, where FacePhi has one.
    ///
    /// Image decoding and model failures are ours, not a property of the face, so they have none.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            VisionError::NoFace => Some("NoneBecauseFaceNotFound"),
            VisionError::MultipleFaces { .. } => Some("NoneBecauseTooManyFaces"),
            VisionError::FaceTooSmall { .. } => Some("NoneBecauseFaceTooSmall"),
            VisionError::FaceCropped => Some("NoneBecauseFaceCropped"),
            VisionError::AngleTooLarge { .. } => Some("NoneBecauseAngleTooLarge"),
            VisionError::InvalidImage(_) | VisionError::Model(_) => None,
        }
    }

    /// Whether the fault is on our side (a broken model) rather than in the caller's image.
    pub fn is_internal(&self) -> bool {
        matches!(self, VisionError::Model(_))
    }
}

impl crate::error::ErrorCode for VisionError {
    fn code(&self) -> crate::error::Code {
        use crate::error::Code;
        match self {
            VisionError::NoFace => Code::NoFace,
            VisionError::MultipleFaces { .. } => Code::MultipleFaces,
            VisionError::FaceTooSmall { .. } => Code::FaceTooSmall,
            VisionError::FaceCropped => Code::FaceCropped,
            VisionError::AngleTooLarge { .. } => Code::AngleTooLarge,
            VisionError::InvalidImage(_) => Code::InvalidImage,
            VisionError::Model(_) => Code::Internal,
        }
    }

    /// FacePhi's normalised name as `reason`, plus the measured values that decided.
    fn details(&self) -> serde_json::Value {
        let mut d = match self {
            VisionError::MultipleFaces { count } => serde_json::json!({ "faces": count }),
            VisionError::FaceTooSmall {
                inter_eye_px,
                min_px,
            } => {
                serde_json::json!({ "inter_eye_px": inter_eye_px, "min_inter_eye_px": min_px })
            }
            VisionError::AngleTooLarge { yaw, pitch, roll } => {
                serde_json::json!({ "yaw": yaw, "pitch": pitch, "roll": roll })
            }
            _ => serde_json::json!({}),
        };
        if let Some(reason) = self.reason() {
            d["reason"] = serde_json::Value::from(reason);
        }
        d
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Shared fixtures for the vision tests: the real models, loaded once per test binary.

    use std::sync::OnceLock;

    use image::RgbImage;

    use super::runtime::Models;

    /// The models from `models/`, loaded and checksum-verified once.
    pub fn models() -> &'static Models {
        static MODELS: OnceLock<Models> = OnceLock::new();
        MODELS.get_or_init(|| {
            Models::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/models"))
                .expect("models/ must hold the verified model files")
        })
    }

    /// Decodes a face fixture by file name.
    pub fn face(name: &str) -> RgbImage {
        let path = format!("{}/tests/fixtures/faces/{name}", env!("CARGO_MANIFEST_DIR"));
        load(&path)
    }

    /// Decodes the passport fixture.
    pub fn passport() -> RgbImage {
        load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/documents/passport-td3.jpg"
        ))
    }

    fn load(path: &str) -> RgbImage {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        crate::media::intake::load(&bytes, &Default::default())
            .map(|i| i.image)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_snake_case_and_unique() {
        let all = [
            VisionError::NoFace,
            VisionError::MultipleFaces { count: 2 },
            VisionError::FaceTooSmall {
                inter_eye_px: 3.0,
                min_px: 16.0,
            },
            VisionError::FaceCropped,
            VisionError::AngleTooLarge {
                yaw: 60.0,
                pitch: 0.0,
                roll: 0.0,
            },
            VisionError::InvalidImage("x".into()),
            VisionError::Model("x".into()),
        ];
        let codes: Vec<_> = all.iter().map(VisionError::code).collect();
        assert_eq!(
            codes,
            [
                "no_face",
                "multiple_faces",
                "face_too_small",
                "face_cropped",
                "angle_too_large",
                "invalid_image",
                "model_error"
            ]
        );
        assert_eq!(all[0].reason(), Some("NoneBecauseFaceNotFound"));
        assert_eq!(all[1].reason(), Some("NoneBecauseTooManyFaces"));
        assert!(all[6].reason().is_none() && all[6].is_internal());
    }
}
