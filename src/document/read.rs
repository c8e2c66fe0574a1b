//! Reading a document photo: OCR lines, the MRZ (validated and repaired by check digits), printed
//! fields, type and country, the holder's portrait and image quality — the body of
//! `POST /v1/document/ocr`. Pure function of pixels and models.

use image::RgbImage;
use serde::Serialize;

use super::arbitrate;
use super::barcode::{self, Barcode};
use super::card;
use super::countries;
use super::mrz::{CheckStatus, DocumentType, MrzInput, Repair};
use super::ocr::{self, Detail, Line, MrzReading, Ocr, Page};
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
    /// 0.95 from a valid MRZ, 0.9 from an AAMVA barcode, 0.6 from printed keywords.
    pub confidence: f32,
    /// `mrz`, `barcode` or `printed`.
    pub source: &'static str,
}

/// Image quality of the page.
#[derive(Debug, Clone, Serialize)]
pub struct PageQuality {
    /// Variance of the Laplacian on a 640 px grey copy; under ~50 is blurry.
    pub sharpness: f32,
    /// Share of clipped (≥ 250 on every channel) pixels on a card whose median luma is at
    /// least 40 darker: glare on a laminate. A white page reports 0.
    pub glare: f32,
    /// Width and height of the photo in pixels.
    pub resolution: [u32; 2],
    /// Whether the photo cuts the document (see `missing_areas`).
    pub cropped: bool,
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
    /// The PDF417, QR or Data Matrix code on the page, when there is one.
    pub barcode: Option<Barcode>,
    /// Every text line, in reading order.
    pub lines: Vec<Line>,
    /// The holder's portrait, JPEG, when a face was found.
    #[serde(skip)]
    pub face_crop_jpeg: Option<Vec<u8>>,
    /// The portrait analysed for face match (embedding included).
    #[serde(skip)]
    pub portrait_face: Option<crate::vision::facematch::AnalyzedFace>,
    /// Quality of the page.
    pub quality: PageQuality,
    /// Sides of the photo that cut through the document's text (`top`, `right`, `bottom`,
    /// `left`): what was there was not read, and is not guessed.
    pub missing_areas: Vec<&'static str>,
    /// Clockwise degrees the photo was turned to read it (0, 90, 180, 270).
    pub rotation: u16,
    /// The card's corners in the photo when it was found by its edges and read warped flat.
    pub card: Option<card::Quad>,
    /// Human-readable problems (no portrait, blurry, glare…).
    pub warnings: Vec<String>,
}

/// The MRZ part of a reading.
#[derive(Debug, Clone, Serialize)]
pub struct MrzSection {
    /// Lines and per-line confidence as read.
    #[serde(flatten)]
    pub reading: MrzReading,
    /// Name characters respelled from the printed names (look-alikes only, see
    /// [`arbitrate`]); applied before validation.
    pub print_repairs: Vec<Repair>,
    /// Name characters settled by a vote over the band read again enlarged (see
    /// [`vote_small_names`]); applied after `print_repairs`, before validation.
    pub vote_repairs: Vec<Repair>,
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
        let repairs = self.validation.iter().flat_map(|v| &v.repairs);
        for r in self
            .print_repairs
            .iter()
            .chain(&self.vote_repairs)
            .chain(repairs)
        {
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

/// Words that mark a page as an identity document when there is no MRZ, in English and the
/// other official languages of the EU (plus the usual North-American ones). Keyword and page
/// are both folded to lower-case ASCII (accents dropped, Greek and Cyrillic transliterated) and
/// matched as whole words. The first match in
/// this order decides: a residence permit or a licence may also say "identity".
const KEYWORDS: &[(&str, &str)] = &[
    // residence permit: en, fr, de, nl, it, es, pt, pl, cs, sk, sl, hr, hu, ro, bg, el, da, sv,
    // fi, et, lv, lt, mt, ga
    ("residence permit", "residence_permit"),
    ("residence card", "residence_permit"),
    ("titre de séjour", "residence_permit"),
    ("aufenthaltstitel", "residence_permit"),
    ("aufenthaltserlaubnis", "residence_permit"),
    ("verblijfsvergunning", "residence_permit"),
    ("verblijfsdocument", "residence_permit"),
    ("permesso di soggiorno", "residence_permit"),
    ("permiso de residencia", "residence_permit"),
    ("autorización de residencia", "residence_permit"),
    ("autorização de residência", "residence_permit"),
    ("título de residencia", "residence_permit"),
    ("karta pobytu", "residence_permit"),
    ("zezwolenie na pobyt", "residence_permit"),
    ("povolení k pobytu", "residence_permit"),
    ("povolenie na pobyt", "residence_permit"),
    ("dovoljenje za prebivanje", "residence_permit"),
    ("dozvola boravka", "residence_permit"),
    ("tartózkodási engedély", "residence_permit"),
    ("permis de ședere", "residence_permit"),
    ("разрешение за пребиваване", "residence_permit"),
    ("άδεια διαμονής", "residence_permit"),
    ("opholdstilladelse", "residence_permit"),
    ("uppehållstillstånd", "residence_permit"),
    ("oleskelulupa", "residence_permit"),
    ("elamisluba", "residence_permit"),
    ("uzturēšanās atļauja", "residence_permit"),
    ("leidimas gyventi", "residence_permit"),
    ("permess ta' residenza", "residence_permit"),
    ("cead cónaithe", "residence_permit"),
    // driving licence
    ("driving licence", "driver_license"),
    ("driving license", "driver_license"),
    ("driver license", "driver_license"),
    ("driver's license", "driver_license"),
    ("drivers license", "driver_license"),
    ("driver licence", "driver_license"),
    ("permis de conduire", "driver_license"),
    ("führerschein", "driver_license"),
    ("rijbewijs", "driver_license"),
    ("patente di guida", "driver_license"),
    ("permiso de conducción", "driver_license"),
    ("permiso de conducir", "driver_license"),
    ("licencia de conducir", "driver_license"),
    ("carta de condução", "driver_license"),
    ("prawo jazdy", "driver_license"),
    ("řidičský průkaz", "driver_license"),
    ("vodičský preukaz", "driver_license"),
    ("vozniško dovoljenje", "driver_license"),
    ("vozačka dozvola", "driver_license"),
    ("vezetői engedély", "driver_license"),
    ("permis de conducere", "driver_license"),
    ("свидетелство за управление", "driver_license"),
    ("άδεια οδήγησης", "driver_license"),
    ("kørekort", "driver_license"),
    ("ajokortti", "driver_license"),
    ("juhiluba", "driver_license"),
    ("vadītāja apliecība", "driver_license"),
    ("vairuotojo pažymėjimas", "driver_license"),
    ("liċenzja tas-sewqan", "driver_license"),
    ("ceadúnas tiomána", "driver_license"),
    // identity card
    ("identity card", "id_card"),
    ("identification card", "id_card"),
    ("carte d'identité", "id_card"),
    ("carte nationale d'identité", "id_card"),
    ("personalausweis", "id_card"),
    ("identiteitskaart", "id_card"),
    ("carta d'identità", "id_card"),
    ("documento nacional de identidad", "id_card"),
    ("cartão de cidadão", "id_card"),
    ("bilhete de identidade", "id_card"),
    ("dowód osobisty", "id_card"),
    ("občanský průkaz", "id_card"),
    ("občiansky preukaz", "id_card"),
    ("osebna izkaznica", "id_card"),
    ("osobna iskaznica", "id_card"),
    ("személyazonosító igazolvány", "id_card"),
    ("carte de identitate", "id_card"),
    ("лична карта", "id_card"),
    ("δελτίο ταυτότητας", "id_card"),
    ("identitetskort", "id_card"),
    ("henkilökortti", "id_card"),
    ("isikutunnistus", "id_card"),
    ("personas apliecība", "id_card"),
    ("asmens tapatybės kortelė", "id_card"),
    ("karta tal-identità", "id_card"),
    ("carta tal-identità", "id_card"),
    ("cárta aitheantais", "id_card"),
    // passport
    ("passport", "passport"),
    ("passeport", "passport"),
    ("reisepass", "passport"),
    ("paspoort", "passport"),
    ("passaporto", "passport"),
    ("pasaporte", "passport"),
    ("passaporte", "passport"),
    ("paszport", "passport"),
    ("cestovní pas", "passport"),
    ("cestovný pas", "passport"),
    ("potni list", "passport"),
    ("putovnica", "passport"),
    ("útlevél", "passport"),
    ("pașaport", "passport"),
    ("паспорт", "passport"),
    ("διαβατήριο", "passport"),
    ("passi", "passport"),
    ("pasas", "passport"),
    ("passaport", "passport"),
];

/// The document type named by the page's text: the first of [`KEYWORDS`] found as whole words
/// in `text` folded to lower-case ASCII (Greek and Cyrillic transliterated). Line breaks count
/// as spaces, so a keyword may run over two lines.
pub fn keyword_type(text: &str) -> Option<&'static str> {
    static FOLDED: std::sync::LazyLock<Vec<(String, &'static str)>> =
        std::sync::LazyLock::new(|| {
            KEYWORDS
                .iter()
                .map(|&(k, t)| (deunicode::deunicode(k).to_lowercase(), t))
                .collect()
        });
    // deunicode drops control characters: turn them into spaces first.
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let folded = deunicode::deunicode(&spaced).to_lowercase();
    FOLDED.iter().find_map(|(k, t)| {
        folded
            .match_indices(k.as_str())
            .any(|(i, _)| {
                let before = folded[..i].chars().next_back();
                let after = folded[i + k.len()..].chars().next();
                !before.is_some_and(char::is_alphanumeric)
                    && !after.is_some_and(char::is_alphanumeric)
            })
            .then_some(*t)
    })
}

/// The text of a page: the page turned upright with its lines, the MRZ (names checked against
/// the print, then validated and repaired by check digits) and the printed fields.
#[derive(Debug, Clone)]
pub struct TextReading {
    /// The page turned so its text reads left to right, with its lines.
    pub page: Page,
    /// The MRZ, when there is one.
    pub mrz: Option<MrzSection>,
    /// Printed fields found by label.
    pub printed: Vec<PrintedField>,
    /// Degrees the page was turned to level slanted text (0 when it was read as it was).
    pub skew_degrees: f32,
    /// The card's corners in the photo when it was found and the reading is of the card warped
    /// flat (`page.image`); `None` when the photo was read as it is.
    pub card: Option<card::Quad>,
}

/// Text slanted less than this (degrees) is read as it is.
const SKEW_MIN_DEGREES: f32 = 2.0;

/// A photo whose long side is shorter than this is read again enlarged when its MRZ did not
/// come out whole.
const ENLARGE_BELOW: u32 = 720;

/// Reads the text of `img`: what [`read`] does before it looks for the portrait. Where the card
/// stands out from what it lies on ([`card::find`]) it is warped flat and read first; the photo
/// as it is is read too when the flat card gives neither a whole MRZ nor, without any MRZ,
/// identity-document wording (a quad that was not the document), and the better kept — by MRZ
/// score, then wording, then printed fields; the flat card on a tie.
pub fn read_text(ocr: &Ocr, img: &RgbImage) -> Result<TextReading, ReadError> {
    let mut reading = read_card_or_photo(ocr, img)?;
    vote_small_names(ocr, &mut reading)?;
    Ok(reading)
}

/// [`read_text`] before the vote on small names.
fn read_card_or_photo(ocr: &Ocr, img: &RgbImage) -> Result<TextReading, ReadError> {
    let Some((quad, flat)) = card::find(img).and_then(|q| Some((q, card::warp(img, &q)?))) else {
        return read_photo_text(ocr, img);
    };
    let mut on_card = read_photo_text(ocr, &flat)?;
    on_card.card = Some(quad);
    let rank = |t: &TextReading| {
        let text: Vec<&str> = t.page.lines.iter().map(|l| l.text.as_str()).collect();
        (
            mrz_score(t),
            keyword_type(&text.join("\n")).is_some(),
            t.printed.len(),
        )
    };
    let flat_rank = rank(&on_card);
    if flat_rank.0 == MRZ_WHOLE || (!mrz_seen(&on_card) && flat_rank.1) {
        return Ok(on_card);
    }
    let plain = read_photo_text(ocr, img)?;
    Ok(if rank(&plain) > flat_rank {
        plain
    } else {
        on_card
    })
}

/// MRZ lines whose boxes are lower than this (pixels; glyphs of ~5 px) are read again.
const SMALL_MRZ_LINE: f32 = 16.0;
/// The enlargements the small band is read again at.
const BAND_SCALES: [u32; 3] = [2, 3, 4];
/// An enlarged band longer than this (pixels) is not read: the vote is skipped.
const BAND_MAX_SIDE: u32 = 4096;

/// Names on a small photo. No check digit covers the name field, and where glyphs are a few
/// pixels tall the recogniser misreads a letter of a name with the MRZ still validating
/// (`NAHIA` for `MARIA`). Where the MRZ validates and its lines are lower than
/// [`SMALL_MRZ_LINE`], the band (the MRZ lines with a line's height around them) is cut out,
/// enlarged ×2, ×3 and ×4 (Catmull-Rom, long side at most [`BAND_MAX_SIDE`]) and read again.
/// Where all three validate in the first reading's format, read every character outside the
/// name field as the first did, and agree on a name-field character the first reading has
/// otherwise, theirs is taken (`vote_repairs`); the result is validated again and kept only
/// when it still validates. Unanimity, not a majority: on 30 generated documents shrunk to 300 px a majority
/// vote fixed 2 names and broke 1, unanimity fixed 1 and broke none (3 fixed, none broken on 36
/// more at 380 px); a real 268 px Egyptian passport, two of whose enlargements read `MABROUK`
/// as `RABROUK`, is left as read.
fn vote_small_names(ocr: &Ocr, t: &mut TextReading) -> Result<(), ReadError> {
    let Some(m) = t
        .mrz
        .as_ref()
        .filter(|m| mrz_section_score(Some(m)) == MRZ_WHOLE)
    else {
        return Ok(());
    };
    let band: Vec<&Line> = t
        .page
        .lines
        .iter()
        .filter(|l| l.mrz_text().matches('<').count() >= 3)
        .collect();
    let height = |l: &Line| {
        let c = l.corners;
        (c[3][0] - c[0][0]).hypot(c[3][1] - c[0][1])
    };
    let Some(line_h) = band.iter().map(|l| height(l)).max_by(f32::total_cmp) else {
        return Ok(());
    };
    if line_h >= SMALL_MRZ_LINE {
        return Ok(());
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for [x, y] in band.iter().flat_map(|l| l.corners) {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    let img = &t.page.image;
    let (w, h) = (img.width() as f32, img.height() as f32);
    let (x0, y0) = ((x0 - line_h).max(0.0), (y0 - line_h).max(0.0));
    let (x1, y1) = ((x1 + line_h).min(w), (y1 + line_h).min(h));
    if x1 - x0 < 8.0 || y1 - y0 < 8.0 {
        return Ok(());
    }
    let crop = image::imageops::crop_imm(
        img,
        x0 as u32,
        y0 as u32,
        (x1 - x0) as u32,
        (y1 - y0) as u32,
    )
    .to_image();
    let first = m.corrected_lines();
    let shape = |lines: &[String]| (lines.len(), lines.first().map_or(0, String::len));
    let mut readings = vec![first.clone()];
    for scale in BAND_SCALES {
        if crop.width().max(crop.height()) * scale > BAND_MAX_SIDE {
            return Ok(());
        }
        let big = image::imageops::resize(
            &crop,
            crop.width() * scale,
            crop.height() * scale,
            image::imageops::FilterType::CatmullRom,
        );
        let again = read_text_once(ocr, &big, Detail::Normal)?;
        if let Some(section) = again.mrz.as_ref() {
            let lines = section.corrected_lines();
            if mrz_section_score(Some(section)) == MRZ_WHOLE && shape(&lines) == shape(&first) {
                readings.push(lines);
            }
        }
    }
    let (rows, len) = shape(&first);
    let Some((row, start, width)) = super::mrz::name_field(rows, len) else {
        return Ok(());
    };
    // Every enlargement read, validated in the first reading's format, and the same as the
    // first outside the name field (a reading that turns fillers into letters there is not
    // trusted with the names).
    let same_outside = |lines: &Vec<String>| {
        lines.iter().zip(&first).enumerate().all(|(r, (a, b))| {
            a.chars()
                .zip(b.chars())
                .enumerate()
                .all(|(i, (x, y))| x == y || (r == row && (start..start + width).contains(&i)))
        })
    };
    if readings.len() < 1 + BAND_SCALES.len() || !readings.iter().all(same_outside) {
        return Ok(());
    }
    let chars: Vec<Vec<char>> = readings.iter().map(|r| r[row].chars().collect()).collect();
    let votes: Vec<Repair> = (start..start + width)
        .filter_map(|pos| {
            let mine = chars[0][pos];
            let theirs = chars[1][pos];
            (theirs != mine && chars[1..].iter().all(|r| r[pos] == theirs)).then_some(Repair {
                line: row + 1,
                position: pos + 1,
                from: mine,
                to: theirs,
            })
        })
        .collect();
    if votes.is_empty() {
        return Ok(());
    }
    // The lines as read with the print's and the vote's repairs: validation repairs check
    // digits again (names carry none).
    let mut section = m.clone();
    section.vote_repairs = votes;
    section.validation = None;
    let voted = section.corrected_lines();
    section.validation =
        validate::validate(&MrzInput::Lines(voted), None, &ValidateOptions::today_utc()).ok();
    if mrz_section_score(Some(&section)) == MRZ_WHOLE {
        t.mrz = Some(section);
    }
    Ok(())
}

/// Whether an MRZ was seen at all: a band, or a `<` anywhere (no other print uses it).
fn mrz_seen(t: &TextReading) -> bool {
    mrz_score(t) >= 1 || t.page.lines.iter().any(|l| l.text.contains(['<', '«']))
}

/// Reads the text of `img` as it is (no card warp). A page whose
/// MRZ did not come out whole (missing, or a check that fails) is read again where that can
/// help, and the best reading kept: enlarged when the photo is small (the detector misses text
/// a few pixels tall), turned level when its text runs at a slant (the detector splits long
/// slanted lines into pieces), at its own resolution (up to [`ocr::detect::FULL_SIDE`]) when
/// it is large.
fn read_photo_text(ocr: &Ocr, img: &RgbImage) -> Result<TextReading, ReadError> {
    let first = read_text_once(ocr, img, Detail::Normal)?;
    let mut best = (mrz_score(&first), first);
    let long_side = img.width().max(img.height());
    if best.0 < MRZ_WHOLE && long_side < ENLARGE_BELOW {
        keep_better(&mut best, read_text_once(ocr, img, Detail::Enlarged)?);
    }
    // Levelled when slanted; a large photo whose MRZ was seen but still did not come out whole
    // is then read at its own resolution (levelled too when slanted): at the detector's usual
    // 960 px two slanted MRZ lines can run into one region.
    let mut source = None;
    if best.0 < MRZ_WHOLE {
        let page = &best.1.page;
        let angle =
            ocr::skew_angle(&page.lines).filter(|a| a.to_degrees().abs() >= SKEW_MIN_DEGREES);
        if let Some(angle) = angle {
            let level = Levelled {
                image: ocr::deskew(&page.image, angle),
                rotation: page.rotation,
                angle,
            };
            keep_better(&mut best, level.read(ocr, Detail::Normal)?);
            source = Some(level);
        }
    }
    // Only where an MRZ was seen at all: a page without one (a licence front, a face) is not
    // read a third time.
    if best.0 < MRZ_WHOLE && mrz_seen(&best.1) && long_side > ocr::detect::MAX_SIDE {
        let full = match &source {
            Some(level) => level.read(ocr, Detail::Full)?,
            None => read_text_once(ocr, img, Detail::Full)?,
        };
        keep_better(&mut best, full);
    }
    Ok(best.1)
}

/// A page turned upright by `rotation` degrees, then levelled by `angle` radians.
struct Levelled {
    image: RgbImage,
    rotation: u16,
    angle: f32,
}

impl Levelled {
    /// Reads the levelled page, its rotation and slant carried into the reading.
    fn read(&self, ocr: &Ocr, detail: Detail) -> Result<TextReading, ReadError> {
        let mut r = read_text_once(ocr, &self.image, detail)?;
        r.page.rotation = (self.rotation + r.page.rotation) % 360;
        r.skew_degrees = self.angle.to_degrees();
        Ok(r)
    }
}

/// Replaces `best` (with its [`mrz_score`]) by `candidate` when that scores higher.
fn keep_better(best: &mut (usize, TextReading), candidate: TextReading) {
    let score = mrz_score(&candidate);
    if score > best.0 {
        *best = (score, candidate);
    }
}

/// [`mrz_score`] of a reading whose MRZ validates: every check digit, field and code holds
/// (expiry and age aside, which are facts about the document rather than the reading).
const MRZ_WHOLE: usize = usize::MAX;

/// How well the MRZ came out: [`MRZ_WHOLE`], else 1 + the number of checks that passed, 0
/// without an MRZ.
fn mrz_score(t: &TextReading) -> usize {
    mrz_section_score(t.mrz.as_ref())
}

/// [`mrz_score`] of an MRZ section. A name field without its `<<` (every filler read as a
/// letter) counts as a failed check: no check digit covers names.
fn mrz_section_score(mrz: Option<&MrzSection>) -> usize {
    let Some(m) = mrz else { return 0 };
    let Some(v) = &m.validation else { return 1 };
    let lines = m.corrected_lines();
    let len = lines.first().map_or(0, String::len);
    let names_fail = super::mrz::name_field(lines.len(), len)
        .and_then(|(row, start, width)| lines.get(row)?.get(start..start + width))
        .is_some_and(|field| !super::mrz::name_field_plausible(field));
    let (mut passed, mut failed) = (0, usize::from(names_fail));
    for c in &v.checks {
        if matches!(c.name.as_ref(), "not_expired" | "age_plausible") {
            continue;
        }
        match c.status {
            CheckStatus::Pass => passed += 1,
            CheckStatus::Fail => failed += 1,
            _ => {}
        }
    }
    if failed == 0 {
        MRZ_WHOLE
    } else {
        1 + passed
    }
}

fn read_text_once(ocr: &Ocr, img: &RgbImage, detail: Detail) -> Result<TextReading, ReadError> {
    let page = ocr.read_page_with(img, detail)?;
    let printed = printed::fields(&page.lines);
    let mrz = ocr.read_mrz(&page.image, &page.lines)?.map(|reading| {
        let (mut lines, mut print_repairs) = arbitrate::names_from_print(&reading.lines, &printed);
        if print_repairs.is_empty() {
            let text: Vec<&str> = page
                .lines
                .iter()
                .map(|l| l.text.as_str())
                .filter(|t| !t.contains(['<', '«']))
                .collect();
            (lines, print_repairs) = arbitrate::names_from_words(&lines, &text);
        }
        let validation =
            validate::validate(&MrzInput::Lines(lines), None, &ValidateOptions::today_utc()).ok();
        MrzSection {
            reading,
            print_repairs,
            vote_repairs: Vec::new(),
            validation,
        }
    });
    Ok(TextReading {
        page,
        mrz,
        printed,
        skew_degrees: 0.0,
        card: None,
    })
}

/// Reads `img` with `ocr`, finds the portrait with `faces`.
pub fn read(
    ocr: &Ocr,
    faces: &FaceAnalyzer,
    img: &RgbImage,
    hints: &Hints,
) -> Result<DocumentReading, ReadError> {
    let TextReading {
        page,
        mrz,
        printed,
        skew_degrees,
        card,
    } = read_text(ocr, img)?;
    let (img, lines) = (&page.image, page.lines);
    let text = lines
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let keyword = keyword_type(&text);
    let parsed = mrz.as_ref().and_then(|m| m.validation.as_ref());
    // The barcode is looked for where the MRZ did not come out whole: documents with an MRZ
    // rarely carry one, and the search costs passes over the pixels (~120 ms at 1280×900).
    let barcode = if mrz_section_score(mrz.as_ref()) == MRZ_WHOLE {
        None
    } else {
        barcode::find_levelled(img, ocr::skew_angle(&lines))
    };
    let aamva = barcode.as_ref().and_then(|b| b.aamva.as_ref());
    if parsed.is_none() && keyword.is_none() && aamva.is_none() {
        return Err(ReadError::NoDocument);
    }
    let detected = match (parsed, aamva) {
        (None, Some(a)) => Detected {
            document_type: a.document_type.into(),
            country: a.country.map(str::to_owned),
            confidence: 0.9,
            source: "barcode",
        },
        (Some(v), _) => Detected {
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
        (None, None) => Detected {
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
    if skew_degrees != 0.0 {
        warnings.push(format!(
            "the text ran at a slant of {skew_degrees:.0}°: the page was levelled to read it"
        ));
    }
    if page.rotation != 0 {
        warnings.push(format!(
            "the photo was turned {}° to read it",
            page.rotation
        ));
    }
    let portrait_face = match faces.analyze(img, Role::Document) {
        Ok(face) => Some(face),
        Err(VisionError::Model(m)) => return Err(VisionError::Model(m).into()),
        Err(e) => {
            warnings.push(format!("no portrait: {e}"));
            None
        }
    };
    let face = portrait_face.as_ref().map(|f| f.face.bbox);
    let face_crop_jpeg = face.map(|bbox| portrait(img, &bbox));
    let region = card_region(img, &lines, face);
    // A card found by its edges lies whole inside the photo.
    let missing_areas = if card.is_some() {
        Vec::new()
    } else {
        cut_sides(img, &lines)
    };
    if !missing_areas.is_empty() {
        warnings.push(format!(
            "the document runs off the photo ({}): fields there may be missing",
            missing_areas.join(", ")
        ));
    }
    let crop =
        image::imageops::crop_imm(img, region[0], region[1], region[2], region[3]).to_image();
    let mut quality = page_quality(&crop);
    quality.resolution = [img.width(), img.height()];
    quality.cropped = !missing_areas.is_empty();
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
        printed,
        barcode,
        mrz,
        lines,
        face_crop_jpeg,
        portrait_face,
        quality,
        missing_areas,
        rotation: page.rotation,
        card,
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

/// The document's extent, `[x, y, w, h]`: the box around its text and portrait with a 4 %
/// margin (the whole photo when nothing was found). Quality is measured there, so a dark
/// desk around the card doesn't dilute the glare share.
fn card_region(img: &RgbImage, lines: &[Line], face: Option<[f32; 4]>) -> [u32; 4] {
    let points = lines.iter().flat_map(|l| l.corners).chain(
        face.into_iter()
            .flat_map(|[x, y, w, h]| [[x, y], [x + w, y + h]]),
    );
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for [x, y] in points {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    let (w, h) = (img.width() as f32, img.height() as f32);
    if x0 >= x1 || y0 >= y1 {
        return [0, 0, img.width(), img.height()];
    }
    let (mx, my) = (0.04 * (x1 - x0), 0.04 * (y1 - y0));
    let (x0, y0) = ((x0 - mx).clamp(0.0, w - 1.0), (y0 - my).clamp(0.0, h - 1.0));
    let (x1, y1) = ((x1 + mx).clamp(x0 + 1.0, w), (y1 + my).clamp(y0 + 1.0, h));
    [x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32]
}

/// The sides of the photo that a text line touches: the line (and the document) goes on beyond
/// the frame.
fn cut_sides(img: &RgbImage, lines: &[Line]) -> Vec<&'static str> {
    const EDGE: f32 = 2.0;
    let (w, h) = (img.width() as f32, img.height() as f32);
    let touches = |test: &dyn Fn([f32; 2]) -> bool| {
        lines
            .iter()
            .any(|l| l.text.chars().count() >= 2 && l.corners.iter().any(|&c| test(c)))
    };
    let mut sides = Vec::new();
    if touches(&|[_, y]| y <= EDGE) {
        sides.push("top");
    }
    if touches(&|[x, _]| x >= w - 1.0 - EDGE) {
        sides.push("right");
    }
    if touches(&|[_, y]| y >= h - 1.0 - EDGE) {
        sides.push("bottom");
    }
    if touches(&|[x, _]| x <= EDGE) {
        sides.push("left");
    }
    sides
}

/// Every channel at least this bright counts as clipped.
const GLARE_MIN_LUMA: f32 = 250.0;
/// Clipped pixels are glare only on a card whose median luma is this much darker.
const GLARE_ABOVE_MEDIAN: f32 = 40.0;

/// Sharpness and glare of an image (the card region, by the caller's choice).
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
    // Glare is clipped white standing well above the card's usual brightness: on a white page
    // (a scan, a paper specimen) clipped white is just the paper.
    let mut sorted = luma.clone();
    sorted.sort_by(f32::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let glare = if median >= GLARE_MIN_LUMA - GLARE_ABOVE_MEDIAN {
        0.0
    } else {
        img.pixels()
            .filter(|p| p.0.iter().all(|&c| f32::from(c) >= GLARE_MIN_LUMA))
            .count() as f32
            / (w as f32 * h as f32).max(1.0)
    };
    PageQuality {
        sharpness: laplacian_variance(&luma, sw as usize, sh as usize),
        glare,
        resolution: [w, h],
        cropped: false,
    }
}

#[cfg(test)]
mod keyword_tests {
    use super::keyword_type;

    #[test]
    fn document_types_are_named_in_the_eu_languages() {
        assert_eq!(
            keyword_type("california usa\ndriver license"),
            Some("driver_license")
        );
        assert_eq!(keyword_type("PRAWO JAZDY"), Some("driver_license"));
        let t = "californiａ\nusa\ndriver license\ndln\nd0812815\nexp 07/16/2031\nlast name\nsex m\nclass c\niss 09124/2019";
        assert_eq!(keyword_type(t), Some("driver_license"));
        assert_eq!(keyword_type("Občanský průkaz"), Some("id_card"));
        assert_eq!(keyword_type("OBCANSKY PRUKAZ"), Some("id_card"));
        assert_eq!(keyword_type("CARTE D'IDENTITE"), Some("id_card"));
        assert_eq!(keyword_type("ΔΕΛΤΙΟ ΤΑΥΤΟΤΗΤΑΣ"), Some("id_card"));
        assert_eq!(keyword_type("Titre de séjour"), Some("residence_permit"));
        assert_eq!(keyword_type("PAŞAPORT"), Some("passport"));
        assert_eq!(keyword_type("PASSPORT / PASSEPORT"), Some("passport"));
        // Whole words only.
        assert_eq!(keyword_type("compassion"), None);
        assert_eq!(keyword_type("passports"), None);
    }
}
