//! Printed (VIZ) fields from OCR lines: labels found by their words in several languages, each
//! value taken from the nearest line below its label that starts under it; dates in the formats
//! documents print (`12 AUGUST/AOUT 74`, `16 APR/AVR 07`, `12.08.1974`, `1974-08-12`) to ISO 8601.

use serde::Serialize;

use super::ocr::Line;

/// A printed field: which, and the labels that announce it (lower case, accents kept).
const LABELS: &[(&str, &[&str])] = &[
    (
        "surname",
        &[
            "surname",
            "nom",
            "apellidos",
            "nachname",
            "primary identifier",
            "identifiant primaire",
            "last name",
            "family name",
        ],
    ),
    (
        "given_names",
        &[
            "given name",
            "prénom",
            "prenom",
            "nombre",
            "vorname",
            "secondary identifier",
            "identifiant secondaire",
            "first name",
        ],
    ),
    (
        "date_of_birth",
        &[
            "date of birth",
            "date de naissance",
            "fecha de nacimiento",
            "geburtsdatum",
        ],
    ),
    (
        "place_of_birth",
        &[
            "place of birth",
            "lieu de naissance",
            "lugar de nacimiento",
            "geburtsort",
        ],
    ),
    (
        "date_of_issue",
        &[
            "date of issue",
            "date de délivrance",
            "fecha de expedición",
            "ausstellungsdatum",
        ],
    ),
    (
        "date_of_expiry",
        &[
            "date of expiry",
            "date d'expiration",
            "fecha de caducidad",
            "gültig bis",
            "valid until",
            "valide jusqu'au",
        ],
    ),
    (
        "authority",
        &["authority", "autorité", "autoridad", "behörde"],
    ),
    (
        "nationality",
        &[
            "nationality",
            "nationalité",
            "nacionalidad",
            "staatsangehörigkeit",
        ],
    ),
    ("sex", &["sex", "sexe", "sexo", "geschlecht"]),
    (
        "document_number",
        &[
            "passport no",
            "passport number",
            "document no",
            "n° de passeport",
            "card no",
            "document number",
            "numéro de document",
        ],
    ),
    (
        "personal_number",
        &["personal no", "n° personnel", "personal number"],
    ),
];

/// Fields printed with their value on the same line, as North-American licences do
/// (`DLN D1234567`, `DOB 01/15/1985`, `EXP 08/31/2029`): the label, then the value.
const INLINE_LABELS: &[(&str, &[&str])] = &[
    (
        "document_number",
        &["dln", "lic no", "lic#", "license no", "licence no"],
    ),
    ("date_of_birth", &["dob"]),
    ("date_of_expiry", &["exp", "expires"]),
    ("date_of_issue", &["iss", "issued"]),
];

/// A printed field read from the page.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PrintedField {
    /// Field name (`surname`, `date_of_birth`, …).
    pub name: &'static str,
    /// The text as printed.
    pub raw: String,
    /// The normalised value: ISO date for dates, upper-case text otherwise.
    pub value: String,
    /// Recognition confidence of the value line.
    pub confidence: f32,
}

/// Which field a line labels, if it reads as a label.
#[cfg(test)]
fn label_of(text: &str) -> Option<&'static str> {
    labels_in(text)
        .into_iter()
        .max_by_key(|l| l.end - l.start)
        .map(|l| l.name)
}

/// A label found inside a line, as a character span of the folded text.
#[derive(Debug, Clone, Copy)]
struct LabelSpan {
    name: &'static str,
    start: usize,
    end: usize,
}

/// Every label in a line, left to right, without overlaps (a longer label beats a shorter one
/// inside it: "date of birth" over "nom" inside "nombre"). One line can hold several columns'
/// labels ("Type/ Type  Country code/ …  Passport No./ N° de passeport").
fn labels_in(text: &str) -> Vec<LabelSpan> {
    // OCR often reads an i as l ("ldentlfiant"): compare with both folded to i.
    let fold = |s: &str| s.to_lowercase().replace('l', "i");
    let t = fold(text);
    let mut found: Vec<LabelSpan> = LABELS
        .iter()
        .flat_map(|(name, words)| words.iter().map(move |w| (*name, fold(w))))
        .flat_map(|(name, w)| {
            word_matches(&t, &w)
                .map(|i| LabelSpan {
                    name,
                    start: t[..i].chars().count(),
                    end: t[..i].chars().count() + w.chars().count(),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    found.sort_by_key(|l| std::cmp::Reverse(l.end - l.start));
    let mut kept: Vec<LabelSpan> = Vec::new();
    for l in found {
        if !kept.iter().any(|k| l.start < k.end && k.start < l.end) {
            kept.push(l);
        }
    }
    kept.sort_by_key(|l| l.start);
    kept
}

/// Byte offsets where `word` occurs in `text` as a whole word (a plural `s` allowed).
fn word_matches<'a>(text: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    text.match_indices(word).filter_map(move |(i, _)| {
        let before = text[..i].chars().next_back();
        // A plural ("given names", "prénoms") still names the field.
        let rest = &text[i + word.len()..];
        let after = rest.strip_prefix('s').unwrap_or(rest).chars().next();
        (!before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric))
            .then_some(i)
    })
}

/// Pairs labels with the values below them.
pub fn fields(lines: &[Line]) -> Vec<PrintedField> {
    let mut out: Vec<PrintedField> = Vec::new();
    for label in lines {
        let spans = labels_in(&label.text);
        let chars = label.text.chars().count().max(1) as f32;
        let [ltl, ltr, _, lbl] = label.corners;
        let lh = (lbl[1] - ltl[1]).max(1.0);
        for (k, span) in spans.iter().enumerate() {
            let name = span.name;
            if out.iter().any(|f| f.name == name) {
                continue;
            }
            // The label's column: from where it starts in the line to where the next label
            // starts, placed by character position (the box is not split into words).
            let lw = ltr[0] - ltl[0];
            let x0 = ltl[0] + lw * span.start as f32 / chars;
            let next = spans.get(k + 1).map_or(chars, |n| n.start as f32);
            let col = (lw * (next - span.start as f32) / chars).max(lh);
            let value = lines
                .iter()
                .filter(|v| labels_in(&v.text).is_empty() && !v.text.contains("<<"))
                .filter(|v| {
                    let [vtl, ..] = v.corners;
                    let below = vtl[1] > ltl[1] + 0.5 * lh && vtl[1] < lbl[1] + 2.5 * lh;
                    let under = vtl[0] > x0 - lh && vtl[0] < x0 + 0.5 * col;
                    below && under
                })
                .min_by(|a, b| a.corners[0][1].total_cmp(&b.corners[0][1]));
            push_value(&mut out, name, value);
        }
    }
    for line in lines {
        inline_fields(&mut out, line);
    }
    out
}

/// The [`INLINE_LABELS`] fields of `line` that `out` does not hold yet.
fn inline_fields(out: &mut Vec<PrintedField>, line: &Line) {
    let lower = line.text.to_lowercase();
    // Offsets found in the lower-case text index the line itself only when lower-casing kept
    // every character's length (it does for the Latin text these labels are written in).
    if lower.len() != line.text.len() {
        return;
    }
    for (name, words) in INLINE_LABELS {
        if out.iter().any(|f| f.name == *name) {
            continue;
        }
        let Some(at) = words
            .iter()
            .find_map(|w| word_matches(&lower, w).next().map(|i| i + w.len()))
        else {
            continue;
        };
        // The value runs from the label to the next label on the line (`EXP … ISS …`).
        let Some(rest) = line.text.get(at..) else {
            continue;
        };
        let rest = rest.trim_start_matches([' ', ':', '.', '#']);
        let rest_lower = rest.to_lowercase();
        let end = INLINE_LABELS
            .iter()
            .flat_map(|(_, ws)| ws.iter())
            .filter_map(|w| word_matches(&rest_lower, w).next())
            .min()
            .unwrap_or(rest.len());
        let value = rest[..end].trim();
        if value.chars().filter(char::is_ascii_alphanumeric).count() >= 4 {
            let mut v = line.clone();
            v.text = value.to_owned();
            push_value(out, name, Some(&v));
        }
    }
}

/// Parses `value` as field `name` and adds it when it parses.
fn push_value(out: &mut Vec<PrintedField>, name: &'static str, value: Option<&Line>) {
    if let Some(v) = value {
        let value = match name {
            "date_of_birth" => parse_date(&v.text, true),
            "date_of_issue" | "date_of_expiry" => parse_date(&v.text, false),
            "sex" => parse_sex(&v.text),
            _ => Some(v.text.trim().to_uppercase()),
        };
        if let Some(value) = value {
            out.push(PrintedField {
                name,
                raw: v.text.clone(),
                value,
                confidence: v.confidence,
            });
        }
    }
}

/// `F`, `M` or `X` from a printed sex such as `F/F`, `M`, `X/X`; `None` when unclear.
fn parse_sex(text: &str) -> Option<String> {
    let mut letters = text
        .split(['/', ' ', '|'])
        .filter(|w| !w.is_empty())
        .map(|w| w.trim().to_uppercase());
    let first = letters.next()?;
    (["F", "M", "X"].contains(&first.as_str()) && letters.all(|w| w == first)).then_some(first)
}

const MONTHS: &[(&str, u32)] = &[
    ("jan", 1),
    ("janv", 1),
    ("ene", 1),
    ("feb", 2),
    ("fev", 2),
    ("fév", 2),
    ("mar", 3),
    ("mars", 3),
    ("mär", 3),
    ("apr", 4),
    ("avr", 4),
    ("abr", 4),
    ("may", 5),
    ("mai", 5),
    ("jun", 6),
    ("juin", 6),
    ("jul", 7),
    ("juil", 7),
    ("aug", 8),
    ("aout", 8),
    ("août", 8),
    ("ago", 8),
    ("sep", 9),
    ("sept", 9),
    ("oct", 10),
    ("okt", 10),
    ("nov", 11),
    ("dec", 12),
    ("déc", 12),
    ("dic", 12),
    ("dez", 12),
];

fn month(word: &str) -> Option<u32> {
    let w = word.to_lowercase();
    // Full names ("august", "aout") start with an abbreviation; the longest prefix wins.
    MONTHS
        .iter()
        .filter(|(m, _)| w.starts_with(m))
        .max_by_key(|(m, _)| m.len())
        .map(|&(_, n)| n)
}

/// A word printed as `12/18/1978` that OCR read with a slash as a `1` (`12118/1978`,
/// `1211811978`), put back as `12/18/1978`: ten characters, digits but for the two separator
/// places, which hold `/`, `.`, `-` or a `1`, at least one a `1`.
pub fn misread_separators(word: &str) -> Option<String> {
    let c: Vec<char> = word.chars().collect();
    if c.len() != 10 {
        return None;
    }
    let sep = |x: char| matches!(x, '/' | '.' | '-');
    let digits = [0, 1, 3, 4, 6, 7, 8, 9]
        .iter()
        .all(|&i| c[i].is_ascii_digit());
    let places = [c[2], c[5]];
    let ok = digits && places.iter().all(|&x| x == '1' || sep(x)) && places.contains(&'1');
    ok.then(|| format!("{}{}/{}{}/{}", c[0], c[1], c[3], c[4], &word[6..]))
}

/// A printed date as ISO 8601; two-digit years resolved into the past for a birth date and into
/// 1970–2069 otherwise.
pub fn parse_date(text: &str, birth: bool) -> Option<String> {
    let repaired = text
        .split_whitespace()
        .map(|w| misread_separators(w).unwrap_or_else(|| w.to_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let tokens: Vec<&str> = repaired
        .split(|c: char| c.is_whitespace() || matches!(c, '.' | '-' | '/' | ','))
        .filter(|t| !t.is_empty())
        .collect();
    let num = |t: &str| t.parse::<u32>().ok();
    let (day, month_n, year) = match tokens.as_slice() {
        [y, m, d] if y.len() == 4 => (num(d)?, num(m)?, num(y)?),
        // 01/15/1985: month first (North America) when the middle number can't be a month.
        [m, d, y] if num(d).is_some_and(|d| d > 12) && num(m).is_some_and(|m| m <= 12) => {
            (num(d)?, num(m)?, num(y)?)
        }
        [d, m, y] if num(m).is_some() => (num(d)?, num(m)?, num(y)?),
        // 12 AUGUST/AOUT 74: the month may be written twice (bilingual).
        [d, rest @ ..] if rest.len() >= 2 => {
            let y = rest.last()?;
            let m = rest[..rest.len() - 1].iter().find_map(|w| month(w))?;
            (num(d)?, m, num(y)?)
        }
        _ => return None,
    };
    let year = if year < 100 {
        let this_year = (time::OffsetDateTime::now_utc().year() % 100) as u32;
        if birth {
            if year > this_year {
                1900 + year
            } else {
                2000 + year
            }
        } else if year >= 70 {
            1900 + year
        } else {
            2000 + year
        }
    } else {
        year
    };
    let date = time::Date::from_calendar_date(
        year as i32,
        time::Month::try_from(month_n as u8).ok()?,
        day as u8,
    )
    .ok()?;
    Some(format!("{:04}-{:02}-{:02}", date.year(), month_n, day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_dates_become_iso() {
        assert_eq!(
            parse_date("12 AUGUST/AOUT 74", true).as_deref(),
            Some("1974-08-12")
        );
        assert_eq!(
            parse_date("16 APR/AVR 07", false).as_deref(),
            Some("2007-04-16")
        );
        assert_eq!(
            parse_date("12.08.1974", true).as_deref(),
            Some("1974-08-12")
        );
        assert_eq!(
            parse_date("1974-08-12", true).as_deref(),
            Some("1974-08-12")
        );
        assert_eq!(
            parse_date("01/15/1985", true).as_deref(),
            Some("1985-01-15")
        );
        assert_eq!(
            parse_date("12118/1978", true).as_deref(),
            Some("1978-12-18")
        );
        assert_eq!(
            parse_date("0911612031", false).as_deref(),
            Some("2031-09-16")
        );
        assert_eq!(parse_date("31 FEB 99", true), None);
        assert_eq!(parse_date("ZENITH", true), None);
    }

    #[test]
    fn labels_are_recognised_in_several_languages() {
        assert_eq!(label_of("Surname/ Nom"), Some("surname"));
        assert_eq!(label_of("Given names/ Prénoms"), Some("given_names"));
        assert_eq!(
            label_of("Date of Birth/ Date de naissance"),
            Some("date_of_birth")
        );
        assert_eq!(label_of("Apellidos"), Some("surname"));
        assert_eq!(label_of("ERIKSSON"), None);
        assert_eq!(label_of("NOMBRE"), Some("given_names"));
        assert_eq!(label_of("Numéro de document"), Some("document_number"));
        assert_eq!(label_of("ldentlfiant secondaire"), Some("given_names"));
        assert_eq!(label_of("Identifiant secondaire"), Some("given_names"));
        assert_eq!(parse_sex("F/F").as_deref(), Some("F"));
        assert_eq!(parse_sex("M").as_deref(), Some("M"));
        assert_eq!(parse_sex("F/M"), None);
    }
}
