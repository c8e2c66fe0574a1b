//! Periodic texture in the face region: the pixel grid and moiré of a re-photographed screen, or
//! the halftone dots of a print, show up as isolated peaks in the 2-D power spectrum, which a
//! live face (skin, hair, natural blur) does not have.
//!
//! The face centre is cut at native resolution (resampling would erase the very grid we look for)
//! into an `n`×`n` window (`n` a power of two, 32–256), Hann-windowed, and transformed. A bin
//! counts as a peak by how far it rises above both its frequency ring's median (the natural 1/f
//! fall-off) and the bins three steps further in and out along its own direction (so the ridge a
//! straight edge leaves through the origin is not a peak). JPEG's 8-px blocking puts energy on the
//! lines u or v = k·n/8; those lines are skipped, as is the lowest-frequency disc, where a face's
//! own shape lives.

use image::RgbImage;
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;
use serde::Serialize;

/// Smallest window analysed; below this a face is too small for texture analysis.
pub const MIN_WINDOW: usize = 32;
/// Largest window analysed; bigger faces are sampled at their centre.
pub const MAX_WINDOW: usize = 256;

/// The strongest periodic component found in one plane of the face window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Peak {
    /// log10 of the peak's power over its background (see the module docs); about 1 for
    /// natural images, 2–4 for a screen grid or halftone.
    pub prominence: f32,
    /// Frequency of the peak in cycles per pixel (0–0.71).
    pub frequency: f32,
    /// Direction of the peak's wave vector in degrees, 0–180 (0 = a horizontal frequency, i.e.
    /// vertical stripes).
    pub angle_deg: f32,
}

/// Periodicity of the face window in luma and in chroma.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Periodicity {
    /// Side of the analysed window in pixels (0 when the face was too small).
    pub window: usize,
    /// Strongest peak in luma.
    pub luma: Peak,
    /// Strongest peak in the red–blue chroma plane (sub-pixel stripes, colour halftone).
    pub chroma: Peak,
}

impl Periodicity {
    /// The stronger of the two planes' peaks.
    pub fn strongest(&self) -> Peak {
        if self.chroma.prominence > self.luma.prominence {
            self.chroma
        } else {
            self.luma
        }
    }
}

const NO_PEAK: Peak = Peak {
    prominence: 0.0,
    frequency: 0.0,
    angle_deg: 0.0,
};

/// Measures periodicity in the square window of side up to `0.8 ×` the face box, centred on it.
pub fn measure(img: &RgbImage, bbox: [f32; 4]) -> Periodicity {
    let side = bbox[2].min(bbox[3]) * 0.8;
    let mut n = MAX_WINDOW;
    while n > MIN_WINDOW && (n as f32) > side {
        n /= 2;
    }
    let (w, h) = (img.width() as usize, img.height() as usize);
    if (n as f32) > side || n > w || n > h {
        return Periodicity {
            window: 0,
            luma: NO_PEAK,
            chroma: NO_PEAK,
        };
    }
    let cx = bbox[0] + bbox[2] / 2.0;
    let cy = bbox[1] + bbox[3] / 2.0;
    // Align the window to the 8-px JPEG grid so blocking lands exactly on the skipped lines.
    let x0 = (((cx as isize - n as isize / 2).max(0) as usize).min(w - n)) & !7;
    let y0 = (((cy as isize - n as isize / 2).max(0) as usize).min(h - n)) & !7;
    let mut luma = Vec::with_capacity(n * n);
    let mut chroma = Vec::with_capacity(n * n);
    for y in y0..y0 + n {
        for x in x0..x0 + n {
            let p = img.get_pixel(x as u32, y as u32);
            let (r, g, b) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
            luma.push(0.299 * r + 0.587 * g + 0.114 * b);
            chroma.push(r - b);
        }
    }
    Periodicity {
        window: n,
        luma: strongest_peak(&power_spectrum(&luma, n), n),
        chroma: strongest_peak(&power_spectrum(&chroma, n), n),
    }
}

/// Power spectrum of an `n`×`n` plane after removing its mean and applying a 2-D Hann window;
/// row-major with the zero frequency at index 0 (unshifted).
fn power_spectrum(plane: &[f32], n: usize) -> Vec<f32> {
    let mean = plane.iter().sum::<f32>() / plane.len() as f32;
    let hann: Vec<f32> = (0..n)
        .map(|i| 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / n as f32).cos())
        .collect();
    let mut data: Vec<Complex<f32>> = plane
        .iter()
        .enumerate()
        .map(|(i, &v)| Complex::new((v - mean) * hann[i / n] * hann[i % n], 0.0))
        .collect();
    let fft = FftPlanner::new().plan_fft_forward(n);
    for row in data.chunks_exact_mut(n) {
        fft.process(row);
    }
    // Columns: transpose, transform rows, and read back transposed.
    let mut t = vec![Complex::new(0.0, 0.0); n * n];
    for y in 0..n {
        for x in 0..n {
            t[x * n + y] = data[y * n + x];
        }
    }
    for row in t.chunks_exact_mut(n) {
        fft.process(row);
    }
    let mut power = vec![0.0; n * n];
    for x in 0..n {
        for y in 0..n {
            power[y * n + x] = t[x * n + y].norm_sqr();
        }
    }
    power
}

/// Whether signed index `k` sits within one bin of a JPEG blocking harmonic (k·n/8, k ≠ 0).
fn on_block_line(k: isize, n: usize) -> bool {
    let step = (n / 8) as isize;
    let r = k.rem_euclid(step);
    let near = r <= 1 || r >= step - 1;
    near && k.abs() > 1
}

fn strongest_peak(power: &[f32], n: usize) -> Peak {
    let half = n as isize / 2;
    let radius = |u: isize, v: isize| ((u * u + v * v) as f32).sqrt();
    // Median power per integer ring, from one half-plane (the spectrum of a real plane is
    // symmetric).
    let rings = (half as f32 * std::f32::consts::SQRT_2) as usize + 2;
    let mut ring_values: Vec<Vec<f32>> = vec![Vec::new(); rings];
    for v in 0..=half {
        for u in -half + 1..=half {
            let r = radius(u, v).round() as usize;
            ring_values[r].push(power[index(u, v, n)]);
        }
    }
    let ring_median: Vec<f32> = ring_values
        .into_iter()
        .map(|mut vals| {
            if vals.is_empty() {
                return 0.0;
            }
            let mid = vals.len() / 2;
            *vals.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1
        })
        .collect();
    let total: f32 = power.iter().sum::<f32>().max(f32::MIN_POSITIVE);
    let floor = total / (n * n) as f32 * 1e-4;
    let min_r = (n as f32 / 16.0).max(3.0);
    let mut best = NO_PEAK;
    for v in 0..=half {
        for u in -half + 1..=half {
            let r = radius(u, v);
            if r < min_r || on_block_line(u, n) || on_block_line(v, n) {
                continue;
            }
            let p = power[index(u, v, n)];
            // A local maximum among its 8 neighbours.
            let is_max = (-1..=1).all(|dv| {
                (-1..=1).all(|du| (du == 0 && dv == 0) || power[index(u + du, v + dv, n)] <= p)
            });
            if !is_max {
                continue;
            }
            let (du, dv) = (u as f32 / r * 3.0, v as f32 / r * 3.0);
            let along = |s: f32| {
                power[index(
                    (u as f32 + s * du).round() as isize,
                    (v as f32 + s * dv).round() as isize,
                    n,
                )]
            };
            let ridge = 0.5 * (along(-1.0) + along(1.0));
            let background = ring_median[r.round() as usize].max(ridge).max(floor);
            let prominence = (p / background).log10();
            if prominence > best.prominence {
                let angle = (v as f32).atan2(u as f32).to_degrees().rem_euclid(180.0);
                best = Peak {
                    prominence,
                    frequency: r / n as f32,
                    angle_deg: angle,
                };
            }
        }
    }
    best
}

/// Index of signed frequency (u, v) in the unshifted row-major spectrum.
fn index(u: isize, v: isize, n: usize) -> usize {
    let wrap = |k: isize| k.rem_euclid(n as isize) as usize;
    wrap(v) * n + wrap(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn noise_image(n: u32, seed: u64) -> RgbImage {
        let mut s = seed;
        RgbImage::from_fn(n, n, |x, y| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = ((s >> 33) % 40) as f32;
            // Smooth shading plus noise: no periodic component.
            let v = 100.0 + 0.2 * x as f32 + 0.1 * y as f32 + noise;
            Rgb([v as u8, (v * 0.9) as u8, (v * 0.8) as u8])
        })
    }

    #[test]
    fn a_grating_is_a_prominent_peak_at_its_frequency_and_angle() {
        let base = noise_image(256, 7);
        let plain = measure(&base, [0.0, 0.0, 256.0, 256.0]);
        // Period 5 px along a 30° direction.
        let (fx, fy) = (
            30f32.to_radians().cos() / 5.0,
            30f32.to_radians().sin() / 5.0,
        );
        let grating = RgbImage::from_fn(256, 256, |x, y| {
            let p = base.get_pixel(x, y);
            let wave = 25.0 * (std::f32::consts::TAU * (fx * x as f32 + fy * y as f32)).sin();
            Rgb(p.0.map(|c| (f32::from(c) + wave).clamp(0.0, 255.0) as u8))
        });
        let striped = measure(&grating, [0.0, 0.0, 256.0, 256.0]);
        assert_eq!(striped.window, 128);
        let peak = striped.luma;
        assert!(
            peak.prominence > plain.luma.prominence + 1.0,
            "{plain:?} vs {striped:?}"
        );
        assert!((peak.frequency - 0.2).abs() < 0.02, "{peak:?}");
        assert!((peak.angle_deg - 30.0).abs() < 5.0, "{peak:?}");
    }

    #[test]
    fn small_faces_are_not_measured() {
        let img = noise_image(64, 1);
        assert_eq!(measure(&img, [10.0, 10.0, 30.0, 30.0]).window, 0);
        assert_eq!(measure(&img, [0.0, 0.0, 64.0, 64.0]).window, 32);
    }

    #[test]
    fn block_lines_skip_jpeg_harmonics_but_not_the_axes() {
        assert!(on_block_line(16, 128) && on_block_line(-17, 128) && on_block_line(63, 128));
        assert!(!on_block_line(0, 128) && !on_block_line(1, 128) && !on_block_line(20, 128));
    }
}
