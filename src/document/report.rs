//! The OCR result a caller sees — `POST /v1/document/ocr`'s body and `kycd document ocr --json` —
//! from the front's reading and, for cards, the back's.

use serde_json::{json, Map, Value};

use super::barcode::{self, Barcode};
use super::mrz::{Check, CheckStatus, MrzInput};
use super::printed::PrintedField;
use super::read::{Detected, DocumentReading, MrzSection};
use super::validate::{self, ValidateOptions, VizFields};

/// Type and country, normalised fields, MRZ with its checks, printed fields, portrait, quality and
/// warnings. The MRZ comes from whichever side has a validated one (TD1 cards carry it on the
/// back); then an AAMVA barcode's fields (licences carry it on the back), compared with the
/// print of both sides; printed fields fill what neither carries (place of birth, authority).
pub fn ocr_report(front: &DocumentReading, back: Option<&DocumentReading>) -> Value {
    use base64::Engine;
    let mrz = chosen_mrz(front, back);
    let code = front
        .barcode
        .as_ref()
        .or_else(|| back.and_then(|b| b.barcode.as_ref()));
    let sides = || std::iter::once(front).chain(back);
    // Both sides' printed fields, front first: they fill `fields` and are compared with the MRZ
    // and the barcode.
    let all_printed: Vec<PrintedField> = sides().flat_map(|s| s.printed.iter().cloned()).collect();
    let mut fields = Map::new();
    if let Some(v) = mrz.and_then(|m| m.validation.as_ref()) {
        let f = &v.fields;
        fields.insert("surname".into(), json!(f.surname));
        fields.insert("given_names".into(), json!(f.given_names));
        fields.insert("document_number".into(), json!(f.document_number));
        fields.insert("nationality".into(), json!(f.nationality.alpha3));
        fields.insert("issuing_country".into(), json!(f.issuing_state.alpha3));
        fields.insert("date_of_birth".into(), json!(f.birth_date));
        fields.insert("sex".into(), json!(f.sex));
        fields.insert("date_of_expiry".into(), json!(f.expiry_date));
    }
    if let Some(a) = code.and_then(|c| c.aamva.as_ref()) {
        let values = [
            ("surname", a.surname.as_deref()),
            ("given_names", a.given_names.as_deref()),
            ("document_number", a.document_number.as_deref()),
            ("issuing_country", a.country),
            ("jurisdiction", a.jurisdiction.as_deref()),
            ("date_of_birth", a.date_of_birth.as_deref()),
            ("sex", a.sex),
            ("date_of_issue", a.date_of_issue.as_deref()),
            ("date_of_expiry", a.date_of_expiry.as_deref()),
            ("address", a.address.as_deref()),
            ("vehicle_class", a.vehicle_class.as_deref()),
        ];
        for (name, value) in values {
            if let Some(v) = value {
                fields.entry(name).or_insert_with(|| json!(v));
            }
        }
    }
    for p in &all_printed {
        fields.entry(p.name).or_insert_with(|| json!(p.value));
    }
    let face = front
        .face_crop_jpeg
        .as_ref()
        .or_else(|| back.and_then(|b| b.face_crop_jpeg.as_ref()))
        .map(|j| base64::engine::general_purpose::STANDARD.encode(j));
    let mut warnings = front.warnings.clone();
    if let Some(b) = back {
        warnings.extend(b.warnings.iter().map(|w| format!("back: {w}")));
    }
    json!({
        "detected": detected(front, back),
        "fields": fields,
        "mrz": mrz.map(|m| json!({
            "lines": m.corrected_lines(),
            "lines_read": m.reading.lines,
            "line_confidence": m.reading.confidences,
            "valid": m.validation.as_ref().map(|v| v.document_valid),
            "format": m.validation.as_ref().map(|v| v.format.name()),
            "checks": m.validation.as_ref().map(|v| &v.checks),
            "repairs": m.validation.as_ref().map(|v| &v.repairs),
            "repairs_from_print": m.print_repairs,
            "repairs_from_rereads": m.vote_repairs,
            "print_checks": print_checks(m, &all_printed),
        })),
        "barcode": code.map(|c| {
            let text: Vec<&str> = sides()
                .flat_map(|s| s.lines.iter().map(|l| l.text.as_str()))
                .collect();
            barcode_report(c, &all_printed, &text)
        }),
        "printed": front.printed,
        "images": { "face_crop_base64": face },
        "quality": front.quality,
        "missing_areas": front.missing_areas,
        "rotation": front.rotation,
        "card": front.card.map(|q| json!({ "corners": q.corners })),
        "warnings": warnings,
        "text": front.lines.iter().map(|l| &l.text).collect::<Vec<_>>(),
    })
}

/// The MRZ against the print of both sides: one `viz_mrz_consistency_<field>` check per printed
/// field read (names, number, dates, sex, nationality). A `fail` is a printed value that differs
/// from the MRZ — an alteration, or a misread of the print (weigh it with that field's
/// `printed[].confidence`); these checks never change `mrz.valid`.
fn print_checks(m: &MrzSection, printed: &[PrintedField]) -> Vec<Check> {
    let get = |name: &str| {
        printed
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.clone())
    };
    let viz = VizFields {
        surname: get("surname"),
        given_names: get("given_names"),
        document_number: get("document_number"),
        birth_date: get("date_of_birth"),
        expiry_date: get("date_of_expiry"),
        issue_date: None,
        sex: get("sex"),
        nationality: get("nationality"),
        issuing_country: None,
    };
    validate::validate(
        &MrzInput::Lines(m.corrected_lines()),
        Some(&viz),
        &ValidateOptions::today_utc(),
    )
    .map(|v| {
        let number = v.fields.document_number.clone();
        v.checks
            .into_iter()
            .filter(|c| c.name.starts_with("viz_mrz_consistency_"))
            .map(|c| {
                let printed = viz.document_number.as_deref().unwrap_or_default();
                if c.name == NUMBER_CHECK
                    && c.status == CheckStatus::Fail
                    && same_up_to_look_alikes(printed, &number)
                {
                    Check::new(
                        NUMBER_CHECK,
                        CheckStatus::Pass,
                        "printed document number matches the MRZ up to look-alike characters \
                         (O/0, I/1, S/5, B/8, Z/2, G/6) that print read by OCR cannot tell apart",
                    )
                } else {
                    c
                }
            })
            .collect()
    })
    .unwrap_or_default()
}

const NUMBER_CHECK: &str = "viz_mrz_consistency_document_number";

/// Whether a printed document number read by OCR equals the MRZ's once each look-alike class
/// (`0 O Q D`, `1 I L`, `2 Z`, `5 S`, `6 G`, `8 B`) is one character: a document number mixes
/// letters and digits, its print has no check digit, and OCR-B's `0` and `O` differ by a hair.
/// Changing one look-alike for another is no alteration worth the name.
fn same_up_to_look_alikes(printed: &str, mrz: &str) -> bool {
    let fold = |c: char| match c {
        'O' | 'Q' | 'D' => '0',
        'I' | 'L' => '1',
        'Z' => '2',
        'S' => '5',
        'G' => '6',
        'B' => '8',
        c => c,
    };
    let printed = printed
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| fold(c.to_ascii_uppercase()));
    !mrz.is_empty() && printed.eq(mrz.chars().map(fold))
}

/// The barcode's format and parsed record, with its agreement with both sides' `printed` fields
/// and `text` lines.
fn barcode_report(code: &Barcode, printed: &[PrintedField], text: &[&str]) -> Value {
    let checks = code
        .aamva
        .as_ref()
        .map(|a| barcode::compare::with_print(a, printed, text))
        .unwrap_or_default();
    json!({
        "format": code.format,
        "length": code.length,
        "standard": code.aamva.as_ref().map(|_| "aamva"),
        "aamva": code.aamva,
        "checks": checks,
    })
}

/// The MRZ to report: the front's when it validated, else the back's, else whatever was read.
pub fn chosen_mrz<'a>(
    front: &'a DocumentReading,
    back: Option<&'a DocumentReading>,
) -> Option<&'a MrzSection> {
    front
        .mrz
        .as_ref()
        .filter(|m| m.validation.is_some())
        .or_else(|| back.and_then(|b| b.mrz.as_ref()))
        .or(front.mrz.as_ref())
}

/// The side whose type and country came from the stronger source: an MRZ, then a barcode,
/// then printed keywords (the front's on a tie).
fn detected<'a>(front: &'a DocumentReading, back: Option<&'a DocumentReading>) -> &'a Detected {
    let rank = |d: &Detected| match d.source {
        "mrz" => 2,
        "barcode" => 1,
        _ => 0,
    };
    match back.map(|b| &b.detected) {
        Some(b) if rank(b) > rank(&front.detected) => b,
        _ => &front.detected,
    }
}

#[cfg(test)]
mod tests {
    use super::same_up_to_look_alikes;

    #[test]
    fn document_numbers_equal_up_to_look_alikes() {
        assert!(same_up_to_look_alikes("GXOLRAVEA", "GX0LRAVEA"));
        assert!(same_up_to_look_alikes("c06j 4551x", "C06J4551X"));
        assert!(same_up_to_look_alikes("L8989O2C3", "L898902C3"));
        assert!(!same_up_to_look_alikes("L898902C4", "L898902C3"));
        assert!(!same_up_to_look_alikes("L898902C", "L898902C3"));
        assert!(!same_up_to_look_alikes("", ""));
    }
}
