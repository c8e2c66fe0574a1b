//! MRZ input: any text (one string, or lines) through parsing, repair and validation, with and
//! without printed fields to compare. Must never panic.
#![no_main]

use kycd::document::mrz::MrzInput;
use kycd::document::validate::{validate, ValidateOptions, VizFields};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = ValidateOptions::new(time::macros::date!(2026 - 12 - 03));
    let (mrz, fields) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let text = String::from_utf8_lossy(mrz).into_owned();
    let fields: Option<VizFields> = fields.and_then(|f| serde_json::from_slice(f).ok());
    let _ = validate(&MrzInput::Text(text.clone()), fields.as_ref(), &opts);
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let _ = validate(&MrzInput::Lines(lines), fields.as_ref(), &opts);
});
