//! OCR accuracy on generated documents (TD1, TD2, TD3 in OCR-B with tilt, perspective, quarter
//! turns, blur, glare and JPEG):
//! the MRZ exact-line rate and per-field accuracy, read through the library (no server needed).

use std::sync::OnceLock;

use kycd::document::ocr::Ocr;
use kycd::document::read::{self, TextReading};
use kycd::vision::liveness::synthetic::Rng;
use kycd::vision::runtime::RuntimeOptions;

use crate::common::docgen;

fn ocr() -> &'static Ocr {
    static OCR: OnceLock<Ocr> = OnceLock::new();
    OCR.get_or_init(|| Ocr::load(None, &RuntimeOptions::default()).unwrap())
}

fn portrait(name: &str) -> image::RgbImage {
    let path = format!("{}/tests/fixtures/faces/{name}", env!("CARGO_MANIFEST_DIR"));
    image::open(path).unwrap().to_rgb8()
}

#[test]
fn mrz_accuracy_on_generated_documents() {
    let faces = [
        portrait("obama.jpg"),
        portrait("biden.jpg"),
        portrait("obama2.jpg"),
    ];
    let mut rng = Rng::new(9303);
    let n = std::env::var("KYCD_OCR_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(102usize);
    let (mut lines_total, mut lines_exact, mut docs_exact) = (0, 0, 0);
    let mut fields_right = [0usize; 5];
    let names = [
        "document_number",
        "birth_date",
        "expiry_date",
        "surname",
        "nationality",
    ];
    let mut printed_right = [0usize; 3];
    let mut cards = 0;
    let mut failures = Vec::new();
    for i in 0..n {
        let format = ["TD3", "TD2", "TD1"][i % 3];
        let truth = docgen::identity(&mut rng, format);
        let img = docgen::render(&truth, &faces[i % faces.len()], &mut rng);
        let TextReading {
            mrz, printed, card, ..
        } = read::read_text(ocr(), &img).unwrap();
        cards += usize::from(card.is_some());
        let printed_is = |name: &str, want: &str| {
            printed
                .iter()
                .any(|p| p.name == name && p.value == want.to_uppercase())
        };
        let got = [
            printed_is("surname", &truth.surname),
            printed_is("given_names", &truth.given_names),
            printed_is("document_number", &truth.document_number),
        ];
        for (n, ok) in printed_right.iter_mut().zip(got) {
            *n += usize::from(ok);
        }
        let read: Vec<String> = match mrz {
            Some(section) => {
                if let Some(v) = &section.validation {
                    let f = &v.fields;
                    let got = [
                        f.document_number == truth.document_number,
                        f.birth_date.as_ref().map(|d| d.to_string())
                            == Some(truth.birth_date.clone()),
                        f.expiry_date.as_ref().map(|d| d.to_string())
                            == Some(truth.expiry_date.clone()),
                        f.surname == truth.surname,
                        f.nationality.alpha3.as_deref() == Some(truth.nationality.as_str()),
                    ];
                    for (n, ok) in fields_right.iter_mut().zip(got) {
                        *n += usize::from(ok);
                    }
                }
                section.corrected_lines()
            }
            None => Vec::new(),
        };
        lines_total += truth.mrz.len();
        let exact = truth.mrz.iter().zip(&read).filter(|(a, b)| a == b).count();
        lines_exact += exact;
        if exact == truth.mrz.len() {
            docs_exact += 1;
        } else {
            failures.push(format!("{format}: {:?} vs {:?}", truth.mrz, read));
            if std::env::var("KYCD_OCR_DUMP").is_ok() {
                img.save(format!("/tmp/miss-{i}.png")).unwrap();
            }
        }
    }
    let rate = lines_exact as f64 / lines_total as f64;
    eprintln!(
        "{n} documents: MRZ lines exact {lines_exact}/{lines_total} ({:.1} %), documents exact {docs_exact}/{n}; card found and read flat on {cards}",
        rate * 100.0
    );
    for (name, right) in names.iter().zip(fields_right) {
        eprintln!("  {name}: {right}/{n}");
    }
    for (name, right) in ["surname", "given_names", "document_number"]
        .iter()
        .zip(printed_right)
    {
        eprintln!("  printed {name}: {right}/{n}");
    }
    for f in failures.iter().take(8) {
        eprintln!("  miss {f}");
    }
    // Measured 230/238 = 96.6 % exact lines on the 102 default documents (seed 9303; tilt,
    // perspective, quarter and half turns, blur, glare, JPEG). The misses: a first TD3 line the
    // detector did not find, O/0 or 3/W in TD1 document numbers the check digits could not settle,
    // `H` for the document code `I`, a name letter misread where the print did not arbitrate.
    // With the card found by its edges and read warped flat (on 100 of the 102): 236/238 =
    // 99.2 %, the misses a TD3 given name cut short and `H` for the document code `I`.
    // The floor is the 95 %.
    assert!(rate >= 0.95, "exact MRZ line rate {rate:.3}");
}

#[test]
#[ignore]
fn dump_one_generated_document() {
    let mut rng = Rng::new(1);
    for (i, format) in ["TD1", "TD2", "TD3"].iter().enumerate() {
        let truth = docgen::identity(&mut rng, format);
        let img = docgen::render(&truth, &portrait("obama.jpg"), &mut rng);
        img.save(format!("/tmp/doc-{i}-{format}.png")).unwrap();
    }
}
