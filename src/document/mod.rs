//! Identity documents: ICAO 9303 MRZ parsing and repair ([`mrz`]), country codes
//! ([`countries`]), and document validation ([`validate`]). Pure functions of text; no HTTP and
//! no storage here.

pub mod arbitrate;
pub mod barcode;
pub mod countries;
pub mod mrz;
pub mod ocr;
pub mod printed;
pub mod read;
pub mod report;
pub mod validate;

use crate::error::{Code, ErrorCode};

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
