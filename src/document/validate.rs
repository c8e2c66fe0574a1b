//! Document validation on top of the MRZ parse: the option-dependent checks
//! (`not_expired`, `age_plausible`), the consistency of printed (VIZ) fields
//! with the MRZ, the overall verdict and a confidence score. This is the
//! entry point the HTTP layer calls; [`crate::document::mrz::parse()`] is the
//! lower-level one for the OCR module.
//!
//! # Verdict
//! `document_valid` is true when no check has status `fail`; `warn` and
//! `skipped` never invalidate. An expired document fails `not_expired` and so
//! is reported invalid, as a KYC product must; set
//! [`ValidateOptions::check_expiry`] to false to skip that check.
//!
//! # Confidence
//! A weighted mean over the checks that ran (skipped ones are ignored):
//! `mrz_format` and each `mrz_checksum_*` weigh 3 (they prove the zone was
//! read and encoded correctly), each `viz_mrz_consistency_*` weighs 2, every
//! other check 1; a pass scores 1, a warn 0.5, a fail 0. The mean is then
//! multiplied by 0.97 per OCR repair applied (each is a guess, if a checked
//! one), capped at 0.5 when the document is invalid, and rounded to three
//! decimals. It is a reading-quality indicator, not a fraud probability.

mod names;
#[cfg(test)]
mod tests;
mod viz;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::document::mrz::{
    self, Check, CheckStatus, MrzDate, MrzError, MrzFields, MrzFormat, MrzInput, Parsed, Repair,
};

use CheckStatus::{Fail, Pass, Skipped, Warn};

/// Fields printed in the visual inspection zone, as read by OCR or typed by
/// an operator. Every field is optional; absent or blank ones are not
/// compared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VizFields {
    /// Surname (primary identifier), any case, diacritics allowed.
    pub surname: Option<String>,
    /// Given names (secondary identifier).
    pub given_names: Option<String>,
    /// Document number; spaces and punctuation are ignored.
    pub document_number: Option<String>,
    /// Date of birth: `1974-08-12`, `12.08.1974`, `12/08/74`, `12 AUG 74`,
    /// `12 AUG/AOÛT 1974`.
    pub birth_date: Option<String>,
    /// Expiry date, same formats.
    pub expiry_date: Option<String>,
    /// Issue date, same formats; only used for warnings.
    pub issue_date: Option<String>,
    /// `M`, `F`, `X`, `<`, `Male`, `F/F`...
    pub sex: Option<String>,
    /// Nationality as an ICAO/ISO code (`D`, `DEU`, `DE`) or English country
    /// name.
    pub nationality: Option<String>,
    /// Issuing state, same forms.
    pub issuing_country: Option<String>,
}

/// Options for [`validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidateOptions {
    /// The date against which expiry and age are judged, and two-digit years
    /// resolved.
    pub today: Date,
    /// Whether an expired document fails `not_expired` (otherwise skipped).
    pub check_expiry: bool,
    /// Minimum age in full years, e.g. `Some(18)`; `None` for no minimum.
    pub min_age: Option<u32>,
    /// Maximum plausible age in full years (default 120).
    pub max_age: u32,
}

impl ValidateOptions {
    /// Options for a given `today`: expiry checked, no minimum age, maximum
    /// age 120.
    pub fn new(today: Date) -> Self {
        ValidateOptions {
            today,
            check_expiry: true,
            min_age: None,
            max_age: 120,
        }
    }

    /// [`ValidateOptions::new`] with today's date in UTC.
    pub fn today_utc() -> Self {
        Self::new(OffsetDateTime::now_utc().date())
    }
}

impl Default for ValidateOptions {
    fn default() -> Self {
        Self::today_utc()
    }
}

/// The verdict on one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// True when no check failed (see the module documentation).
    pub document_valid: bool,
    /// MRZ layout.
    pub format: MrzFormat,
    /// Every check, in a stable order: the MRZ checks of [`Parsed::checks`],
    /// then `not_expired` and `age_plausible`, then one
    /// `viz_mrz_consistency_<field>` per printed field given.
    pub checks: Vec<Check>,
    /// 0..=1, derived from the checks as documented on the module.
    pub confidence: f32,
    /// Decoded MRZ fields.
    pub fields: MrzFields,
    /// Human-readable warnings.
    pub warnings: Vec<Cow<'static, str>>,
    /// OCR repairs applied to the MRZ.
    pub repairs: Vec<Repair>,
}

impl Validation {
    /// The check with the given name, if produced.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// Parses and validates an MRZ, optionally against printed fields. `Err` only
/// when the input is not an MRZ at all; every other problem is a failed check.
pub fn validate(
    input: &MrzInput,
    viz: Option<&VizFields>,
    opts: &ValidateOptions,
) -> Result<Validation, MrzError> {
    mrz::parse_with(input, opts.today, false).map(|parsed| validate_parsed(parsed, viz, opts))
}

/// Validates an already parsed MRZ (parsed with the same `today`), for
/// callers that parse once and validate several times.
pub fn validate_parsed(
    parsed: Parsed,
    viz: Option<&VizFields>,
    opts: &ValidateOptions,
) -> Validation {
    let Parsed {
        format,
        fields,
        mut checks,
        repairs,
        mut warnings,
        birth,
        expiry,
        ..
    } = parsed;
    checks.push(expiry_check(expiry, opts));
    checks.push(age_check(birth, opts));
    if let Some(v) = viz {
        viz::compare(v, &fields, birth, expiry, &mut checks);
        viz::issue_warnings(v, expiry, opts.today, &mut warnings);
    }
    let document_valid = checks.iter().all(|c| c.status != Fail);
    let confidence = confidence(&checks, repairs.len(), document_valid);
    Validation {
        document_valid,
        format,
        checks,
        confidence,
        fields,
        warnings,
        repairs,
    }
}

fn weight(name: &str) -> f32 {
    // `mrz_format` and `mrz_checksum_*` are the only `mrz_` checks.
    if name.starts_with("mrz_") {
        3.0
    } else if name.starts_with("viz_") {
        2.0
    } else {
        1.0
    }
}

fn confidence(checks: &[Check], repairs: usize, valid: bool) -> f32 {
    let (mut num, mut den) = (0.0f32, 0.0f32);
    for c in checks {
        let score = match c.status {
            Pass => 1.0,
            Warn => 0.5,
            Fail => 0.0,
            Skipped => continue,
        };
        let w = weight(&c.name);
        num += w * score;
        den += w;
    }
    let mut conf = if den > 0.0 { num / den } else { 0.0 };
    conf *= 0.97f32.powi(repairs.min(64) as i32);
    if !valid {
        conf = conf.min(0.5);
    }
    ((conf.clamp(0.0, 1.0) * 1000.0).round() / 1000.0).clamp(0.0, 1.0)
}

/// Earliest and latest day a possibly partial date can denote.
fn date_range(d: MrzDate) -> Option<(Date, Date)> {
    use time::Month;
    match d {
        MrzDate::Full(d) => Some((d, d)),
        MrzDate::Partial { year, month: None } => Some((
            Date::from_calendar_date(year, Month::January, 1).ok()?,
            Date::from_calendar_date(year, Month::December, 31).ok()?,
        )),
        MrzDate::Partial {
            year,
            month: Some(m),
        } => {
            let m = Month::try_from(m).ok()?;
            let first = Date::from_calendar_date(year, m, 1).ok()?;
            let last = (28..=31)
                .rev()
                .find_map(|d| Date::from_calendar_date(year, m, d).ok())?;
            Some((first, last))
        }
        MrzDate::Unknown | MrzDate::Invalid => None,
    }
}

fn expiry_check(expiry: MrzDate, opts: &ValidateOptions) -> Check {
    const N: &str = "not_expired";
    if !opts.check_expiry {
        return Check::new(N, Skipped, "expiry check disabled by options");
    }
    match date_range(expiry) {
        None => Check::new(N, Skipped, "no usable expiry date"),
        Some((_, last)) if last < opts.today => {
            let iso = mrz_iso(last);
            Check::new(N, Fail, format!("document expired on {iso}"))
        }
        Some((first, _)) if first >= opts.today => Check::new(N, Pass, "document has not expired"),
        Some(_) => Check::new(
            N,
            Warn,
            "incomplete expiry date; validity cannot be confirmed",
        ),
    }
}

fn mrz_iso(d: Date) -> String {
    mrz::IsoDate::from_date(d).to_string()
}

/// Full years from `birth` to `today` (negative if `birth` is later).
fn age_on(birth: Date, today: Date) -> i64 {
    // One calendar derivation per date: `month()` and `day()` each derive
    // it from the ordinal again.
    let (by, bm, bd) = birth.to_calendar_date();
    let (ty, tm, td) = today.to_calendar_date();
    let mut age = i64::from(ty) - i64::from(by);
    if (tm as u8, td) < (bm as u8, bd) {
        age -= 1;
    }
    age
}

fn age_check(birth: MrzDate, opts: &ValidateOptions) -> Check {
    const N: &str = "age_plausible";
    let Some((earliest, latest)) = date_range(birth) else {
        return Check::new(N, Skipped, "no usable date of birth");
    };
    let young = age_on(latest, opts.today);
    let old = if earliest == latest {
        young
    } else {
        age_on(earliest, opts.today)
    };
    let lo = i64::from(opts.min_age.unwrap_or(0));
    let hi = i64::from(opts.max_age);
    if young >= lo && old <= hi {
        Check::new(N, Pass, "age within the configured range")
    } else if old < lo || young > hi {
        let age = if young == old {
            young.to_string()
        } else {
            format!("{young}-{old}")
        };
        Check::new(N, Fail, format!("age {age} is outside {lo}..={hi}"))
    } else {
        Check::new(
            N,
            Warn,
            "partial date of birth: age may be outside the configured range",
        )
    }
}
