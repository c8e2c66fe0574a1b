//! PP-OCRv5 text detection (DBNet) and its post-processing, per `models/MODELS.md`: the image
//! stretched to multiples of 32 (long side ≤ 960), BGR with ImageNet normalisation; the
//! probability map thresholded at 0.3; each connected region's minimum-area rectangle kept if its
//! short side is ≥ 3 and its mean probability ≥ 0.6, then grown by area·1.5/perimeter ("unclip")
//! and kept if its short side is then ≥ 5.

use std::sync::Arc;

use image::RgbImage;

use super::geometry::{min_area_rect, RotatedRect};
use crate::vision::frame;
use crate::vision::runtime::{Model, Tensor};
use crate::vision::{Result, VisionError};

/// Long side of the detector's input.
pub const MAX_SIDE: u32 = 960;
/// [`Detail::Enlarged`] enlarges a small photo so its long side reaches
/// [`MAX_SIDE`], by at most this factor: the detector misses text a few pixels tall (a 250 px
/// card back's MRZ) and finds it once the glyphs are nearer the size it was trained on. Not the
/// default: on photos it reads as they are, the boxes found enlarged crop worse.
pub const MAX_UPSCALE: f32 = 4.0;
/// Long side of the detector's input for [`Detail::Full`]: a large photo read at (nearly) its
/// own resolution. At 960 the two lines of a passport MRZ photographed at a slant on a
/// 1600 px photo run into one region; at 1600 they are two lines.
pub const FULL_SIDE: u32 = 1600;

/// How finely the detector looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Long side at most [`MAX_SIDE`]: the default.
    Normal,
    /// A small photo enlarged towards [`MAX_SIDE`] (see [`MAX_UPSCALE`]).
    Enlarged,
    /// A large photo at its own resolution, long side at most [`FULL_SIDE`].
    Full,
}
const BITMAP_THRESHOLD: f32 = 0.3;
const BOX_THRESHOLD: f32 = 0.6;
const UNCLIP_RATIO: f32 = 1.5;
const MAX_CANDIDATES: usize = 1000;
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// A detected text region in image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextBox {
    /// The (grown) rectangle around the text.
    pub rect: RotatedRect,
    /// Mean text probability inside the rectangle before growing.
    pub score: f32,
}

/// The DB text detector.
#[derive(Clone)]
pub struct TextDetector {
    model: Arc<dyn Model>,
}

/// Input size for an image of `w`×`h`: scaled so the long side is at most [`MAX_SIDE`] (or
/// reaches it, enlarged by at most `upscale`), each side rounded to a multiple of 32 (at least
/// 32).
pub fn input_size(w: u32, h: u32, upscale: f32) -> (u32, u32) {
    input_size_within(w, h, MAX_SIDE, upscale)
}

/// [`input_size`] with the long side at most `max_side`.
fn input_size_within(w: u32, h: u32, max_side: u32, upscale: f32) -> (u32, u32) {
    let r = (max_side as f32 / w.max(h).max(1) as f32).min(upscale.max(1.0));
    let round = |v: u32| (((v as f32 * r) / 32.0).round() as u32 * 32).max(32);
    (round(w), round(h))
}

impl TextDetector {
    /// Wraps the loaded detection model.
    pub fn new(model: Arc<dyn Model>) -> Self {
        TextDetector { model }
    }

    /// Finds text regions in `img`, in no particular order.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<TextBox>> {
        self.detect_with(img, Detail::Normal)
    }

    /// [`TextDetector::detect`] at the given [`Detail`].
    pub fn detect_with(&self, img: &RgbImage, detail: Detail) -> Result<Vec<TextBox>> {
        match detail {
            Detail::Normal => self.detect_scaled(img, MAX_SIDE, 1.0),
            Detail::Enlarged => self.detect_scaled(img, MAX_SIDE, MAX_UPSCALE),
            Detail::Full => self.detect_scaled(img, FULL_SIDE, 1.0),
        }
    }

    fn detect_scaled(&self, img: &RgbImage, max_side: u32, upscale: f32) -> Result<Vec<TextBox>> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Err(VisionError::InvalidImage("empty image".into()));
        }
        let (iw, ih) = input_size_within(w, h, max_side, upscale);
        let resized = frame::resize(img, iw, ih);
        let plane = (iw * ih) as usize;
        let mut data = vec![0.0f32; 3 * plane];
        for (i, p) in resized.pixels().enumerate() {
            // Channel 0 is blue: PaddleOCR feeds OpenCV's BGR with the mean/std in that order.
            for (c, &v) in [p[2], p[1], p[0]].iter().enumerate() {
                data[c * plane + i] = (f32::from(v) / 255.0 - MEAN[c]) / STD[c];
            }
        }
        let input = Tensor::new(vec![1, 3, ih as usize, iw as usize], data)?;
        let out = self.model.run(input, &["fetch_name_0"])?;
        let prob = out
            .first()
            .filter(|t| t.data.len() == plane)
            .ok_or_else(|| VisionError::Model("text detector: unexpected output".into()))?;
        let (sx, sy) = (w as f32 / iw as f32, h as f32 / ih as f32);
        Ok(boxes(&prob.data, iw as usize, ih as usize)
            .into_iter()
            .map(|b| TextBox {
                rect: b.rect.scaled(sx, sy),
                score: b.score,
            })
            .collect())
    }
}

/// DB post-processing on a `w`×`h` probability map; boxes in map pixels.
pub fn boxes(prob: &[f32], w: usize, h: usize) -> Vec<TextBox> {
    let mut label = vec![0u32; w * h];
    let mut out = Vec::new();
    let mut next = 0u32;
    let mut stack = Vec::new();
    for start in 0..w * h {
        if prob[start] <= BITMAP_THRESHOLD || label[start] != 0 {
            continue;
        }
        next += 1;
        if next as usize > MAX_CANDIDATES {
            break;
        }
        // Flood-fill one 8-connected region, keeping its boundary pixels.
        let mut boundary = Vec::new();
        label[start] = next;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            let mut edge = false;
            for dy in -1..=1isize {
                for dx in -1..=1isize {
                    if dx == 0 && dy == 0 {
                        continue;
                    }
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        edge = true;
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if prob[j] <= BITMAP_THRESHOLD {
                        edge = true;
                    } else if label[j] == 0 {
                        label[j] = next;
                        stack.push(j);
                    }
                }
            }
            if edge {
                boundary.push([x as f32, y as f32]);
            }
        }
        let Some(rect) = min_area_rect(&boundary) else {
            continue;
        };
        if rect.short_side() < 3.0 {
            continue;
        }
        let score = mean_inside(prob, w, h, &rect);
        if score < BOX_THRESHOLD {
            continue;
        }
        let d = rect.w * rect.h * UNCLIP_RATIO / (2.0 * (rect.w + rect.h)).max(1e-3);
        let grown = rect.grown(d);
        if grown.short_side() < 5.0 {
            continue;
        }
        out.push(TextBox { rect: grown, score });
    }
    out
}

/// Mean probability over the map pixels inside `rect`.
fn mean_inside(prob: &[f32], w: usize, h: usize, rect: &RotatedRect) -> f32 {
    let corners = rect.corners();
    let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for c in corners {
        x0 = x0.min(c[0]);
        x1 = x1.max(c[0]);
        y0 = y0.min(c[1]);
        y1 = y1.max(c[1]);
    }
    let clamp = |v: f32, hi: usize| (v.round().max(0.0) as usize).min(hi - 1);
    let (x0, x1, y0, y1) = (clamp(x0, w), clamp(x1, w), clamp(y0, h), clamp(y1, h));
    let (mut sum, mut n) = (0.0f32, 0usize);
    for y in y0..=y1 {
        for x in x0..=x1 {
            if rect.grown(0.5).contains(x as f32, y as f32) {
                sum += prob[y * w + x];
                n += 1;
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f32
    }
}
