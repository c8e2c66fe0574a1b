//! ICAO Doc 9303 machine-readable zone (MRZ) parsing: the public types and the
//! [`parse()`] entry point that the OCR module calls. This module owns reading
//! an MRZ into fields, verifying its check digits and repairing OCR
//! confusions; judging the document (expiry, age, printed-field consistency)
//! belongs to [`crate::document::validate`].
//!
//! Supported formats: TD1 (3 x 30), TD2 (2 x 36), TD3 (2 x 44), MRV-A
//! (2 x 44, document code `V`) and MRV-B (2 x 36, document code `V`). Input
//! may be lower case, have CRLF line ends, blank lines or surrounding
//! whitespace, and come as one newline-separated string, an array of lines, or
//! a single line holding the whole zone; line lengths are strict and an error
//! names the offending line.
//!
//! Positions in [`Repair`] and [`MrzError`] are 1-based, as in Doc 9303.
//!
//! Century rules, relative to the `today` passed in:
//! * birth dates are never in the future: `YY` becomes `20YY` unless that
//!   would lie after `today`, then `19YY` (a 2-digit year can only span 100
//!   years, so anyone older than 100 is misdated; `age_plausible` says so);
//! * expiry dates use a sliding window of `today`'s year -50..=+50: `20YY`
//!   (more precisely `today`'s century) moved back or forward a century when
//!   outside it, so `96` read in 2026 is 1996 (expired MRV specimen) and `30`
//!   is 2030.
//!
//! The parse allocates only for the returned strings; the zone itself is
//! copied into fixed-size byte arrays, and country lookups are binary
//! searches in a static table.

mod check;
mod dates;
mod input;
mod layout;
mod parse;
mod repair;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_ocr;
#[cfg(test)]
mod tests_prop;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::document::countries::CodeKind;

pub use check::check_digit;

/// Where the name field sits: (line index, first column, length) for an MRZ of `lines` lines of
/// `len` characters (TD1, TD2, TD3).
pub fn name_field(lines: usize, len: usize) -> Option<(usize, usize, usize)> {
    match (lines, len) {
        (3, 30) => Some((2, 0, 30)),
        (2, 36) => Some((0, 5, 31)),
        (2, 44) => Some((0, 5, 39)),
        _ => None,
    }
}

/// Whether a name field reads as ICAO 9303 part 3 writes one: it holds the `<<` that separates
/// the primary identifier from the secondary (or pads a lone primary). A field without one is
/// the recogniser reading every filler as a letter.
pub fn name_field_plausible(field: &str) -> bool {
    field.contains("<<")
}

/// A name field with stray characters in its trailing fillers put back to `<`: once three
/// fillers follow the names, only fillers may come (names are separated by one `<`, primary
/// from secondary by two), so a lone letter among them is noise on the print.
pub fn clear_stray_fillers(field: &str) -> String {
    let mut chars: Vec<char> = field.chars().collect();
    let Some(start) = field.find("<<<") else {
        return field.to_owned();
    };
    let start = field[..start].chars().count();
    let stray: Vec<usize> = (start..chars.len()).filter(|&i| chars[i] != '<').collect();
    // A run of letters after the fillers is a name the fillers cut, not noise: only lone
    // characters, at most two, are put back.
    let lone = stray.iter().all(|&i| {
        chars.get(i.wrapping_sub(1)) == Some(&'<') && chars.get(i + 1).is_none_or(|&c| c == '<')
    });
    if stray.len() > 2 || !lone {
        return field.to_owned();
    }
    for &i in &stray {
        chars[i] = '<';
    }
    chars.into_iter().collect()
}
pub use dates::IsoDate;
pub(crate) use dates::MrzDate;

/// An MRZ as supplied by a client or the OCR module: either one string with
/// the lines separated by newlines (CRLF accepted), or an array of lines.
/// Deserializes from JSON `"…"` or `["…","…"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MrzInput {
    /// Newline-separated text (or the whole zone on one line).
    Text(String),
    /// One string per MRZ line.
    Lines(Vec<String>),
}

impl From<&str> for MrzInput {
    fn from(s: &str) -> Self {
        MrzInput::Text(s.to_owned())
    }
}

impl From<String> for MrzInput {
    fn from(s: String) -> Self {
        MrzInput::Text(s)
    }
}

impl From<Vec<String>> for MrzInput {
    fn from(v: Vec<String>) -> Self {
        MrzInput::Lines(v)
    }
}

impl From<&[&str]> for MrzInput {
    fn from(v: &[&str]) -> Self {
        MrzInput::Lines(v.iter().map(|s| (*s).to_owned()).collect())
    }
}

/// The ICAO 9303 MRZ layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum MrzFormat {
    /// ID-1 card: 3 lines of 30.
    Td1,
    /// ID-2 card: 2 lines of 36.
    Td2,
    /// Passport: 2 lines of 44.
    Td3,
    /// Full-size visa: 2 lines of 44, code `V`.
    MrvA,
    /// Small visa: 2 lines of 36, code `V`.
    MrvB,
}

impl MrzFormat {
    /// Number of lines.
    pub fn line_count(self) -> usize {
        match self {
            MrzFormat::Td1 => 3,
            _ => 2,
        }
    }

    /// Characters per line.
    pub fn line_len(self) -> usize {
        match self {
            MrzFormat::Td1 => 30,
            MrzFormat::Td2 | MrzFormat::MrvB => 36,
            MrzFormat::Td3 | MrzFormat::MrvA => 44,
        }
    }

    /// Display name as used in Doc 9303 ("TD1", "MRV-A", ...).
    pub fn name(self) -> &'static str {
        match self {
            MrzFormat::Td1 => "TD1",
            MrzFormat::Td2 => "TD2",
            MrzFormat::Td3 => "TD3",
            MrzFormat::MrvA => "MRV-A",
            MrzFormat::MrvB => "MRV-B",
        }
    }
}

/// Coarse document type derived from the document code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    /// `P…`.
    Passport,
    /// `I…`, `A…`, `C…` (including `ID`), unless a residence-permit code.
    IdCard,
    /// `D…` (`DL`), used by some issuers for driving licences in MRZ form.
    DriverLicense,
    /// `IR`, `AR`, `CR` and `R…` codes, which issuers use for residence
    /// permits (the EU residence-permit format uses `IR`, Germany `AR`).
    ResidencePermit,
    /// Visas (`V…`) and anything else.
    Other,
}

impl DocumentType {
    /// Classifies a document code (filler `<` or missing second letter allowed).
    pub fn from_code(code: &str) -> Self {
        let b = code.as_bytes();
        let second = b.get(1).copied().unwrap_or(b'<');
        match (b.first().copied().unwrap_or(b'<'), second) {
            (b'I' | b'A' | b'C', b'R') | (b'R', _) => DocumentType::ResidencePermit,
            (b'P', _) => DocumentType::Passport,
            (b'I' | b'A' | b'C', _) => DocumentType::IdCard,
            (b'D', _) => DocumentType::DriverLicense,
            _ => DocumentType::Other,
        }
    }
}

/// Sex as encoded in the MRZ; a filler `<` (unspecified) reads as `X`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sex {
    /// Male.
    M,
    /// Female.
    F,
    /// Unspecified (`X` or `<`).
    X,
}

/// A country or organisation code read from the MRZ, resolved against
/// [`crate::document::countries`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountryField {
    /// The code as written, fillers removed (`D`, `UTO`); borrowed from the
    /// code table when known.
    pub code: Cow<'static, str>,
    /// ISO alpha-3 where one exists (`DEU` for `D`), else the ICAO code;
    /// `None` when unknown.
    pub alpha3: Option<Cow<'static, str>>,
    /// ISO alpha-2 where one exists.
    pub alpha2: Option<Cow<'static, str>>,
    /// English short name; `None` when unknown.
    pub name: Option<Cow<'static, str>>,
    /// Where the code comes from (`unknown` when not in the table).
    pub kind: CodeKind,
}

/// The fields of an MRZ, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MrzFields {
    /// Document code, trailing filler removed (`P`, `ID`, `V`).
    pub document_code: Cow<'static, str>,
    /// Type derived from the code.
    pub document_type: DocumentType,
    /// Issuing state or organisation.
    pub issuing_state: CountryField,
    /// Primary identifier: the part before `<<`, `<` read as a space.
    pub surname: String,
    /// Secondary identifier: the part after `<<`, fillers collapsed to spaces.
    pub given_names: String,
    /// The name runs to the last position of its field, so the issuer may
    /// have truncated it.
    pub name_possibly_truncated: bool,
    /// Document number with fillers removed (long TD1/TD2 numbers joined).
    pub document_number: String,
    /// Nationality of the holder.
    pub nationality: CountryField,
    /// ISO 8601 date of birth; reduced precision (`1974`, `1974-08`) when the
    /// MRZ marks day or month unknown; `None` when unknown or invalid.
    pub birth_date: Option<IsoDate>,
    /// Sex; `None` when the character is not `M`, `F`, `X` or `<`.
    pub sex: Option<Sex>,
    /// ISO 8601 expiry ("valid until" for visas); `None` when invalid.
    pub expiry_date: Option<IsoDate>,
    /// Optional data (TD3: personal number; TD1: line 1 after the document
    /// number), fillers trimmed at both ends.
    pub optional_data_1: String,
    /// Second optional data field (TD1 line 2 only).
    pub optional_data_2: Option<String>,
}

/// Result of one check. Serialized lowercase: `pass`, `fail`, `warn`,
/// `skipped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
// Word-sized (the `Check` padding holds it anyway): a one-byte store read
// back as part of a word when a freshly built `Check` is pushed defeats
// store-to-load forwarding; measured as a small but steady gain.
#[repr(u64)]
pub enum CheckStatus {
    /// The check held.
    Pass,
    /// The check failed; the document is not valid.
    Fail,
    /// Something is unusual but does not invalidate the document.
    Warn,
    /// The check does not apply (format has no such field, input missing,
    /// disabled by options).
    Skipped,
}

/// One named check with its outcome and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable machine name, e.g. `mrz_checksum_birth_date`.
    pub name: Cow<'static, str>,
    /// Outcome.
    pub status: CheckStatus,
    /// Human-readable explanation.
    pub detail: Cow<'static, str>,
}

impl Check {
    /// Builds a check from static or owned text.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        status: CheckStatus,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Check {
            name: name.into(),
            status,
            detail: detail.into(),
        }
    }
}

/// One OCR repair that was applied: the character at `line`/`position`
/// (1-based) was read as `from` and replaced by `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repair {
    /// MRZ line, 1-based.
    pub line: usize,
    /// Position within the line, 1-based.
    pub position: usize,
    /// Character as read.
    pub from: char,
    /// Character substituted.
    pub to: char,
}

/// Outcome of [`parse()`]: the decoded fields, the MRZ-intrinsic checks
/// (`mrz_format`, `field_lengths`, the five `mrz_checksum_*`,
/// `birth_date_valid`, `expiry_date_valid`, `issuer_code_valid`,
/// `nationality_code_valid`, `sex_valid`) and the repairs made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parsed {
    /// Detected layout.
    pub format: MrzFormat,
    /// The normalised MRZ after repairs, lines joined with `\n`.
    pub mrz: String,
    /// Decoded fields.
    pub fields: MrzFields,
    /// MRZ-intrinsic checks, in a stable order.
    pub checks: Vec<Check>,
    /// OCR repairs applied (empty when none were needed or none verified).
    pub repairs: Vec<Repair>,
    /// Human-readable warnings (specimen issuer, truncated name, repairs
    /// that could not be verified...).
    pub warnings: Vec<Cow<'static, str>>,
    #[serde(skip)]
    pub(crate) birth: MrzDate,
    #[serde(skip)]
    pub(crate) expiry: MrzDate,
}

impl Parsed {
    /// True when no check has status [`CheckStatus::Fail`].
    pub fn all_passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != CheckStatus::Fail)
    }

    /// The check with the given name, if produced.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// Why an input could not be read as an MRZ at all. Everything short of
/// this (bad check digits, unknown countries, invalid dates) is reported as
/// failed checks instead, so the caller still sees the fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MrzError {
    /// No non-blank line.
    #[error("MRZ input is empty")]
    Empty,
    /// Larger than any MRZ could be; refused before looking at it.
    #[error("MRZ input is too large: {found} bytes, at most {max}")]
    TooLarge {
        /// Bytes supplied.
        found: usize,
        /// Limit.
        max: usize,
    },
    /// Not 2 or 3 lines (or one line of 72, 88 or 90 characters).
    #[error("MRZ has {found} line(s); expected 2 (TD2, TD3, MRV) or 3 (TD1)")]
    LineCount {
        /// Non-blank lines found.
        found: usize,
    },
    /// A line of the wrong length.
    #[error("MRZ line {line} has {found} characters; expected {expected} ({format})")]
    LineLength {
        /// 1-based line number.
        line: usize,
        /// Required length.
        expected: usize,
        /// Actual length in characters.
        found: usize,
        /// Format the expectation comes from ("TD1", "TD2/MRV-B", "TD3/MRV-A").
        format: &'static str,
    },
    /// A character outside `A`-`Z`, `0`-`9`, `<` (after upper-casing).
    #[error("MRZ line {line} position {position}: {found:?} is not an MRZ character")]
    InvalidCharacter {
        /// 1-based line number.
        line: usize,
        /// 1-based position.
        position: usize,
        /// The offending character.
        found: char,
    },
}

impl MrzError {
    /// Stable error code for API responses. Every variant means the input is
    /// not a readable MRZ, so all share `mrz_unparseable`; [`Self::kind`]
    /// distinguishes them.
    pub fn code(&self) -> &'static str {
        "mrz_unparseable"
    }

    /// Which kind of problem: `empty`, `too_large`, `line_count`,
    /// `line_length`, `invalid_character`.
    pub fn kind(&self) -> &'static str {
        match self {
            MrzError::Empty => "empty",
            MrzError::TooLarge { .. } => "too_large",
            MrzError::LineCount { .. } => "line_count",
            MrzError::LineLength { .. } => "line_length",
            MrzError::InvalidCharacter { .. } => "invalid_character",
        }
    }
}

/// Serializes as a flat object: `code`, `kind`, `message` and the variant's
/// fields (`line`, `expected`, `found`, `format`, `position`, `max`).
impl Serialize for MrzError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("code", self.code())?;
        m.serialize_entry("kind", self.kind())?;
        m.serialize_entry("message", &self.to_string())?;
        match self {
            MrzError::Empty => {}
            MrzError::TooLarge { found, max } => {
                m.serialize_entry("found", found)?;
                m.serialize_entry("max", max)?;
            }
            MrzError::LineCount { found } => m.serialize_entry("found", found)?,
            MrzError::LineLength {
                line,
                expected,
                found,
                format,
            } => {
                m.serialize_entry("line", line)?;
                m.serialize_entry("expected", expected)?;
                m.serialize_entry("found", found)?;
                m.serialize_entry("format", format)?;
            }
            MrzError::InvalidCharacter {
                line,
                position,
                found,
            } => {
                m.serialize_entry("line", line)?;
                m.serialize_entry("position", position)?;
                m.serialize_entry("found", found)?;
            }
        }
        m.end()
    }
}

/// Parses an MRZ, repairs verifiable OCR confusions and runs the checks that
/// need nothing but the MRZ (`today` only resolves two-digit years and
/// rejects future birth dates). Returns `Err` only when the input is not an
/// MRZ at all (line count, line length, characters).
pub fn parse(input: &MrzInput, today: Date) -> Result<Parsed, MrzError> {
    parse_with(input, today, true)
}

/// [`parse()`], optionally without building [`Parsed::mrz`] (left empty),
/// which [`crate::document::validate`] does not return. Inline: building
/// `Parsed` in the caller's frame measured fewer struct copies.
#[inline]
pub(crate) fn parse_with(
    input: &MrzInput,
    today: Date,
    keep_mrz: bool,
) -> Result<Parsed, MrzError> {
    let mut lines = input::normalise(input)?;
    let layout = layout::Layout::detect(&lines);
    let mut warnings = Vec::new();
    let (repairs, remaining) = repair::repair(&mut lines, layout, &mut warnings);
    Ok(parse::decode(
        &lines, layout, today, repairs, remaining, warnings, keep_mrz,
    ))
}
