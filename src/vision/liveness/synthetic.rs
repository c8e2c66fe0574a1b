//! Synthetic presentation attacks built from genuine photos, to measure the liveness cues on
//! many cases when no recorded attack set can be had offline.
//!
//! Each attack simulates the physics it stands for, not the detector that should catch it: a
//! screen replay renders the photo on an RGB-stripe display and re-samples it with a camera at a
//! slight angle (aliasing makes the moiré); a print halftones the photo in CMYK with rotated dot
//! screens on off-white paper and re-samples it; a framed photo shows a clean copy of the photo
//! inside a phone or paper border on a background. Every case is then blurred, lit and
//! JPEG-compressed like a phone capture. The set is synthetic: figures measured on it say how the
//! cues behave on these simulations, not on a certified attack database (ISO/IEC 30107-3).

use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};

use crate::vision::align::{self, Affine};
use crate::vision::frame;

/// The kinds of attack generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttackKind {
    /// A photo shown on an LCD/OLED screen and re-photographed.
    Screen,
    /// A photo printed with halftone dots and re-photographed.
    Print,
    /// A clean photo inside a phone bezel or paper border, held up in a scene.
    Framed,
}

/// A small deterministic generator (SplitMix64), so a seed always gives the same set.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.range(0.0, 1.0) < p
    }
}

/// Builds one attack of `kind` from the genuine photo `src`.
pub fn attack(src: &RgbImage, kind: AttackKind, rng: &mut Rng) -> RgbImage {
    let shot = match kind {
        AttackKind::Screen => screen_replay(src, rng),
        AttackKind::Print => print_replay(src, rng),
        AttackKind::Framed => framed(src, rng),
    };
    camera(&shot, rng)
}

/// A genuine capture with the variation a phone camera adds (crop, scale, light, noise, JPEG):
/// the bona fide side of the measurement.
pub fn bona_fide(src: &RgbImage, rng: &mut Rng) -> RgbImage {
    let (w, h) = src.dimensions();
    // Crop up to 10 % off each side, keeping the (roughly central) face.
    let cx0 = (rng.range(0.0, 0.1) * w as f32) as u32;
    let cy0 = (rng.range(0.0, 0.1) * h as f32) as u32;
    let cw = w - cx0 - (rng.range(0.0, 0.1) * w as f32) as u32;
    let ch = h - cy0 - (rng.range(0.0, 0.1) * h as f32) as u32;
    let cropped = image::imageops::crop_imm(src, cx0, cy0, cw, ch).to_image();
    let scale = rng.range(0.5, 1.0);
    let mut img = frame::resize(
        &cropped,
        ((cw as f32 * scale) as u32).max(64),
        ((ch as f32 * scale) as u32).max(64),
    );
    if rng.chance(0.5) {
        image::imageops::flip_horizontal_in_place(&mut img);
    }
    camera(&img, rng)
}

/// Renders `src` on a stripe-RGB display (each image pixel → `k`×`k` display cells of three
/// vertical sub-pixel stripes, with dark gaps between cells) and photographs it at a slight tilt
/// and a scale that does not divide the cell grid, so the grid aliases into moiré.
fn screen_replay(src: &RgbImage, rng: &mut Rng) -> RgbImage {
    let (w, h) = src.dimensions();
    // Keep the rendering under ~3 Mpx: the photo is shown at a size a phone screen would have.
    let shown = frame::resize(src, (w / 2).max(64), (h / 2).max(64));
    let (sw, sh) = shown.dimensions();
    let cell = 3u32; // one display pixel = 3×3 render pixels: R, G, B stripes
    let backlight = rng.range(0.85, 1.15);
    let gap = rng.range(0.55, 0.8); // light through the black matrix between rows
    let display = RgbImage::from_fn(sw * cell, sh * cell, |x, y| {
        let p = shown.get_pixel(x / cell, y / cell);
        let stripe = (x % cell) as usize;
        let row_gap = if y % cell == cell - 1 { gap } else { 1.0 };
        let mut out = [0u8; 3];
        for (c, v) in out.iter_mut().enumerate() {
            let lit = if c == stripe { 1.0 } else { 0.12 };
            *v = (f32::from(p[c]) * lit * row_gap * backlight * 2.2).clamp(0.0, 255.0) as u8;
        }
        Rgb(out)
    });
    // The camera: rotate a little and sample at 0.45–0.75 camera px per render px.
    let scale = rng.range(0.45, 0.75);
    let angle = rng.range(-6.0, 6.0);
    let mut shot = rotate_scale(&display, angle, scale, [12, 12, 14]);
    if rng.chance(0.5) {
        shot = add_bezel(&shot, rng, true);
    }
    shot
}

/// Halftones `src` in CMYK with classic screen angles (C 15°, M 75°, Y 0°, K 45°) on off-white
/// paper with a reduced ink gamut, then photographs it.
fn print_replay(src: &RgbImage, rng: &mut Rng) -> RgbImage {
    let (w, h) = src.dimensions();
    let up = rng.range(1.0, 1.6);
    let printed = frame::resize(src, (w as f32 * up) as u32, (h as f32 * up) as u32);
    let cell = rng.range(4.0, 7.0);
    let paper = [
        rng.range(235.0, 250.0),
        rng.range(232.0, 246.0),
        rng.range(215.0, 235.0),
    ];
    let angles = [15f32, 75.0, 0.0, 45.0].map(|a| a.to_radians());
    let sheet = RgbImage::from_fn(printed.width(), printed.height(), |x, y| {
        let p = printed.get_pixel(x, y);
        let [r, g, b] = p.0.map(|v| f32::from(v) / 255.0);
        let k = 1.0 - r.max(g).max(b);
        let ink = |v: f32| {
            if k >= 1.0 {
                0.0
            } else {
                (1.0 - v - k) / (1.0 - k)
            }
        };
        let cov = [ink(r), ink(g), ink(b), k];
        // Each ink covers a dot whose area grows with its value.
        let mut covered = [false; 4];
        for (i, a) in angles.iter().enumerate() {
            let (s, c) = a.sin_cos();
            let u = (x as f32 * c + y as f32 * s) / cell;
            let v = (-(x as f32) * s + y as f32 * c) / cell;
            let (fu, fv) = (u - u.floor() - 0.5, v - v.floor() - 0.5);
            let d2 = fu * fu + fv * fv;
            covered[i] = d2 < cov[i].clamp(0.0, 1.0) / std::f32::consts::PI;
        }
        // Inks absorb: cyan takes red, magenta green, yellow blue, black all (imperfectly).
        let mut out = paper;
        let absorb = [[0.78, 0.12, 0.05], [0.1, 0.75, 0.12], [0.02, 0.08, 0.8]];
        for (i, row) in absorb.iter().enumerate() {
            if covered[i] {
                for ch in 0..3 {
                    out[ch] *= 1.0 - row[ch];
                }
            }
        }
        if covered[3] {
            out = out.map(|v| v * 0.16);
        }
        Rgb(out.map(|v| v.clamp(0.0, 255.0) as u8))
    });
    let scale = rng.range(0.45, 0.8);
    let angle = rng.range(-5.0, 5.0);
    let mut shot = rotate_scale(&sheet, angle, scale, [200, 198, 190]);
    if rng.chance(0.5) {
        shot = add_bezel(&shot, rng, false);
    }
    shot
}

/// A clean copy of the photo (shrunk as a phone screen or a small print would show it) inside a
/// border, placed in a scene.
fn framed(src: &RgbImage, rng: &mut Rng) -> RgbImage {
    let (w, h) = src.dimensions();
    let s = rng.range(0.35, 0.6);
    let photo = frame::resize(src, (w as f32 * s) as u32, (h as f32 * s) as u32);
    let phone = rng.chance(0.6);
    add_bezel(&photo, rng, phone)
}

/// Puts `img` inside a border (dark for a phone, light for paper) on a background scene with
/// room around it; the device extends past the bottom of the picture half of the time.
fn add_bezel(img: &RgbImage, rng: &mut Rng, phone: bool) -> RgbImage {
    let (w, h) = img.dimensions();
    let border = ((w.min(h) as f32) * rng.range(0.04, 0.09)) as u32 + 2;
    let colour = if phone {
        let v = rng.range(5.0, 35.0) as u8;
        [v, v, v.saturating_add(3)]
    } else {
        [
            rng.range(225.0, 250.0) as u8,
            rng.range(225.0, 248.0) as u8,
            rng.range(215.0, 240.0) as u8,
        ]
    };
    let margin = (w.max(h) as f32 * rng.range(0.15, 0.35)) as u32;
    let cut_bottom = rng.chance(0.5);
    let (cw, ch) = (
        w + 2 * border + 2 * margin,
        h + 2 * border + margin + if cut_bottom { 0 } else { margin },
    );
    let bg_a = [
        rng.range(60.0, 200.0),
        rng.range(60.0, 200.0),
        rng.range(60.0, 200.0),
    ];
    let bg_b = bg_a.map(|v| (v + rng.range(-50.0, 50.0)).clamp(0.0, 255.0));
    let mut out = RgbImage::from_fn(cw, ch, |x, y| {
        let t = (x + y) as f32 / (cw + ch) as f32;
        Rgb([0, 1, 2].map(|c| (bg_a[c] * (1.0 - t) + bg_b[c] * t) as u8))
    });
    let (ox, oy) = (margin, margin);
    for y in 0..h + 2 * border {
        for x in 0..w + 2 * border {
            let (px, py) = (ox + x, oy + y);
            if px >= cw || py >= ch {
                continue;
            }
            let inside = x >= border && y >= border && x < w + border && y < h + border;
            let p = if inside {
                *img.get_pixel(x - border, y - border)
            } else {
                Rgb(colour)
            };
            out.put_pixel(px, py, p);
        }
    }
    out
}

/// Rotates by `angle_deg` about the centre and scales by `scale`, filling uncovered corners with
/// `fill`. Shrinks by sampling (bilinear at each output pixel) rather than averaging, as a camera
/// sensor does, so fine periodic detail aliases.
fn rotate_scale(img: &RgbImage, angle_deg: f32, scale: f32, fill: [u8; 3]) -> RgbImage {
    let (w, h) = img.dimensions();
    let (ow, oh) = (
        ((w as f32 * scale) as u32).max(1),
        ((h as f32 * scale) as u32).max(1),
    );
    let (s, c) = f64::from(angle_deg).to_radians().sin_cos();
    let scale = f64::from(scale);
    let (icx, icy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    let (ocx, ocy) = (f64::from(ow) / 2.0, f64::from(oh) / 2.0);
    // Output → input: undo the scale, then the rotation.
    let m: Affine = [
        [c / scale, s / scale, icx - (c * ocx + s * ocy) / scale],
        [-s / scale, c / scale, icy - (-s * ocx + c * ocy) / scale],
    ];
    let forward = align::invert(&m).unwrap_or(m);
    let mut out = align::warp_affine(img, &forward, ow, oh);
    // warp_affine leaves uncovered pixels black; paint them with the scene colour.
    for (x, y, p) in out.enumerate_pixels_mut() {
        let [sx, sy] = align::apply(&m, [x as f32, y as f32]);
        if sx < 0.0 || sy < 0.0 || sx >= w as f32 - 1.0 || sy >= h as f32 - 1.0 {
            *p = Rgb(fill);
        }
    }
    out
}

/// What a phone camera adds: slight defocus, exposure change, sensor noise and JPEG.
fn camera(img: &RgbImage, rng: &mut Rng) -> RgbImage {
    let sigma = rng.range(0.0, 0.8);
    let blurred = if sigma > 0.3 {
        image::imageops::blur(img, sigma)
    } else {
        img.clone()
    };
    let gain = rng.range(0.85, 1.15);
    let noise = rng.range(0.0, 4.0);
    let mut noisy = blurred;
    for p in noisy.pixels_mut() {
        for v in p.0.iter_mut() {
            let n = (rng.range(-1.0, 1.0) + rng.range(-1.0, 1.0)) * noise;
            *v = (f32::from(*v) * gain + n).clamp(0.0, 255.0) as u8;
        }
    }
    let quality = rng.range(75.0, 95.0) as u8;
    let mut jpeg = Vec::new();
    let encoded = JpegEncoder::new_with_quality(&mut jpeg, quality).encode_image(&noisy);
    match encoded
        .ok()
        .and_then(|_| image::load_from_memory(&jpeg).ok())
    {
        Some(decoded) => decoded.to_rgb8(),
        None => noisy,
    }
}
