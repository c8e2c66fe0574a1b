//! The barcode against the print: one `barcode_print_consistency_<field>` check per field the
//! barcode carries. `pass` when the field printed under its label agrees, or the barcode's
//! value is printed anywhere on the card (many licences print `DOB 01/15/1985` inline, and the
//! detector may split a name over two boxes); `fail` when the labelled value differs and the
//! barcode's value is printed nowhere (one of the two was altered, or belongs to another
//! document); `warn` when neither is found (printed where OCR missed it). Details never echo
//! personal data.

use crate::document::ascii_words as words;
use crate::document::mrz::{Check, CheckStatus};
use crate::document::printed::PrintedField;

use CheckStatus::{Fail, Pass, Warn};

use super::Aamva;

/// Compares `barcode` with the `printed` fields and the page's `text` lines (reading order).
pub fn with_print(barcode: &Aamva, printed: &[PrintedField], text: &[&str]) -> Vec<Check> {
    let labelled = |name: &str| printed.iter().find(|p| p.name == name);
    // Every word of the page in reading order: a name the detector split over two boxes
    // (`CLAIRE` / `QUINCY`) still reads as one.
    let all_words: Vec<String> = text.iter().flat_map(|l| words(l)).collect();
    let mut checks = Vec::new();
    let mut push = |field: &str, agrees: Option<bool>, found: bool| {
        let words = field.replace('_', " ");
        let name = format!("barcode_print_consistency_{field}");
        checks.push(match (agrees, found) {
            (Some(true), _) => {
                Check::new(name, Pass, format!("printed {words} matches the barcode"))
            }
            (_, true) => Check::new(
                name,
                Pass,
                format!("the barcode's {words} is printed on the card"),
            ),
            (Some(false), false) => Check::new(
                name,
                Fail,
                format!("printed {words} differs from the barcode: possible alteration"),
            ),
            (None, false) => Check::new(
                name,
                Warn,
                format!("the barcode's {words} was not found in the print"),
            ),
        });
    };
    for (field, value) in [
        ("surname", &barcode.surname),
        ("given_names", &barcode.given_names),
    ] {
        let Some(value) = value else { continue };
        let agrees = labelled(field).map(|p| same_name(&p.value, value));
        push(field, agrees, contains_words(&all_words, &words(value)));
    }
    if let Some(number) = &barcode.document_number {
        let want = alnum(number);
        let agrees = labelled("document_number").map(|p| alnum(&p.value) == want);
        let found = text.iter().any(|l| alnum(l).contains(&want));
        push("document_number", agrees, found);
    }
    for (field, value) in [
        ("date_of_birth", &barcode.date_of_birth),
        ("date_of_expiry", &barcode.date_of_expiry),
        ("date_of_issue", &barcode.date_of_issue),
    ] {
        let Some(iso) = value else { continue };
        let agrees = labelled(field).map(|p| &p.value == iso || dates_in(&p.raw).contains(iso));
        let found = text.iter().any(|l| dates_in(l).contains(iso));
        push(field, agrees, found);
    }
    checks
}

/// Upper-case letters and digits only, with the look-alikes OCR confuses folded (O→0, I→1).
fn alnum(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' => '1',
            c => c,
        })
        .collect()
}

/// The same name, allowing one misread letter in a word of five or more.
fn same_name(printed: &str, barcode: &str) -> bool {
    let (p, b) = (words(printed), words(barcode));
    p.len() == b.len() && p.iter().zip(&b).all(|(x, y)| close(x, y))
}

/// Whether the words `n` appear, in order and adjacent, among the words `all`.
fn contains_words(all: &[String], n: &[String]) -> bool {
    !n.is_empty()
        && all
            .windows(n.len())
            .any(|w| w.iter().zip(n).all(|(x, y)| close(x, y)))
}

fn close(a: &str, b: &str) -> bool {
    a == b || (b.len() >= 5 && edit_distance(a, b) <= 1)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Every date a line prints, as ISO 8601: `01/15/1985`, `15.01.1985`, `1985-01-15`, each
/// `d/m/y` date read both ways (a licence prints month first, a European card day first).
pub fn dates_in(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let tokens: Vec<&str> = line
        .split(|c: char| !(c.is_ascii_digit() || matches!(c, '/' | '.' | '-')))
        .filter(|t| !t.is_empty())
        .collect();
    for t in tokens {
        let repaired = crate::document::printed::misread_separators(t);
        let t = repaired.as_deref().unwrap_or(t);
        let parts: Vec<u32> = t
            .split(['/', '.', '-'])
            .filter_map(|p| p.parse().ok())
            .collect();
        let [a, b, c] = parts[..] else { continue };
        let mut push = |y: u32, m: u32, d: u32| {
            let valid = u8::try_from(m)
                .ok()
                .and_then(|m| time::Month::try_from(m).ok())
                .zip(u8::try_from(d).ok())
                .is_some_and(|(m, d)| {
                    i32::try_from(y).is_ok_and(|y| time::Date::from_calendar_date(y, m, d).is_ok())
                });
            if valid && (1900..=2200).contains(&y) {
                out.push(format!("{y:04}-{m:02}-{d:02}"));
            }
        };
        if a >= 1000 {
            push(a, b, c);
        } else {
            push(c, a, b);
            push(c, b, a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Aamva {
        super::super::aamva::parse(
            "@\n\u{1e}\rANSI 636014100002DL00410120ZC01610010DLDAQD1234567\nDCSDOE\nDACJOHN\nDBB01151985\nDBA08312029\nDBD08312021\nDBC1\nDAJCA\r",
        )
        .expect("a record")
    }

    fn status(checks: &[Check], name: &str) -> CheckStatus {
        checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} in {checks:?}"))
            .status
    }

    #[test]
    fn a_matching_print_passes_and_an_altered_one_fails() {
        let text = [
            "DRIVER LICENSE",
            "DLN D1234567",
            "DOE",
            "JOHN",
            "DOB 01/15/1985",
        ];
        let checks = with_print(&record(), &[], &text);
        assert_eq!(status(&checks, "barcode_print_consistency_surname"), Pass);
        assert_eq!(
            status(&checks, "barcode_print_consistency_document_number"),
            Pass
        );
        assert_eq!(
            status(&checks, "barcode_print_consistency_date_of_birth"),
            Pass
        );
        // Not printed where OCR could see it: a warning, not a verdict.
        assert_eq!(
            status(&checks, "barcode_print_consistency_date_of_expiry"),
            Warn
        );
        let altered = [PrintedField {
            name: "date_of_birth",
            raw: "01/15/1995".into(),
            value: "1995-01-15".into(),
            confidence: 0.9,
        }];
        let altered_text = [
            "DRIVER LICENSE",
            "DLN D1234567",
            "DOE",
            "JOHN",
            "01/15/1995",
        ];
        let checks = with_print(&record(), &altered, &altered_text);
        assert_eq!(
            status(&checks, "barcode_print_consistency_date_of_birth"),
            Fail
        );
        assert!(checks.iter().all(|c| !c.detail.contains("1995")));
    }

    #[test]
    fn printed_dates_are_read_in_both_orders() {
        assert_eq!(dates_in("DOB 01/15/1985"), vec!["1985-01-15"]);
        assert_eq!(
            dates_in("4b EXP 08/09/2029"),
            vec!["2029-08-09", "2029-09-08"]
        );
        assert_eq!(dates_in("1985-01-15"), vec!["1985-01-15"]);
        // A slash read as a 1.
        assert_eq!(dates_in("DOB 12118/1978"), vec!["1978-12-18"]);
        assert_eq!(dates_in("1211811978"), vec!["1978-12-18"]);
        assert!(dates_in("CLASS C").is_empty());
    }
}
