//! The MediaPipe face mesh: 468 landmarks on a face, for eye openness (blink) and head yaw.
//!
//! Per `models/MODELS.md`: a square crop of the face box enlarged 1.5×, rotated upright by the
//! eye line, 192×192 RGB in [0, 1] NHWC → `conv2d_20` (468 × x, y, z in crop pixels) and
//! `conv2d_30` (face-presence logit). Landmarks are mapped back to image pixels.

use std::sync::Arc;

use image::RgbImage;
use serde::Serialize;

use crate::vision::align::{self, Affine};
use crate::vision::detect::Face;
use crate::vision::runtime::{Model, Models, Tensor};
use crate::vision::{Result, VisionError};

/// Side of the model's square input.
pub const INPUT_SIDE: u32 = 192;
/// Crop side as a multiple of the face box's longer side.
pub const CROP_SCALE: f32 = 1.5;
/// Number of landmarks.
pub const POINTS: usize = 468;

// Mesh indices of the eye corners and lids (MediaPipe's canonical face topology).
const EYE_A: [usize; 4] = [33, 133, 159, 145];
const EYE_B: [usize; 4] = [362, 263, 386, 374];
const NOSE_TIP: usize = 1;
const CHEEK_A: usize = 234;
const CHEEK_B: usize = 454;

/// Landmarks of one face.
#[derive(Debug, Clone)]
pub struct Mesh {
    /// Landmarks in crop coordinates (upright, 192×192), where ratios are measured.
    pub crop_points: Vec<[f32; 3]>,
    /// The same landmarks in original image pixels (x, y).
    pub image_points: Vec<[f32; 2]>,
    /// Face-presence probability (sigmoid of the model's logit).
    pub presence: f32,
}

/// What the mesh says about the face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeshMeasures {
    /// Mean over both eyes of lid gap over eye width; about 0.25–0.35 open, under 0.1 closed.
    pub eye_openness: f32,
    /// Head yaw in degrees from the nose tip's place between the cheek contours; positive when
    /// the nose points to the image's right.
    pub yaw_deg: f32,
    /// Face-presence probability.
    pub presence: f32,
}

impl Mesh {
    /// Eye openness and yaw.
    pub fn measures(&self) -> MeshMeasures {
        let p = &self.crop_points;
        let dist = |a: usize, b: usize| {
            let (pa, pb) = (p[a], p[b]);
            ((pa[0] - pb[0]).powi(2) + (pa[1] - pb[1]).powi(2)).sqrt()
        };
        let eye = |e: [usize; 4]| dist(e[2], e[3]) / dist(e[0], e[1]).max(1e-3);
        let (left, right) = (p[CHEEK_A][0], p[CHEEK_B][0]);
        let r = (p[NOSE_TIP][0] - left) / (right - left).abs().max(1e-3);
        // A head turned by θ moves the nose tip from the middle by sin θ of the half-width.
        let yaw = (2.0 * r - 1.0).clamp(-1.0, 1.0).asin().to_degrees();
        MeshMeasures {
            eye_openness: (eye(EYE_A) + eye(EYE_B)) / 2.0,
            yaw_deg: if right >= left { yaw } else { -yaw },
            presence: self.presence,
        }
    }
}

/// The mesh model, ready to run.
#[derive(Clone)]
pub struct FaceMesh {
    model: Arc<dyn Model>,
}

impl FaceMesh {
    /// Shares the mesh model already loaded.
    pub fn new(models: &Models) -> Self {
        FaceMesh {
            model: models.face_mesh.clone(),
        }
    }

    /// Runs the mesh on `face` (as detected in `img`).
    pub fn landmarks(&self, img: &RgbImage, face: &Face) -> Result<Mesh> {
        let m = crop_transform(face);
        let crop = align::warp_affine(img, &m, INPUT_SIDE, INPUT_SIDE);
        let data: Vec<f32> = crop
            .pixels()
            .flat_map(|p| p.0.map(|v| f32::from(v) / 255.0))
            .collect();
        let side = INPUT_SIDE as usize;
        let input = Tensor::new(vec![1, side, side, 3], data)?;
        let out = self.model.run(input, &["conv2d_20", "conv2d_30"])?;
        let (points, logit) = match out.as_slice() {
            [p, l] if p.data.len() == POINTS * 3 && l.data.len() == 1 => (&p.data, l.data[0]),
            _ => {
                return Err(VisionError::Model(
                    "face mesh: unexpected output shape".into(),
                ))
            }
        };
        let inv = align::invert(&m)
            .ok_or_else(|| VisionError::Model("face mesh: degenerate crop".into()))?;
        let crop_points: Vec<[f32; 3]> =
            points.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        let image_points = crop_points
            .iter()
            .map(|c| align::apply(&inv, [c[0], c[1]]))
            .collect();
        Ok(Mesh {
            crop_points,
            image_points,
            presence: 1.0 / (1.0 + (-logit).exp()),
        })
    }
}

/// Image → crop: centre the face box, scale its longer side × [`CROP_SCALE`] to the input side,
/// and rotate the eye line level.
fn crop_transform(face: &Face) -> Affine {
    let [bx, by, bw, bh] = face.bbox.map(f64::from);
    let (cx, cy) = (bx + bw / 2.0, by + bh / 2.0);
    let [e0, e1] = [face.landmarks[0], face.landmarks[1]];
    let angle = f64::from(e1[1] - e0[1]).atan2(f64::from(e1[0] - e0[0]));
    let k = f64::from(INPUT_SIDE) / (bw.max(bh) * f64::from(CROP_SCALE)).max(1.0);
    let (s, c) = angle.sin_cos();
    let half = f64::from(INPUT_SIDE) / 2.0;
    [
        [k * c, k * s, half - k * (c * cx + s * cy)],
        [-k * s, k * c, half - k * (-s * cx + c * cy)],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::facematch::{FaceAnalyzer, Role};
    use crate::vision::testutil;

    fn mesh_of(img: &RgbImage) -> MeshMeasures {
        let face = FaceAnalyzer::new(testutil::models())
            .analyze(img, Role::Selfie)
            .unwrap()
            .face;
        let mesh = FaceMesh::new(testutil::models())
            .landmarks(img, &face)
            .unwrap();
        // The mesh lands on the detected face: its nose tip near YuNet's nose point.
        let nose = mesh.image_points[NOSE_TIP];
        let d = ((nose[0] - face.landmarks[2][0]).powi(2)
            + (nose[1] - face.landmarks[2][1]).powi(2))
        .sqrt();
        assert!(
            d < 0.25 * face.inter_eye_px(),
            "nose {nose:?} vs {:?}",
            face.landmarks[2]
        );
        mesh.measures()
    }

    #[test]
    fn open_eyes_and_frontal_pose_on_real_photos() {
        for name in ["obama.jpg", "obama2.jpg", "biden.jpg"] {
            let m = mesh_of(&testutil::face(name));
            eprintln!("{name}: {m:?}");
            assert!(m.presence > 0.9, "{name}: {m:?}");
            assert!(
                m.eye_openness > 0.15 && m.eye_openness < 0.6,
                "{name}: {m:?}"
            );
            assert!(m.yaw_deg.abs() < 25.0, "{name}: {m:?}");
        }
    }

    #[test]
    fn mirroring_flips_the_sign_of_yaw() {
        let img = testutil::face("obama2.jpg");
        let flipped = image::imageops::flip_horizontal(&img);
        let (a, b) = (mesh_of(&img), mesh_of(&flipped));
        // Opposite signs, similar size: the flipped image's detection box differs a little, so
        // the crop (and the estimate) is not an exact mirror.
        assert!(a.yaw_deg * b.yaw_deg < 0.0, "{a:?} vs {b:?}");
        assert!((a.yaw_deg + b.yaw_deg).abs() < 8.0, "{a:?} vs {b:?}");
    }
}
