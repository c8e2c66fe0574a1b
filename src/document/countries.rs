//! Country and organisation codes that may appear in the issuing-state and
//! nationality fields of an ICAO 9303 MRZ: every ISO 3166-1 alpha-3 code, the
//! ICAO-only codes of Doc 9303 part 3 section 5 (`D` for Germany, the British
//! `GB?` nationality codes, `UNO`/`UNA`/`UNK`, `XXA`..`XXX`, `EUE`, `RKS`, the
//! `X??` organisations) and the `UTO` specimen code. The table is a sorted
//! static array, so a lookup is an allocation-free binary search.

mod table;

use serde::{Deserialize, Serialize};

/// Where a code comes from, so callers can tell a real state from an ICAO
/// convention or a specimen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    /// An ISO 3166-1 alpha-3 code.
    Iso,
    /// A code defined by ICAO Doc 9303 part 3 (not ISO 3166-1).
    Icao,
    /// `UTO`, the fictitious "Utopia" used on ICAO specimen documents.
    Specimen,
    /// Not in the table.
    Unknown,
}

/// One entry of the code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country {
    /// The code as written in an MRZ: three characters, filler-padded (`D<<`).
    pub mrz_code: &'static str,
    /// The ISO 3166-1 alpha-3 code where one exists (`DEU` for `D<<`),
    /// otherwise the ICAO code itself.
    pub alpha3: &'static str,
    /// ISO 3166-1 alpha-2 code. For `EUE` this is the exceptionally reserved
    /// `EU`, for `RKS` the user-assigned `XK` in common use; `None` for
    /// organisations and nationality-status codes.
    pub alpha2: Option<&'static str>,
    /// English short name.
    pub name: &'static str,
    /// Origin of the code.
    pub kind: CodeKind,
}

impl Country {
    /// True for codes that describe a nationality status (stateless, refugee,
    /// unspecified) and so cannot name an issuing authority.
    pub fn is_nationality_status(&self) -> bool {
        matches!(self.mrz_code, "XXA" | "XXB" | "XXC" | "XXX")
    }
}

/// All known codes, sorted by [`Country::mrz_code`].
pub fn all() -> &'static [Country] {
    table::TABLE
}

/// Looks up a code as it appears in an MRZ field (exactly three bytes,
/// upper case, filler-padded such as `D<<`).
pub fn lookup_mrz(code: [u8; 3]) -> Option<&'static Country> {
    table::KEYS
        .binary_search(&pack(&code))
        .ok()
        .map(|i| &table::TABLE[i])
}

/// Case-insensitive comparison that also folds non-ASCII letters
/// (`Türkiye`), without allocating.
fn same_text(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
}

/// A 3-byte code as a `u32`; big-endian, so numeric order is byte order.
const fn pack(b: &[u8]) -> u32 {
    (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32
}

/// Looks up a code given in any usual spelling: an MRZ code with or without
/// fillers (`D`, `D<<`, `UTO`), an ISO alpha-3 or alpha-2 code, or the English
/// short name; case-insensitive, surrounding whitespace ignored. Where an ISO
/// code and an ICAO code name the same state the ISO entry is returned.
pub fn lookup(text: &str) -> Option<&'static Country> {
    let t = text.trim();
    let b = t.as_bytes();
    if (1..=3).contains(&b.len()) && b.iter().all(|c| c.is_ascii_alphabetic() || *c == b'<') {
        let mut code = [b'<'; 3];
        for (dst, src) in code.iter_mut().zip(b) {
            *dst = src.to_ascii_uppercase();
        }
        if let Some(c) = lookup_mrz(code) {
            return Some(c);
        }
        if b.len() == 2 {
            return table::TABLE
                .iter()
                .filter(|c| c.alpha2.is_some_and(|a| a.eq_ignore_ascii_case(t)))
                .min_by_key(|c| c.kind != CodeKind::Iso);
        }
        return None;
    }
    table::TABLE
        .iter()
        .filter(|c| same_text(c.name, t))
        .min_by_key(|c| c.kind != CodeKind::Iso)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_sorted_unique_and_well_formed() {
        let t = all();
        assert!(t.len() > 270);
        assert_eq!(table::KEYS.len(), t.len());
        for w in t.windows(2) {
            assert!(
                w[0].mrz_code.as_bytes() < w[1].mrz_code.as_bytes(),
                "{:?}",
                w
            );
        }
        for c in t {
            assert_eq!(c.mrz_code.len(), 3);
            assert!(c
                .mrz_code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'<'));
            assert_eq!(c.alpha3.len(), 3);
            if let Some(a2) = c.alpha2 {
                assert_eq!(a2.len(), 2);
            }
            assert!(!c.name.is_empty());
        }
        assert_eq!(t.iter().filter(|c| c.kind == CodeKind::Iso).count(), 249);
    }

    #[test]
    fn iso_and_icao_codes() {
        let d = lookup_mrz(*b"D<<").unwrap();
        assert_eq!(
            (d.alpha3, d.alpha2, d.kind),
            ("DEU", Some("DE"), CodeKind::Icao)
        );
        assert_eq!(lookup_mrz(*b"DEU").unwrap().kind, CodeKind::Iso);
        assert_eq!(lookup_mrz(*b"UTO").unwrap().kind, CodeKind::Specimen);
        for code in [
            "GBD", "GBN", "GBO", "GBP", "GBS", "UNO", "UNA", "UNK", "XXA", "XXB", "XXC", "XXX",
            "EUE", "RKS", "XOM", "XPO", "XCC", "XES", "XIM", "XMP", "XBA", "XCE", "XCO", "XDC",
            "XEC",
        ] {
            let c: [u8; 3] = code.as_bytes().try_into().unwrap();
            assert_eq!(
                lookup_mrz(c).map(|c| c.kind),
                Some(CodeKind::Icao),
                "{code}"
            );
        }
        assert!(lookup_mrz(*b"ZZZ").is_none());
        assert!(lookup_mrz(*b"UT0").is_none());
        assert_eq!(lookup_mrz(*b"FRA").unwrap().alpha2, Some("FR"));
        assert_eq!(lookup_mrz(*b"GBR").unwrap().name, "United Kingdom");
    }

    #[test]
    fn lookup_any_spelling() {
        assert_eq!(lookup("d").unwrap().alpha3, "DEU");
        assert_eq!(lookup(" deu ").unwrap().kind, CodeKind::Iso);
        assert_eq!(lookup("DE").unwrap().mrz_code, "DEU");
        assert_eq!(lookup("germany").unwrap().mrz_code, "DEU");
        assert_eq!(lookup("Türkiye").unwrap().mrz_code, "TUR");
        assert_eq!(lookup("XK").unwrap().mrz_code, "RKS");
        assert!(lookup("").is_none());
        assert!(lookup("Atlantis").is_none());
        assert!(lookup("Q").is_none());
    }
}
