//! MRZ reading on real photos of specimen documents (tests/fixtures/documents/real/, see its
//! README): each file's MRZ as a person reads it from the image, and whether the specimen's own
//! check digits hold. Read through the library (no server needed), the model loaded once.

use std::sync::OnceLock;

use kycd::document::mrz::CheckStatus;
use kycd::document::ocr::Ocr;
use kycd::document::read::{self, TextReading};
use kycd::vision::runtime::RuntimeOptions;

fn ocr() -> &'static Ocr {
    static OCR: OnceLock<Ocr> = OnceLock::new();
    OCR.get_or_init(|| Ocr::load(None, &RuntimeOptions::default()).unwrap())
}

/// A file, the MRZ it prints, and whether every check digit of that print holds (three specimens
/// print check digits that do not: Spain's `AAA100001` with `4`, the US permanent-resident
/// card, and a fictional state's card).
struct Truth {
    file: &'static str,
    lines: &'static [&'static str],
    digits_hold: bool,
}

const TRUTH: &[Truth] = &[
    Truth {
        file: "0_id-esp.png",
        // Printed with Ñ, which the MRZ alphabet lacks; read as N.
        lines: &[
            "IDESPAAA1000014<00000023T<<<<<",
            "7212018F1101236ESP<<<<<<<<<<<8",
            "ESPANOLA<ESPANOLA<CARMEN<<<<<<",
        ],
        digits_hold: false,
    },
    Truth {
        file: "0_pass-lva.jpg",
        lines: &[
            "PALVAMOHAMADA<<FARIDA<<<<<<<<<<<<<<<<<<<<<<<",
            "LT00000004XXC8605102F1210314111111<11648<<86",
        ],
        digits_hold: true,
    },
    Truth {
        file: "24_pass-egy.jpg",
        lines: &[
            "P<EGYMABROUK<<ALAAELDIN<ISMAIL<MOHAMED<<<<<<",
            "A000513764EGY6002202M1503151<<<<<<<<<<<<<<06",
        ],
        digits_hold: true,
    },
    Truth {
        file: "25_pass-uto.jpg",
        lines: &[
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
        ],
        digits_hold: true,
    },
    Truth {
        file: "27_pass-gbr.jpg",
        lines: &[
            "P<GBRUNITED<KINGDOM<TWENTY<SIX<<JODIE<PIPPA<",
            "1071828900GBR8501178F1601312<<<<<<<<<<<<<<06",
        ],
        digits_hold: true,
    },
    Truth {
        file: "33_id-usa.jpg",
        lines: &[
            "C1USA0223456791EAC9730051220<<",
            "4910040M9411014CAN<<<<<<<<<<<0",
            "CRITTENDEN<<LEE<W<<<<<<<<<<<<<",
        ],
        // The specimen's document-number and composite check digits do not hold as printed.
        digits_hold: false,
    },
    Truth {
        file: "43_pass-fra.jpg",
        lines: &[
            "P<FRAULYSSE<<CHRISTOPHE<<<<<<<<<<<<<<<<<<<<<",
            "08CD503380FRA6004103M1806058<<<<<<<<<<<<<<06",
        ],
        digits_hold: true,
    },
    Truth {
        file: "43_pass-twn.jpg",
        lines: &[
            "P<TWNLIN<<CHIEN<SHENG<<<<<<<<<<<<<<<<<<<<<<<",
            "M000004264TWN6803029M9801048F122187664<<<<66",
        ],
        digits_hold: true,
    },
    Truth {
        file: "53_id-d.jpg",
        lines: &[
            "IDD<<T220001293<<<<<<<<<<<<<<<",
            "6408125<2010315D<<<<<<<<<<<<<4",
            "MUSTERMANN<<ERIKA<<<<<<<<<<<<<",
        ],
        digits_hold: true,
    },
    Truth {
        file: "62_pass-aus.png",
        lines: &[
            "P<AUSCITIZEN<<JANE<<<<<<<<<<<<<<<<<<<<<<<<<<",
            "PA09404097AUS8406077F1903212<17331334P<<<<08",
        ],
        digits_hold: true,
    },
    Truth {
        file: "62_pass-pol.png",
        lines: &[
            "P<POLKOWALSKA<<ANNA<<<<<<<<<<<<<<<<<<<<<<<<<",
            "ZS00001774POL7203305F1607130<<<<<<<<<<<<<<08",
        ],
        digits_hold: true,
    },
    Truth {
        file: "77_card-cmw.png",
        // A fictional state's card whose composite check digit does not hold as printed.
        lines: &[
            "IDCMW<512849702<<<<<<<<<<<<<<<",
            "6104128M1402209CMW<<<<<<<<<<<1",
            "PUBLIC<<JON<<<<<<<<<<<<<<<<<<<",
        ],
        digits_hold: false,
    },
    Truth {
        file: "79_pass-can.jpg",
        lines: &[
            "P<CANMARTIN<<SARAH<<<<<<<<<<<<<<<<<<<<<<<<<<",
            "ZE000509<9CAN8501019F2301147<<<<<<<<<<<<<<08",
        ],
        digits_hold: true,
    },
    Truth {
        file: "79_pass-hun.png",
        lines: &[
            "P<HUNHANDRA<<ROZALIA<IRMA<<<<<<<<<<<<<<<<<<<",
            "BD00020282HUN7802225F2203012<<<<<<<<<<<<<<06",
        ],
        digits_hold: true,
    },
    Truth {
        file: "98_pass-nld.jpg",
        lines: &[
            "P<NLDMEULENDIJK<<LOES<ALBERTINE<<<<<<<<<<<<<",
            "XA00000148NLD7110195F0604121123456782<<<<<02",
        ],
        digits_hold: true,
    },
];

/// Files this reader does not read: the test fails when one of them is read, so the list only
/// shrinks. Empty since 25_pass-uto (275 px: `NAHIA` → `MARIA` by the vote over the enlarged
/// band) and 27_pass-gbr (272 px: `KINGDOH` → `KINGDOM` from the printed word) were settled.
const NOT_YET: &[&str] = &[];

#[test]
fn each_real_photo_reads_the_mrz_it_prints() {
    let dir = format!(
        "{}/tests/fixtures/documents/real",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut report = Vec::new();
    let mut wrong = Vec::new();
    for t in TRUTH {
        let img = image::open(format!("{dir}/{}", t.file)).unwrap().to_rgb8();
        let started = std::time::Instant::now();
        let TextReading { mrz, .. } = read::read_text(ocr(), &img).unwrap();
        let took = started.elapsed();
        let read: Vec<String> = mrz
            .as_ref()
            .map(|m| m.corrected_lines())
            .unwrap_or_default();
        let digits_hold = mrz
            .as_ref()
            .and_then(|m| m.validation.as_ref())
            .is_some_and(|v| {
                v.checks
                    .iter()
                    .filter(|c| c.name.starts_with("mrz_checksum"))
                    .all(|c| c.status != CheckStatus::Fail)
            });
        let exact = read == t.lines;
        report.push(format!(
            "{:18} {:5} digits {:5} {:>5} ms  {}",
            t.file,
            if exact { "exact" } else { "WRONG" },
            digits_hold,
            took.as_millis(),
            read.join(" / ")
        ));
        let ok = exact && digits_hold == t.digits_hold;
        if ok == NOT_YET.contains(&t.file) {
            wrong.push(t.file);
        }
    }
    eprintln!("{}", report.join("\n"));
    let exact = report.iter().filter(|r| r.contains(" exact ")).count();
    eprintln!("{exact} of {} read exactly", TRUTH.len());
    assert!(
        wrong.is_empty(),
        "misread (or read although listed in NOT_YET): {wrong:?}"
    );
}
