//! Image-quality measurements of one detected face, and the warnings they raise.
//!
//! Everything here is measured on the caller's pixels and the detector's landmarks; the
//! thresholds in [`QualityThresholds`] are heuristics with documented defaults, not model
//! outputs, and only produce warnings. Hard rejections are decided in [`super::facematch`].
//!
//! Sharpness and exposure are taken on the face box (clipped to the image) resampled to
//! [`PATCH_WIDTH`] px wide, so that they do not depend on the photo's resolution.

use image::{GenericImageView, RgbImage};
use serde::Serialize;

use super::detect::Face;
use super::frame;

/// Width the face region is resampled to before measuring sharpness and exposure.
pub const PATCH_WIDTH: u32 = 128;

/// Luma at or below which a pixel counts as crushed black.
const DARK_LEVEL: f32 = 8.0;
/// Luma at or above which a pixel counts as blown out.
const BRIGHT_LEVEL: f32 = 247.0;

/// Depth of the nose tip in front of the eye–mouth plane, as a fraction of the inter-eye
/// distance. Adult anthropometry puts it near 30 mm for a 62 mm eye spacing; the pose angles
/// scale with it, so treat them as ±10° estimates.
const NOSE_DEPTH_RATIO: f32 = 0.5;

/// Where YuNet puts the nose tip on a level frontal face, as a fraction of the way from the eye
/// midpoint to the mouth midpoint: the median over the frontal photos in the test fixtures
/// (range 0.56–0.60). The ArcFace template's 0.495 follows another annotation convention and
/// would read every level face as about 10° chin-down.
const FRONTAL_NOSE_FRACTION: f32 = 0.58;

/// Head pose in degrees, estimated from the five landmarks.
///
/// Geometry: the eye midpoint and the mouth midpoint lie on the face's vertical midline at
/// roughly the same depth, and the nose tip sits [`NOSE_DEPTH_RATIO`] × inter-eye distance in
/// front of them. Roll is the angle of the eye line. Turning the head by yaw θ moves the nose
/// off the midline by depth·sin θ while the eye distance shrinks by cos θ, so
/// θ = atan(offset / (ratio · eye distance)). Nodding by pitch φ moves the nose along the
/// midline by depth·sin φ relative to where it sits on a level face ([`FRONTAL_NOSE_FRACTION`]
/// of the way from the eyes to the mouth), so φ = asin(shift / depth).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pose {
    /// Positive when the nose points to the image's right (the subject turned to their left).
    pub yaw: f32,
    /// Positive when the head tilts back (chin up).
    pub pitch: f32,
    /// Positive when the eye line slopes down to the image's right (clockwise on screen).
    pub roll: f32,
}

/// A quality problem worth telling the user about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityWarning {
    /// Fewer pixels between the eyes than the recogniser's input has (see thresholds).
    FaceTooSmall,
    /// Little fine detail: motion or focus blur, or heavy compression.
    Blurry,
    /// Face region underexposed.
    TooDark,
    /// Face region overexposed or washed out.
    Overexposed,
    /// Part of the face box lies outside the image.
    FaceCropped,
    /// The face box is inside the image but nearly touches its edge.
    FaceTooCloseToBorder,
    /// Yaw, pitch or roll beyond the configured limits.
    AngleTooLarge,
}

impl QualityWarning {
    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            QualityWarning::FaceTooSmall => "face_too_small",
            QualityWarning::Blurry => "blurry",
            QualityWarning::TooDark => "too_dark",
            QualityWarning::Overexposed => "overexposed",
            QualityWarning::FaceCropped => "face_cropped",
            QualityWarning::FaceTooCloseToBorder => "face_too_close_to_border",
            QualityWarning::AngleTooLarge => "angle_too_large",
        }
    }

    /// The FacePhi-style diagnostic name, where FacePhi has one.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            QualityWarning::FaceTooSmall => Some("NoneBecauseFaceTooSmall"),
            QualityWarning::FaceCropped => Some("NoneBecauseFaceCropped"),
            QualityWarning::FaceTooCloseToBorder => Some("NoneBecauseFaceTooCloseToBorder"),
            QualityWarning::AngleTooLarge => Some("NoneBecauseAngleTooLarge"),
            QualityWarning::Blurry | QualityWarning::TooDark | QualityWarning::Overexposed => None,
        }
    }
}

/// Limits above or below which [`Quality::warnings`] raises a warning.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityThresholds {
    /// Minimum eye distance in px. Default 35: the ArcFace template spaces the eyes 35.2 px
    /// apart, so below this the recogniser's input is upsampled and loses detail.
    pub min_inter_eye_px: f32,
    /// Minimum variance of the Laplacian on the resampled grey face patch. Default 25: the
    /// camera photos in the test fixtures measure 80–380 and photographed passport portraits
    /// about 40; a Gaussian blur of σ = 2–3 px brings the photos to 5–36, and SFace starts
    /// missing genuine pairs around σ = 4.
    pub min_sharpness: f32,
    /// Mean face luma (0–255) below which the face is too dark. Default 50.
    pub min_mean_luma: f32,
    /// Mean face luma above which the face is overexposed. Default 210.
    pub max_mean_luma: f32,
    /// Share of crushed-black (≤ 8) or blown-out (≥ 247) face pixels that raises `too_dark` or
    /// `overexposed` on its own. Default 0.25.
    pub max_clipped_share: f32,
    /// Share of the face box allowed outside the image before `face_cropped`. Default 0.02:
    /// YuNet's box includes the forehead, so a couple of percent is still a complete face.
    pub max_outside_share: f32,
    /// Minimum gap between face box and image edge, as a fraction of the box's longer side,
    /// before `face_too_close_to_border`. Default 0.05.
    pub min_border_margin: f32,
    /// Maximum |yaw| in degrees. Default 30.
    pub max_yaw_deg: f32,
    /// Maximum |pitch| in degrees. Default 25.
    pub max_pitch_deg: f32,
    /// Maximum |roll| in degrees. Default 25.
    pub max_roll_deg: f32,
}

impl Default for QualityThresholds {
    fn default() -> Self {
        QualityThresholds {
            min_inter_eye_px: 35.0,
            min_sharpness: 25.0,
            min_mean_luma: 50.0,
            max_mean_luma: 210.0,
            max_clipped_share: 0.25,
            max_outside_share: 0.02,
            min_border_margin: 0.05,
            max_yaw_deg: 30.0,
            max_pitch_deg: 25.0,
            max_roll_deg: 25.0,
        }
    }
}

/// Measurements of one face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quality {
    /// Distance between the eye landmarks in original pixels.
    pub inter_eye_px: f32,
    /// Variance of the 4-neighbour Laplacian on the grey face patch; higher is sharper.
    pub sharpness: f32,
    /// Mean luma (BT.601, 0–255) of the face patch.
    pub mean_luma: f32,
    /// Share of face-patch pixels at or below luma 8.
    pub dark_share: f32,
    /// Share of face-patch pixels at or above luma 247.
    pub bright_share: f32,
    /// Estimated head pose.
    pub pose: Pose,
    /// Smallest gap between the face box and an image edge in px; negative when the box sticks out.
    pub border_margin_px: f32,
    /// [`Quality::border_margin_px`] over the box's longer side.
    pub border_margin_ratio: f32,
    /// Share of the face box's area outside the image.
    pub outside_share: f32,
    /// Whether all five landmarks lie inside the image.
    pub landmarks_inside: bool,
}

impl Quality {
    /// The warnings these measurements raise under `t`, in a fixed order.
    pub fn warnings(&self, t: &QualityThresholds) -> Vec<QualityWarning> {
        let mut w = Vec::new();
        if self.inter_eye_px < t.min_inter_eye_px {
            w.push(QualityWarning::FaceTooSmall);
        }
        if self.sharpness < t.min_sharpness {
            w.push(QualityWarning::Blurry);
        }
        if self.mean_luma < t.min_mean_luma || self.dark_share > t.max_clipped_share {
            w.push(QualityWarning::TooDark);
        }
        if self.mean_luma > t.max_mean_luma || self.bright_share > t.max_clipped_share {
            w.push(QualityWarning::Overexposed);
        }
        if self.outside_share > t.max_outside_share || !self.landmarks_inside {
            w.push(QualityWarning::FaceCropped);
        } else if self.border_margin_ratio < t.min_border_margin {
            w.push(QualityWarning::FaceTooCloseToBorder);
        }
        let p = self.pose;
        if p.yaw.abs() > t.max_yaw_deg
            || p.pitch.abs() > t.max_pitch_deg
            || p.roll.abs() > t.max_roll_deg
        {
            w.push(QualityWarning::AngleTooLarge);
        }
        w
    }
}

/// Measures `face` in `img`.
pub fn assess(img: &RgbImage, face: &Face) -> Quality {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let [bx, by, bw, bh] = face.bbox;
    let margin = bx.min(by).min(w - (bx + bw)).min(h - (by + bh));
    let inside_w = ((bx + bw).min(w) - bx.max(0.0)).max(0.0);
    let inside_h = ((by + bh).min(h) - by.max(0.0)).max(0.0);
    let area = (bw * bh).max(f32::EPSILON);
    let patch = face_patch_luma(img, face);
    let (mean_luma, dark_share, bright_share) = exposure(&patch.0);
    Quality {
        inter_eye_px: face.inter_eye_px(),
        sharpness: laplacian_variance(&patch.0, patch.1, patch.2),
        mean_luma,
        dark_share,
        bright_share,
        pose: pose(&face.landmarks),
        border_margin_px: margin,
        border_margin_ratio: margin / bw.max(bh).max(f32::EPSILON),
        outside_share: (1.0 - inside_w * inside_h / area).clamp(0.0, 1.0),
        landmarks_inside: face
            .landmarks
            .iter()
            .all(|p| p[0] >= 0.0 && p[1] >= 0.0 && p[0] < w && p[1] < h),
    }
}

/// Estimates yaw, pitch and roll from YuNet's five landmarks (see [`Pose`]).
pub fn pose(lm: &[[f32; 2]; 5]) -> Pose {
    let mid = |a: [f32; 2], b: [f32; 2]| [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
    let (eyes, mouth, nose) = (mid(lm[0], lm[1]), mid(lm[3], lm[4]), lm[2]);
    let eye_dist = (lm[1][0] - lm[0][0])
        .hypot(lm[1][1] - lm[0][1])
        .max(f32::EPSILON);
    let roll = (lm[1][1] - lm[0][1]).atan2(lm[1][0] - lm[0][0]);
    let (mx, my) = (mouth[0] - eyes[0], mouth[1] - eyes[1]);
    let mouth_along = mx.hypot(my).max(f32::EPSILON);
    let (ux, uy) = (mx / mouth_along, my / mouth_along);
    let (nx, ny) = (nose[0] - eyes[0], nose[1] - eyes[1]);
    // (uy, −ux) is the midline's normal pointing to the image's right when the face is upright.
    let across = nx * uy - ny * ux;
    let along = nx * ux + ny * uy;
    let yaw = (across / (NOSE_DEPTH_RATIO * eye_dist)).atan();
    let true_eye_dist = eye_dist / yaw.cos().max(0.2);
    let shift = FRONTAL_NOSE_FRACTION * mouth_along - along;
    let pitch = (shift / (NOSE_DEPTH_RATIO * true_eye_dist))
        .clamp(-1.0, 1.0)
        .asin();
    Pose {
        yaw: yaw.to_degrees(),
        pitch: pitch.to_degrees(),
        roll: roll.to_degrees(),
    }
}

/// The face box clipped to the image, resampled to [`PATCH_WIDTH`] wide, as BT.601 luma
/// values with the patch's width and height.
fn face_patch_luma(img: &RgbImage, face: &Face) -> (Vec<f32>, usize, usize) {
    let [bx, by, bw, bh] = face.bbox;
    let x0 = bx.max(0.0).floor() as u32;
    let y0 = by.max(0.0).floor() as u32;
    let x1 = ((bx + bw).ceil().max(0.0) as u32).min(img.width());
    let y1 = ((by + bh).ceil().max(0.0) as u32).min(img.height());
    if x1 <= x0 + 2 || y1 <= y0 + 2 {
        return (Vec::new(), 0, 0);
    }
    let crop = img.view(x0, y0, x1 - x0, y1 - y0).to_image();
    let ph = ((PATCH_WIDTH as f32 * (y1 - y0) as f32 / (x1 - x0) as f32).round() as u32).max(3);
    let patch = frame::resize(&crop, PATCH_WIDTH, ph);
    let luma = patch
        .pixels()
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect();
    (luma, PATCH_WIDTH as usize, ph as usize)
}

/// Mean luma and the shares of crushed and blown pixels.
fn exposure(luma: &[f32]) -> (f32, f32, f32) {
    if luma.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let n = luma.len() as f32;
    let mean = luma.iter().sum::<f32>() / n;
    let dark = luma.iter().filter(|&&v| v <= DARK_LEVEL).count() as f32 / n;
    let bright = luma.iter().filter(|&&v| v >= BRIGHT_LEVEL).count() as f32 / n;
    (mean, dark, bright)
}

/// Variance of the 4-neighbour Laplacian over the interior of a `w`×`h` grey image.
pub fn laplacian_variance(luma: &[f32], w: usize, h: usize) -> f32 {
    if w < 3 || h < 3 || luma.len() != w * h {
        return 0.0;
    }
    let (mut sum, mut sum_sq) = (0f64, 0f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let c = y * w + x;
            let lap = luma[c - 1] + luma[c + 1] + luma[c - w] + luma[c + w] - 4.0 * luma[c];
            sum += f64::from(lap);
            sum_sq += f64::from(lap) * f64::from(lap);
        }
    }
    let n = ((w - 2) * (h - 2)) as f64;
    let mean = sum / n;
    (sum_sq / n - mean * mean).max(0.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::align::{warp_affine, Affine, ARCFACE_TEMPLATE};
    use crate::vision::detect::{DetectorConfig, FaceDetector};
    use crate::vision::testutil;

    fn detect(img: &RgbImage) -> Face {
        let d = FaceDetector::new(
            testutil::models().detector.clone(),
            DetectorConfig::default(),
        );
        d.refine(img, &d.detect(img).unwrap()[0]).unwrap()
    }

    #[test]
    fn symmetric_face_is_level_and_shifted_nose_turns_it() {
        let mut lm = ARCFACE_TEMPLATE;
        let (eyes_y, mouth_y) = (51.6, 92.3);
        lm[2] = [56.0, eyes_y + FRONTAL_NOSE_FRACTION * (mouth_y - eyes_y)];
        let p = pose(&lm);
        assert!(
            p.yaw.abs() < 1.0 && p.pitch.abs() < 1.0 && p.roll.abs() < 0.5,
            "{p:?}"
        );
        // Nose a quarter eye-distance to the right and 8 px up: turned right (≈27°), chin up.
        lm[2][0] += 35.2 / 4.0;
        lm[2][1] -= 8.0;
        let p = pose(&lm);
        assert!((p.yaw - 26.6).abs() < 1.0 && p.pitch > 10.0, "{p:?}");
    }

    #[test]
    fn laplacian_of_flat_and_checker() {
        assert_eq!(laplacian_variance(&[5.0; 16], 4, 4), 0.0);
        let checker: Vec<f32> = (0..16)
            .map(|i| if (i % 4 + i / 4) % 2 == 0 { 0.0 } else { 10.0 })
            .collect();
        // Interior Laplacians are ±40, alternating: variance 1600.
        assert_eq!(laplacian_variance(&checker, 4, 4), 1600.0);
    }

    #[test]
    fn clear_photo_has_no_warnings() {
        let img = testutil::face("obama.jpg");
        let q = assess(&img, &detect(&img));
        assert!(
            q.warnings(&QualityThresholds::default()).is_empty(),
            "{q:?}"
        );
        assert!(q.pose.yaw.abs() < 15.0 && q.pose.pitch.abs() < 15.0 && q.pose.roll.abs() < 10.0);
    }

    #[test]
    fn rotation_shows_as_roll_and_blur_as_low_sharpness() {
        let img = testutil::face("obama.jpg");
        let base = assess(&img, &detect(&img));
        // Rotate 30° clockwise on screen about the image centre.
        let (t, cx, cy) = (30f64.to_radians(), 455.0, 568.0);
        let m: Affine = [
            [t.cos(), -t.sin(), cx - t.cos() * cx + t.sin() * cy],
            [t.sin(), t.cos(), cy - t.sin() * cx - t.cos() * cy],
        ];
        let rotated = warp_affine(&img, &m, img.width(), img.height());
        let q = assess(&rotated, &detect(&rotated));
        assert!(
            (q.pose.roll - base.pose.roll - 30.0).abs() < 6.0,
            "{:?}",
            q.pose
        );
        assert!(q
            .warnings(&QualityThresholds::default())
            .contains(&QualityWarning::AngleTooLarge));
        let blurred = image::imageops::blur(&img, 6.0);
        let q = assess(&blurred, &detect(&blurred));
        assert!(
            q.sharpness < base.sharpness / 4.0,
            "{} vs {}",
            q.sharpness,
            base.sharpness
        );
        assert!(q
            .warnings(&QualityThresholds::default())
            .contains(&QualityWarning::Blurry));
    }

    #[test]
    fn exposure_warnings() {
        let img = testutil::face("obama.jpg");
        let face = detect(&img);
        let dark = image::imageops::brighten(&img, -120);
        let w = assess(&dark, &face).warnings(&QualityThresholds::default());
        assert!(w.contains(&QualityWarning::TooDark), "{w:?}");
        let bright = image::imageops::brighten(&img, 140);
        let w = assess(&bright, &face).warnings(&QualityThresholds::default());
        assert!(w.contains(&QualityWarning::Overexposed), "{w:?}");
    }

    #[test]
    fn partial_face_is_flagged() {
        let img = testutil::face("obama_partial_face.jpg");
        let q = assess(&img, &detect(&img));
        let w = q.warnings(&QualityThresholds::default());
        assert!(
            w.contains(&QualityWarning::FaceCropped)
                || w.contains(&QualityWarning::FaceTooCloseToBorder),
            "{q:?} {w:?}"
        );
    }

    #[test]
    fn warning_codes() {
        assert_eq!(
            QualityWarning::FaceTooCloseToBorder.code(),
            "face_too_close_to_border"
        );
        assert_eq!(
            serde_json::to_string(&QualityWarning::TooDark).unwrap(),
            "\"too_dark\""
        );
        assert_eq!(QualityWarning::Blurry.reason(), None);
    }
}
