//! Rotated rectangles for text boxes: the minimum-area rectangle around a set of points (convex
//! hull + rotating calipers, as OpenCV's `minAreaRect`), its corners in reading order, and the
//! upright crop of the image inside it.

use image::RgbImage;

use crate::vision::align::{self, Affine};

/// A rectangle of size `w`×`h` centred at `(cx, cy)` whose `w` side runs along `angle` (radians).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotatedRect {
    /// Centre x.
    pub cx: f32,
    /// Centre y.
    pub cy: f32,
    /// Side along `angle`.
    pub w: f32,
    /// Side across `angle`.
    pub h: f32,
    /// Direction of the `w` side, in radians.
    pub angle: f32,
}

impl RotatedRect {
    /// The corners ordered top-left, top-right, bottom-right, bottom-left (PaddleOCR's rule:
    /// the two leftmost points, upper first, then the two rightmost, upper first).
    pub fn corners(&self) -> [[f32; 2]; 4] {
        let (s, c) = self.angle.sin_cos();
        let (hw, hh) = (self.w / 2.0, self.h / 2.0);
        let mut p: Vec<[f32; 2]> = [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]
            .iter()
            .map(|&(x, y)| [self.cx + x * c - y * s, self.cy + x * s + y * c])
            .collect();
        p.sort_by(|a, b| a[0].total_cmp(&b[0]));
        let (l0, l1) = if p[0][1] <= p[1][1] {
            (p[0], p[1])
        } else {
            (p[1], p[0])
        };
        let (r0, r1) = if p[2][1] <= p[3][1] {
            (p[2], p[3])
        } else {
            (p[3], p[2])
        };
        [l0, r0, r1, l1]
    }

    /// The shorter side.
    pub fn short_side(&self) -> f32 {
        self.w.min(self.h)
    }

    /// Grown by `d` on every side.
    pub fn grown(&self, d: f32) -> RotatedRect {
        RotatedRect {
            w: self.w + 2.0 * d,
            h: self.h + 2.0 * d,
            ..*self
        }
    }

    /// Scaled about the origin by (`sx`, `sy`) (from model to image pixels).
    pub fn scaled(&self, sx: f32, sy: f32) -> RotatedRect {
        // Exact for axis-aligned boxes and close for the small tilts of text lines.
        let (s, c) = self.angle.sin_cos();
        let w = self.w * ((c * sx).powi(2) + (s * sy).powi(2)).sqrt();
        let h = self.h * ((s * sx).powi(2) + (c * sy).powi(2)).sqrt();
        RotatedRect {
            cx: self.cx * sx,
            cy: self.cy * sy,
            w,
            h,
            angle: (s * sy).atan2(c * sx),
        }
    }

    /// Whether `(x, y)` lies inside.
    pub fn contains(&self, x: f32, y: f32) -> bool {
        let (s, c) = self.angle.sin_cos();
        let (dx, dy) = (x - self.cx, y - self.cy);
        let u = dx * c + dy * s;
        let v = -dx * s + dy * c;
        u.abs() <= self.w / 2.0 && v.abs() <= self.h / 2.0
    }
}

fn cross(o: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// Convex hull (Andrew's monotone chain), counter-clockwise, without repeated points.
pub fn convex_hull(points: &[[f32; 2]]) -> Vec<[f32; 2]> {
    let mut pts = points.to_vec();
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let mut hull: Vec<[f32; 2]> = Vec::with_capacity(2 * pts.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &[f32; 2]>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &p in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

/// The minimum-area rectangle enclosing `points`.
pub fn min_area_rect(points: &[[f32; 2]]) -> Option<RotatedRect> {
    let hull = convex_hull(points);
    if hull.is_empty() {
        return None;
    }
    if hull.len() < 3 {
        let (a, b) = (hull[0], *hull.last()?);
        let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        return Some(RotatedRect {
            cx: (a[0] + b[0]) / 2.0,
            cy: (a[1] + b[1]) / 2.0,
            w: len,
            h: 0.0,
            angle: (b[1] - a[1]).atan2(b[0] - a[0]),
        });
    }
    let mut best: Option<(f32, RotatedRect)> = None;
    for i in 0..hull.len() {
        let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
        let angle = (b[1] - a[1]).atan2(b[0] - a[0]);
        let (s, c) = angle.sin_cos();
        let (mut u0, mut u1, mut v0, mut v1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for p in &hull {
            let u = p[0] * c + p[1] * s;
            let v = -p[0] * s + p[1] * c;
            u0 = u0.min(u);
            u1 = u1.max(u);
            v0 = v0.min(v);
            v1 = v1.max(v);
        }
        let area = (u1 - u0) * (v1 - v0);
        if best.as_ref().is_none_or(|(a, _)| area < *a) {
            let (uc, vc) = ((u0 + u1) / 2.0, (v0 + v1) / 2.0);
            let mut r = RotatedRect {
                cx: uc * c - vc * s,
                cy: uc * s + vc * c,
                w: u1 - u0,
                h: v1 - v0,
                angle,
            };
            // Normalise so the long side is `w` and the angle within ±45°… ±90°.
            if r.h > r.w {
                std::mem::swap(&mut r.w, &mut r.h);
                r.angle += std::f32::consts::FRAC_PI_2;
            }
            r.angle = (r.angle + std::f32::consts::FRAC_PI_2).rem_euclid(std::f32::consts::PI)
                - std::f32::consts::FRAC_PI_2;
            best = Some((area, r));
        }
    }
    best.map(|(_, r)| r)
}

/// The image inside `rect`, warped upright to (long edge × short edge) in its own orientation.
pub fn crop(img: &RgbImage, rect: &RotatedRect) -> RgbImage {
    let [tl, tr, _br, bl] = rect.corners();
    let dist = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let w = dist(tl, tr).round().max(1.0);
    let h = dist(tl, bl).round().max(1.0);
    // Three corners fix the affine map (exact for a rectangle).
    let (ux, uy) = ((tr[0] - tl[0]) / w, (tr[1] - tl[1]) / w);
    let (vx, vy) = ((bl[0] - tl[0]) / h, (bl[1] - tl[1]) / h);
    // dst → src is [u v] + tl; warp_affine wants src → dst, so invert.
    let dst_to_src: Affine = [
        [f64::from(ux), f64::from(vx), f64::from(tl[0])],
        [f64::from(uy), f64::from(vy), f64::from(tl[1])],
    ];
    let src_to_dst = align::invert(&dst_to_src).unwrap_or(dst_to_src);
    align::warp_affine(img, &src_to_dst, w as u32, h as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_area_rect_of_a_tilted_rectangle() {
        // A 40×10 rectangle rotated by 10° around (100, 50), sampled on its outline.
        let a = 10f32.to_radians();
        let truth = RotatedRect {
            cx: 100.0,
            cy: 50.0,
            w: 40.0,
            h: 10.0,
            angle: a,
        };
        let mut pts = Vec::new();
        for i in 0..=40 {
            for j in [0, 10] {
                let (u, v) = (i as f32 - 20.0, j as f32 - 5.0);
                pts.push([
                    100.0 + u * a.cos() - v * a.sin(),
                    50.0 + u * a.sin() + v * a.cos(),
                ]);
            }
        }
        let r = min_area_rect(&pts).unwrap();
        assert!(
            (r.w - 40.0).abs() < 0.1 && (r.h - 10.0).abs() < 0.1,
            "{r:?}"
        );
        assert!(
            (r.angle - a).abs() < 0.01 && (r.cx - 100.0).abs() < 0.1,
            "{r:?}"
        );
        let [tl, tr, br, bl] = r.corners();
        assert!(
            tl[0] < tr[0] && bl[0] < br[0] && tl[1] < bl[1],
            "{:?}",
            r.corners()
        );
        assert!(truth.contains(100.0, 50.0) && !truth.contains(100.0, 60.0));
    }

    #[test]
    fn crop_is_upright_and_sized() {
        let img = RgbImage::from_fn(200, 100, |x, _| image::Rgb([(x % 256) as u8; 3]));
        let r = RotatedRect {
            cx: 100.0,
            cy: 50.0,
            w: 60.0,
            h: 20.0,
            angle: 0.0,
        };
        let c = crop(&img, &r);
        assert_eq!(c.dimensions(), (60, 20));
        // Left edge of the crop is x = 70 in the image.
        assert!((i32::from(c.get_pixel(0, 10)[0]) - 70).abs() <= 1);
    }
}
