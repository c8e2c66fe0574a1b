//! Identity documents: ICAO 9303 MRZ parsing and repair ([`mrz`]), country codes
//! ([`countries`]), and document validation ([`validate`]). Pure functions of text; no HTTP and
//! no storage here.

pub mod countries;
pub mod mrz;
pub mod ocr;
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
