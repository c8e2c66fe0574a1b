//! Passive (single-frame) liveness with the two Silent-Face MiniFASNet models.
//!
//! For one detected face, [`AntiSpoof::score`] cuts two context crops around the face box,
//! ×2.7 for MiniFASNetV2 and ×4.0 for MiniFASNetV1SE, exactly as the upstream repository's
//! `generate_patches.py` does ([`crop_box`]), resizes each to 80×80 with `cv2.resize`'s bilinear
//! rule ([`resize_linear`]), feeds it as BGR 0–255
//! NCHW and reads the `prob` output, which is already a softmax over three classes (index 1 is
//! a real face, 0 and 2 are unnamed spoof classes). The two probability vectors are fused as the
//! repository's `test.py` does: summed, label = argmax, score = sum[label] / 2.
//!
//! The models were trained on RetinaFace boxes, and kycd feeds YuNet boxes, which are narrower
//! and taller; `models/MODELS.md` shows both give the same decisions on the reference samples,
//! but any threshold on [`PassiveScores::p_real`] must be calibrated on production-like data.
//! These scores are one piece of evidence: a screen replay that keeps good image quality can
//! pass them, so the liveness decision also needs non-model evidence.

use std::sync::Arc;

use image::{GenericImageView, RgbImage};
use serde::Serialize;

use super::detect::Face;
use super::frame::{self, ChannelOrder};
use super::runtime::{Model, Models, Tensor};
use super::{Result, VisionError};

/// Side of the square input both MiniFASNet models take.
pub const INPUT_SIDE: u32 = 80;
/// Context scale of the MiniFASNetV2 crop (its file name's `2.7`).
pub const V2_SCALE: f32 = 2.7;
/// Context scale of the MiniFASNetV1SE crop (its file name's `4.0`).
pub const V1SE_SCALE: f32 = 4.0;
/// Index of the "real face" class in each model's output.
pub const REAL_CLASS: usize = 1;

/// Inclusive crop corners `[x0, y0, x1, y1]` for a face box `[x, y, w, h]` in an
/// `img_w`×`img_h` image at context scale `scale`, following the repository's
/// `generate_patches.py` (`_get_new_box`).
///
/// The scale is first lowered to S' = min((H−1)/h, (W−1)/w, S) so the crop fits the image; the
/// w·S' × h·S' crop is centred on the box centre, shifted back inside [0, W−1]×[0, H−1] keeping
/// its size, and its corners are truncated to integers. The pixels to use are
/// `img[y0..=y1, x0..=x1]`. A box with a non-positive or non-finite side is treated as 1 px,
/// which keeps the result inside the image instead of producing NaN corners.
pub fn crop_box(img_w: u32, img_h: u32, bbox: [f32; 4], scale: f32) -> [u32; 4] {
    // f64 throughout: the reference runs in Python floats, and truncation to int makes the
    // corners sensitive to the last bits of x ± w·S'/2.
    let finite_or = |v: f32, d: f64| if v.is_finite() { f64::from(v) } else { d };
    let (x, y) = (finite_or(bbox[0], 0.0), finite_or(bbox[1], 0.0));
    let w = finite_or(bbox[2], 1.0).max(1.0);
    let h = finite_or(bbox[3], 1.0).max(1.0);
    let (max_x, max_y) = (f64::from(img_w) - 1.0, f64::from(img_h) - 1.0);
    // max(0): an empty image must not turn into a negative crop size.
    let s = (max_y / h)
        .min(max_x / w)
        .min(finite_or(scale, 1.0))
        .max(0.0);
    let (new_w, new_h) = (w * s, h * s);
    let (cx, cy) = (x + w / 2.0, y + h / 2.0);
    let (mut x0, mut y0) = (cx - new_w / 2.0, cy - new_h / 2.0);
    let (mut x1, mut y1) = (cx + new_w / 2.0, cy + new_h / 2.0);
    // The same four shifts, in the same order, as the reference.
    if x0 < 0.0 {
        x1 -= x0;
        x0 = 0.0;
    }
    if y0 < 0.0 {
        y1 -= y0;
        y0 = 0.0;
    }
    if x1 > max_x {
        x0 -= x1 - max_x;
        x1 = max_x;
    }
    if y1 > max_y {
        y0 -= y1 - max_y;
        y1 = max_y;
    }
    // Python's int() truncates toward zero; `as u32` does too and saturates the tiny negatives
    // float rounding can leave after a shift (and anything for an empty image) at 0.
    let (last_x, last_y) = (img_w.saturating_sub(1), img_h.saturating_sub(1));
    [
        (x0 as u32).min(last_x),
        (y0 as u32).min(last_y),
        (x1 as u32).min(last_x),
        (y1 as u32).min(last_y),
    ]
}

/// The context crop of [`crop_box`] resized to the models' 80×80 input with OpenCV's
/// `INTER_LINEAR` rule ([`resize_linear`]). Fails only on an empty image.
pub fn crop_80(img: &RgbImage, bbox: [f32; 4], scale: f32) -> Result<RgbImage> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(VisionError::InvalidImage("empty image".into()));
    }
    let [x0, y0, x1, y1] = crop_box(w, h, bbox, scale);
    // Inclusive corners, as the reference slices img[y0:y1+1, x0:x1+1].
    let crop = img.view(x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image();
    Ok(resize_linear(&crop, INPUT_SIDE, INPUT_SIDE))
}

/// Bilinear resize with OpenCV's `INTER_LINEAR` sampling: each output pixel interpolates the
/// 2×2 source pixels around `(d + 0.5)·src/dst − 0.5`, with no widening of the filter when
/// shrinking (edge samples clamp to the border).
///
/// Not [`frame::resize`]: its triangle filter widens and averages when shrinking, but the
/// models were trained on `cv2.resize` crops, which keep the aliased high-frequency texture a
/// ×3–×6 downscale of a face crop produces. With the averaging filter obama2.jpg's fused
/// `p_real` dropped from 0.98 to 0.79 (refined YuNet box), so the texture matters to the models.
pub fn resize_linear(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (sw, sh) = src.dimensions();
    if sw == 0 || sh == 0 {
        return RgbImage::new(width, height);
    }
    // Per output coordinate: left/top source index and the weight of the next one.
    let taps = |dst: u32, n_src: u32| -> Vec<(u32, u32, f32)> {
        let ratio = n_src as f32 / dst as f32;
        (0..dst)
            .map(|d| {
                let f = (d as f32 + 0.5) * ratio - 0.5;
                let i = f.floor();
                let (i, t) = if i < 0.0 {
                    (0, 0.0)
                } else if i >= (n_src - 1) as f32 {
                    (n_src - 1, 0.0)
                } else {
                    (i as u32, f - i)
                };
                (i, (i + 1).min(n_src - 1), t)
            })
            .collect()
    };
    let (xs, ys) = (taps(width, sw), taps(height, sh));
    RgbImage::from_fn(width, height, |x, y| {
        let (x0, x1, tx) = xs[x as usize];
        let (y0, y1, ty) = ys[y as usize];
        let [a, b, c, d] =
            [(x0, y0), (x1, y0), (x0, y1), (x1, y1)].map(|(u, v)| src.get_pixel(u, v));
        image::Rgb(std::array::from_fn(|k| {
            let top = f32::from(a[k]) * (1.0 - tx) + f32::from(b[k]) * tx;
            let bottom = f32::from(c[k]) * (1.0 - tx) + f32::from(d[k]) * tx;
            (top * (1.0 - ty) + bottom * ty).round().clamp(0.0, 255.0) as u8
        }))
    })
}

/// Both models' outputs for one face and their fusion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PassiveScores {
    /// MiniFASNetV2 (×2.7 crop) probabilities `[spoof0, real, spoof2]`.
    pub v2: [f32; 3],
    /// MiniFASNetV1SE (×4.0 crop) probabilities `[spoof0, real, spoof2]`.
    pub v1se: [f32; 3],
    /// Argmax of `v2 + v1se`; [`REAL_CLASS`] (1) means the fused models call the face real.
    pub fused_label: usize,
    /// `(v2 + v1se)[fused_label] / 2`: the fused confidence in that label, in [0, 1].
    pub fused_score: f32,
    /// `(v2[1] + v1se[1]) / 2`: the fused probability of a real face, whatever the label.
    pub p_real: f32,
}

impl PassiveScores {
    /// Fuses two probability vectors as the reference `test.py` does.
    pub fn fuse(v2: [f32; 3], v1se: [f32; 3]) -> PassiveScores {
        let sum = [v2[0] + v1se[0], v2[1] + v1se[1], v2[2] + v1se[2]];
        // First maximum wins on ties, like numpy's argmax.
        let fused_label = (1..3).fold(0, |best, i| if sum[i] > sum[best] { i } else { best });
        PassiveScores {
            v2,
            v1se,
            fused_label,
            fused_score: sum[fused_label] / 2.0,
            p_real: sum[REAL_CLASS] / 2.0,
        }
    }

    /// Whether the fused label is the real-face class.
    pub fn is_real(&self) -> bool {
        self.fused_label == REAL_CLASS
    }
}

/// The two MiniFASNet models, ready to score faces.
#[derive(Clone)]
pub struct AntiSpoof {
    v2: Arc<dyn Model>,
    v1se: Arc<dyn Model>,
}

impl AntiSpoof {
    /// Shares the anti-spoof models already loaded in `models`.
    pub fn new(models: &Models) -> Self {
        AntiSpoof {
            v2: models.antispoof_v2.clone(),
            v1se: models.antispoof_v1se.clone(),
        }
    }

    /// Scores `face` (as found by the detector in `img`) with both models and fuses them.
    pub fn score(&self, img: &RgbImage, face: &Face) -> Result<PassiveScores> {
        let v2 = run(self.v2.as_ref(), &crop_80(img, face.bbox, V2_SCALE)?, "v2")?;
        let v1se = run(
            self.v1se.as_ref(),
            &crop_80(img, face.bbox, V1SE_SCALE)?,
            "v1se",
        )?;
        Ok(PassiveScores::fuse(v2, v1se))
    }
}

/// Runs one model on an 80×80 crop and checks that it returned a probability vector.
fn run(model: &dyn Model, crop: &RgbImage, name: &str) -> Result<[f32; 3]> {
    let input: Tensor = frame::to_nchw(crop, ChannelOrder::Bgr, INPUT_SIDE, INPUT_SIDE)?;
    let out = model.run(input, &["prob"])?;
    let data = out
        .first()
        .map(|t| t.data.as_slice())
        .ok_or_else(|| VisionError::Model(format!("MiniFASNet {name}: no output")))?;
    let probs: [f32; 3] = data.try_into().map_err(|_| {
        VisionError::Model(format!(
            "MiniFASNet {name}: expected 3 probabilities, got {}",
            data.len()
        ))
    })?;
    // The softmax is inside the graph, so anything else means a wrong or corrupted model.
    let sum: f32 = probs.iter().sum();
    if probs.iter().any(|p| !(0.0..=1.0).contains(p)) || (sum - 1.0).abs() > 1e-3 {
        return Err(VisionError::Model(format!(
            "MiniFASNet {name}: output {probs:?} is not a probability vector"
        )));
    }
    Ok(probs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::facematch::{FaceAnalyzer, Role};
    use crate::vision::testutil;
    use image::{imageops, Rgb};

    fn antispoof() -> AntiSpoof {
        AntiSpoof::new(testutil::models())
    }

    /// The face the selfie path would use: Role::Selfie detection (320 px), refined.
    fn selfie_face(img: &RgbImage) -> Face {
        FaceAnalyzer::new(testutil::models())
            .analyze(img, Role::Selfie)
            .unwrap()
            .face
    }

    #[test]
    fn crop_box_matches_hand_computed_reference() {
        // Near the top-left corner: 270×270 crop centred at (60, 70), shifted right by 75 and
        // down by 65.
        assert_eq!(
            crop_box(640, 480, [10.0, 20.0, 100.0, 100.0], 2.7),
            [0, 0, 270, 270]
        );
        // Near the bottom-right corner: 240×240 crop from (470, 310) to (710, 550), shifted
        // left by 710 − 639 = 71 and up by 550 − 479 = 71.
        assert_eq!(
            crop_box(640, 480, [560.0, 400.0, 60.0, 60.0], 4.0),
            [399, 239, 639, 479]
        );
        // Scale clamp: S' = min(299/120, 399/100, 4) = 2.4917, so the crop is 249.17 × 299,
        // x from 75.42 to 324.58, y from 10.5 to 309.5, shifted up by 10.5.
        assert_eq!(
            crop_box(400, 300, [150.0, 100.0, 100.0, 120.0], 4.0),
            [75, 0, 324, 299]
        );
        // Inside, fractional: 405×540 centred at (475.6, 400.2), corners truncated.
        assert_eq!(
            crop_box(1000, 1000, [400.6, 300.2, 150.0, 200.0], 2.7),
            [273, 130, 678, 670]
        );
    }

    #[test]
    fn crop_box_stays_inside_for_degenerate_input() {
        let boxes = [
            [-50.0, -80.0, 30.0, 40.0],
            [900.0, 900.0, 500.0, 500.0],
            [10.0, 10.0, 0.0, f32::NAN],
        ];
        for b in boxes {
            let [x0, y0, x1, y1] = crop_box(320, 240, b, 4.0);
            assert!(x0 <= x1 && x1 < 320 && y0 <= y1 && y1 < 240, "{b:?}");
        }
        assert_eq!(crop_box(1, 1, [0.0, 0.0, 5.0, 5.0], 2.7), [0, 0, 0, 0]);
        let empty = RgbImage::new(0, 0);
        assert!(crop_80(&empty, [0.0, 0.0, 1.0, 1.0], 2.7).is_err());
        let tiny = RgbImage::new(3, 2);
        assert_eq!(
            crop_80(&tiny, [0.0, 0.0, 2.0, 2.0], 4.0)
                .unwrap()
                .dimensions(),
            (80, 80)
        );
    }

    #[test]
    fn resize_linear_samples_like_opencv() {
        // 4 → 2 px: output centres map to source 0.5 and 2.5, the mean of each pair; no wider
        // averaging. 2 → 4 px: centres map to −0.25 (clamped), 0.25, 0.75 and 1.25.
        let row = |v: &[u8]| RgbImage::from_fn(v.len() as u32, 1, |x, _| Rgb([v[x as usize]; 3]));
        let out = resize_linear(&row(&[0, 100, 200, 40]), 2, 1);
        assert_eq!([out.get_pixel(0, 0)[0], out.get_pixel(1, 0)[0]], [50, 120]);
        let out = resize_linear(&row(&[0, 100]), 4, 1);
        let px: Vec<u8> = (0..4).map(|x| out.get_pixel(x, 0)[1]).collect();
        assert_eq!(px, [0, 25, 75, 100]);
    }

    #[test]
    fn fusion_follows_the_reference() {
        // MODELS.md, F1 with the YuNet box: label 2, score 0.7240.
        let s = PassiveScores::fuse([0.0321, 0.0180, 0.9499], [0.0627, 0.4392, 0.4982]);
        assert_eq!(s.fused_label, 2);
        assert!((s.fused_score - 0.72405).abs() < 1e-5 && !s.is_real());
        assert!((s.p_real - 0.2286).abs() < 1e-5);
        let s = PassiveScores::fuse([0.0001, 0.9902, 0.0096], [0.0, 0.9969, 0.0031]);
        assert!(s.is_real() && (s.fused_score - 0.99355).abs() < 1e-5);
    }

    #[test]
    fn real_selfies_are_real() {
        let spoof = antispoof();
        for name in ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"] {
            let img = testutil::face(name);
            let s = spoof.score(&img, &selfie_face(&img)).unwrap();
            eprintln!("{name}: {s:?}");
            assert!(s.is_real() && s.p_real >= 0.9, "{name}: {s:?}");
        }
    }

    /// obama.jpg as a phone camera would see it re-displayed on a low-resolution screen:
    /// pixelated, with an RGB sub-pixel stripe grid, a moiré ripple and a dark bezel.
    fn screen_replay(img: &RgbImage) -> RgbImage {
        let (w, h) = img.dimensions();
        let low = frame::resize(img, w / 4, h / 4);
        let pixelated = imageops::resize(&low, w, h, imageops::FilterType::Nearest);
        let bezel = w / 12;
        let mut out = RgbImage::from_pixel(w + 2 * bezel, h + 2 * bezel, Rgb([18, 18, 20]));
        for (x, y, px) in pixelated.enumerate_pixels() {
            // Each screen column lights one sub-pixel colour strongly and the others dimly.
            let lit = (x % 3) as usize;
            let (fx, fy) = (x as f32, y as f32);
            let moire = 1.0 + 0.18 * ((fx * 0.93 + fy * 0.37) * std::f32::consts::TAU / 7.0).sin();
            let mut p = [0u8; 3];
            for (c, v) in p.iter_mut().enumerate() {
                let gain = if c == lit { 1.0 } else { 0.45 };
                *v = (f32::from(px[c]) * gain * moire).clamp(0.0, 255.0) as u8;
            }
            out.put_pixel(x + bezel, y + bezel, Rgb(p));
        }
        out
    }

    #[test]
    fn synthetic_screen_replay_is_caught() {
        let img = testutil::face("obama.jpg");
        let attack = screen_replay(&img);
        let s = antispoof().score(&attack, &selfie_face(&attack)).unwrap();
        eprintln!("screen replay of obama.jpg: {s:?}");
        for probs in [s.v2, s.v1se] {
            assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-3, "{s:?}");
        }
        assert!((s.p_real - (s.v2[1] + s.v1se[1]) / 2.0).abs() < 1e-6);
        // Measured: fused label 2, p_real 0.19 (V2 0.38, V1SE 0.004). It is the bezel, seen by
        // V1SE's ×4 crop, that decides: without it the same texture scored p_real 0.9986, so
        // this pins one synthetic case and proves nothing about screen texture detection.
        assert!(!s.is_real() && s.p_real < 0.5, "{s:?}");
    }
}
