//! Consistency of printed (VIZ) fields with the MRZ. Printed values are
//! brought to MRZ form first: names via [`super::names`], dates read in the
//! usual printed formats, countries resolved to alpha-3, sex from the usual
//! bilingual spellings. Details never echo the personal data.

use std::borrow::Cow;

use time::{Date, Month};

use super::names::{name_check, translit};
use super::{Check, CheckStatus, MrzDate, MrzFields, VizFields};
use crate::document::countries;
use crate::document::mrz::{CountryField, Sex};

use CheckStatus::{Fail, Pass, Skipped, Warn};

fn nonblank(o: &Option<String>) -> Option<&str> {
    o.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Appends one `viz_mrz_consistency_<field>` check per printed field given.
pub(super) fn compare(
    v: &VizFields,
    f: &MrzFields,
    birth: MrzDate,
    expiry: MrzDate,
    checks: &mut Vec<Check>,
) {
    let truncated = f.name_possibly_truncated;
    if let Some(s) = nonblank(&v.surname) {
        checks.push(name_check(
            "viz_mrz_consistency_surname",
            s,
            &f.surname,
            truncated,
        ));
    }
    if let Some(s) = nonblank(&v.given_names) {
        checks.push(name_check(
            "viz_mrz_consistency_given_names",
            s,
            &f.given_names,
            truncated,
        ));
    }
    if let Some(s) = nonblank(&v.document_number) {
        const N: &str = "viz_mrz_consistency_document_number";
        let printed = s
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase());
        checks.push(if printed.eq(f.document_number.chars()) {
            Check::new(N, Pass, "printed document number matches the MRZ")
        } else {
            Check::new(N, Fail, "printed document number differs from the MRZ")
        });
    }
    if let Some(s) = nonblank(&v.birth_date) {
        checks.push(date_check("viz_mrz_consistency_birth_date", s, birth));
    }
    if let Some(s) = nonblank(&v.expiry_date) {
        checks.push(date_check("viz_mrz_consistency_expiry_date", s, expiry));
    }
    if let Some(s) = nonblank(&v.sex) {
        checks.push(sex_check(s, f.sex));
    }
    if let Some(s) = nonblank(&v.nationality) {
        checks.push(country_check(
            "viz_mrz_consistency_nationality",
            s,
            &f.nationality,
        ));
    }
    if let Some(s) = nonblank(&v.issuing_country) {
        checks.push(country_check(
            "viz_mrz_consistency_issuing_country",
            s,
            &f.issuing_state,
        ));
    }
}

/// Warnings about the printed issue date: unreadable, in the future, not
/// before expiry, or more than 10 years before expiry.
pub(super) fn issue_warnings(
    v: &VizFields,
    expiry: MrzDate,
    today: Date,
    warnings: &mut Vec<Cow<'static, str>>,
) {
    let Some(s) = nonblank(&v.issue_date) else {
        return;
    };
    let Some(issue) = parse_date(s).and_then(|d| d.to_date(today)) else {
        warnings.push("printed issue date is not a recognised date".into());
        return;
    };
    if issue > today {
        warnings.push("printed issue date is in the future".into());
    }
    if let MrzDate::Full(exp) = expiry {
        let years = exp.year() - issue.year();
        let later_in_year = (exp.month() as u8, exp.day()) > (issue.month() as u8, issue.day());
        if exp <= issue {
            warnings.push("expiry date is not after the printed issue date".into());
        } else if years > 10 || (years == 10 && later_in_year) {
            warnings.push("expiry date is more than 10 years after the issue date".into());
        }
    }
}

/// A printed date; the year may have only two digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct VizDate {
    year: Option<i32>,
    yy: u8,
    month: Option<u8>,
    day: Option<u8>,
}

impl VizDate {
    /// The calendar date, resolving a two-digit year to the latest year not
    /// after `today`.
    fn to_date(self, today: Date) -> Option<Date> {
        let year = self.year.unwrap_or_else(|| {
            let y = today.year().div_euclid(100) * 100 + i32::from(self.yy);
            if y > today.year() {
                y - 100
            } else {
                y
            }
        });
        let month = Month::try_from(self.month?).ok()?;
        Date::from_calendar_date(year, month, self.day?).ok()
    }
}

fn month_from_name(token: &str) -> Option<u8> {
    let mut ascii = String::with_capacity(8);
    for c in token.chars().take(6) {
        if c.is_ascii_alphabetic() {
            ascii.push(c.to_ascii_uppercase());
        } else if let Some(alts) = c.to_uppercase().next().and_then(translit) {
            ascii.push_str(alts[0]);
        }
    }
    const NAMES: [(&str, u8); 30] = [
        ("JUIN", 6),
        ("JUIL", 7),
        ("JAN", 1),
        ("ENE", 1),
        ("FEB", 2),
        ("FEV", 2),
        ("MAR", 3),
        ("MAE", 3),
        ("MRZ", 3),
        ("APR", 4),
        ("AVR", 4),
        ("ABR", 4),
        ("MAY", 5),
        ("MAI", 5),
        ("JUN", 6),
        ("JUL", 7),
        ("AUG", 8),
        ("AOU", 8),
        ("AGO", 8),
        ("SEP", 9),
        ("SET", 9),
        ("OCT", 10),
        ("OKT", 10),
        ("OTT", 10),
        ("NOV", 11),
        ("DEC", 12),
        ("DEZ", 12),
        ("DIC", 12),
        ("GEN", 1),
        ("LUG", 7),
    ];
    NAMES
        .iter()
        .find(|(p, _)| ascii.starts_with(p))
        .map(|&(_, m)| m)
}

/// Reads `1974-08-12`, `12.08.1974`, `12/08/74`, `12 AUG 74`,
/// `12 AUG/AOÛT 1974`, `12AUG74`, `19740812`, `740812`.
pub(super) fn parse_date(s: &str) -> Option<VizDate> {
    if s.chars().count() > 40 {
        return None;
    }
    // Runs of digits and runs of letters; everything else separates.
    let mut toks: Vec<&str> = Vec::with_capacity(6);
    let mut start: Option<(usize, bool)> = None;
    for (i, c) in s.char_indices().chain(std::iter::once((s.len(), ' '))) {
        let kind = if c.is_ascii_digit() {
            Some(true)
        } else if c.is_alphabetic() {
            Some(false)
        } else {
            None
        };
        if let Some((st, digit)) = start {
            if kind != Some(digit) {
                toks.push(&s[st..i]);
                start = None;
            }
        }
        if let (None, Some(d)) = (start, kind) {
            start = Some((i, d));
        }
    }
    let num = |t: &str| -> Option<u32> {
        t.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let digits = |t: &&str| t.bytes().all(|b| b.is_ascii_digit());
    let (y, m, d): (&str, Option<u32>, Option<u32>) = match toks.as_slice() {
        [t] if digits(t) && t.len() == 8 => (&t[..4], num(&t[4..6]), num(&t[6..])),
        [t] if digits(t) && t.len() == 6 => (&t[..2], num(&t[2..4]), num(&t[4..])),
        [y, m, d] if toks.iter().all(digits) && y.len() == 4 => (y, num(m), num(d)),
        [d, m, y] if toks.iter().all(digits) && d.len() <= 2 && m.len() <= 2 => (y, num(m), num(d)),
        [d, rest @ .., y]
            if digits(d) && digits(y) && !rest.is_empty() && !rest.iter().any(digits) =>
        {
            (y, month_from_name(rest[0]).map(u32::from), num(d))
        }
        _ => return None,
    };
    let (m, d) = (u8::try_from(m?).ok()?, u8::try_from(d?).ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let yv = num(y)?;
    let (year, yy) = match y.len() {
        4 => (Some(yv as i32), (yv % 100) as u8),
        2 => (None, yv as u8),
        _ => return None,
    };
    let date = VizDate {
        year,
        yy,
        month: Some(m),
        day: Some(d),
    };
    if let Some(full) = year {
        Date::from_calendar_date(full, Month::try_from(m).ok()?, d).ok()?;
    }
    Some(date)
}

fn date_check(name: &'static str, printed: &str, mrz: MrzDate) -> Check {
    let (year, month, day) = match mrz {
        MrzDate::Full(d) => (d.year(), Some(d.month() as u8), Some(d.day())),
        MrzDate::Partial { year, month } => (year, month, None),
        MrzDate::Unknown | MrzDate::Invalid => {
            return Check::new(name, Skipped, "MRZ date unusable; not compared")
        }
    };
    let Some(v) = parse_date(printed) else {
        return Check::new(
            name,
            Warn,
            "printed date format not recognised; not compared",
        );
    };
    let year_ok = match v.year {
        Some(y) => y == year,
        None => i32::from(v.yy) == year.rem_euclid(100),
    };
    let month_ok = month.is_none() || month == v.month;
    let day_ok = day.is_none() || day == v.day;
    if year_ok && month_ok && day_ok {
        Check::new(name, Pass, "printed date matches the MRZ")
    } else {
        Check::new(name, Fail, "printed date differs from the MRZ")
    }
}

fn sex_check(printed: &str, mrz: Option<Sex>) -> Check {
    const N: &str = "viz_mrz_consistency_sex";
    let Some(mrz) = mrz else {
        return Check::new(N, Skipped, "MRZ sex unusable; not compared");
    };
    let mut recognised = false;
    for part in printed.split(|c: char| c == '/' || c == ',' || c.is_whitespace()) {
        let sex = match part.to_uppercase().as_str() {
            "M" | "MALE" => Sex::M,
            "F" | "FEMALE" => Sex::F,
            "X" | "<" | "-" | "UNSPECIFIED" => Sex::X,
            _ => continue,
        };
        if sex == mrz {
            return Check::new(N, Pass, "printed sex matches the MRZ");
        }
        recognised = true;
    }
    if recognised {
        Check::new(N, Fail, "printed sex differs from the MRZ")
    } else {
        Check::new(N, Warn, "printed sex not recognised; not compared")
    }
}

fn country_check(name: &'static str, printed: &str, mrz: &CountryField) -> Check {
    match countries::lookup(printed) {
        Some(c) if mrz.alpha3.as_deref() == Some(c.alpha3) => {
            Check::new(name, Pass, "printed code matches the MRZ")
        }
        Some(_) => Check::new(name, Fail, "printed country differs from the MRZ"),
        None if !mrz.code.is_empty() && printed.trim().eq_ignore_ascii_case(&mrz.code) => {
            Check::new(name, Pass, "printed code matches the MRZ")
        }
        None => Check::new(
            name,
            Warn,
            "printed value is not a recognised code or country name; not compared",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Full year, two-digit year, month, day.
    type Parts = (Option<i32>, u8, Option<u8>, Option<u8>);

    fn date(s: &str) -> Option<Parts> {
        parse_date(s).map(|d| (d.year, d.yy, d.month, d.day))
    }

    #[test]
    fn printed_date_formats() {
        let full = Some((Some(1974), 74, Some(8), Some(12)));
        for s in [
            "1974-08-12",
            "12.08.1974",
            "12/08/1974",
            "12 AUG 1974",
            "12 aug/aoû 1974",
            "12 AUG/AOÛT 1974",
            "19740812",
            "12-Aug-1974",
            "12 août 1974",
            "12 AGO 1974",
        ] {
            assert_eq!(date(s), full, "{s}");
        }
        let short = Some((None, 74, Some(8), Some(12)));
        for s in [
            "12 AUG 74",
            "12AUG74",
            "12.08.74",
            "740812",
            "12 AUG/AOÛT 74",
        ] {
            assert_eq!(date(s), short, "{s}");
        }
        assert_eq!(date("12 juin 1974").map(|d| d.2), Some(Some(6)));
        assert_eq!(date("12 juil. 1974").map(|d| d.2), Some(Some(7)));
        assert_eq!(date("12 MÄR 1974").map(|d| d.2), Some(Some(3)));
        for s in [
            "",
            "1974",
            "31.02.1974",
            "12 FOO 74",
            "12.13.1974",
            "1974-08-12-01",
            "x",
        ] {
            assert_eq!(date(s), None, "{s}");
        }
    }
}
