//! Field positions of the five ICAO 9303 layouts (Doc 9303 parts 4-7) and
//! the character class of every position. The decoder, the check-digit
//! verification and the OCR repair search all use this one description, so
//! a repair is judged by exactly the rules the final checks apply.

use super::input::Lines;
use super::MrzFormat;

/// A run of `len` bytes at 0-based `start` on 0-based `line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) line: u8,
    pub(crate) start: u8,
    pub(crate) len: u8,
}

const fn sp(line: u8, start: u8, len: u8) -> Span {
    Span { line, start, len }
}

/// Which characters a field may hold; decides what OCR repair may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// `0`-`9` only (check digits).
    Digit,
    /// `0`-`9` or `<` (dates with unknown parts, check digits that may be
    /// fillers).
    DigitOrFiller,
    /// `A`-`Z` or `<` (document code, names).
    Alpha,
    /// `A`-`Z` or `<`, verified against the country table.
    Country,
    /// `M`, `F`, `X`, `<`; judged by `sex_valid`, never repaired.
    Sex,
    /// Anything in the MRZ alphabet (document number, optional data).
    Any,
}

/// Category bits of every byte: digit 1, letter 2, filler 4, other 0.
const CATEGORY: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = 1;
        i += 1;
    }
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = 2;
        i += 1;
    }
    t[b'<' as usize] = 4;
    t
};

impl Class {
    /// Category bits the class accepts.
    const fn mask(self) -> u8 {
        match self {
            Class::Digit => 1,
            Class::DigitOrFiller => 5,
            Class::Alpha | Class::Country => 6,
            Class::Sex | Class::Any => 7,
        }
    }
}

/// What can confirm a repair at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// Covered by a check digit (or is one): all check digits must hold.
    Checked,
    /// The issuing-state code must become a known code.
    Issuer,
    /// The nationality code must become a known code.
    Nationality,
    /// Nothing confirms it (names, document code, unchecked optional data).
    Free,
}

/// Where every field of one format sits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) format: MrzFormat,
    pub(crate) doc_code: Span,
    pub(crate) issuer: Span,
    pub(crate) name: Span,
    pub(crate) number: Span,
    pub(crate) number_check: Span,
    pub(crate) nationality: Span,
    pub(crate) birth: Span,
    pub(crate) birth_check: Span,
    pub(crate) sex: Span,
    pub(crate) expiry: Span,
    pub(crate) expiry_check: Span,
    pub(crate) optional1: Span,
    /// TD3 personal-number check digit.
    pub(crate) optional1_check: Option<Span>,
    /// TD1 line 2 optional data.
    pub(crate) optional2: Option<Span>,
    /// Composite check digit and the spans it covers, in order.
    pub(crate) composite: Option<(Span, &'static [Span])>,
    /// TD1/TD2: a `<` at the number's check digit means the number continues
    /// in `optional1`, followed by its check digit and a filler.
    pub(crate) long_number: bool,
}

/// TD1, Doc 9303 part 5.
pub(crate) const TD1: Layout = Layout {
    format: MrzFormat::Td1,
    doc_code: sp(0, 0, 2),
    issuer: sp(0, 2, 3),
    number: sp(0, 5, 9),
    number_check: sp(0, 14, 1),
    optional1: sp(0, 15, 15),
    birth: sp(1, 0, 6),
    birth_check: sp(1, 6, 1),
    sex: sp(1, 7, 1),
    expiry: sp(1, 8, 6),
    expiry_check: sp(1, 14, 1),
    nationality: sp(1, 15, 3),
    optional2: Some(sp(1, 18, 11)),
    composite: Some((
        sp(1, 29, 1),
        &[sp(0, 5, 25), sp(1, 0, 7), sp(1, 8, 7), sp(1, 18, 11)],
    )),
    name: sp(2, 0, 30),
    optional1_check: None,
    long_number: true,
};

/// TD2, Doc 9303 part 6.
pub(crate) const TD2: Layout = Layout {
    format: MrzFormat::Td2,
    doc_code: sp(0, 0, 2),
    issuer: sp(0, 2, 3),
    name: sp(0, 5, 31),
    number: sp(1, 0, 9),
    number_check: sp(1, 9, 1),
    nationality: sp(1, 10, 3),
    birth: sp(1, 13, 6),
    birth_check: sp(1, 19, 1),
    sex: sp(1, 20, 1),
    expiry: sp(1, 21, 6),
    expiry_check: sp(1, 27, 1),
    optional1: sp(1, 28, 7),
    optional1_check: None,
    optional2: None,
    composite: Some((sp(1, 35, 1), &[sp(1, 0, 10), sp(1, 13, 7), sp(1, 21, 14)])),
    long_number: true,
};

/// TD3, Doc 9303 part 4.
pub(crate) const TD3: Layout = Layout {
    format: MrzFormat::Td3,
    name: sp(0, 5, 39),
    optional1: sp(1, 28, 14),
    optional1_check: Some(sp(1, 42, 1)),
    composite: Some((sp(1, 43, 1), &[sp(1, 0, 10), sp(1, 13, 7), sp(1, 21, 22)])),
    long_number: false,
    ..TD2
};

/// MRV-A, Doc 9303 part 7: TD3 positions, optional data to the end, no
/// composite.
pub(crate) const MRV_A: Layout = Layout {
    format: MrzFormat::MrvA,
    optional1: sp(1, 28, 16),
    optional1_check: None,
    composite: None,
    ..TD3
};

/// MRV-B, Doc 9303 part 7: TD2 positions, optional data to the end, no
/// composite, no long document numbers.
pub(crate) const MRV_B: Layout = Layout {
    format: MrzFormat::MrvB,
    optional1: sp(1, 28, 8),
    composite: None,
    long_number: false,
    ..TD2
};

impl Layout {
    /// Picks the layout from the line shape and the first letter (`V` for
    /// visas). Lines are known to be 3x30, 2x36 or 2x44.
    pub(crate) fn detect(lines: &Lines) -> &'static Layout {
        [&TD1, &TD2, &TD3, &MRV_A, &MRV_B][format_index(lines.len, lines.rows[0][0] == b'V')]
    }

    /// Every field with its character class and repair group.
    const fn field_table(&self) -> [Option<(Span, Class, Group)>; 16] {
        use Class::*;
        use Group::*;
        let number_check = if self.long_number {
            DigitOrFiller
        } else {
            Digit
        };
        let opt1_group = if self.optional1_check.is_some() || self.composite.is_some() {
            Checked
        } else {
            Free
        };
        [
            // The first letter of the document code is a letter; the second is the issuer's
            // choice, and some print a digit (the US permanent-resident card's `C1`).
            Some((sp(self.doc_code.line, self.doc_code.start, 1), Alpha, Free)),
            Some((self.issuer, Country, Issuer)),
            Some((self.name, Alpha, Free)),
            Some((self.number, Any, Checked)),
            Some((self.number_check, number_check, Checked)),
            Some((self.nationality, Country, Nationality)),
            Some((self.birth, DigitOrFiller, Checked)),
            Some((self.birth_check, Digit, Checked)),
            Some((self.sex, Sex, Free)),
            Some((self.expiry, DigitOrFiller, Checked)),
            Some((self.expiry_check, Digit, Checked)),
            Some((self.optional1, Any, opt1_group)),
            match self.optional1_check {
                Some(s) => Some((s, DigitOrFiller, Checked)),
                None => None,
            },
            match self.optional2 {
                Some(s) => Some((s, Any, Checked)),
                None => None,
            },
            match self.composite {
                Some((s, _)) => Some((s, Digit, Checked)),
                None => None,
            },
            Some((
                sp(self.doc_code.line, self.doc_code.start + 1, 1),
                Any,
                Free,
            )),
        ]
    }

    /// Every field with its character class and repair group, computed at
    /// compile time; unused slots are `None`.
    pub(crate) fn fields(&self) -> &'static [Option<(Span, Class, Group)>; 16] {
        static TABLES: [[Option<(Span, Class, Group)>; 16]; 5] = [
            TD1.field_table(),
            TD2.field_table(),
            TD3.field_table(),
            MRV_A.field_table(),
            MRV_B.field_table(),
        ];
        &TABLES[match self.format {
            MrzFormat::Td1 => 0,
            MrzFormat::Td2 => 1,
            MrzFormat::Td3 => 2,
            MrzFormat::MrvA => 3,
            MrzFormat::MrvB => 4,
        }]
    }
}

impl Lines {
    /// The bytes of `s`.
    #[inline]
    pub(crate) fn span(&self, s: Span) -> &[u8] {
        let start = s.start as usize;
        &self.rows[s.line as usize][start..start + s.len as usize]
    }

    /// The single byte at `s.start`.
    #[inline]
    pub(crate) fn at(&self, s: Span) -> u8 {
        self.rows[s.line as usize][s.start as usize]
    }
}

/// Per format, the category mask of every position (7 = anything, which
/// also covers the sex field left to `sex_valid`).
const MASKS: [[[u8; 44]; 3]; 5] = {
    let layouts = [&TD1, &TD2, &TD3, &MRV_A, &MRV_B];
    let mut out = [[[7u8; 44]; 3]; 5];
    let mut f = 0;
    while f < 5 {
        let table = layouts[f].field_table();
        let mut i = 0;
        while i < table.len() {
            if let Some((span, class, _)) = table[i] {
                let mut p = span.start as usize;
                while p < (span.start + span.len) as usize {
                    out[f][span.line as usize][p] = class.mask();
                    p += 1;
                }
            }
            i += 1;
        }
        f += 1;
    }
    out
};

/// `MASKS` split into one 0/1 byte per category and flattened, so the
/// test below is plain byte-wise AND/OR that compiles to SIMD.
static ALLOW: [[[u8; 132]; 3]; 5] = {
    let mut out = [[[0u8; 132]; 3]; 5];
    let mut f = 0;
    while f < 5 {
        let mut p = 0;
        while p < 132 {
            let m = MASKS[f][p / 44][p % 44];
            out[f][0][p] = m & 1;
            out[f][1][p] = (m >> 1) & 1;
            out[f][2][p] = (m >> 2) & 1;
            p += 1;
        }
        f += 1;
    }
    out
};

/// Index of the layout (in `MrzFormat` order) for a line length and whether
/// the zone starts with `V`.
fn format_index(len: usize, visa: bool) -> usize {
    match (len, visa) {
        (30, _) => 0,
        (36, false) => 1,
        (36, true) => 4,
        (_, false) => 2,
        (_, true) => 3,
    }
}

/// Whether any byte is impossible in its field: one tight pass, so the
/// common clean zone never walks the field table. Unused rows and row tails
/// are fillers, which every position accepts.
pub(crate) fn any_impossible(lines: &Lines, l: &Layout) -> bool {
    let allow = &ALLOW[l.format as usize];
    let bytes = lines.rows.as_flattened();
    // Two-line formats leave the third row all fillers (allowed
    // everywhere): look at six 16-byte vectors instead of the whole zone.
    if l.format == MrzFormat::Td1 {
        impossible_in::<132>(bytes, allow)
    } else {
        impossible_in::<96>(bytes, allow)
    }
}

/// [`any_impossible`] over the first `N` bytes of the zone.
#[inline(always)]
fn impossible_in<const N: usize>(bytes: &[u8], allow: &[[u8; 132]; 3]) -> bool {
    let [digits, letters, fillers] = allow;
    let (Some(bytes), Some(digits), Some(letters), Some(fillers)) = (
        bytes.first_chunk::<N>(),
        digits.first_chunk::<N>(),
        letters.first_chunk::<N>(),
        fillers.first_chunk::<N>(),
    ) else {
        return true;
    };
    let mut bad = 0u8;
    for i in 0..N {
        let c = bytes[i];
        let digit = u8::from(c.wrapping_sub(b'0') < 10);
        let upper = u8::from(c.wrapping_sub(b'A') < 26);
        let filler = u8::from(c == b'<');
        bad |= 1 ^ ((digit & digits[i]) | (upper & letters[i]) | (filler & fillers[i]));
    }
    bad != 0
}

/// Calls `f(field, offset, byte, class, group)` for every byte that is
/// impossible in its field. The sex field is left to `sex_valid`, and
/// `Any` fields cannot hold an impossible byte once normalised.
pub(crate) fn for_each_impossible(
    lines: &Lines,
    l: &Layout,
    mut f: impl FnMut(Span, usize, u8, Class, Group),
) {
    if !any_impossible(lines, l) {
        return;
    }
    for &(span, class, group) in l.fields().iter().flatten() {
        if matches!(class, Class::Sex | Class::Any) {
            continue;
        }
        let mask = class.mask();
        let bytes = lines.span(span);
        if bytes.iter().all(|&c| CATEGORY[c as usize] & mask != 0) {
            continue;
        }
        for (i, &c) in bytes.iter().enumerate() {
            if CATEGORY[c as usize] & mask == 0 {
                f(span, i, c, class, group);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every position of every line belongs to exactly one field.
    #[test]
    fn layouts_tile_the_zone() {
        for l in [&TD1, &TD2, &TD3, &MRV_A, &MRV_B] {
            let (n, len) = (l.format.line_count(), l.format.line_len());
            let mut seen = [[0u8; 44]; 3];
            for (s, _, _) in l.fields().iter().flatten() {
                for p in s.start..s.start + s.len {
                    seen[s.line as usize][p as usize] += 1;
                }
            }
            for (i, row) in seen.iter().enumerate().take(n) {
                assert!(
                    row[..len].iter().all(|&c| c == 1),
                    "{:?} line {i}: {row:?}",
                    l.format
                );
            }
        }
    }

    /// Composite spans cover what Doc 9303 says they cover.
    #[test]
    fn composite_lengths() {
        let total = |l: &Layout| {
            l.composite
                .map(|(_, s)| s.iter().map(|s| s.len as usize).sum::<usize>())
        };
        assert_eq!(total(&TD1), Some(25 + 7 + 7 + 11));
        assert_eq!(total(&TD2), Some(10 + 7 + 14));
        assert_eq!(total(&TD3), Some(10 + 7 + 22));
        assert_eq!(total(&MRV_A), None);
        assert_eq!(total(&MRV_B), None);
    }
}
