//! A rectangle around the face: the bezel of a phone or tablet held up to the camera, or the edge
//! of a printed photo. A live selfie has the face against a room, where a long straight edge may
//! pass on one side but rarely on three sides at once.
//!
//! On a grey copy of the image (long side [`WORK_SIDE`]), each side of the face box is searched
//! for a straight edge within ±[`MAX_TILT_DEG`] of the box's axis that runs across the face's whole
//! extent (a span of twice the face's size, centred on it): the share of the span whose gradient is
//! strong and oriented across the line is that side's coverage. The frame score is the
//! third-highest of the four coverages, so three enclosing sides are needed; a phone held from
//! below often leaves the bottom edge out of the picture.

use image::RgbImage;
use serde::Serialize;

/// Long side of the working copy.
pub const WORK_SIDE: u32 = 320;
/// Largest tilt of a frame edge considered, in degrees.
pub const MAX_TILT_DEG: f32 = 10.0;
/// Half-length of the searched edge, in face sizes from the face centre: a frame's edge runs
/// well past the face, the contour of a shoulder or a chair does not.
const SPAN: f32 = 1.0;
/// Smallest distance between the face box and a frame edge, in face sizes (ears and hair sit
/// closer).
const GAP: f32 = 0.2;
/// Sobel magnitude (on 0–255 luma) above which a pixel counts as edge.
const EDGE_LEVEL: f32 = 48.0;

/// Straight edges found around the face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FrameEdges {
    /// Coverage (0–1) of the best straight edge above, below, left and right of the face.
    pub coverage: [f32; 4],
    /// Third-highest coverage: how well three sides enclose the face.
    pub score: f32,
    /// Mean luma (0–255) of the darker side of the enclosing edges: a phone bezel is near black,
    /// a paper border light.
    pub border_luma: f32,
}

/// The sides in [`FrameEdges::coverage`] order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Top,
    Bottom,
    Left,
    Right,
}

/// Searches the four sides of `bbox` (in `img`'s pixels) for enclosing straight edges.
pub fn measure(img: &RgbImage, bbox: [f32; 4]) -> FrameEdges {
    let (w0, h0) = img.dimensions();
    let scale = (WORK_SIDE as f32 / w0.max(h0) as f32).min(1.0);
    let (w, h) = (
        ((w0 as f32 * scale).round() as usize).max(1),
        ((h0 as f32 * scale).round() as usize).max(1),
    );
    let small = super::super::frame::resize(img, w as u32, h as u32);
    let luma: Vec<f32> = small
        .pixels()
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect();
    let grad = Gradients::sobel(&luma, w, h);
    let b = bbox.map(|v| v * scale);
    let mut coverage = [0.0f32; 4];
    let mut border = [255.0f32; 4];
    for (i, side) in [Side::Top, Side::Bottom, Side::Left, Side::Right]
        .into_iter()
        .enumerate()
    {
        (coverage[i], border[i]) = best_line(&grad, &luma, b, side);
    }
    let mut sorted = coverage;
    sorted.sort_by(|a, b| b.total_cmp(a));
    // The darker border among the three best sides.
    let mut order = [0usize, 1, 2, 3];
    order.sort_by(|&a, &b| coverage[b].total_cmp(&coverage[a]));
    let border_luma = order[..3]
        .iter()
        .map(|&i| border[i])
        .fold(255.0f32, f32::min);
    FrameEdges {
        coverage,
        score: sorted[2],
        border_luma,
    }
}

struct Gradients {
    gx: Vec<f32>,
    gy: Vec<f32>,
    w: usize,
    h: usize,
}

impl Gradients {
    fn sobel(l: &[f32], w: usize, h: usize) -> Gradients {
        let mut gx = vec![0.0; w * h];
        let mut gy = vec![0.0; w * h];
        for y in 1..h.saturating_sub(1) {
            for x in 1..w.saturating_sub(1) {
                let p = |dx: isize, dy: isize| {
                    l[(y as isize + dy) as usize * w + (x as isize + dx) as usize]
                };
                gx[y * w + x] =
                    p(1, -1) + 2.0 * p(1, 0) + p(1, 1) - p(-1, -1) - 2.0 * p(-1, 0) - p(-1, 1);
                gy[y * w + x] =
                    p(-1, 1) + 2.0 * p(0, 1) + p(1, 1) - p(-1, -1) - 2.0 * p(0, -1) - p(1, -1);
            }
        }
        Gradients { gx, gy, w, h }
    }
}

/// Best coverage of a straight edge on `side` of the face box `b` (working pixels), with the mean
/// luma on the darker side of that edge.
fn best_line(g: &Gradients, luma: &[f32], b: [f32; 4], side: Side) -> (f32, f32) {
    let [bx, by, bw, bh] = b;
    let horizontal = matches!(side, Side::Top | Side::Bottom);
    // Positions along the line (the span) and across it (the search range).
    let (along_len, across_len) = if horizontal { (g.w, g.h) } else { (g.h, g.w) };
    let (span_c, span_half) = if horizontal {
        (bx + bw / 2.0, bw * SPAN)
    } else {
        (by + bh / 2.0, bh * SPAN)
    };
    let s0 = (span_c - span_half).max(1.0) as usize;
    let s1 = ((span_c + span_half) as usize).min(along_len.saturating_sub(2));
    if s1 <= s0 + 4 {
        return (0.0, 255.0);
    }
    let gap = GAP * bw.max(bh);
    let (c0, c1) = match side {
        Side::Top => (1.0, by - gap),
        Side::Bottom => (by + bh + gap, (g.h - 2) as f32),
        Side::Left => (1.0, bx - gap),
        Side::Right => (bx + bw + gap, (g.w - 2) as f32),
    };
    if c1 <= c0 {
        return (0.0, 255.0);
    }
    let (c0, c1) = (c0.max(1.0) as usize, (c1 as usize).min(across_len - 2));
    let mid = (s0 + s1) as f32 / 2.0;
    let mut best = (0.0f32, 255.0f32);
    let mut tilt = -MAX_TILT_DEG;
    while tilt <= MAX_TILT_DEG + 1e-3 {
        let slope = tilt.to_radians().tan();
        for c in c0..=c1 {
            let (mut rising, mut falling, mut total) = (0usize, 0usize, 0usize);
            let (mut side_a, mut side_b) = (0.0f32, 0.0f32);
            for s in s0..=s1 {
                let cross = c as f32 + slope * (s as f32 - mid);
                if cross < 1.0 || cross > (across_len - 2) as f32 {
                    continue;
                }
                let ci = cross.round() as usize;
                let (x, y) = if horizontal { (s, ci) } else { (ci, s) };
                let i = y * g.w + x;
                let (across, along) = if horizontal {
                    (g.gy[i], g.gx[i])
                } else {
                    (g.gx[i], g.gy[i])
                };
                total += 1;
                if across.abs() > EDGE_LEVEL && across.abs() > along.abs() {
                    if across > 0.0 {
                        rising += 1;
                    } else {
                        falling += 1;
                    }
                }
                let off = |d: isize| {
                    let cc = (ci as isize + d).clamp(0, across_len as isize - 1) as usize;
                    if horizontal {
                        luma[cc * g.w + x]
                    } else {
                        luma[y * g.w + cc]
                    }
                };
                side_a += off(-3);
                side_b += off(3);
            }
            if total == 0 {
                continue;
            }
            // Normalise by the full span so a line clipped by the image edge counts less.
            // One polarity only: a frame edge is dark-to-light (or the reverse) all along, where
            // clutter alternates.
            let coverage = rising.max(falling) as f32 / (s1 - s0 + 1) as f32;
            if coverage > best.0 {
                best = (coverage, side_a.min(side_b) / total as f32);
            }
        }
        tilt += 2.0;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A mid-grey scene with a face-sized blob in the middle, optionally inside a dark rectangle.
    fn scene(frame: bool) -> RgbImage {
        RgbImage::from_fn(400, 300, |x, y| {
            let inside_frame = (80..320).contains(&x) && (40..280).contains(&y);
            let in_face = (160..240).contains(&x) && (100..200).contains(&y);
            if in_face {
                Rgb([190, 150, 130])
            } else if frame && !inside_frame {
                Rgb([20, 20, 22])
            } else {
                Rgb([120, 125, 118])
            }
        })
    }

    #[test]
    fn an_enclosing_rectangle_scores_high_and_an_open_scene_low() {
        let face = [160.0, 100.0, 80.0, 100.0];
        let framed = measure(&scene(true), face);
        let open = measure(&scene(false), face);
        assert!(framed.score > 0.9, "{framed:?}");
        assert!(framed.border_luma < 40.0, "{framed:?}");
        assert!(open.score < 0.1, "{open:?}");
    }
}
