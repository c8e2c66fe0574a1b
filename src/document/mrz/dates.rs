//! MRZ dates (`YYMMDD`): century resolution relative to a caller-supplied
//! `today`, unknown parts written as fillers (Doc 9303 allows `<` for an
//! unknown day, or month and day, of birth), and ISO 8601 rendering without
//! going through a formatter.

use time::{Date, Month};

/// A decoded `YYMMDD` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum MrzDate {
    /// A calendar date.
    Full(Date),
    /// Year, optionally month, known; the rest filled with `<`.
    Partial {
        /// Four-digit year.
        year: i32,
        /// Month 1-12 when known.
        month: Option<u8>,
    },
    /// Every position is a filler.
    #[default]
    Unknown,
    /// Not a date (month 13, letters, fillers in the wrong places).
    Invalid,
}

/// Which century rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Never after `today`.
    Birth,
    /// Within `today`'s year -50..=+50.
    Expiry,
}

fn two(b: &[u8]) -> Option<u8> {
    match b {
        [a @ b'0'..=b'9', c @ b'0'..=b'9'] => Some((a - b'0') * 10 + (c - b'0')),
        _ => None,
    }
}

/// Applies the century rule of `kind` to `year` (today's century plus the
/// two MRZ digits); unknown month and day count as 1 for birth dates.
fn resolve(mut year: i32, month: Option<u8>, day: Option<u8>, kind: Kind, today: Date) -> i32 {
    match kind {
        Kind::Expiry => {
            if year > today.year() + 50 {
                year -= 100;
            } else if year < today.year() - 50 {
                year += 100;
            }
        }
        Kind::Birth => {
            // Only a birth year equal to today's needs today's month
            // and day, which `time` derives from the ordinal at a cost.
            let future = match year.cmp(&today.year()) {
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => {
                    let (_, m, d) = today.to_calendar_date();
                    (month.unwrap_or(1), day.unwrap_or(1)) > (m as u8, d)
                }
            };
            if future {
                year -= 100;
            }
        }
    }
    year
}

impl MrzDate {
    /// Decodes a 6-byte field.
    pub(crate) fn decode(field: &[u8], kind: Kind, today: Date) -> MrzDate {
        // Fast path for the usual six digits: one range test for all of
        // them instead of filler and digit tests per pair.
        if let Ok(f) = <[u8; 6]>::try_from(field) {
            let d = f.map(|c| c.wrapping_sub(b'0'));
            if d.iter().all(|&x| x < 10) {
                let (yy, m, day) = (d[0] * 10 + d[1], d[2] * 10 + d[3], d[4] * 10 + d[5]);
                let century = today.year().div_euclid(100) * 100;
                let year = resolve(century + i32::from(yy), Some(m), Some(day), kind, today);
                return Month::try_from(m)
                    .ok()
                    .and_then(|m| Date::from_calendar_date(year, m, day).ok())
                    .map_or(MrzDate::Invalid, MrzDate::Full);
            }
        }
        if field.len() != 6 {
            return MrzDate::Invalid;
        }
        if field.iter().all(|&c| c == b'<') {
            return MrzDate::Unknown;
        }
        let Some(yy) = two(&field[0..2]) else {
            return MrzDate::Invalid;
        };
        let century = today.year().div_euclid(100) * 100;
        let mut year = century + i32::from(yy);
        let month = match &field[2..4] {
            b"<<" if &field[4..6] == b"<<" => None,
            m => match two(m) {
                Some(m @ 1..=12) => Some(m),
                _ => return MrzDate::Invalid,
            },
        };
        let day = match &field[4..6] {
            b"<<" => None,
            d => match two(d) {
                Some(d) => Some(d),
                None => return MrzDate::Invalid,
            },
        };
        year = resolve(year, month, day, kind, today);
        match (month, day) {
            (Some(m), Some(d)) => Month::try_from(m)
                .ok()
                .and_then(|m| Date::from_calendar_date(year, m, d).ok())
                .map_or(MrzDate::Invalid, MrzDate::Full),
            (m, None) => MrzDate::Partial { year, month: m },
            (None, Some(_)) => MrzDate::Invalid,
        }
    }

    /// The full date, if known.
    pub(crate) fn date(self) -> Option<Date> {
        match self {
            MrzDate::Full(d) => Some(d),
            _ => None,
        }
    }

    /// ISO 8601 text: `YYYY-MM-DD`, or the reduced `YYYY-MM` / `YYYY`.
    pub(crate) fn iso(self) -> Option<IsoDate> {
        match self {
            MrzDate::Full(d) => Some(IsoDate::from_date(d)),
            MrzDate::Partial { year, month } => Some(IsoDate::new(year, month, None)),
            MrzDate::Unknown | MrzDate::Invalid => None,
        }
    }
}

/// An ISO 8601 calendar date as text: `YYYY-MM-DD`, or the reduced
/// precision `YYYY-MM` / `YYYY` when the MRZ marks parts unknown. Stored
/// inline (no allocation); derefs to `str`, displays and serializes as the
/// plain string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IsoDate {
    buf: [u8; 10],
    len: u8,
}

impl IsoDate {
    /// Builds `YYYY[-MM[-DD]]`; the year is clamped to 0..=9999 and a day
    /// without a month is ignored.
    pub fn new(year: i32, month: Option<u8>, day: Option<u8>) -> Self {
        let mut buf = [b'0'; 10];
        let y = year.clamp(0, 9999) as u32;
        for (i, div) in [1000, 100, 10, 1].into_iter().enumerate() {
            buf[i] = b'0' + ((y / div) % 10) as u8;
        }
        let mut len = 4;
        for part in [month, day].into_iter().map_while(|p| p) {
            let part = part.min(99);
            buf[len] = b'-';
            buf[len + 1] = b'0' + part / 10;
            buf[len + 2] = b'0' + part % 10;
            len += 3;
        }
        IsoDate {
            buf,
            len: len as u8,
        }
    }

    /// The full date `d`.
    pub fn from_date(d: Date) -> Self {
        // One calendar derivation; `month()` and `day()` would each redo it.
        let (year, month, day) = d.to_calendar_date();
        Self::new(year, Some(month as u8), Some(day))
    }

    /// Reads `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (shape only: digits and
    /// dashes in the right places).
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let shape_ok = matches!(b.len(), 4 | 7 | 10)
            && b.iter().enumerate().all(|(i, &c)| {
                if i == 4 || i == 7 {
                    c == b'-'
                } else {
                    c.is_ascii_digit()
                }
            });
        if !shape_ok {
            return None;
        }
        let mut buf = [b'0'; 10];
        buf[..b.len()].copy_from_slice(b);
        Some(IsoDate {
            buf,
            len: b.len() as u8,
        })
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and dashes are ever stored.
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or_default()
    }
}

impl std::ops::Deref for IsoDate {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for IsoDate {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for IsoDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for IsoDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for IsoDate {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for IsoDate {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for IsoDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for IsoDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        IsoDate::parse(&s)
            .ok_or_else(|| serde::de::Error::custom("expected YYYY, YYYY-MM or YYYY-MM-DD"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 05 - 20);

    fn b(s: &str) -> MrzDate {
        MrzDate::decode(s.as_bytes(), Kind::Birth, TODAY)
    }
    fn e(s: &str) -> MrzDate {
        MrzDate::decode(s.as_bytes(), Kind::Expiry, TODAY)
    }

    #[test]
    fn birth_century_never_future() {
        assert_eq!(b("740812"), MrzDate::Full(date!(1974 - 08 - 12)));
        assert_eq!(b("260520"), MrzDate::Full(date!(2026 - 05 - 20)));
        assert_eq!(b("260521"), MrzDate::Full(date!(1926 - 05 - 21)));
        assert_eq!(b("000229"), MrzDate::Full(date!(2000 - 02 - 29)));
        assert_eq!(b("740812").iso().as_deref(), Some("1974-08-12"));
    }

    #[test]
    fn expiry_window() {
        assert_eq!(e("120415"), MrzDate::Full(date!(2012 - 04 - 15)));
        assert_eq!(e("961210"), MrzDate::Full(date!(1996 - 12 - 10)));
        assert_eq!(e("760101"), MrzDate::Full(date!(2076 - 01 - 01)));
        assert_eq!(e("770101"), MrzDate::Full(date!(1977 - 01 - 01)));
        assert_eq!(
            MrzDate::decode(b"050101", Kind::Expiry, date!(2080 - 01 - 01)),
            MrzDate::Full(date!(2105 - 01 - 01))
        );
    }

    #[test]
    fn iso_date_text() {
        let d = IsoDate::new(1974, Some(8), Some(12));
        assert_eq!(d, "1974-08-12");
        assert_eq!(d.to_string(), "1974-08-12");
        assert_eq!(format!("{d:?}"), "\"1974-08-12\"");
        assert_eq!(IsoDate::new(7, None, Some(3)).as_str(), "0007");
        assert_eq!(
            IsoDate::parse("1974-08"),
            Some(IsoDate::new(1974, Some(8), None))
        );
        for bad in [
            "",
            "74",
            "1974-8-12",
            "1974/08/12",
            "1974-08-123",
            "１９７４",
        ] {
            assert_eq!(IsoDate::parse(bad), None, "{bad}");
        }
        let j = serde_json::to_string(&d).unwrap();
        assert_eq!(j, "\"1974-08-12\"");
        assert_eq!(serde_json::from_str::<IsoDate>(&j).unwrap(), d);
        assert!(serde_json::from_str::<IsoDate>("\"soon\"").is_err());
    }

    #[test]
    fn unknown_parts_and_invalid() {
        assert_eq!(
            b("74<<<<"),
            MrzDate::Partial {
                year: 1974,
                month: None
            }
        );
        assert_eq!(
            b("7408<<"),
            MrzDate::Partial {
                year: 1974,
                month: Some(8)
            }
        );
        assert_eq!(b("7408<<").iso().as_deref(), Some("1974-08"));
        assert_eq!(b("74<<<<").iso().as_deref(), Some("1974"));
        assert_eq!(b("<<<<<<"), MrzDate::Unknown);
        assert_eq!(b("<<<<<<").iso(), None);
        for bad in [
            "741312", "740832", "740229", "74<<12", "7O0812", "<<0812", "7408", "740800",
        ] {
            assert_eq!(b(bad), MrzDate::Invalid, "{bad}");
        }
    }
}
