//! Reading a document photo: OCR lines, the MRZ (validated and repaired by check digits), printed
//! fields, type and country, the holder's portrait and image quality — the body of
//! `POST /v1/document/ocr`. Pure function of pixels and models.

use image::RgbImage;
use serde::Serialize;

use super::countries;
use super::mrz::{DocumentType, MrzInput};
use super::ocr::{Line, MrzReading, Ocr};
use super::printed::{self, PrintedField};
use super::validate::{self, ValidateOptions, Validation};
use crate::vision::facematch::{FaceAnalyzer, Role};
use crate::vision::quality::laplacian_variance;
use crate::vision::{frame, VisionError};

/// Hints from the caller; they steer a guess but never override the MRZ.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// `passport`, `id_card`, `driver_license`, `residence_permit`, `other`.
    pub document_type: Option<String>,
    /// A country name or code.
    pub country: Option<String>,
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No text that looks like an identity document.
    #[error("no identity document found in the image")]
    NoDocument,
    /// Inference failed.
    #[error(transparent)]
    Vision(#[from] VisionError),
}

/// Type and issuing country, with how they were decided.
#[derive(Debug, Clone, Serialize)]
pub struct Detected {
    /// `passport`, `id_card`, `driver_license`, `residence_permit` or `other`.
    #[serde(rename = "type")]
    pub document_type: String,
    /// ISO 3166-1 alpha-3 (or the ICAO code), when known.
    pub country: Option<String>,
    /// 0.95 from a valid MRZ, 0.6 from printed keywords, 0.3 from hints alone.
    pub confidence: f32,
    /// `mrz`, `printed` or `hint`.
    pub source: &'static str,
}

/// Image quality of the page.
#[derive(Debug, Clone, Serialize)]
pub struct PageQuality {
    /// Variance of the Laplacian on a 640 px grey copy; under ~50 is blurry.
    pub sharpness: f32,
    /// Share of near-white (≥ 250 on every channel) pixels: glare on a laminate.
    pub glare: f32,
    /// Width and height in pixels.
    pub resolution: [u32; 2],
}

/// Everything read from one page.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentReading {
    /// Type and country.
    pub detected: Detected,
    /// The MRZ as read, with its validation (checks, parsed fields, repairs).
    pub mrz: Option<MrzSection>,
    /// Printed fields found by label.
    pub printed: Vec<PrintedField>,
    /// Every text line, in reading order.
    pub lines: Vec<Line>,
    /// The holder's portrait, JPEG, when a face was found.
    #[serde(skip)]
    pub face_crop_jpeg: Option<Vec<u8>>,
    /// Quality of the page.
    pub quality: PageQuality,
    /// Human-readable problems (no portrait, blurry, glare…).
    pub warnings: Vec<String>,
}

/// The MRZ part of a reading.
#[derive(Debug, Clone, Serialize)]
pub struct MrzSection {
    /// Lines and per-line confidence as read.
    #[serde(flatten)]
    pub reading: MrzReading,
    /// Validation of those lines (after check-digit repair).
    pub validation: Option<Validation>,
}

impl MrzSection {
    /// The lines with the validation's check-digit repairs applied (as read when none).
    pub fn corrected_lines(&self) -> Vec<String> {
        let mut lines: Vec<Vec<char>> = self
            .reading
            .lines
            .iter()
            .map(|l| l.chars().collect())
            .collect();
        for r in self.validation.iter().flat_map(|v| &v.repairs) {
            if let Some(c) = lines
                .get_mut(r.line.wrapping_sub(1))
                .and_then(|l| l.get_mut(r.position.wrapping_sub(1)))
            {
                *c = r.to;
            }
        }
        lines.into_iter().map(|l| l.into_iter().collect()).collect()
    }
}

/// Words that mark a page as an identity document when there is no MRZ.
const KEYWORDS: &[(&str, &str)] = &[
    ("passport", "passport"),
    ("passeport", "passport"),
    ("pasaporte", "passport"),
    ("reisepass", "passport"),
    ("identity card", "id_card"),
    ("carte d'identité", "id_card"),
    ("documento nacional de identidad", "id_card"),
    ("personalausweis", "id_card"),
    ("driving licence", "driver_license"),
    ("driver license", "driver_license"),
    ("permis de conduire", "driver_license"),
    ("residence permit", "residence_permit"),
    ("titre de séjour", "residence_permit"),
];

/// Reads `img` with `ocr`, finds the portrait with `faces`.
pub fn read(
    ocr: &Ocr,
    faces: &FaceAnalyzer,
    img: &RgbImage,
    hints: &Hints,
) -> Result<DocumentReading, ReadError> {
    let lines = ocr.read_lines(img)?;
    let mrz = ocr.read_mrz(img, &lines)?.map(|reading| {
        let validation = validate::validate(
            &MrzInput::Lines(reading.lines.clone()),
            None,
            &ValidateOptions::today_utc(),
        )
        .ok();
        MrzSection {
            reading,
            validation,
        }
    });
    let text = lines
        .iter()
        .map(|l| l.text.to_lowercase())
        .collect::<Vec<_>>()
        .join("\n");
    let keyword = KEYWORDS
        .iter()
        .find(|(k, _)| text.contains(k))
        .map(|&(_, t)| t);
    let parsed = mrz.as_ref().and_then(|m| m.validation.as_ref());
    if parsed.is_none() && keyword.is_none() {
        return Err(ReadError::NoDocument);
    }
    let detected = match parsed {
        Some(v) => Detected {
            document_type: type_name(v.fields.document_type).into(),
            country: v
                .fields
                .issuing_state
                .alpha3
                .as_deref()
                .map(str::to_owned)
                .or_else(|| Some(v.fields.issuing_state.code.to_string())),
            confidence: if v.document_valid { 0.95 } else { 0.8 },
            source: "mrz",
        },
        None => Detected {
            document_type: keyword
                .map(str::to_owned)
                .or_else(|| hints.document_type.clone())
                .unwrap_or_else(|| "other".into()),
            country: country_in_text(&lines).or_else(|| {
                hints
                    .country
                    .as_deref()
                    .and_then(countries::lookup)
                    .map(|c| c.alpha3.to_owned())
            }),
            confidence: 0.6,
            source: "printed",
        },
    };
    let mut warnings = Vec::new();
    let face_crop_jpeg = match faces.analyze(img, Role::Document) {
        Ok(face) => Some(portrait(img, &face.face.bbox)),
        Err(VisionError::Model(m)) => return Err(VisionError::Model(m).into()),
        Err(e) => {
            warnings.push(format!("no portrait: {e}"));
            None
        }
    };
    let quality = page_quality(img);
    if quality.sharpness < 50.0 {
        warnings.push(format!("blurry page (sharpness {:.0})", quality.sharpness));
    }
    if quality.glare > 0.05 {
        warnings.push(format!(
            "glare on {:.0} % of the page",
            quality.glare * 100.0
        ));
    }
    Ok(DocumentReading {
        detected,
        printed: printed::fields(&lines),
        mrz,
        lines,
        face_crop_jpeg,
        quality,
        warnings,
    })
}

fn type_name(t: DocumentType) -> &'static str {
    match t {
        DocumentType::Passport => "passport",
        DocumentType::IdCard => "id_card",
        DocumentType::DriverLicense => "driver_license",
        DocumentType::ResidencePermit => "residence_permit",
        DocumentType::Other => "other",
    }
}

/// The first line that is a country's name (or code).
fn country_in_text(lines: &[Line]) -> Option<String> {
    lines.iter().find_map(|l| {
        let t = l.text.trim();
        (t.len() > 3)
            .then(|| countries::lookup(t))
            .flatten()
            .map(|c| c.alpha3.to_owned())
    })
}

/// The portrait: the face box widened to passport-photo proportions, as JPEG.
fn portrait(img: &RgbImage, bbox: &[f32; 4]) -> Vec<u8> {
    let [x, y, w, h] = *bbox;
    let (cx, cy) = (x + w / 2.0, y + h / 2.0);
    let (pw, ph) = (w * 1.6, h * 1.9);
    let x0 = (cx - pw / 2.0).max(0.0) as u32;
    let y0 = (cy - ph / 2.0).max(0.0) as u32;
    let x1 = ((cx + pw / 2.0) as u32).min(img.width());
    let y1 = ((cy + ph / 2.0) as u32).min(img.height());
    let crop = image::imageops::crop_imm(
        img,
        x0,
        y0,
        x1.saturating_sub(x0).max(1),
        y1.saturating_sub(y0).max(1),
    )
    .to_image();
    crate::media::intake::encode_jpeg(&crop, 90)
}

/// Sharpness and glare over the whole page (the card is not yet rectified).
pub fn page_quality(img: &RgbImage) -> PageQuality {
    let (w, h) = img.dimensions();
    let scale = (640.0 / w.max(h) as f32).min(1.0);
    let (sw, sh) = (
        ((w as f32 * scale) as u32).max(1),
        ((h as f32 * scale) as u32).max(1),
    );
    let small = frame::resize(img, sw, sh);
    let luma: Vec<f32> = small
        .pixels()
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect();
    let glare = img
        .pixels()
        .filter(|p| p.0.iter().all(|&c| c >= 250))
        .count() as f32
        / (w as f32 * h as f32).max(1.0);
    PageQuality {
        sharpness: laplacian_variance(&luma, sw as usize, sh as usize),
        glare,
        resolution: [w, h],
    }
}
