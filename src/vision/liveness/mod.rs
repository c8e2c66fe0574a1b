//! Liveness: is the face in front of the camera a live person, or a presentation attack?
//!
//! Passive liveness ([`PassiveAnalyzer`]) judges one selfie from three independent kinds of
//! evidence: the MiniFASNet pair ([`super::antispoof`]), periodic texture in the face region
//! ([`spectrum`]: a screen's pixel grid and moiré, a print's halftone), and a rectangle enclosing
//! the face ([`frame_edges`]: a phone bezel or paper edge). Active liveness ([`active`]) adds what
//! a sequence of frames shows: blinks and head turns from the MediaPipe face mesh ([`mesh`]), the
//! same identity throughout, and real change between frames.
//!
//! Masks and deepfakes need models kycd does not have offline, so `mask` and `deepfake` are never
//! reported; a face the models reject without a texture or frame cue is `unknown`.

pub mod active;
pub mod evaluate;
pub mod frame_edges;
pub mod mesh;
pub mod spectrum;
pub mod synthetic;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::antispoof::{AntiSpoof, PassiveScores};
use super::facematch::{AnalyzedFace, FaceAnalyzer, Role};
use super::quality::QualityWarning;
use super::runtime::Models;
use super::Result;
use frame_edges::FrameEdges;
use spectrum::Periodicity;

/// What kind of attack the evidence points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpoofType {
    /// No attack found.
    None,
    /// A screen replay (phone, tablet, monitor).
    Screen,
    /// A printed photo.
    Paper,
    /// A 3-D mask (never reported: no model for it offline).
    Mask,
    /// A synthetic or swapped face (never reported: no model for it offline).
    Deepfake,
    /// The anti-spoof models reject the face without a texture or frame cue naming the medium.
    Unknown,
}

impl SpoofType {
    /// The name clients see (`none`, `screen`, `paper`, `mask`, `deepfake`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            SpoofType::None => "none",
            SpoofType::Screen => "screen",
            SpoofType::Paper => "paper",
            SpoofType::Mask => "mask",
            SpoofType::Deepfake => "deepfake",
            SpoofType::Unknown => "unknown",
        }
    }
}

/// Per-tenant decision thresholds; every score they apply to is in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LivenessThresholds {
    /// Minimum fused MiniFASNet probability of a real face. Default 0.5.
    pub min_model_real: f32,
    /// Maximum periodic-texture (screen grid, moiré, halftone) score. Default 0.5.
    pub max_texture: f32,
    /// Maximum enclosing-frame score. Default 0.5.
    pub max_frame: f32,
}

impl Default for LivenessThresholds {
    fn default() -> Self {
        LivenessThresholds {
            min_model_real: 0.5,
            max_texture: 0.5,
            max_frame: 0.5,
        }
    }
}

impl LivenessThresholds {
    /// Checks every threshold is inside (0, 1); names the first that is not.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, v) in [
            ("min_model_real", self.min_model_real),
            ("max_texture", self.max_texture),
            ("max_frame", self.max_frame),
        ] {
            if !(v > 0.0 && v < 1.0) {
                return Err(format!(
                    "{name} must be between 0 and 1 (exclusive), got {v}"
                ));
            }
        }
        Ok(())
    }
}

/// Log-prominence of a spectral peak at which the texture score is 0.5, and the spread of the
/// logistic around it (see [`texture_score`]).
pub const TEXTURE_MIDPOINT: f32 = 1.9;
/// Spread of the texture logistic.
pub const TEXTURE_SPREAD: f32 = 0.1;
/// Frame coverage at which the frame score is 0.5.
pub const FRAME_MIDPOINT: f32 = 0.7;
/// Spread of the frame logistic.
pub const FRAME_SPREAD: f32 = 0.06;
/// Border luma under which an enclosing frame reads as a device bezel rather than paper.
pub const DARK_BEZEL_LUMA: f32 = 60.0;

fn logistic(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Maps a peak prominence to a [0, 1] texture score.
pub fn texture_score(p: &Periodicity) -> f32 {
    if p.window == 0 {
        return 0.0;
    }
    logistic((p.strongest().prominence - TEXTURE_MIDPOINT) / TEXTURE_SPREAD)
}

/// Maps the frame measurement to a [0, 1] frame score.
pub fn frame_score(f: &FrameEdges) -> f32 {
    logistic((f.score - FRAME_MIDPOINT) / FRAME_SPREAD)
}

/// Every signal behind a passive verdict, for audit.
#[derive(Debug, Clone, Serialize)]
pub struct PassiveSignals {
    /// The MiniFASNet outputs.
    pub model: PassiveScores,
    /// Texture measurements.
    pub periodicity: Periodicity,
    /// Texture score in [0, 1].
    pub texture_score: f32,
    /// Frame measurements.
    pub frame: FrameEdges,
    /// Frame score in [0, 1].
    pub frame_score: f32,
}

/// A passive liveness verdict on one image.
#[derive(Debug, Clone, Serialize)]
pub struct PassiveVerdict {
    /// Whether every signal is on the live side of its threshold.
    pub is_live: bool,
    /// The attack the evidence points to, `none` when live.
    pub spoof_type: SpoofType,
    /// Confidence in `is_live`, in [0, 1]: the weakest live signal when live, the strongest
    /// attack signal when not.
    pub confidence: f32,
    /// The raw signals.
    pub signals: PassiveSignals,
}

/// Combines the signals under `t` into a verdict.
pub fn decide(signals: PassiveSignals, t: &LivenessThresholds) -> PassiveVerdict {
    let model_spoof = signals.model.p_real < t.min_model_real;
    let texture = signals.texture_score > t.max_texture;
    let frame = signals.frame_score > t.max_frame;
    let is_live = !(model_spoof || texture || frame);
    let spoof_type = if is_live {
        SpoofType::None
    } else if frame {
        // The border's colour names the medium best: a device bezel is near black.
        if signals.frame.border_luma < DARK_BEZEL_LUMA {
            SpoofType::Screen
        } else {
            SpoofType::Paper
        }
    } else if texture {
        // A screen's pixel grid lines up with the display's rows and columns, so its peak tends
        // to lie near an axis of a roughly level picture; halftone screens sit at 15°, 45° and
        // 75°. Moiré can point anywhere, so this split is a guess (see the evaluation).
        let a = signals.periodicity.strongest().angle_deg % 90.0;
        if !(12.0..=78.0).contains(&a) {
            SpoofType::Screen
        } else {
            SpoofType::Paper
        }
    } else {
        SpoofType::Unknown
    };
    let confidence = if is_live {
        signals
            .model
            .p_real
            .min(1.0 - signals.texture_score)
            .min(1.0 - signals.frame_score)
    } else {
        (1.0 - signals.model.p_real)
            .max(signals.texture_score)
            .max(signals.frame_score)
    };
    PassiveVerdict {
        is_live,
        spoof_type,
        confidence: confidence.clamp(0.0, 1.0),
        signals,
    }
}

/// Capture advice for the quality warnings of a face.
pub fn capture_hints(warnings: &[QualityWarning]) -> Vec<&'static str> {
    warnings
        .iter()
        .map(|w| match w {
            QualityWarning::FaceTooSmall => "move closer to the camera",
            QualityWarning::Blurry => "hold the camera still and keep the lens clean",
            QualityWarning::TooDark => "find more light, facing the light source",
            QualityWarning::Overexposed => "avoid direct light or glare on the face",
            QualityWarning::FaceCropped => "keep the whole face inside the frame",
            QualityWarning::FaceTooCloseToBorder => "centre the face in the frame",
            QualityWarning::AngleTooLarge => "look straight at the camera",
        })
        .collect()
}

/// Runs the passive checks on selfies.
#[derive(Clone)]
pub struct PassiveAnalyzer {
    analyzer: FaceAnalyzer,
    antispoof: AntiSpoof,
}

/// A face and its passive verdict.
#[derive(Debug, Clone, Serialize)]
pub struct PassiveReport {
    /// The analysed face (box, landmarks, quality, warnings).
    pub face: AnalyzedFace,
    /// The verdict.
    pub verdict: PassiveVerdict,
}

impl PassiveAnalyzer {
    /// Shares the models already loaded.
    pub fn new(models: &Models, analyzer: FaceAnalyzer) -> Self {
        PassiveAnalyzer {
            analyzer,
            antispoof: AntiSpoof::new(models),
        }
    }

    /// Finds the one face in `img` and judges it.
    pub fn analyze(&self, img: &RgbImage, t: &LivenessThresholds) -> Result<PassiveReport> {
        let face = self.analyzer.analyze(img, Role::Selfie)?;
        let signals = self.signals(img, &face)?;
        Ok(PassiveReport {
            verdict: decide(signals, t),
            face,
        })
    }

    /// Measures every passive signal for an already analysed face.
    pub fn signals(&self, img: &RgbImage, face: &AnalyzedFace) -> Result<PassiveSignals> {
        let model = self.antispoof.score(img, &face.face)?;
        let periodicity = spectrum::measure(img, face.face.bbox);
        let frame = frame_edges::measure(img, face.face.bbox);
        Ok(PassiveSignals {
            model,
            texture_score: texture_score(&periodicity),
            periodicity,
            frame_score: frame_score(&frame),
            frame,
        })
    }
}

#[cfg(test)]
mod tests;
