//! The one way an image enters kycd: base64 or raw bytes → checked, decoded, upright 8-bit RGB.
//!
//! Order of checks, cheapest first: byte size (413), magic bytes (415; the declared type is never
//! trusted), header-only dimensions against the pixel limit (422 before any pixel buffer exists,
//! so decompression bombs never allocate), then a full decode under an allocation cap (422 on
//! corrupt or truncated data). EXIF orientation is applied; what is stored is re-encoded from the
//! pixels, so EXIF, GPS, XMP, ICC and comments never survive.

use std::io::Cursor;

use base64::Engine;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

use super::MediaError;

/// Accepted container formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JPEG/JFIF/EXIF.
    Jpeg,
    /// PNG.
    Png,
    /// WebP (lossy or lossless).
    Webp,
}

impl Format {
    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
        }
    }
}

impl Format {
    fn as_image_format(self) -> image::ImageFormat {
        match self {
            Format::Jpeg => image::ImageFormat::Jpeg,
            Format::Png => image::ImageFormat::Png,
            Format::Webp => image::ImageFormat::WebP,
        }
    }
}

/// Size limits applied to every upload.
#[derive(Debug, Clone, Copy)]
pub struct IntakeLimits {
    /// Largest decoded (binary) size in bytes.
    pub max_bytes: usize,
    /// Largest width × height.
    pub max_pixels: u64,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        IntakeLimits {
            max_bytes: 10 * 1024 * 1024,
            max_pixels: 40_000_000,
        }
    }
}

/// A decoded, upright image.
#[derive(Debug, Clone)]
pub struct Intake {
    /// The pixels, 8-bit RGB, EXIF orientation applied.
    pub image: RgbImage,
    /// The container it arrived in.
    pub format: Format,
    /// Whether an EXIF orientation other than "normal" was applied.
    pub reoriented: bool,
}

/// Decodes base64 (standard or URL-safe, padded or not, whitespace ignored) or a `data:` URL.
pub fn decode_base64(input: &str, limits: &IntakeLimits) -> Result<Vec<u8>, MediaError> {
    let payload = match input.trim_start().strip_prefix("data:") {
        Some(rest) => {
            let (meta, data) = rest
                .split_once(',')
                .ok_or(MediaError::InvalidBase64("data: URL without a comma"))?;
            if !meta.ends_with(";base64") {
                return Err(MediaError::InvalidBase64("data: URL is not base64"));
            }
            data
        }
        None => input,
    };
    // Refuse before decoding: base64 is 4/3 of the binary size.
    if payload.len() / 4 * 3 > limits.max_bytes + 3 + payload.len() / 76 * 3 {
        return Err(MediaError::PayloadTooLarge {
            limit: limits.max_bytes,
        });
    }
    let cleaned: Vec<u8> = payload
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'-' => b'+',
            b'_' => b'/',
            other => other,
        })
        .collect();
    let trimmed = cleaned
        .strip_suffix(b"==")
        .or_else(|| cleaned.strip_suffix(b"="))
        .unwrap_or(&cleaned);
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .map_err(|_| MediaError::InvalidBase64("not valid base64"))?;
    if bytes.len() > limits.max_bytes {
        return Err(MediaError::PayloadTooLarge {
            limit: limits.max_bytes,
        });
    }
    Ok(bytes)
}

/// The format from the leading bytes, whatever the client declared.
pub fn sniff(bytes: &[u8]) -> Result<Format, MediaError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok(Format::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(Format::Png)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Ok(Format::Webp)
    } else {
        Err(MediaError::UnsupportedType)
    }
}

/// How much of a decoded image a request keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Every pixel (selfies and documents: texture and small print need them).
    Full,
    /// At most [`FRAME_MAX_SIDE`] on the long side (liveness frames: the face mesh needs no
    /// more, and thirty full-size frames would hold gigabytes).
    Frame,
}

/// Longest side a liveness frame is kept at.
pub const FRAME_MAX_SIDE: u32 = 1280;

/// Checks and decodes an uploaded image, outside any memory budget (the CLI, tests).
pub fn load(bytes: &[u8], limits: &IntakeLimits) -> Result<Intake, MediaError> {
    load_inner(bytes, limits, None, Keep::Full)
}

/// Checks and decodes an uploaded image under `held`'s budget: the decode's working memory is
/// admitted before any pixel buffer exists (waiting briefly, else 503 `overloaded`), and the
/// request keeps a lease on what it retains until it ends.
pub fn load_in(
    bytes: &[u8],
    limits: &IntakeLimits,
    held: &mut crate::admission::Held,
    keep: Keep,
) -> Result<Intake, MediaError> {
    load_inner(bytes, limits, Some(held), keep)
}

fn load_inner(
    bytes: &[u8],
    limits: &IntakeLimits,
    held: Option<&mut crate::admission::Held>,
    keep: Keep,
) -> Result<Intake, MediaError> {
    if bytes.len() > limits.max_bytes {
        return Err(MediaError::PayloadTooLarge {
            limit: limits.max_bytes,
        });
    }
    let format = sniff(bytes)?;
    if format == Format::Jpeg && !jpeg_is_complete(bytes) {
        // Decoders pad a truncated scan with grey and report success; a half-grey face must
        // not reach the models.
        return Err(MediaError::InvalidImage(
            "truncated JPEG (no end-of-image marker)".into(),
        ));
    }
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format.as_image_format())
        .into_dimensions()
        .map_err(|e| MediaError::InvalidImage(e.to_string()))?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels || width == 0 || height == 0 {
        return Err(MediaError::ImageTooLarge {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.as_image_format());
    let mut caps = Limits::default();
    // RGBA16 is the widest layout a decoder may produce: 8 bytes a pixel, plus slack.
    caps.max_alloc = Some(pixels * 8 + 16 * 1024 * 1024);
    reader.limits(caps);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| MediaError::InvalidImage(e.to_string()))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let reoriented = orientation != image::metadata::Orientation::NoTransforms;
    // Working memory: the decoder's buffer and its own state (progressive JPEG keeps 2-byte
    // coefficients, lossy WebP its planes, PNG a few rows), an RGBA8 copy of an image with
    // alpha, the RGB8 result and, when it must be turned, a turned copy of that.
    let decoded = decoder.total_bytes();
    let state = match format {
        Format::Jpeg => decoded * 2,
        Format::Webp => decoded,
        Format::Png => decoded / 8,
    };
    let alpha = decoder.color_type().has_alpha();
    let working = decoded
        + state
        + if alpha { pixels * 4 } else { 0 }
        + pixels * 3
        + if reoriented { pixels * 3 } else { 0 };
    let mut lease = match held {
        Some(h) => Some(h.take(working)?),
        None => None,
    };
    let img =
        DynamicImage::from_decoder(decoder).map_err(|e| MediaError::InvalidImage(e.to_string()))?;
    // Turned after the reduction to 8-bit RGB: the copy a turn needs is of the smallest form.
    let mut image = to_rgb8(img);
    if reoriented {
        let mut turned = DynamicImage::ImageRgb8(image);
        turned.apply_orientation(orientation);
        image = turned.into_rgb8();
    }
    if keep == Keep::Frame {
        image = shrink_to(image, FRAME_MAX_SIDE);
    }
    if let Some(lease) = lease.as_mut() {
        lease.shrink(u64::from(image.width()) * u64::from(image.height()) * 3);
    }
    Ok(Intake {
        image,
        format,
        reoriented,
    })
}

/// The image scaled down to at most `max_side` on its long side (never up).
pub fn shrink_to(image: RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    if w.max(h) <= max_side {
        return image;
    }
    let scale = f64::from(max_side) / f64::from(w.max(h));
    let nw = ((f64::from(w) * scale).round() as u32).max(1);
    let nh = ((f64::from(h) * scale).round() as u32).max(1);
    // Area averaging in integers: no float copy of the image on the way.
    image::imageops::thumbnail(&image, nw, nh)
}

/// Walks the JPEG marker segments and entropy-coded scans and reports whether an end-of-image
/// marker closes them. EOI bytes inside an EXIF thumbnail do not count: segments are skipped
/// by their lengths, and inside scan data `FF` is always stuffed (`FF 00`) or a restart marker.
fn jpeg_is_complete(b: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        // Markers may be preceded by fill bytes (FF FF …).
        if b.get(i) != Some(&0xFF) {
            return false;
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => continue,
            _ => {
                let Some(len) = b
                    .get(i..i + 2)
                    .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                else {
                    return false;
                };
                i += len;
                if marker == 0xDA {
                    // Entropy-coded data runs to the next marker that is not stuffing or RST.
                    loop {
                        match b.get(i..) {
                            None | Some([]) => return false,
                            Some(rest) => match rest.iter().position(|&x| x == 0xFF) {
                                None => return false,
                                Some(p) => {
                                    i += p;
                                    match b.get(i + 1) {
                                        None => return false,
                                        Some(0x00) | Some(0xD0..=0xD7) => i += 2,
                                        Some(_) => break,
                                    }
                                }
                            },
                        }
                    }
                }
            }
        }
    }
}

/// 8-bit RGB; transparent pixels are composited over white (scans and cut-outs read naturally).
fn to_rgb8(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        // An RGB8 image is moved, not copied.
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u16::from(p[3]);
        for c in 0..3 {
            o[c] = ((u16::from(p[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

/// Encodes pixels as a baseline JPEG with no metadata segments: the form media is stored in.
pub fn encode_jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(image)
        .expect("encoding RGB8 pixels into memory cannot fail");
    out
}

#[cfg(test)]
mod tests;
