//! ICAO 9303 part 3 check digits: each character is valued (`0`-`9` as
//! themselves, `A`-`Z` as 10-35, the filler `<` as 0), multiplied by the
//! repeating weights 7, 3, 1, and the sum taken modulo 10. Composite check
//! digits run the same weights across several non-adjacent segments. This
//! module also applies the digits to a zone ([`digits`]), including the
//! TD1/TD2 rule for document numbers longer than nine characters; each field
//! is summed once per weight phase, and the composite reuses those sums.

use super::input::Lines;
use super::layout::{Layout, Span};
use super::MrzFormat;

/// Check value of every byte: `0`-`9` → 0-9, `A`-`Z` → 10-35, `<` → 0,
/// anything else `INVALID`, a bit above the value range that [`sums`] masks
/// off, so the hot loop has no per-byte branch.
const VALUES: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t[b'<' as usize] = 0;
    t
};
const INVALID: u8 = 0x80;

/// Check digit (0-9) of the concatenation of `segments`, or `None` when a
/// byte is outside the MRZ alphabet (`A`-`Z`, `0`-`9`, `<`).
pub(crate) fn compute(segments: &[&[u8]]) -> Option<u8> {
    let mut d = Digest::default();
    for seg in segments {
        if seg.iter().any(|&c| VALUES[c as usize] == INVALID) {
            return None;
        }
        d.add(sums(seg), seg.len());
    }
    Some(d.digit())
}

/// Sums of the check values at offsets 0, 1, 2 (mod 3) of `seg`: enough to
/// weight the run at any position of a longer sequence, so a field's sums
/// serve both its own check digit and the composite. Callers pass bytes of
/// the MRZ alphabet (normalised lines); anything else counts as 0.
pub(crate) fn sums(seg: &[u8]) -> [u32; 3] {
    let mut part = [0u32; 3];
    let chunks = seg.chunks_exact(3);
    let rest = chunks.remainder();
    for ch in chunks {
        part[0] += u32::from(VALUES[ch[0] as usize] & !INVALID);
        part[1] += u32::from(VALUES[ch[1] as usize] & !INVALID);
        part[2] += u32::from(VALUES[ch[2] as usize] & !INVALID);
    }
    for (p, &c) in part.iter_mut().zip(rest) {
        *p += u32::from(VALUES[c as usize] & !INVALID);
    }
    part
}

/// Accumulates runs into one check digit, continuing the 7-3-1 cycle from
/// one run to the next.
#[derive(Default)]
pub(crate) struct Digest {
    sum: u32,
    phase: usize,
}

impl Digest {
    /// Appends a run of `len` characters with per-offset sums `run`.
    pub(crate) fn add(&mut self, run: [u32; 3], len: usize) {
        const W: [u32; 5] = [7, 3, 1, 7, 3];
        let w = &W[self.phase..self.phase + 3];
        self.sum += w[0] * run[0] + w[1] * run[1] + w[2] * run[2];
        self.phase = (self.phase + len) % 3;
    }

    /// The check digit of everything appended.
    pub(crate) fn digit(&self) -> u8 {
        (self.sum % 10) as u8
    }
}

/// The ICAO 9303 check digit (0-9) of `data`, or `None` if `data` contains a
/// character outside the MRZ alphabet (`A`-`Z`, `0`-`9`, `<`; lower case is
/// not accepted here). For example the TD3 specimen's document number
/// `L898902C3` has check digit 6.
pub fn check_digit(data: &[u8]) -> Option<u8> {
    compute(&[data])
}

/// Outcome of verifying one check digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Digit {
    /// The digit matches the data.
    Pass,
    /// The digit does not match: `expected` is the computed digit, `found`
    /// the character at the check-digit position.
    Fail {
        /// Computed digit.
        expected: u8,
        /// The byte found at the check-digit position.
        found: u8,
    },
    /// The format defines no check digit here.
    NotDefined,
}

impl Digit {
    /// True unless the check digit is defined and wrong.
    pub(crate) fn holds(self) -> bool {
        !matches!(self, Digit::Fail { .. })
    }
}

/// Judges the character `found` at a check-digit position against the
/// computed digit. `filler_allowed` accepts `<` in place of the digit, which
/// ICAO allows when the protected field is entirely fillers (an unused TD3
/// personal-number field).
pub(crate) fn judge(expected: u8, found: u8, filler_allowed: bool) -> Digit {
    if found == b'0' + expected || (found == b'<' && filler_allowed) {
        Digit::Pass
    } else {
        Digit::Fail { expected, found }
    }
}

/// How the document number is spread over the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Number {
    /// Up to nine characters in the number field.
    Short,
    /// Continues for `extra` characters in optional data 1, then the check
    /// digit, then (if room) a filler.
    Long { extra: usize },
    /// The check-digit position says "continued" but no continuation follows.
    BrokenLong,
}

/// The outcome of every check digit of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Digits {
    pub(crate) number: Digit,
    pub(crate) birth: Digit,
    pub(crate) expiry: Digit,
    pub(crate) optional: Digit,
    pub(crate) composite: Digit,
    pub(crate) number_form: Number,
}

impl Digits {
    /// True when every defined check digit matches.
    pub(crate) fn all_hold(&self) -> bool {
        self.number.holds()
            && self.birth.holds()
            && self.expiry.holds()
            && self.optional.holds()
            && self.composite.holds()
    }
}

/// Verifies every check digit the layout defines.
pub(crate) fn digits(lines: &Lines, l: &Layout) -> Digits {
    // Each field is summed once; the composite reuses the sums, since it
    // covers the same fields and their check digits in a fixed order.
    let run = |s: Span| sums(lines.span(s));
    let digit_of = |r: [u32; 3], len: u8| {
        let mut d = Digest::default();
        d.add(r, usize::from(len));
        d.digit()
    };
    let (n, b, e, o1) = (run(l.number), run(l.birth), run(l.expiry), run(l.optional1));
    let number_check = lines.at(l.number_check);
    let (number, number_form) = if l.long_number && number_check == b'<' {
        let opt = lines.span(l.optional1);
        match opt.iter().position(|&c| c == b'<').unwrap_or(opt.len()) {
            0 => (
                judge(digit_of(n, l.number.len), b'<', false),
                Number::BrokenLong,
            ),
            k => {
                let mut d = Digest::default();
                d.add(n, usize::from(l.number.len));
                d.add(sums(&opt[..k - 1]), k - 1);
                (
                    judge(d.digit(), opt[k - 1], false),
                    Number::Long { extra: k - 1 },
                )
            }
        }
    } else {
        (
            judge(digit_of(n, l.number.len), number_check, false),
            Number::Short,
        )
    };
    let birth = judge(digit_of(b, 6), lines.at(l.birth_check), false);
    let expiry = judge(digit_of(e, 6), lines.at(l.expiry_check), false);
    let optional = match l.optional1_check {
        Some(c) => {
            let unused = lines.span(l.optional1).iter().all(|&b| b == b'<');
            judge(digit_of(o1, l.optional1.len), lines.at(c), unused)
        }
        None => Digit::NotDefined,
    };
    let composite = match l.composite {
        Some((at, _)) => {
            // Doc 9303 order: number, its check digit, (TD1: optional data 1),
            // birth date and check, expiry and check, (TD2/TD3: optional data
            // and, TD3, its check), (TD1: optional data 2). The test
            // `composite_matches_direct_computation` ties this to the spans.
            let mut d = Digest::default();
            let opt1_len = usize::from(l.optional1.len);
            d.add(n, usize::from(l.number.len));
            d.add(run(l.number_check), 1);
            if l.format == MrzFormat::Td1 {
                d.add(o1, opt1_len);
            }
            d.add(b, 6);
            d.add(run(l.birth_check), 1);
            d.add(e, 6);
            d.add(run(l.expiry_check), 1);
            if l.format != MrzFormat::Td1 {
                d.add(o1, opt1_len);
            }
            if let Some(c) = l.optional1_check {
                d.add(run(c), 1);
            }
            if let Some(o) = l.optional2 {
                d.add(run(o), usize::from(o.len));
            }
            judge(d.digit(), lines.at(at), false)
        }
        None => Digit::NotDefined,
    };
    Digits {
        number,
        birth,
        expiry,
        optional,
        composite,
        number_form,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icao_examples() {
        // Doc 9303 part 3 worked example: 520727 -> 3.
        assert_eq!(check_digit(b"520727"), Some(3));
        assert_eq!(check_digit(b"L898902C3"), Some(6));
        assert_eq!(check_digit(b"740812"), Some(2));
        assert_eq!(check_digit(b"120415"), Some(9));
        assert_eq!(check_digit(b"ZE184226B<<<<<"), Some(1));
        assert_eq!(check_digit(b"D23145890"), Some(7));
        assert_eq!(check_digit(b"D23145890734"), Some(9));
        assert_eq!(check_digit(b"<<<<<<<<<"), Some(0));
        assert_eq!(check_digit(b""), Some(0));
        assert_eq!(check_digit(b"abc"), None);
    }

    #[test]
    fn segments_continue_the_weight_cycle() {
        let whole = check_digit(b"L898902C36740812212041591");
        assert_eq!(compute(&[b"L898902C36", b"7408122", b"12041591"]), whole);
    }

    #[test]
    fn judge_filler_rule() {
        assert_eq!(judge(0, b'<', true), Digit::Pass);
        assert_eq!(judge(0, b'0', false), Digit::Pass);
        assert!(!judge(0, b'<', false).holds());
        assert_eq!(
            judge(2, b'3', false),
            Digit::Fail {
                expected: 2,
                found: b'3'
            }
        );
        assert!(Digit::NotDefined.holds());
    }

    #[test]
    fn runs_combine_like_one_sequence() {
        let row = b"L898902C36UTO7408122F1204159ZE184226B<<<<<10";
        for cut in 0..=44 {
            let mut d = Digest::default();
            d.add(sums(&row[..cut]), cut);
            d.add(sums(&row[cut..]), 44 - cut);
            assert_eq!(Some(d.digit()), check_digit(row), "{cut}");
        }
    }

    /// Every check digit of a range of zones, each value tried at the
    /// composite position, agrees with the direct computation over the
    /// Doc 9303 spans.
    #[test]
    fn composite_matches_direct_computation() {
        use super::super::input::normalise;
        use super::super::MrzInput;
        let zones = [
            "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<",
            "I<UTOD23145890<7349<AB12<<<<<<\n3407127M9507122UTO<<<<<<<<<<<0\nSTEVENSON<<PETER<JOHN<<<<<<<<<",
            "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\nD231458907UTO7408122F1204159AB1<<<<6",
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10",
        ];
        for zone in zones {
            let lines = normalise(&MrzInput::from(zone)).unwrap();
            let l = Layout::detect(&lines);
            let (at, spans) = l.composite.unwrap();
            for d in b'0'..=b'9' {
                let mut lines = lines;
                lines.rows[at.line as usize][at.start as usize] = d;
                let segs: Vec<&[u8]> = spans.iter().map(|s| lines.span(*s)).collect();
                let want = compute(&segs).unwrap() == d - b'0';
                assert_eq!(digits(&lines, l).composite.holds(), want, "{zone}");
            }
        }
    }
}
