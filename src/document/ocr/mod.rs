//! Document OCR with PP-OCRv5 on rten: text detection ([`detect`]), line recognition
//! ([`recognize`]) and reading the MRZ band. The `ocrs` crate's own models cannot be had offline,
//! so the PP-OCR files are run directly; both are embedded in the binary like the face models.

pub mod detect;
pub mod geometry;
pub mod recognize;

use std::path::Path;

use image::RgbImage;
use serde::Serialize;

use crate::vision::runtime::{self, RuntimeOptions, OCR_DET, OCR_KEYS, OCR_REC};
use crate::vision::Result;
pub use detect::Detail;
use detect::{TextBox, TextDetector};
use geometry::RotatedRect;
use recognize::{Alphabet, TextRecognizer};

static DET_BYTES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/models/ppocrv5_det.onnx"
));
static REC_BYTES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/models/ppocrv5_rec.onnx"
));
static KEYS_TEXT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/models/ppocr_keys_v5.txt"
));

/// MRZ line lengths: TD1 (30 × 3), TD2 / MRV-B (36 × 2), TD3 / MRV-A (44 × 2).
pub const MRZ_LENGTHS: [usize; 3] = [30, 36, 44];

/// One recognised text line.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// The text.
    pub text: String,
    /// Recognition confidence in [0, 1].
    pub confidence: f32,
    /// Corners in image pixels: top-left, top-right, bottom-right, bottom-left.
    pub corners: [[f32; 2]; 4],
    /// Detection score.
    pub score: f32,
    #[serde(skip)]
    rect: RotatedRect,
    /// The same line decoded with the MRZ alphabet (from the same model run).
    #[serde(skip)]
    mrz: recognize::Recognized,
}

/// A page turned so that its text reads left to right.
#[derive(Debug, Clone)]
pub struct Page {
    /// The turned image.
    pub image: RgbImage,
    /// Clockwise quarter turns applied to the photo, in degrees (0, 90, 180 or 270).
    pub rotation: u16,
    /// Its text lines in reading order.
    pub lines: Vec<Line>,
}

/// The MRZ as read from the image.
#[derive(Debug, Clone, Serialize)]
pub struct MrzReading {
    /// The lines, top to bottom, decoded with the MRZ alphabet and fitted to the nearest MRZ
    /// length.
    pub lines: Vec<String>,
    /// Each line's recognition confidence.
    pub confidences: Vec<f32>,
}

/// The OCR models, loaded once.
#[derive(Clone)]
pub struct Ocr {
    detector: TextDetector,
    recognizer: TextRecognizer,
}

impl Line {
    /// The line decoded with the MRZ alphabet (from the same model run as [`Line::text`]).
    pub fn mrz_text(&self) -> &str {
        &self.mrz.text
    }
}

impl Ocr {
    /// Loads the detector, recogniser and dictionary: from `dir` when given, else the copies in
    /// the binary; every file is checked against its sha256.
    pub fn load(dir: Option<&Path>, opts: &RuntimeOptions) -> Result<Ocr> {
        let det = runtime::load_single(OCR_DET, dir, DET_BYTES, opts)?;
        let rec = runtime::load_single(OCR_REC, dir, REC_BYTES, opts)?;
        let keys = runtime::load_text(OCR_KEYS, dir, KEYS_TEXT)?;
        Ok(Ocr {
            detector: TextDetector::new(det),
            recognizer: TextRecognizer::new(rec, &keys)?,
        })
    }

    /// Runs both models once on blank input (first-call allocation happens before readiness).
    pub fn warm_up(&self) -> Result<()> {
        self.detector.detect(&RgbImage::new(64, 64))?;
        self.recognizer
            .recognize_all(&[RgbImage::new(96, 32), RgbImage::new(400, 32)])?;
        Ok(())
    }

    /// The text boxes in `img` (detection only).
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<TextBox>> {
        self.detector.detect(img)
    }

    /// Every text line in `img`, in reading order (top to bottom, then left to right).
    pub fn read_lines(&self, img: &RgbImage) -> Result<Vec<Line>> {
        let boxes = self.detector.detect(img)?;
        self.recognize_boxes(img, boxes)
    }

    /// Reads `img` turned so that its text runs left to right: a page photographed a quarter
    /// turn off has mostly tall text boxes, and one upside down reads as low-confidence noise
    /// (character-weighted confidence about 0.55–0.6 on the specimens turned over, 0.97
    /// upright) with its MRZ fillers as `>>>`, so it is read again turned over and the better
    /// reading kept.
    pub fn read_page(&self, img: &RgbImage) -> Result<Page> {
        self.read_page_with(img, Detail::Normal)
    }

    /// [`Ocr::read_page`], with the detector looking as finely as `detail` says (a small photo
    /// enlarged, a large one at its own resolution).
    pub fn read_page_with(&self, img: &RgbImage, detail: Detail) -> Result<Page> {
        let detect = |img: &RgbImage| self.detector.detect_with(img, detail);
        let boxes = detect(img)?;
        let tall = boxes.iter().filter(|b| is_tall(&b.rect)).count();
        let (image, rotation, boxes) = if tall * 2 > boxes.len() {
            let turned = image::imageops::rotate270(img);
            let boxes = detect(&turned)?;
            (turned, 270, boxes)
        } else {
            (img.clone(), 0, boxes)
        };
        let lines = self.recognize_boxes(&image, boxes)?;
        let page = Page {
            image,
            rotation,
            lines,
        };
        if page.lines.len() < 2
            || uprightness(&page.lines) >= UPRIGHT_CONFIDENCE
            || fillers_point_left(&page.lines)
        {
            return Ok(page);
        }
        let flipped = image::imageops::rotate180(&page.image);
        let lines = self.recognize_boxes(&flipped, detect(&flipped)?)?;
        if uprightness(&lines) > uprightness(&page.lines) + 0.1 {
            return Ok(Page {
                image: flipped,
                rotation: (page.rotation + 180) % 360,
                lines,
            });
        }
        Ok(page)
    }

    fn recognize_boxes(&self, img: &RgbImage, mut boxes: Vec<TextBox>) -> Result<Vec<Line>> {
        boxes.sort_by(|a, b| a.rect.cy.total_cmp(&b.rect.cy));
        let crops: Vec<RgbImage> = boxes.iter().map(|b| upright(img, &b.rect)).collect();
        let read = self.recognizer.recognize_all(&crops)?;
        let mut lines: Vec<Line> = boxes
            .into_iter()
            .zip(read)
            .filter(|(_, (r, _))| !r.text.trim().is_empty())
            .map(|(b, (r, mrz))| Line {
                text: r.text,
                confidence: r.confidence,
                corners: b.rect.corners(),
                score: b.score,
                rect: b.rect,
                mrz,
            })
            .collect();
        sort_reading_order(&mut lines);
        Ok(lines)
    }

    /// The MRZ band among `lines` (already read from `img`): rows whose MRZ-alphabet reading
    /// holds at least three `<` anchor it; rows shaped like MRZ lines (long runs of capitals,
    /// digits and `<`, no spaces) of the anchors' height next to them join it — on a small or
    /// blurred photo the fillers of a name line can read as letters. Rows are re-read with the
    /// MRZ alphabet; `None` when there are fewer than two.
    pub fn read_mrz(&self, img: &RgbImage, lines: &[Line]) -> Result<Option<MrzReading>> {
        let anchors: Vec<&Line> = lines
            .iter()
            .filter(|l| l.mrz.text.matches('<').count() >= 3)
            .collect();
        let near_anchor = |l: &Line| {
            anchors.iter().any(|a| {
                let ratio = l.rect.h / a.rect.h.max(1.0);
                (0.6..=1.6).contains(&ratio)
                    && (l.rect.cy - a.rect.cy).abs() <= 3.5 * a.rect.h
                    && (l.rect.cx - a.rect.cx).abs() <= 0.5 * a.rect.w.max(l.rect.w)
            })
        };
        let candidates: Vec<&Line> = lines
            .iter()
            .filter(|l| l.mrz.text.matches('<').count() >= 3 || (mrz_shaped(l) && near_anchor(l)))
            .collect();
        // The detector sometimes splits one MRZ line at a long filler run: join boxes that share
        // a row into one rectangle around all their corners.
        let mut rows: Vec<Vec<&Line>> = Vec::new();
        for l in candidates {
            match rows
                .iter_mut()
                .find(|row| on_same_line(&row[0].rect, &l.rect))
            {
                Some(row) => row.push(l),
                None => rows.push(vec![l]),
            }
        }
        // A single-box row was already decoded with the MRZ alphabet; a joined row is read again.
        let mut band: Vec<(RotatedRect, Option<&recognize::Recognized>)> = rows
            .iter()
            .filter_map(|row| {
                if row.len() == 1 {
                    return Some((row[0].rect, Some(&row[0].mrz)));
                }
                let corners: Vec<[f32; 2]> = row.iter().flat_map(|l| l.corners).collect();
                geometry::min_area_rect(&corners).map(|r| (r, None))
            })
            .collect();
        band.sort_by(|a, b| a.0.cy.total_cmp(&b.0.cy));
        // The band is the bottom two or three lines; a stray `<<<` elsewhere is dropped.
        if band.len() > 3 {
            band.drain(..band.len() - 3);
        }
        if band.len() < 2 {
            return Ok(None);
        }
        let mut texts = Vec::new();
        let mut confidences = Vec::new();
        for (rect, done) in &band {
            let r = match done {
                Some(r) => (*r).clone(),
                None => self
                    .recognizer
                    .recognize(&upright(img, rect), Alphabet::Mrz)?,
            };
            texts.push(r.text);
            confidences.push(r.confidence);
        }
        let target = nearest_length(&texts);
        if let Some(first) = texts.first_mut() {
            *first = restore_code_filler(first, target);
        }
        let mut lines: Vec<String> = texts.iter().map(|t| fit_length(t, target)).collect();
        if let Some((row, start, width)) = crate::document::mrz::name_field(lines.len(), target) {
            let line = &mut lines[row];
            if line.is_ascii() && line.len() >= start + width {
                let field = crate::document::mrz::clear_stray_fillers(&line[start..start + width]);
                line.replace_range(start..start + width, &field);
            }
        }
        Ok(Some(MrzReading { lines, confidences }))
    }
}

/// Whether a line looks like an MRZ line whatever its fillers read as: at least 20 characters,
/// no spaces, and nothing but capitals, digits and fillers.
fn mrz_shaped(l: &Line) -> bool {
    let t = l.text.trim();
    t.chars().count() >= 20
        && t.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '<' | '«' | '‹'))
}

/// The slant of the page's text in radians (clockwise positive, image y down): the
/// length-weighted median angle of the long boxes, `None` when there are too few to say.
pub fn skew_angle(lines: &[Line]) -> Option<f32> {
    let mut angles: Vec<(f32, f32)> = lines
        .iter()
        .filter(|l| l.rect.w.max(l.rect.h) >= 4.0 * l.rect.w.min(l.rect.h))
        .map(|l| {
            let [tl, tr, _, _] = l.corners;
            let a = (tr[1] - tl[1]).atan2(tr[0] - tl[0]);
            (a, l.rect.w.max(l.rect.h))
        })
        .filter(|(a, _)| a.abs() < std::f32::consts::FRAC_PI_4)
        .collect();
    if angles.len() < 3 {
        return None;
    }
    angles.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f32 = angles.iter().map(|a| a.1).sum();
    let mut acc = 0.0;
    for (a, w) in &angles {
        acc += w;
        if acc >= total / 2.0 {
            return Some(*a);
        }
    }
    None
}

/// `img` turned by `-angle` radians about its centre on a canvas large enough to hold it all
/// (the corners outside the photo are black), so that text slanted by `angle` runs level.
pub fn deskew(img: &RgbImage, angle: f32) -> RgbImage {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let (s, c) = f64::from(-angle).sin_cos();
    let (nw, nh) = (
        (w * c.abs() + h * s.abs()).ceil(),
        (w * s.abs() + h * c.abs()).ceil(),
    );
    // src → dst: rotate about the source centre, then move it to the new centre.
    let (cx, cy, ncx, ncy) = (w / 2.0, h / 2.0, nw / 2.0, nh / 2.0);
    let m: crate::vision::align::Affine = [
        [c, -s, ncx - (c * cx - s * cy)],
        [s, c, ncy - (s * cx + c * cy)],
    ];
    crate::vision::align::warp_affine(img, &m, nw as u32, nh as u32)
}

/// Below this character-weighted confidence a page may be upside down.
const UPRIGHT_CONFIDENCE: f32 = 0.8;

/// Mean line confidence weighted by each line's length.
pub fn weighted_confidence(lines: &[Line]) -> f32 {
    let chars: usize = lines.iter().map(|l| l.text.chars().count()).sum();
    if chars == 0 {
        return 0.0;
    }
    let sum: f32 = lines
        .iter()
        .map(|l| l.confidence * l.text.chars().count() as f32)
        .sum();
    sum / chars as f32
}

/// How upright a reading looks: its [`weighted_confidence`], less 0.3 when a line holds a run
/// of `>` — an MRZ filler run upside down (the chevrons read confidently either way up).
fn uprightness(lines: &[Line]) -> f32 {
    let reversed_fillers = lines.iter().any(|l| l.text.contains(">>>"));
    weighted_confidence(lines) - if reversed_fillers { 0.3 } else { 0.0 }
}

/// Whether the page's MRZ fillers read as `<<<` and none as `>>>`: the page is upright whatever
/// the confidence (a small photo reads at 0.6–0.8 upright), so it need not be read turned over.
fn fillers_point_left(lines: &[Line]) -> bool {
    lines.iter().any(|l| l.text.contains("<<<")) && !lines.iter().any(|l| l.text.contains(">>>"))
}

/// Whether a text box stands taller than wide on the page (its text runs up or down).
fn is_tall(rect: &RotatedRect) -> bool {
    let c = rect.corners();
    let side = |a: [f32; 2], b: [f32; 2]| (a[0] - b[0]).hypot(a[1] - b[1]);
    side(c[0], c[3]) >= 1.5 * side(c[0], c[1])
}

/// The upright crop of a text box (rotated a quarter turn when it stands taller than wide, as
/// PaddleOCR does).
fn upright(img: &RgbImage, rect: &RotatedRect) -> RgbImage {
    let crop = geometry::crop(img, rect);
    if crop.height() as f32 >= 1.5 * crop.width() as f32 {
        image::imageops::rotate270(&crop)
    } else {
        crop
    }
}

/// Whether `b`'s centre lies on `a`'s text line extended along its direction (a tilted page
/// moves a line's far end by more than a line height, so comparing centres' y would not do).
fn on_same_line(a: &RotatedRect, b: &RotatedRect) -> bool {
    let (s, c) = a.angle.sin_cos();
    let (dx, dy) = (b.cx - a.cx, b.cy - a.cy);
    (-dx * s + dy * c).abs() <= 0.5 * a.h.min(b.h)
}

/// Sorts top to bottom, treating boxes whose centres are within half a line height as one row,
/// left to right inside a row.
fn sort_reading_order(lines: &mut [Line]) {
    // Rows first, then left to right within a row. (A pairwise "same row if centres are within
    // half a height" comparison is not transitive; sorting by it panics on some pages.)
    lines.sort_by(|a, b| a.rect.cy.total_cmp(&b.rect.cy));
    let mut row = vec![0usize; lines.len()];
    let mut start = 0;
    for i in 1..lines.len() {
        let (first, this) = (&lines[start].rect, &lines[i].rect);
        if this.cy - first.cy > 0.5 * first.h.min(this.h) {
            start = i;
        }
        row[i] = start;
    }
    let mut keyed: Vec<(usize, f32, Line)> = row
        .into_iter()
        .zip(lines.iter().cloned())
        .map(|(r, l)| (r, l.rect.cx, l))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    for (slot, (_, _, l)) in lines.iter_mut().zip(keyed) {
        *slot = l;
    }
}

/// The MRZ length closest to the lines' median length.
pub fn nearest_length(lines: &[String]) -> usize {
    let mut lens: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
    lens.sort_unstable();
    let median = lens.get(lens.len() / 2).copied().unwrap_or(44);
    *MRZ_LENGTHS
        .iter()
        .min_by_key(|&&n| n.abs_diff(median))
        .unwrap_or(&44)
}

/// The first line with the filler after a one-letter document code put back: small print often
/// loses the `<` of `P<UTO…`, which shifts the whole line left by one. Put back only when the
/// line is short, the three letters after the code are a known state and the three after the
/// missing filler would not be (`PALVA…` is Latvia's `PA` code and stays as it is).
pub fn restore_code_filler(line: &str, len: usize) -> String {
    let s: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    let b = s.as_bytes();
    let known = |at: usize| {
        b.get(at..at + 3)
            .and_then(|c| <[u8; 3]>::try_from(c).ok())
            .is_some_and(|c| crate::document::countries::lookup_mrz(c).is_some())
    };
    if s.chars().count() < len
        && b.first().is_some_and(u8::is_ascii_uppercase)
        && known(1)
        && !known(2)
    {
        return format!("{}<{}", &s[..1], &s[1..]);
    }
    s
}

/// Pads with `<` or trims trailing fillers to `len` characters. OCR usually loses or gains
/// fillers at the end of a line, where runs of `<` are hard to count; a line too long with
/// non-filler characters at the end is cut (and the check digits will say whether that was
/// right).
pub fn fit_length(line: &str, len: usize) -> String {
    let mut s: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    while s.chars().count() > len && s.ends_with('<') {
        s.pop();
    }
    let n = s.chars().count();
    if n > len {
        s = s.chars().take(len).collect();
    }
    while s.chars().count() < len {
        s.push('<');
    }
    s
}

#[cfg(test)]
mod tests;
