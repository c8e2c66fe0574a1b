//! Five-point face alignment: the least-squares similarity transform from YuNet's landmarks to
//! the ArcFace 112×112 template, and the bilinear warp that produces the recogniser's input.
//!
//! This reproduces OpenCV's `FaceRecognizerSF::alignCrop`, which SFace was evaluated with
//! (`models/MODELS.md`): Umeyama similarity (rotation, uniform scale, shift, never a
//! reflection) and `warpAffine` with bilinear sampling and a black constant border. The warp is
//! hand-written (about 30 lines) rather than taken from `imageproc`, because imageproc 0.27
//! without default features still pulls nalgebra, rand 0.10, rand_distr and num, a large
//! compile cost for one function, and its pixel-centre convention would need checking against
//! OpenCV's anyway.

use image::{Rgb, RgbImage};

/// Side of the aligned crop.
pub const ALIGNED_SIZE: u32 = 112;

/// Where the five landmarks land in the 112×112 crop (the ArcFace template), in YuNet's order.
pub const ARCFACE_TEMPLATE: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// A 2×3 affine matrix `[[a, b, tx], [c, d, ty]]` mapping (x, y) to (a·x + b·y + tx, c·x + d·y + ty).
pub type Affine = [[f64; 3]; 2];

/// The similarity transform (scale·rotation + shift, no reflection) that best maps `src` onto
/// `dst` in the least-squares sense.
///
/// In 2-D every scaled rotation is `[[a, −b], [b, a]]`, so the problem is linear in (a, b) and
/// has the closed form below; it is the same minimiser Umeyama's SVD method gives with the
/// reflection guard, without needing an SVD. Degenerate input (all points equal) gives the
/// pure translation between the centroids.
pub fn similarity_transform(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Affine {
    let n = src.len().min(dst.len()).max(1) as f64;
    let mean = |pts: &[[f32; 2]]| {
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |(x, y), p| {
            (x + f64::from(p[0]), y + f64::from(p[1]))
        });
        (sx / n, sy / n)
    };
    let (spx, spy) = mean(src);
    let (dpx, dpy) = mean(dst);
    let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
    for (p, q) in src.iter().zip(dst) {
        let (px, py) = (f64::from(p[0]) - spx, f64::from(p[1]) - spy);
        let (qx, qy) = (f64::from(q[0]) - dpx, f64::from(q[1]) - dpy);
        dot += px * qx + py * qy;
        cross += px * qy - py * qx;
        norm += px * px + py * py;
    }
    let (a, b) = if norm > 0.0 {
        (dot / norm, cross / norm)
    } else {
        (1.0, 0.0)
    };
    [
        [a, -b, dpx - (a * spx - b * spy)],
        [b, a, dpy - (b * spx + a * spy)],
    ]
}

/// Applies `m` to a point.
pub fn apply(m: &Affine, p: [f32; 2]) -> [f32; 2] {
    let (x, y) = (f64::from(p[0]), f64::from(p[1]));
    [
        (m[0][0] * x + m[0][1] * y + m[0][2]) as f32,
        (m[1][0] * x + m[1][1] * y + m[1][2]) as f32,
    ]
}

/// The inverse of an invertible affine map; `None` if it collapses the plane.
pub fn invert(m: &Affine) -> Option<Affine> {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    if det.abs() < 1e-12 {
        return None;
    }
    let (a, b, c, d) = (m[1][1] / det, -m[0][1] / det, -m[1][0] / det, m[0][0] / det);
    Some([
        [a, b, -(a * m[0][2] + b * m[1][2])],
        [c, d, -(c * m[0][2] + d * m[1][2])],
    ])
}

/// Warps `img` by `m` (source → destination) into a `width`×`height` image, like OpenCV's
/// `warpAffine(INTER_LINEAR, BORDER_CONSTANT 0)`: each output pixel samples the source at
/// `m⁻¹(x, y)` (integer pixel coordinates, no half-pixel shift), and neighbours outside the
/// source count as black so faces cut by the frame fade out instead of smearing.
pub fn warp_affine(img: &RgbImage, m: &Affine, width: u32, height: u32) -> RgbImage {
    let mut out = RgbImage::new(width, height);
    let Some(inv) = invert(m) else {
        return out;
    };
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    let texel = |x: i64, y: i64| -> [f64; 3] {
        if x < 0 || y < 0 || x >= iw || y >= ih {
            return [0.0; 3];
        }
        let p = img.get_pixel(x as u32, y as u32).0;
        [f64::from(p[0]), f64::from(p[1]), f64::from(p[2])]
    };
    for (x, y, px) in out.enumerate_pixels_mut() {
        let (fx, fy) = (f64::from(x), f64::from(y));
        let sx = inv[0][0] * fx + inv[0][1] * fy + inv[0][2];
        let sy = inv[1][0] * fx + inv[1][1] * fy + inv[1][2];
        let (x0, y0) = (sx.floor(), sy.floor());
        let (ax, ay) = (sx - x0, sy - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let (p00, p10) = (texel(x0, y0), texel(x0 + 1, y0));
        let (p01, p11) = (texel(x0, y0 + 1), texel(x0 + 1, y0 + 1));
        let mut rgb = [0u8; 3];
        for c in 0..3 {
            let top = p00[c] + (p10[c] - p00[c]) * ax;
            let bottom = p01[c] + (p11[c] - p01[c]) * ax;
            rgb[c] = (top + (bottom - top) * ay).round().clamp(0.0, 255.0) as u8;
        }
        *px = Rgb(rgb);
    }
    out
}

/// The 112×112 crop SFace expects, from a face's five landmarks.
pub fn align_face(img: &RgbImage, landmarks: &[[f32; 2]; 5]) -> RgbImage {
    let m = similarity_transform(landmarks, &ARCFACE_TEMPLATE);
    warp_affine(img, &m, ALIGNED_SIZE, ALIGNED_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_similarity() {
        let (s, t) = (1.7f64, 0.4f64);
        let truth: Affine = [
            [s * t.cos(), -s * t.sin(), 12.0],
            [s * t.sin(), s * t.cos(), -3.0],
        ];
        let dst: Vec<_> = ARCFACE_TEMPLATE.iter().map(|&p| apply(&truth, p)).collect();
        let m = similarity_transform(&ARCFACE_TEMPLATE, &dst);
        for r in 0..2 {
            for c in 0..3 {
                assert!((m[r][c] - truth[r][c]).abs() < 1e-4, "{m:?}");
            }
        }
        let back = invert(&m).unwrap();
        let p = apply(&back, apply(&m, [5.0, 7.0]));
        assert!((p[0] - 5.0).abs() < 1e-4 && (p[1] - 7.0).abs() < 1e-4);
    }

    #[test]
    fn never_reflects() {
        let mirrored: Vec<_> = ARCFACE_TEMPLATE.iter().map(|p| [-p[0], p[1]]).collect();
        let m = similarity_transform(&mirrored, &ARCFACE_TEMPLATE);
        let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
        assert!(det >= 0.0, "determinant {det}");
    }

    #[test]
    fn identity_warp_copies_and_shift_pads_black() {
        let img = RgbImage::from_fn(6, 5, |x, y| Rgb([x as u8 * 40, y as u8 * 50, 9]));
        let id: Affine = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        assert_eq!(warp_affine(&img, &id, 6, 5), img);
        let shift: Affine = [[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]];
        let out = warp_affine(&img, &shift, 6, 5);
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(3, 2), img.get_pixel(1, 2));
        // Half a pixel in: the average of two source pixels.
        let half: Affine = [[1.0, 0.0, -0.5], [0.0, 1.0, 0.0]];
        assert_eq!(warp_affine(&img, &half, 6, 5).get_pixel(0, 0).0[0], 20);
    }

    #[test]
    fn landmarks_land_on_the_template() {
        let lms = [
            [100.0, 120.0],
            [160.0, 118.0],
            [131.0, 150.0],
            [108.0, 185.0],
            [155.0, 184.0],
        ];
        let m = similarity_transform(&lms, &ARCFACE_TEMPLATE);
        for (p, q) in lms.iter().zip(ARCFACE_TEMPLATE) {
            let r = apply(&m, *p);
            assert!((r[0] - q[0]).hypot(r[1] - q[1]) < 4.0, "{r:?} vs {q:?}");
        }
    }
}
