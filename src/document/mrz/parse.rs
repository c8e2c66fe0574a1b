//! Decoding a normalised, repaired zone into [`MrzFields`] and the
//! MRZ-intrinsic checks. Check details on the passing path are static text
//! so a clean document costs only the allocations of its field strings.

use std::borrow::Cow;

use time::Date;

use super::check::{self, Digit, Number};
use super::dates::{Kind, MrzDate};
use super::input::Lines;
use super::layout::{self, Class, Layout};
use super::{
    Check, CheckStatus, CountryField, DocumentType, MrzFields, MrzFormat, Parsed, Repair, Sex,
};
use crate::document::countries::{self, CodeKind, Country};

use CheckStatus::{Fail, Pass, Skipped, Warn};

/// `b` without leading and trailing fillers.
fn trim_fillers(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b'<').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b'<').map_or(start, |i| i + 1);
    &b[start..end]
}

/// ASCII bytes to a `String` (every byte here is in the MRZ alphabet, so
/// the UTF-8 check cannot fail). Only off the hot path: the decoder takes
/// its strings from one [`Zone`] validated once.
fn ascii(b: &[u8]) -> String {
    std::str::from_utf8(b).unwrap_or_default().to_owned()
}

/// The zone's bytes validated as UTF-8 once, so every field string is a
/// copy of a `&str` slice instead of a fresh UTF-8 check per field
/// (measured cheaper than both that and byte-to-char pushes).
struct Zone<'a> {
    bytes: &'a [u8],
    text: &'a str,
}

impl<'a> Zone<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Zone {
            bytes,
            text: std::str::from_utf8(bytes).unwrap_or_default(),
        }
    }

    /// The text of `sub`, which must be a subslice of the zone (empty
    /// otherwise; every caller passes spans of the same `Lines`).
    fn str(&self, sub: &[u8]) -> &'a str {
        let at = (sub.as_ptr() as usize).wrapping_sub(self.bytes.as_ptr() as usize);
        self.text
            .get(at..at.wrapping_add(sub.len()))
            .unwrap_or_default()
    }

    /// Appends the runs of non-fillers of `b` to `out`, separated by `sep`
    /// when given.
    fn push_runs(&self, out: &mut String, b: &[u8], sep: Option<char>) {
        for word in b.split(|&c| c == b'<').filter(|w| !w.is_empty()) {
            if let (Some(sep), false) = (sep, out.is_empty()) {
                out.push(sep);
            }
            out.push_str(self.str(word));
        }
    }

    /// Fillers trimmed at the ends and runs of fillers read as one space.
    fn spaced(&self, b: &[u8]) -> String {
        // One word (most surnames): a plain copy.
        if b.iter().all(|&c| c != b'<') {
            return self.str(b).to_owned();
        }
        let mut s = String::with_capacity(b.len());
        self.push_runs(&mut s, b, Some(' '));
        s
    }
}

/// Every two-letter combination, so any letter code can be borrowed as a
/// `&'static str` instead of allocated.
static LETTER_PAIRS: [u8; 26 * 26 * 2] = {
    let mut t = [0u8; 26 * 26 * 2];
    let mut i = 0;
    while i < 26 * 26 {
        t[2 * i] = b'A' + (i / 26) as u8;
        t[2 * i + 1] = b'A' + (i % 26) as u8;
        i += 1;
    }
    t
};

/// [`LETTER_PAIRS`] as text, validated at compile time rather than per
/// parse.
static LETTER_PAIR_TEXT: &str = match std::str::from_utf8(&LETTER_PAIRS) {
    Ok(s) => s,
    Err(_) => "",
};

/// The document code without its filler, borrowed when it is letters only.
fn document_code(b: &[u8]) -> Cow<'static, str> {
    let letter = |c: u8| c.is_ascii_uppercase().then(|| usize::from(c - b'A'));
    let (at, len) = match (b.first().and_then(|&c| letter(c)), b.get(1).copied()) {
        (Some(a), Some(b'<')) => (2 * (a * 26 + a), 1),
        (Some(a), Some(c)) => match letter(c) {
            Some(c) => (2 * (a * 26 + c), 2),
            None => return Cow::Owned(ascii(trim_fillers(b))),
        },
        _ => return Cow::Owned(ascii(trim_fillers(b))),
    };
    match LETTER_PAIR_TEXT.get(at..at + len) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(ascii(trim_fillers(b))),
    }
}

/// Splits the name field at the first `<<`; a name reaching the field's last
/// position may have been truncated by the issuer.
fn split_name_in(zone: &Zone, field: &[u8]) -> (String, String, bool) {
    let truncated = field.last().is_some_and(|&c| c != b'<');
    let end = field.iter().rposition(|&c| c != b'<').map_or(0, |i| i + 1);
    let f = &field[..end];
    let (surname, given) = match f.windows(2).position(|w| w == b"<<") {
        Some(i) => (&f[..i], &f[i + 2..]),
        None => (f, &f[f.len()..]),
    };
    (zone.spaced(surname), zone.spaced(given), truncated)
}

/// [`split_name_in`] for a field on its own.
#[cfg(test)]
fn split_name(field: &[u8]) -> (String, String, bool) {
    split_name_in(&Zone::new(field), field)
}

fn country(code: &[u8]) -> (CountryField, Option<&'static Country>) {
    let mut key = [b'<'; 3];
    key.copy_from_slice(code);
    let found = countries::lookup_mrz(key);
    let end = code.iter().rposition(|&c| c != b'<').map_or(0, |i| i + 1);
    let field = CountryField {
        code: match found {
            Some(c) => Cow::Borrowed(&c.mrz_code[..end]),
            None => Cow::Owned(ascii(&code[..end])),
        },
        alpha3: found.map(|c| Cow::Borrowed(c.alpha3)),
        alpha2: found.and_then(|c| c.alpha2.map(Cow::Borrowed)),
        name: found.map(|c| Cow::Borrowed(c.name)),
        kind: found.map_or(CodeKind::Unknown, |c| c.kind),
    };
    (field, found)
}

/// Decodes every field and runs the MRZ-intrinsic checks.
pub(crate) fn decode(
    lines: &Lines,
    l: &Layout,
    today: Date,
    repairs: Vec<Repair>,
    impossible: usize,
    mut warnings: Vec<Cow<'static, str>>,
    keep_mrz: bool,
) -> Parsed {
    let digits = check::digits(lines, l);
    let zone = Zone::new(lines.rows[..lines.count].as_flattened());
    let opt1 = lines.span(l.optional1);
    let number_field = lines.span(l.number);
    let (continuation, optional_rest): (&[u8], &[u8]) = match digits.number_form {
        // Skip the continuation's check digit and its terminating filler.
        Number::Long { extra } => (&opt1[..extra], opt1.get(extra + 2..).unwrap_or(&[])),
        Number::Short | Number::BrokenLong => (&[], opt1),
    };
    let document_number = if continuation.is_empty() && number_field.iter().all(|&c| c != b'<') {
        // A full nine-character number: a plain copy.
        zone.str(number_field).to_owned()
    } else {
        let mut n = String::with_capacity(number_field.len() + continuation.len());
        zone.push_runs(&mut n, number_field, None);
        zone.push_runs(&mut n, continuation, None);
        n
    };
    let code_bytes = lines.span(l.doc_code);
    let document_code = document_code(code_bytes);
    let (issuing_state, issuer) = country(lines.span(l.issuer));
    let (nationality, nation) = country(lines.span(l.nationality));
    let (surname, given_names, truncated) = split_name_in(&zone, lines.span(l.name));
    let birth = MrzDate::decode(lines.span(l.birth), Kind::Birth, today);
    let expiry = MrzDate::decode(lines.span(l.expiry), Kind::Expiry, today);
    let sex_byte = lines.at(l.sex);
    let sex = match sex_byte {
        b'M' => Some(Sex::M),
        b'F' => Some(Sex::F),
        b'X' | b'<' => Some(Sex::X),
        _ => None,
    };

    // 16 covers the parse and validate checks without VIZ and keeps the
    // buffer in the allocator's small-size cache.
    let mut checks = Vec::with_capacity(16);
    checks.push(format_check(lines, l, code_bytes[0], impossible));
    checks.push(digit_check(
        "mrz_checksum_document_number",
        digits.number,
        l.format,
        digits.number_form,
    ));
    checks.push(digit_check(
        "mrz_checksum_birth_date",
        digits.birth,
        l.format,
        Number::Short,
    ));
    checks.push(digit_check(
        "mrz_checksum_expiry",
        digits.expiry,
        l.format,
        Number::Short,
    ));
    checks.push(digit_check(
        "mrz_checksum_optional",
        digits.optional,
        l.format,
        Number::Short,
    ));
    checks.push(digit_check(
        "mrz_checksum_composite",
        digits.composite,
        l.format,
        Number::Short,
    ));
    checks.push(date_check(
        "birth_date_valid",
        birth,
        lines.span(l.birth),
        None,
    ));
    checks.push(date_check(
        "expiry_date_valid",
        expiry,
        lines.span(l.expiry),
        birth.date(),
    ));
    checks.push(code_check(
        "issuer_code_valid",
        issuer,
        &issuing_state.code,
        true,
    ));
    checks.push(code_check(
        "nationality_code_valid",
        nation,
        &nationality.code,
        false,
    ));
    checks.push(match sex_byte {
        b'M' | b'F' => Check::new("sex_valid", Pass, "M or F"),
        b'X' => Check::new("sex_valid", Pass, "X (unspecified)"),
        b'<' => Check::new("sex_valid", Pass, "filler: unspecified, reported as X"),
        c => Check::new(
            "sex_valid",
            Fail,
            format!("'{}' is not M, F, X or <", char::from(c)),
        ),
    });
    // Any letter of the name lands in one of the two parts (the `<<`
    // separator is fillers), so this is "the field is all fillers" without
    // scanning it again.
    let name_empty = surname.is_empty() && given_names.is_empty();
    checks.push(if document_number.is_empty() {
        Check::new("field_lengths", Fail, "document number is empty")
    } else if digits.number_form == Number::BrokenLong {
        Check::new(
            "field_lengths",
            Fail,
            "long document number announced but no continuation in the optional data",
        )
    } else if name_empty {
        Check::new("field_lengths", Fail, "name field is empty")
    } else if truncated {
        Check::new(
            "field_lengths",
            Warn,
            "name fills its field and may be truncated",
        )
    } else if surname.is_empty() {
        Check::new(
            "field_lengths",
            Warn,
            "primary identifier (surname) is empty",
        )
    } else {
        Check::new("field_lengths", Pass, "all fields have usable lengths")
    });

    if truncated {
        warnings.push("name fills the MRZ name field and may be truncated".into());
    }
    if issuing_state.kind == CodeKind::Specimen || nationality.kind == CodeKind::Specimen {
        warnings.push("specimen document: code UTO (Utopia) appears only on ICAO specimens".into());
    }

    let mut mrz = String::with_capacity(if keep_mrz {
        lines.count * (lines.len + 1)
    } else {
        0
    });
    for i in (0..lines.count).filter(|_| keep_mrz) {
        if i > 0 {
            mrz.push('\n');
        }
        mrz.push_str(zone.str(lines.row(i)));
    }
    let fields = MrzFields {
        document_type: DocumentType::from_code(&document_code),
        document_code,
        issuing_state,
        surname,
        given_names,
        name_possibly_truncated: truncated,
        document_number,
        nationality,
        birth_date: birth.iso(),
        sex,
        expiry_date: expiry.iso(),
        optional_data_1: zone.str(trim_fillers(optional_rest)).to_owned(),
        optional_data_2: l
            .optional2
            .map(|s| zone.str(trim_fillers(lines.span(s))).to_owned()),
    };
    Parsed {
        format: l.format,
        mrz,
        fields,
        checks,
        repairs,
        warnings,
        birth,
        expiry,
    }
}

/// `mrz_format`: layout recognised, document code plausible, every character
/// allowed in its field (after repair).
fn format_check(lines: &Lines, l: &Layout, first: u8, impossible: usize) -> Check {
    if impossible > 0 {
        let mut at = None;
        layout::for_each_impossible(lines, l, |span, i, c, class, _| {
            at.get_or_insert((span.line, span.start as usize + i, c, class));
        });
        if let Some((line, pos, c, class)) = at {
            let kind = match class {
                Class::Digit => "a digit field",
                Class::DigitOrFiller => "a date or check-digit field",
                Class::Country => "a country code",
                _ => "a letters-only field",
            };
            let tail = if impossible > 1 {
                format!(" (and {} more)", impossible - 1)
            } else {
                String::new()
            };
            return Check::new(
                "mrz_format",
                Fail,
                format!(
                    "line {} position {}: '{}' is not allowed in {kind}{tail}",
                    line + 1,
                    pos + 1,
                    char::from(c)
                ),
            );
        }
    }
    if !first.is_ascii_uppercase() {
        return Check::new("mrz_format", Fail, "document code must start with a letter");
    }
    let icao = match l.format {
        MrzFormat::Td1 | MrzFormat::Td2 => matches!(first, b'A' | b'C' | b'I'),
        MrzFormat::Td3 => first == b'P',
        MrzFormat::MrvA | MrzFormat::MrvB => true,
    };
    let (status, detail) = match (l.format, icao) {
        (MrzFormat::Td1, true) => (Pass, "TD1: 3 lines of 30"),
        (MrzFormat::Td2, true) => (Pass, "TD2: 2 lines of 36"),
        (MrzFormat::Td3, true) => (Pass, "TD3: 2 lines of 44"),
        (MrzFormat::MrvA, _) => (Pass, "MRV-A: 2 lines of 44"),
        (MrzFormat::MrvB, _) => (Pass, "MRV-B: 2 lines of 36"),
        (MrzFormat::Td3, false) => (
            Warn,
            "TD3 layout with a document code other than P (issuer-specific)",
        ),
        (_, false) => (
            Warn,
            "TD1/TD2 layout with a document code other than A, C or I (issuer-specific)",
        ),
    };
    Check::new("mrz_format", status, detail)
}

fn digit_check(name: &'static str, d: Digit, format: MrzFormat, form: Number) -> Check {
    match d {
        Digit::Pass => match form {
            Number::Long { .. } => Check::new(
                name,
                Pass,
                "check digit matches (long number continued in optional data)",
            ),
            _ => Check::new(name, Pass, "check digit matches"),
        },
        Digit::Fail { found: b'<', .. } if form == Number::BrokenLong => Check::new(
            name,
            Fail,
            "check digit is a filler but the number does not continue in the optional data",
        ),
        Digit::Fail { expected, found } => Check::new(
            name,
            Fail,
            format!("computed {expected}, found '{}'", char::from(found)),
        ),
        Digit::NotDefined => Check::new(
            name,
            Skipped,
            match (name, format) {
                ("mrz_checksum_composite", _) => "visas (MRV) have no composite check digit",
                (_, MrzFormat::Td1) => "TD1 defines no check digit for optional data",
                (_, MrzFormat::Td2) => "TD2 defines no check digit for optional data",
                _ => "visas (MRV) define no check digit for optional data",
            },
        ),
    }
}

fn date_check(name: &'static str, d: MrzDate, raw: &[u8], birth: Option<Date>) -> Check {
    match d {
        MrzDate::Full(date) => match birth {
            Some(b) if date < b => {
                Check::new(name, Fail, "expiry date is before the date of birth")
            }
            _ => Check::new(name, Pass, "valid calendar date"),
        },
        MrzDate::Partial { month: Some(_), .. } => Check::new(name, Warn, "day unknown (fillers)"),
        MrzDate::Partial { month: None, .. } => {
            Check::new(name, Warn, "month and day unknown (fillers)")
        }
        MrzDate::Unknown => Check::new(name, Warn, "date unknown (all fillers)"),
        MrzDate::Invalid => {
            let raw: String = raw.iter().map(|&c| char::from(c)).collect();
            Check::new(name, Fail, format!("'{raw}' is not a valid YYMMDD date"))
        }
    }
}

fn code_check(
    name: &'static str,
    found: Option<&'static Country>,
    code: &str,
    issuer: bool,
) -> Check {
    match found {
        None if code.is_empty() => Check::new(name, Fail, "code is empty"),
        None => Check::new(
            name,
            Fail,
            format!("'{code}' is not an ISO 3166-1 or ICAO 9303 code"),
        ),
        Some(c) if c.kind == CodeKind::Specimen => Check::new(
            name,
            Warn,
            if issuer {
                "UTO is the ICAO specimen code (Utopia), not a real issuer"
            } else {
                "UTO is the ICAO specimen code (Utopia), not a real nationality"
            },
        ),
        Some(c) if issuer && c.is_nationality_status() => Check::new(
            name,
            Warn,
            "code denotes a nationality status, not an issuing authority",
        ),
        Some(c) if c.kind == CodeKind::Icao => Check::new(name, Pass, "ICAO 9303 code"),
        Some(_) => Check::new(name, Pass, "ISO 3166-1 alpha-3 code"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_codes_and_names() {
        for (raw, want) in [
            ("P<", "P"),
            ("ID", "ID"),
            ("ZZ", "ZZ"),
            ("AZ", "AZ"),
            ("<<", ""),
            ("P1", "P1"),
            ("<P", "P"),
        ] {
            assert_eq!(document_code(raw.as_bytes()), want, "{raw}");
        }
        assert!(matches!(document_code(b"IR"), Cow::Borrowed("IR")));
        assert_eq!(
            split_name(b"VAN<DER<BERG<<JAN<<<"),
            ("VAN DER BERG".into(), "JAN".into(), false)
        );
        assert_eq!(
            split_name(b"<<ANNA<<<"),
            (String::new(), "ANNA".into(), false)
        );
        assert_eq!(
            split_name(b"SMITH<<<JOHN<<PAUL"),
            ("SMITH".into(), "JOHN PAUL".into(), true)
        );
        assert_eq!(split_name(b"<<<<"), (String::new(), String::new(), false));
    }
}
