//! Identity documents: ICAO 9303 MRZ parsing and repair ([`mrz`]), country codes
//! ([`countries`]), and document validation ([`validate`]). Pure functions of text; no HTTP and
//! no storage here.

pub mod arbitrate;
pub mod barcode;
pub mod card;
pub mod countries;
pub mod mrz;
pub mod ocr;
pub mod printed;
pub mod read;
pub mod report;
pub mod validate;

use crate::error::{Code, ErrorCode};

/// The words of a name or a printed line in upper-case ASCII (accents dropped, other scripts
/// transliterated by deunicode), split at anything that is not a letter.
pub fn ascii_words(s: &str) -> Vec<String> {
    deunicode::deunicode(s)
        .to_uppercase()
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

impl ErrorCode for mrz::MrzError {
    fn code(&self) -> Code {
        Code::MrzUnparseable
    }

    /// The error's own structured form (`kind`, `line`, `expected`, `found`, …) minus the code and
    /// message the envelope already carries.
    fn details(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            map.remove("code");
            map.remove("message");
        }
        v
    }
}

impl ErrorCode for read::ReadError {
    fn code(&self) -> Code {
        match self {
            read::ReadError::NoDocument => Code::NoDocumentFound,
            read::ReadError::Vision(e) => ErrorCode::code(e),
        }
    }

    fn details(&self) -> serde_json::Value {
        match self {
            read::ReadError::NoDocument => serde_json::json!({}),
            read::ReadError::Vision(e) => ErrorCode::details(e),
        }
    }
}
