//! Active liveness over a short sequence of frames: a blink, a head turn, one identity
//! throughout, real change between frames, and passive checks on every frame.
//!
//! A replayed still fails on change (identical frames) and on blink or pose; a face swapped in
//! mid-sequence fails on identity; a video replay on a screen still has to pass the passive
//! texture and frame checks on each frame.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::mesh::{FaceMesh, MeshMeasures};
use super::{decide, LivenessThresholds, PassiveAnalyzer, PassiveVerdict};
use crate::vision::Result;

/// Fewest frames accepted.
pub const MIN_FRAMES: usize = 3;
/// Most frames accepted.
pub const MAX_FRAMES: usize = 30;
/// SFace cosine under which two frames are different people (the model's published threshold).
pub const SAME_PERSON_COSINE: f32 = 0.363;
/// A blink: eye openness falls below this fraction of its open value.
pub const BLINK_RATIO: f32 = 0.6;
/// Smallest open-eye openness for a blink to count (eyes must have been open).
pub const MIN_OPEN_EYES: f32 = 0.15;
/// Smallest yaw range across frames for a head turn, in degrees.
pub const MIN_YAW_RANGE_DEG: f32 = 15.0;
/// Mean absolute grey difference (0–255) between thumbnails under which frames count as the
/// same picture.
pub const STATIC_DIFF: f32 = 1.0;

/// Which challenges the client asked the user to perform.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Challenges {
    /// The user was asked to blink.
    #[serde(default)]
    pub blink: bool,
    /// The user was asked to turn their head.
    #[serde(default)]
    pub pose: bool,
}

/// What one frame showed.
#[derive(Debug, Clone, Serialize)]
pub struct FrameReport {
    /// Eye openness and yaw from the mesh.
    pub mesh: MeshMeasures,
    /// Cosine of this frame's embedding with the first frame's.
    pub cosine_to_first: f32,
    /// The passive verdict on this frame.
    pub passive: PassiveVerdict,
}

/// The verdict on a sequence.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveReport {
    /// Whether every requested challenge and every check passed.
    pub passed: bool,
    /// Stable codes of the checks that failed.
    pub failures: Vec<&'static str>,
    /// Whether a blink was seen (whether or not it was requested).
    pub blink_detected: bool,
    /// Largest minus smallest yaw across frames, in degrees.
    pub yaw_range_deg: f32,
    /// Lowest cosine of any frame with the first.
    pub min_cosine: f32,
    /// Whether all frames were (nearly) the same picture.
    pub static_sequence: bool,
    /// Frames judged live by the passive checks.
    pub passive_live_frames: usize,
    /// Per-frame measurements.
    pub frames: Vec<FrameReport>,
}

/// Judges a frame sequence. Fails with the first frame's face error when a frame has no
/// usable face.
pub fn analyze(
    passive: &PassiveAnalyzer,
    mesh: &FaceMesh,
    frames: &[RgbImage],
    challenges: Challenges,
    t: &LivenessThresholds,
) -> Result<ActiveReport> {
    let mut reports = Vec::with_capacity(frames.len());
    let mut first_embedding = None;
    for img in frames {
        let face = passive
            .analyzer
            .analyze(img, crate::vision::facematch::Role::Selfie)?;
        let signals = passive.signals(img, &face)?;
        let measures = mesh.landmarks(img, &face.face)?.measures();
        let first = first_embedding.get_or_insert_with(|| face.embedding.clone());
        reports.push(FrameReport {
            mesh: measures,
            cosine_to_first: first.cosine(&face.embedding),
            passive: decide(signals, t),
        });
    }
    let openness: Vec<f32> = reports.iter().map(|r| r.mesh.eye_openness).collect();
    let yaws: Vec<f32> = reports.iter().map(|r| r.mesh.yaw_deg).collect();
    let max_open = openness.iter().copied().fold(0.0, f32::max);
    let min_open = openness.iter().copied().fold(f32::INFINITY, f32::min);
    let blink_detected = max_open >= MIN_OPEN_EYES && min_open <= BLINK_RATIO * max_open;
    let yaw_range_deg = yaws.iter().copied().fold(f32::NEG_INFINITY, f32::max)
        - yaws.iter().copied().fold(f32::INFINITY, f32::min);
    let min_cosine = reports
        .iter()
        .map(|r| r.cosine_to_first)
        .fold(1.0, f32::min);
    let static_sequence = is_static(frames);
    let passive_live_frames = reports.iter().filter(|r| r.passive.is_live).count();
    let mut failures = Vec::new();
    if static_sequence {
        failures.push("static_sequence");
    }
    if min_cosine < SAME_PERSON_COSINE {
        failures.push("identity_changed");
    }
    if challenges.blink && !blink_detected {
        failures.push("no_blink");
    }
    if challenges.pose && yaw_range_deg < MIN_YAW_RANGE_DEG {
        failures.push("no_head_turn");
    }
    // A majority of frames must pass the passive checks: one bad frame (motion blur) is noise.
    if passive_live_frames * 2 <= reports.len() {
        failures.push("passive_spoof");
    }
    Ok(ActiveReport {
        passed: failures.is_empty(),
        failures,
        blink_detected,
        yaw_range_deg,
        min_cosine,
        static_sequence,
        passive_live_frames,
        frames: reports,
    })
}

/// Whether every frame is (nearly) the same picture as the first: compared as 64×64 grey
/// thumbnails, so re-encoding noise does not count as change.
pub fn is_static(frames: &[RgbImage]) -> bool {
    let thumb = |img: &RgbImage| -> Vec<f32> {
        crate::vision::frame::resize(img, 64, 64)
            .pixels()
            .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
            .collect()
    };
    let Some(first) = frames.first().map(thumb) else {
        return true;
    };
    frames[1..].iter().all(|f| {
        let t = thumb(f);
        let diff: f32 = t.iter().zip(&first).map(|(a, b)| (a - b).abs()).sum();
        diff / t.len() as f32 <= STATIC_DIFF
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::facematch::FaceAnalyzer;
    use crate::vision::testutil;

    fn parts() -> (PassiveAnalyzer, FaceMesh) {
        let m = testutil::models();
        (
            PassiveAnalyzer::new(m, FaceAnalyzer::new(m)),
            FaceMesh::new(m),
        )
    }

    #[test]
    fn identical_frames_fail_as_static() {
        let (p, mesh) = parts();
        let img = testutil::face("obama.jpg");
        let frames = vec![img.clone(), img.clone(), img];
        let r = analyze(
            &p,
            &mesh,
            &frames,
            Challenges::default(),
            &Default::default(),
        )
        .unwrap();
        assert!(r.static_sequence && !r.passed, "{:?}", r.failures);
        assert!(r.failures.contains(&"static_sequence"));
        assert!(r.min_cosine > 0.99);
    }

    #[test]
    fn a_swapped_face_fails_identity() {
        let (p, mesh) = parts();
        let frames = vec![
            testutil::face("obama.jpg"),
            testutil::face("obama2.jpg"),
            testutil::face("biden.jpg"),
        ];
        let r = analyze(
            &p,
            &mesh,
            &frames,
            Challenges::default(),
            &Default::default(),
        )
        .unwrap();
        assert!(r.failures.contains(&"identity_changed"), "{:?}", r.failures);
        assert!(!r.static_sequence);
    }

    #[test]
    fn one_person_turning_passes_the_pose_challenge() {
        let (p, mesh) = parts();
        // Three photos of one person, the last mirrored: the yaw changes sign between frames.
        let base = testutil::face("obama2.jpg");
        let frames = vec![
            base.clone(),
            testutil::face("obama.jpg"),
            image::imageops::flip_horizontal(&base),
        ];
        let c = Challenges {
            blink: false,
            pose: true,
        };
        let r = analyze(&p, &mesh, &frames, c, &Default::default()).unwrap();
        eprintln!(
            "yaw range {:.1}, failures {:?}",
            r.yaw_range_deg, r.failures
        );
        assert!(r.min_cosine >= SAME_PERSON_COSINE, "{}", r.min_cosine);
        assert!(!r.failures.contains(&"identity_changed"));
        let asked_blink = analyze(
            &p,
            &mesh,
            &frames,
            Challenges {
                blink: true,
                pose: false,
            },
            &Default::default(),
        )
        .unwrap();
        // Eyes open in every photo: no blink.
        assert!(!asked_blink.blink_detected && asked_blink.failures.contains(&"no_blink"));
    }
}
