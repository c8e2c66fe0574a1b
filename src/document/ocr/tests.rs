//! OCR on the specimen passport photos.

use super::*;
use crate::document::mrz::MrzInput;
use crate::document::validate::{self, ValidateOptions};
use std::sync::OnceLock;

fn ocr() -> &'static Ocr {
    static OCR: OnceLock<Ocr> = OnceLock::new();
    OCR.get_or_init(|| Ocr::load(None, &RuntimeOptions::default()).expect("OCR models load"))
}

fn document(name: &str) -> RgbImage {
    let path = format!(
        "{}/tests/fixtures/documents/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap();
    crate::media::intake::load(&bytes, &Default::default())
        .unwrap()
        .image
}

#[test]
fn fit_length_pads_and_trims_fillers() {
    assert_eq!(fit_length("AB<<", 6), "AB<<<<");
    assert_eq!(fit_length("AB<<<<<<", 4), "AB<<");
    assert_eq!(fit_length("A B", 3), "AB<");
    assert_eq!(nearest_length(&["x".repeat(43), "y".repeat(45)]), 44);
}

#[test]
fn td3_specimen_mrz_is_read_exactly_after_check_digit_repair() {
    let img = document("passport-td3.jpg");
    let lines = ocr().read_lines(&img).unwrap();
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    eprintln!("{texts:#?}");
    assert!(texts.iter().any(|t| t.contains("ERIKSSON")), "{texts:?}");
    let mrz = ocr().read_mrz(&img, &lines).unwrap().expect("an MRZ band");
    eprintln!("{mrz:?}");
    assert_eq!(mrz.lines.len(), 2);
    assert_eq!(mrz.lines[0], "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<");
    assert!(mrz.confidences.iter().all(|&c| c > 0.8), "{mrz:?}");
    let v = validate::validate(
        &MrzInput::Lines(mrz.lines.clone()),
        None,
        &ValidateOptions {
            check_expiry: false,
            ..ValidateOptions::today_utc()
        },
    )
    .unwrap();
    // PP-OCR reads the nationality `UTO` as `UT0`; the repair is accepted because every
    // check digit then holds.
    use crate::document::mrz::CheckStatus;
    let checksums: Vec<_> = v
        .checks
        .iter()
        .filter(|c| c.name.starts_with("mrz_checksum"))
        .collect();
    let passed = checksums
        .iter()
        .filter(|c| c.status == CheckStatus::Pass)
        .count();
    assert!(passed >= 4, "{:?}", v.checks);
    assert!(
        checksums.iter().all(|c| c.status != CheckStatus::Fail),
        "{:?}",
        v.checks
    );
    assert_eq!(v.fields.document_number, "L898902C3");
    assert_eq!(v.fields.nationality.code, "UTO");
    assert_eq!(v.fields.surname, "ERIKSSON");
}

#[test]
fn td2_specimen_mrz_passes_every_check_digit() {
    use crate::document::mrz::CheckStatus;
    let img = document("passport-td2.jpg");
    let lines = ocr().read_lines(&img).unwrap();
    let mrz = ocr().read_mrz(&img, &lines).unwrap().expect("an MRZ band");
    eprintln!("{mrz:?}");
    assert_eq!(mrz.lines.len(), 2);
    assert!(mrz.lines.iter().all(|l| l.len() == 36), "{mrz:?}");
    let v = validate::validate(
        &MrzInput::Lines(mrz.lines.clone()),
        None,
        &ValidateOptions {
            check_expiry: false,
            ..ValidateOptions::today_utc()
        },
    )
    .unwrap();
    assert_eq!(v.fields.document_number, "D23145890");
    assert_eq!(v.fields.surname, "ERIKSSON");
    assert_eq!(
        v.fields
            .birth_date
            .as_ref()
            .map(|d| d.to_string())
            .as_deref(),
        Some("1974-08-12")
    );
    let checksums: Vec<_> = v
        .checks
        .iter()
        .filter(|c| c.name.starts_with("mrz_checksum"))
        .collect();
    let passed = checksums
        .iter()
        .filter(|c| c.status == CheckStatus::Pass)
        .count();
    assert!(passed >= 4, "{:?}", v.checks);
    assert!(
        checksums.iter().all(|c| c.status != CheckStatus::Fail),
        "{:?}",
        v.checks
    );
}

#[test]
fn a_lost_filler_after_a_one_letter_code_is_put_back() {
    let lost = "PUTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<";
    assert_eq!(
        restore_code_filler(lost, 44),
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
    );
    // Latvia's two-letter code `PA`, a line already whole, and a line of 44: left alone.
    let lva = "PALVAMOHAMADA<<FARIDA<<<<<<<<<<<<<<<<<<<<<<";
    assert_eq!(restore_code_filler(lva, 44), lva);
    let whole = "P<NLDMEULENDIJK<<LOES<ALBERTINE<<<<<<<<<<<<";
    assert_eq!(restore_code_filler(whole, 44), whole);
    let long = "PNLDMEULENDIJK<<LOES<ALBERTINE<<<<<<<<<<<<<<";
    assert_eq!(restore_code_filler(long, 44), long);
}

/// The ONNX Runtime backend reads what rten reads (feature `ort`; `scripts/test` fetches the
/// library and points `KYCD_ORT_LIBRARY` at it).
#[cfg(feature = "ort")]
#[test]
fn ort_backend_reads_what_rten_reads() {
    let library = std::env::var_os("KYCD_ORT_LIBRARY")
        .expect("KYCD_ORT_LIBRARY: the path of libonnxruntime.so (scripts/test fetches it)");
    let opts = RuntimeOptions {
        backend: crate::config::Backend::Ort,
        ort_library: Some(library.into()),
        ..Default::default()
    };
    let ort = Ocr::load(None, &opts).expect("OCR models load on ONNX Runtime");
    for name in ["passport-td3.jpg", "passport-td2.jpg"] {
        let img = document(name);
        let (a, b) = (
            ocr().read_lines(&img).unwrap(),
            ort.read_lines(&img).unwrap(),
        );
        let texts = |l: &[Line]| l.iter().map(|l| l.text.clone()).collect::<Vec<_>>();
        let (ta, tb) = (texts(&a), texts(&b));
        let same = ta.iter().filter(|t| tb.contains(t)).count();
        assert!(
            same * 10 >= ta.len() * 9 && a.len().abs_diff(b.len()) <= 2,
            "{name}: rten {ta:?}\nort {tb:?}"
        );
        let mrz = |o: &Ocr, l: &[Line]| o.read_mrz(&img, l).unwrap().map(|m| m.lines);
        assert_eq!(mrz(ocr(), &a), mrz(&ort, &b), "{name}");
        assert!(mrz(&ort, &b).is_some(), "{name}");
    }
}

/// Reading order is a total order whatever the boxes: the pairwise "same row within half a
/// height" rule is not transitive, and sorting by it panicked on a slanted 1600 px passport.
#[test]
fn reading_order_never_panics_and_reads_rows_left_to_right() {
    let line = |cx: f32, cy: f32, h: f32| Line {
        text: format!("{cx}"),
        confidence: 1.0,
        corners: [[0.0; 2]; 4],
        score: 1.0,
        rect: RotatedRect {
            cx,
            cy,
            w: 40.0,
            h,
            angle: 0.0,
        },
        mrz: recognize::Recognized {
            text: String::new(),
            confidence: 1.0,
        },
    };
    let mut state = 0x9e37_79b9_u32;
    let mut next = |m: f32| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 8) as f32 / (1u32 << 24) as f32 * m
    };
    for _ in 0..200 {
        let mut lines: Vec<Line> = (0..40)
            .map(|_| line(next(500.0), next(120.0), 4.0 + next(16.0)))
            .collect();
        sort_reading_order(&mut lines);
    }
    // Two rows, each left to right, whatever order they came in.
    let mut lines = vec![
        line(300.0, 52.0, 10.0),
        line(100.0, 10.0, 10.0),
        line(200.0, 13.0, 10.0),
        line(50.0, 50.0, 10.0),
    ];
    sort_reading_order(&mut lines);
    let order: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(order, ["100", "200", "50", "300"]);
}
