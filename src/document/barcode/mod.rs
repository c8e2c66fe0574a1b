//! Barcodes on identity documents — PDF417 (North-American licences and IDs, with AAMVA
//! fields), QR and Data Matrix — decoded with `rxing` (a port of ZXing), and compared with the
//! print. A second machine-readable source beside the MRZ; documents without an MRZ have only
//! this one. Pure functions of pixels and text.

pub mod aamva;
pub mod compare;

use image::RgbImage;
use serde::Serialize;

pub use aamva::Aamva;

/// Longest side, in pixels, at which a photo is searched for a barcode; larger photos are
/// scaled down first (a licence's PDF417 stays well above its 2-pixel module there).
pub const MAX_SIDE: u32 = 2400;

/// Longest barcode payload kept, in bytes (PDF417 holds at most ~1.8 kB; a QR at most ~3 kB).
pub const MAX_PAYLOAD: usize = 4096;

/// A barcode found on a page.
#[derive(Debug, Clone, Serialize)]
pub struct Barcode {
    /// `pdf417`, `qr_code` or `data_matrix`.
    pub format: &'static str,
    /// The decoded payload. Personal data: never logged, reported only as parsed fields.
    #[serde(skip)]
    pub text: String,
    /// Length of the payload in characters.
    pub length: usize,
    /// The AAMVA card-design fields, when the payload is an AAMVA licence or ID record.
    pub aamva: Option<Aamva>,
}

/// Slants (radians) a barcode is also looked for at when it is not found as photographed and
/// the text gives no slant of its own: ZXing's PDF417 detector gives up beyond about 2°.
const SLANTS: [f32; 2] = [0.05, -0.05];

/// The first PDF417, QR or Data Matrix code on `img`, looked for as photographed, then levelled
/// by `text_slant` (the slant of the page's text lines, radians) or, without one, at ±3°.
/// `None` when there is none (or the decoder gives up).
pub fn find_levelled(img: &RgbImage, text_slant: Option<f32>) -> Option<Barcode> {
    if let Some(found) = find(img) {
        return Some(found);
    }
    let slants: Vec<f32> = match text_slant {
        Some(a) if a.abs() >= 0.5f32.to_radians() => vec![a],
        _ => SLANTS.to_vec(),
    };
    slants
        .into_iter()
        .find_map(|a| find(&crate::document::ocr::deskew(img, a)))
}

/// The first PDF417, QR or Data Matrix code on `img` as it is, with its payload parsed when it
/// is an AAMVA record. `None` when there is none (or the decoder gives up).
pub fn find(img: &RgbImage) -> Option<Barcode> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return None;
    }
    let scale = (MAX_SIDE as f32 / w.max(h) as f32).min(1.0);
    let small;
    let img = if scale < 1.0 {
        small = crate::vision::frame::resize(
            img,
            ((w as f32 * scale) as u32).max(1),
            ((h as f32 * scale) as u32).max(1),
        );
        &small
    } else {
        img
    };
    let (w, h) = img.dimensions();
    let luma: Vec<u8> = img
        .pixels()
        .map(|p| {
            ((299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2])) / 1000) as u8
        })
        .collect();
    // A decoder ported from Java may index out of bounds on a hostile image; a barcode that
    // can't be read is only a barcode that isn't there.
    let decoded = std::panic::catch_unwind(|| decode(luma, w, h))
        .ok()
        .flatten()?;
    let (format, text) = decoded;
    if text.len() > MAX_PAYLOAD {
        return None;
    }
    Some(Barcode {
        format,
        length: text.chars().count(),
        aamva: aamva::parse(&text),
        text,
    })
}

fn decode(luma: Vec<u8>, w: u32, h: u32) -> Option<(&'static str, String)> {
    use rxing::{BarcodeFormat, DecodeHints};
    let mut hints = DecodeHints {
        PossibleFormats: Some(
            [
                BarcodeFormat::PDF_417,
                BarcodeFormat::QR_CODE,
                BarcodeFormat::DATA_MATRIX,
            ]
            .into_iter()
            .collect(),
        ),
        TryHarder: Some(true),
        ..Default::default()
    };
    let result = rxing::helpers::detect_in_luma_with_hints(luma, w, h, None, &mut hints).ok()?;
    let format = match result.getBarcodeFormat() {
        BarcodeFormat::PDF_417 => "pdf417",
        BarcodeFormat::QR_CODE => "qr_code",
        BarcodeFormat::DATA_MATRIX => "data_matrix",
        _ => return None,
    };
    Some((format, result.getText().to_owned()))
}
