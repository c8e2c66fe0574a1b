//! The card in a photo: its four corners where its edges stand out from what it lies on, and the
//! card warped flat (a perspective warp) so that text photographed at an angle reads as printed.
//!
//! Classic geometry, no model: Canny edges on a copy of at most [`WORK_SIDE`] px, closed by one
//! dilation; the outer borders of the edge regions (Suzuki–Abe); each border's convex hull
//! simplified (Douglas–Peucker) to a quadrilateral; kept when it is large enough, shaped like a
//! document and its four sides lie on edges. A scan whose page fills the frame has no card edge
//! and no quad: it is read as it is.

use image::{GrayImage, RgbImage};
use imageproc::contours::{self, BorderType};
use imageproc::distance_transform::Norm;
use imageproc::geometric_transformations::{self as geo, Interpolation, Projection};
use imageproc::geometry;
use imageproc::morphology;
use imageproc::point::Point;
use serde::Serialize;

/// Long side of the copy the edges are found on.
const WORK_SIDE: u32 = 640;
/// The quad covers at least this share of the photo.
const MIN_AREA: f64 = 0.12;
/// At least this share of the quad's perimeter runs on edge pixels.
const MIN_EDGE_SUPPORT: f32 = 0.6;
/// The quad covers at least this share of its region's convex hull (a card's rounded
/// corners lose it up to ~5 %).
const MIN_FILL: f64 = 0.93;
/// Each corner at least this far (work pixels) inside the frame.
const FRAME_GAP: f32 = 3.0;
/// Long side over short side of the flattened card: from a square-ish page to a long ticket.
const ASPECT: (f32, f32) = (1.15, 2.0);
/// The ISO/IEC 7810 formats (ID-1 cards, ID-2, ID-3 passport pages): a flattened card within
/// [`SNAP`] of one is given its exact proportions (foreshortening shortens the far side).
const FORMATS: [f32; 2] = [85.60 / 53.98, 125.0 / 88.0];
const SNAP: f32 = 0.1;
/// Long side of the flattened card at most (the reader's full-detail size).
const MAX_FLAT_SIDE: f32 = 1600.0;

/// A document's four corners in the photo, in pixels: top-left, top-right, bottom-right,
/// bottom-left as the photo shows them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quad {
    /// `[[x, y]; 4]`, clockwise from the top-left.
    pub corners: [[f32; 2]; 4],
}

impl Quad {
    /// Width and height of the card flattened: its longer opposite sides, snapped to an ISO
    /// format's proportions when close, at most [`MAX_FLAT_SIDE`] on the long side.
    pub fn flat_size(&self) -> (u32, u32) {
        let [a, b, c, d] = self.corners;
        let w = dist(a, b).max(dist(d, c));
        let h = dist(a, d).max(dist(b, c));
        let (long, short) = (w.max(h), w.min(h));
        let ratio = long / short;
        let ratio = FORMATS
            .into_iter()
            .find(|f| (ratio / f - 1.0).abs() <= SNAP)
            .unwrap_or(ratio);
        let long = long.min(MAX_FLAT_SIDE);
        let short = long / ratio;
        let (w, h) = if w >= h { (long, short) } else { (short, long) };
        (w.round().max(1.0) as u32, h.round().max(1.0) as u32)
    }
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// The card in `img`, when one stands out: the largest document-shaped quadrilateral whose
/// sides lie on edges.
pub fn find(img: &RgbImage) -> Option<Quad> {
    let (w, h) = img.dimensions();
    if w < 32 || h < 32 {
        return None;
    }
    let scale = (WORK_SIDE as f32 / w.max(h) as f32).min(1.0);
    let (sw, sh) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    let grey = image::imageops::grayscale(img);
    let small = if scale < 1.0 {
        image::imageops::resize(&grey, sw, sh, image::imageops::FilterType::Triangle)
    } else {
        grey
    };
    let edges = morphology::dilate(&imageproc::edges::canny(&small, 30.0, 90.0), Norm::LInf, 1);
    let frame_area = f64::from(sw) * f64::from(sh);
    let mut best: Option<([[f32; 2]; 4], f64)> = None;
    for contour in contours::find_contours::<i32>(&edges) {
        if contour.border_type != BorderType::Outer || contour.points.len() < 40 {
            continue;
        }
        let hull = geometry::convex_hull(contour.points);
        let area = geometry::contour_area(&hull);
        if area < MIN_AREA * frame_area || best.as_ref().is_some_and(|b| b.1 >= area) {
            continue;
        }
        let Some((corners, quad_area)) = largest_quad(&hull) else {
            continue;
        };
        // A quadrilateral region, not a rounder or many-sided one.
        if quad_area < MIN_FILL * area {
            continue;
        }
        let corners = clockwise(corners);
        // A corner on the frame is the frame (or a card cut by it): read the photo as it is.
        let inside = |[x, y]: [f32; 2]| {
            x >= FRAME_GAP
                && y >= FRAME_GAP
                && x < sw as f32 - FRAME_GAP
                && y < sh as f32 - FRAME_GAP
        };
        if corners.iter().all(|&c| inside(c))
            && document_shaped(&corners)
            && edge_support(&edges, &corners) >= MIN_EDGE_SUPPORT
        {
            best = Some((corners, area));
        }
    }
    let (corners, _) = best?;
    // The outer border runs on the outside of the dilated edge: one pixel in.
    let centre = centroid(&corners);
    let corners = corners.map(|[x, y]| {
        let (dx, dy) = (centre[0] - x, centre[1] - y);
        let n = dx.hypot(dy).max(1.0);
        [(x + dx / n) / scale, (y + dy / n) / scale]
    });
    Some(Quad { corners })
}

/// The card inside `quad` warped flat, [`Quad::flat_size`] pixels.
pub fn warp(img: &RgbImage, quad: &Quad) -> Option<RgbImage> {
    let (w, h) = quad.flat_size();
    let (fw, fh) = (w as f32, h as f32);
    let to = [(0.0, 0.0), (fw, 0.0), (fw, fh), (0.0, fh)];
    let from = quad.corners.map(|[x, y]| (x, y));
    let projection = Projection::from_control_points(from, to)?;
    let mut out = RgbImage::new(w, h);
    geo::warp_into(
        img,
        projection,
        Interpolation::Bilinear,
        geo::Border::Replicate,
        &mut out,
    );
    Some(out)
}

/// The largest quadrilateral with its corners on `hull`'s vertices, with its area: for each
/// diagonal, the farthest vertex on either side (hulls of more than [`HULL_POINTS`] vertices are
/// thinned first).
fn largest_quad(hull: &[Point<i32>]) -> Option<([[f32; 2]; 4], f64)> {
    const HULL_POINTS: usize = 64;
    let step = hull.len().div_ceil(HULL_POINTS).max(1);
    let p: Vec<[f64; 2]> = hull
        .iter()
        .step_by(step)
        .map(|q| [f64::from(q.x), f64::from(q.y)])
        .collect();
    let n = p.len();
    if n < 4 {
        return None;
    }
    let tri = |a: [f64; 2], b: [f64; 2], c: [f64; 2]| {
        ((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])).abs() / 2.0
    };
    let mut best: Option<([usize; 4], f64)> = None;
    for i in 0..n {
        for k in i + 2..n {
            let side = |range: &mut dyn Iterator<Item = usize>| {
                range
                    .map(|j| (j, tri(p[i], p[k], p[j])))
                    .max_by(|a, b| a.1.total_cmp(&b.1))
            };
            let Some((j, a1)) = side(&mut (i + 1..k)) else {
                continue;
            };
            let Some((l, a2)) = side(&mut (k + 1..n).chain(0..i)) else {
                continue;
            };
            if best.as_ref().is_none_or(|b| a1 + a2 > b.1) {
                best = Some(([i, j, k, l], a1 + a2));
            }
        }
    }
    best.map(|(idx, area)| (idx.map(|i| [p[i][0] as f32, p[i][1] as f32]), area))
}

/// The corners ordered clockwise from the one nearest the photo's top-left.
fn clockwise(mut p: [[f32; 2]; 4]) -> [[f32; 2]; 4] {
    let c = centroid(&p);
    p.sort_by(|a, b| {
        let ta = (a[1] - c[1]).atan2(a[0] - c[0]);
        let tb = (b[1] - c[1]).atan2(b[0] - c[0]);
        ta.total_cmp(&tb)
    });
    // Image y points down, so increasing atan2 runs clockwise on screen.
    let first = (0..4)
        .min_by(|&i, &j| (p[i][0] + p[i][1]).total_cmp(&(p[j][0] + p[j][1])))
        .unwrap_or(0);
    p.rotate_left(first);
    p
}

fn centroid(p: &[[f32; 2]; 4]) -> [f32; 2] {
    let (x, y) = p.iter().fold((0.0, 0.0), |(x, y), q| (x + q[0], y + q[1]));
    [x / 4.0, y / 4.0]
}

/// Convex, its corners near right angles (a camera off-square by up to ~35° bends them by
/// less than 35°), and a document's proportions once flat.
fn document_shaped(p: &[[f32; 2]; 4]) -> bool {
    for i in 0..4 {
        let (a, b, c) = (p[(i + 3) % 4], p[i], p[(i + 1) % 4]);
        let (u, v) = ([a[0] - b[0], a[1] - b[1]], [c[0] - b[0], c[1] - b[1]]);
        let (nu, nv) = (u[0].hypot(u[1]), v[0].hypot(v[1]));
        if nu < 8.0 || nv < 8.0 {
            return false;
        }
        let cos = (u[0] * v[0] + u[1] * v[1]) / (nu * nv);
        if cos.abs() > 35f32.to_radians().sin() {
            return false;
        }
        // Every turn the same way round: convex.
        let cross = u[0] * v[1] - u[1] * v[0];
        if cross >= 0.0 {
            return false;
        }
    }
    let quad = Quad { corners: *p };
    let (w, h) = quad.flat_size();
    let ratio = w.max(h) as f32 / w.min(h).max(1) as f32;
    (ASPECT.0..=ASPECT.1).contains(&ratio)
}

/// Share of points along the quad's four sides that fall on an edge pixel.
fn edge_support(edges: &GrayImage, p: &[[f32; 2]; 4]) -> f32 {
    let (mut on, mut total) = (0usize, 0usize);
    for i in 0..4 {
        let (a, b) = (p[i], p[(i + 1) % 4]);
        let n = dist(a, b).ceil().max(1.0) as usize;
        // The ends are corners, which rounded or dog-eared cards lack.
        for k in n / 10..n - n / 10 {
            let t = k as f32 / n as f32;
            let (x, y) = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t);
            total += 1;
            let hit = (-1i32..=1).any(|dy| {
                (-1i32..=1).any(|dx| {
                    let (x, y) = (x.round() as i32 + dx, y.round() as i32 + dy);
                    x >= 0
                        && y >= 0
                        && (x as u32) < edges.width()
                        && (y as u32) < edges.height()
                        && edges.get_pixel(x as u32, y as u32)[0] > 0
                })
            });
            on += usize::from(hit);
        }
    }
    on as f32 / total.max(1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A light card with some dark print on a darker desk, its corners at `corners`.
    fn photo(corners: [[f32; 2]; 4], size: (u32, u32)) -> RgbImage {
        let (cw, ch) = (856.0, 540.0);
        let card = RgbImage::from_fn(cw as u32, ch as u32, |x, y| {
            let line = (y / 40) % 2 == 1 && (60..700).contains(&x) && y > 80 && y < 460;
            if line && (x / 9) % 3 != 0 {
                Rgb([40, 40, 50])
            } else {
                Rgb([225, 220, 205])
            }
        });
        let from = [(0.0, 0.0), (cw, 0.0), (cw, ch), (0.0, ch)];
        let to = corners.map(|[x, y]| (x, y));
        let p = Projection::from_control_points(from, to).unwrap();
        let mut out = RgbImage::from_pixel(size.0, size.1, Rgb([70, 60, 55]));
        geo::warp_into(
            &card,
            p,
            Interpolation::Bilinear,
            geo::Border::Constant(Rgb([70, 60, 55])),
            &mut out,
        );
        out
    }

    #[test]
    fn finds_a_card_photographed_at_an_angle_and_flattens_it() {
        let truth = [
            [260.0, 140.0],
            [1010.0, 210.0],
            [950.0, 700.0],
            [210.0, 620.0],
        ];
        let img = photo(truth, (1280, 900));
        let quad = find(&img).expect("card found");
        for (got, want) in quad.corners.iter().zip(truth) {
            assert!(dist(*got, want) < 6.0, "{:?} vs {truth:?}", quad.corners);
        }
        let flat = warp(&img, &quad).unwrap();
        let ratio = flat.width() as f32 / flat.height() as f32;
        assert!((ratio - FORMATS[0]).abs() < 0.01, "{ratio}");
        // Flat: the card's light paper reaches every corner, the desk is gone.
        for (x, y) in [(3, 3), (flat.width() - 4, 3), (3, flat.height() - 4)] {
            assert!(flat.get_pixel(x, y)[0] > 180, "{x},{y}");
        }
    }

    #[test]
    fn no_card_in_a_scan_that_fills_the_frame_or_in_noise() {
        let page = RgbImage::from_fn(800, 500, |x, y| {
            if (y / 40) % 2 == 1 && (x / 9) % 3 != 0 {
                Rgb([30, 30, 30])
            } else {
                Rgb([230, 230, 230])
            }
        });
        assert_eq!(find(&page), None);
        let mut s = 7u32;
        let noise = RgbImage::from_fn(640, 480, |_, _| {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let v = (s >> 16) as u8;
            Rgb([v, v, v])
        });
        assert_eq!(find(&noise), None);
        assert_eq!(find(&RgbImage::new(10, 10)), None);
    }

    #[test]
    fn corners_are_ordered_clockwise_from_the_top_left() {
        let p = clockwise([[10.0, 90.0], [100.0, 10.0], [0.0, 0.0], [110.0, 95.0]]);
        assert_eq!(p, [[0.0, 0.0], [100.0, 10.0], [110.0, 95.0], [10.0, 90.0]]);
    }
}
