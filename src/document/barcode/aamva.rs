//! AAMVA DL/ID card design standard records (the PDF417 on North-American driving licences and
//! ID cards): the header (`@` LF RS CR `ANSI ` IIN, version, subfile designators), the `DL` or
//! `ID` subfile, and its data elements (`DCS` family name, `DAC` first name, `DAQ` number,
//! `DBB` birth date…) normalised to the fields the rest of kycd uses. Versions 1 to 10 (AAMVA
//! 2000 to 2020): version 1 and Canadian issuers write dates `CCYYMMDD`, the others `MMDDCCYY`.

use serde::Serialize;

/// An AAMVA record, normalised. Dates are ISO 8601; names upper case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aamva {
    /// AAMVA version number (1–10…).
    pub version: u8,
    /// Issuer identification number (6 digits, e.g. `636014` for California).
    pub issuer_iin: String,
    /// `driver_license` (a `DL` subfile) or `id_card` (an `ID` subfile).
    pub document_type: &'static str,
    /// ISO 3166-1 alpha-3 of the issuing country (`DCG`, else from the jurisdiction code).
    pub country: Option<&'static str>,
    /// Jurisdiction (state or province) code of the address, e.g. `CA`.
    pub jurisdiction: Option<String>,
    /// Family name.
    pub surname: Option<String>,
    /// First and middle names.
    pub given_names: Option<String>,
    /// Customer identifier: the licence or card number.
    pub document_number: Option<String>,
    /// Date of birth.
    pub date_of_birth: Option<String>,
    /// Expiry date.
    pub date_of_expiry: Option<String>,
    /// Issue date.
    pub date_of_issue: Option<String>,
    /// `M`, `F` or `X`.
    pub sex: Option<&'static str>,
    /// Street, city, jurisdiction and postal code, comma separated.
    pub address: Option<String>,
    /// Vehicle class(es) on a licence.
    pub vehicle_class: Option<String>,
}

/// Data elements read at most (a real record holds 20–40).
const MAX_ELEMENTS: usize = 128;

const US_STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY", "AS", "GU", "MP", "PR", "VI",
];
const CA_PROVINCES: &[&str] = &[
    "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT",
];

/// Parses an AAMVA record; `None` when `text` is not one.
pub fn parse(text: &str) -> Option<Aamva> {
    let start = text.find("ANSI ").or_else(|| text.find("AAMVA"))?;
    let header = &text[start..];
    let digits = |from: usize, n: usize| -> Option<u32> {
        let s = header.get(from..from + n)?;
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let issuer_iin = header.get(5..11)?;
    if !issuer_iin.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let version = u8::try_from(digits(11, 2)?).ok()?;
    let mut at = if version >= 2 { 15 } else { 13 };
    let entries = digits(at, 2).unwrap_or(1).min(16);
    at += 2;
    // The first DL or ID subfile named by a designator (type, 4-digit offset, 4-digit length).
    let mut subfile = None;
    for _ in 0..entries {
        let Some(kind) = header.get(at..at + 2) else {
            break;
        };
        if kind == "DL" || kind == "ID" {
            subfile = Some(kind);
            break;
        }
        at += 10;
    }
    let kind = subfile.unwrap_or("DL");
    // Offsets count from the file's first byte, which scanners sometimes drop or alter: find
    // the subfile by its type followed by its first element instead.
    let body_from = start + at;
    let body = text.get(body_from..)?;
    let sub_at = body
        .match_indices(kind)
        .map(|(i, _)| i)
        .find(|&i| {
            body.get(i + 2..i + 4)
                .is_some_and(|e| e.starts_with('D') && e.as_bytes()[1].is_ascii_uppercase())
        })
        .or_else(|| {
            // Versions before 2 wrote no designator type twice; elements may follow at once.
            body.find("DA").filter(|_| subfile.is_none())
        })?;
    let rest = &body[sub_at..];
    let rest = rest.strip_prefix(kind).unwrap_or(rest);
    let mut elements: Vec<(&str, &str)> = Vec::new();
    for raw in rest.split(['\n', '\r', '\u{1e}']).take(MAX_ELEMENTS) {
        let raw = raw.trim_start_matches(kind);
        // The next subfile (a jurisdiction's `Z…`) ends this one.
        if raw.starts_with('Z') && elements.len() > 2 {
            break;
        }
        if raw.len() >= 3 && raw.is_char_boundary(3) && raw.as_bytes()[0] == b'D' {
            let (id, value) = raw.split_at(3);
            if id.bytes().all(|b| b.is_ascii_uppercase()) && !elements.iter().any(|(k, _)| *k == id)
            {
                elements.push((id, value.trim()));
            }
        }
    }
    if elements.len() < 3 {
        return None;
    }
    let get = |id: &str| -> Option<String> {
        elements
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, v)| v.trim().to_uppercase())
            .filter(|v| !v.is_empty() && !matches!(v.as_str(), "NONE" | "UNAVL" | "UNAVAIL"))
    };
    let jurisdiction = get("DAJ");
    let country: Option<&'static str> = match get("DCG").as_deref() {
        Some("USA") => Some("USA"),
        Some("CAN") => Some("CAN"),
        _ => match jurisdiction.as_deref() {
            Some(j) if US_STATES.contains(&j) => Some("USA"),
            Some(j) if CA_PROVINCES.contains(&j) => Some("CAN"),
            _ => None,
        },
    };
    let year_first = version <= 1 || country == Some("CAN");
    let date = |id: &str| get(id).and_then(|v| parse_date(&v, year_first));
    let full_name: Vec<String> = get("DAA")
        .map(|n| n.split(',').map(|p| p.trim().to_owned()).collect())
        .unwrap_or_default();
    let surname = get("DCS")
        .or_else(|| get("DAB"))
        .or_else(|| full_name.first().cloned());
    let given_names = match (get("DAC"), get("DAD")) {
        (Some(first), Some(middle)) => Some(format!("{first} {middle}")),
        (Some(first), None) => Some(first),
        _ => get("DCT")
            .map(|g| g.replace(',', " ").trim().to_owned())
            .or_else(|| (full_name.len() > 1).then(|| full_name[1..].join(" ")))
            .filter(|g| !g.is_empty()),
    };
    let address = ["DAG", "DAI", "DAJ", "DAK"]
        .iter()
        .filter_map(|id| get(id))
        .collect::<Vec<_>>();
    Some(Aamva {
        version,
        issuer_iin: issuer_iin.to_owned(),
        document_type: if kind == "ID" {
            "id_card"
        } else {
            "driver_license"
        },
        country,
        jurisdiction,
        surname,
        given_names,
        document_number: get("DAQ"),
        date_of_birth: date("DBB"),
        date_of_expiry: date("DBA"),
        date_of_issue: date("DBD"),
        sex: get("DBC").and_then(|s| match s.as_str() {
            "1" | "M" => Some("M"),
            "2" | "F" => Some("F"),
            "9" | "X" => Some("X"),
            _ => None,
        }),
        address: (!address.is_empty()).then(|| address.join(", ")),
        vehicle_class: get("DCA"),
    })
}

/// An 8-digit AAMVA date as ISO 8601: `CCYYMMDD` when `year_first`, else `MMDDCCYY`; the other
/// order when the first is not a date.
fn parse_date(v: &str, year_first: bool) -> Option<String> {
    let d: String = v.chars().filter(char::is_ascii_digit).collect();
    if d.len() != 8 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| d[r].parse::<u16>().ok();
    let ymd = |y: u16, m: u16, day: u16| -> Option<String> {
        let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
        time::Date::from_calendar_date(i32::from(y), month, u8::try_from(day).ok()?).ok()?;
        (1900..=2200)
            .contains(&y)
            .then(|| format!("{y:04}-{m:02}-{day:02}"))
    };
    let year_first_date = || ymd(n(0..4)?, n(4..6)?, n(6..8)?);
    let month_first_date = || ymd(n(4..8)?, n(0..2)?, n(2..4)?);
    if year_first {
        year_first_date().or_else(month_first_date)
    } else {
        month_first_date().or_else(year_first_date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example record of the AAMVA DL/ID Card Design Standard (2020), annex D, shortened.
    pub const SAMPLE: &str = "@\n\u{1e}\rANSI 636000100002DL00410278ZV03190008DLDAQT64235789\nDCSSAMPLE\nDDEN\nDACMICHAEL\nDDFN\nDADJOHN\nDDGN\nDCUJR\nDCAD\nDCBK\nDCDPH\nDBD06062019\nDBB06061986\nDBA12102024\nDBC1\nDAU068 in\nDAYBRO\nDAG2300 WEST BROAD STREET\nDAIRICHMOND\nDAJVA\nDAK232690000  \nDCF2424244747474786102204\nDCGUSA\nDCK123456789\nDDAF\nDDB06062018\nDDC06062020\nDDD1\rZVZVA01\r";

    #[test]
    fn the_standards_example_record_is_read() {
        let a = parse(SAMPLE).expect("an AAMVA record");
        assert_eq!(a.version, 10);
        assert_eq!(a.issuer_iin, "636000");
        assert_eq!(a.document_type, "driver_license");
        assert_eq!(a.country, Some("USA"));
        assert_eq!(a.jurisdiction.as_deref(), Some("VA"));
        assert_eq!(a.surname.as_deref(), Some("SAMPLE"));
        assert_eq!(a.given_names.as_deref(), Some("MICHAEL JOHN"));
        assert_eq!(a.document_number.as_deref(), Some("T64235789"));
        assert_eq!(a.date_of_birth.as_deref(), Some("1986-06-06"));
        assert_eq!(a.date_of_expiry.as_deref(), Some("2024-12-10"));
        assert_eq!(a.date_of_issue.as_deref(), Some("2019-06-06"));
        assert_eq!(a.sex, Some("M"));
        assert_eq!(a.vehicle_class.as_deref(), Some("D"));
        assert_eq!(
            a.address.as_deref(),
            Some("2300 WEST BROAD STREET, RICHMOND, VA, 232690000")
        );
    }

    #[test]
    fn an_id_card_and_a_canadian_issuer_are_told_apart() {
        let id = "@\n\u{1e}\rANSI 636012080002ID00410200ZO02410040IDDAQ123456789\nDCSNOWAK\nDACANNA\nDBB19900215\nDBA20300215\nDBC2\nDAJON\nDCGCAN\r";
        let a = parse(id).expect("an AAMVA record");
        assert_eq!(a.document_type, "id_card");
        assert_eq!(a.country, Some("CAN"));
        assert_eq!(a.date_of_birth.as_deref(), Some("1990-02-15"));
        assert_eq!(a.sex, Some("F"));
    }

    #[test]
    fn a_version_one_record_with_a_full_name_is_read() {
        let v1 = "@\n\u{1e}\rANSI 6360140101DL00290174DLDAADOE,JANE,Q\nDAQD1234567\nDBB19800131\nDBA20251231\nDAJCA\r";
        let a = parse(v1).expect("an AAMVA record");
        assert_eq!(a.version, 1);
        assert_eq!(a.surname.as_deref(), Some("DOE"));
        assert_eq!(a.given_names.as_deref(), Some("JANE Q"));
        assert_eq!(a.date_of_birth.as_deref(), Some("1980-01-31"));
        assert_eq!(a.country, Some("USA"));
    }

    #[test]
    fn text_that_is_not_a_record_is_not_one() {
        assert_eq!(parse("https://example.com/verify?id=1"), None);
        assert_eq!(parse("ANSI 12"), None);
        assert_eq!(parse("ANSI 636000100002"), None);
        assert_eq!(parse(""), None);
        // Any text, however broken, parses or not without a panic.
        for cut in 0..SAMPLE.len() {
            if SAMPLE.is_char_boundary(cut) {
                let _ = parse(&SAMPLE[..cut]);
            }
        }
    }
}
