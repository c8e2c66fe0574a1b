//! ICAO 9303 part 3 check digits: each character is valued (`0`-`9` as
//! themselves, `A`-`Z` as 10-35, the filler `<` as 0), multiplied by the
//! repeating weights 7, 3, 1, and the sum taken modulo 10. Composite check
//! digits run the same weights across several non-adjacent segments. This
//! module also applies the digits to a zone ([`digits`]), including the
//! TD1/TD2 rule for document numbers longer than nine characters; all of a
//! zone's digits come from one pass over per-format weight tables.

use super::input::Lines;
use super::layout::{Layout, Span, MRV_A, MRV_B, TD1, TD2, TD3};
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

/// Check digits a zone can have, in the order of [`WEIGHTS`].
const NUMBER: usize = 0;
const BIRTH: usize = 1;
const EXPIRY: usize = 2;
const OPTIONAL: usize = 3;
const COMPOSITE: usize = 4;

/// Bytes of the first two lines, the only ones check digits cover (TD1's
/// third line is the name), flattened, and rounded up to whole 16-byte
/// vectors (the excess has weight 0).
const COVERED: usize = 96;

/// Writes the 7-3-1 weights of `spans`, read as one sequence, into `w`.
const fn weigh(w: &mut [u16; COVERED], spans: &[Span]) {
    let mut k = 0;
    let mut i = 0;
    while i < spans.len() {
        let s = spans[i];
        let mut p = 0;
        while p < s.len as usize {
            w[s.line as usize * 44 + s.start as usize + p] = [7, 3, 1][k % 3];
            k += 1;
            p += 1;
        }
        i += 1;
    }
}

/// Per format (in `MrzFormat` order) and check digit, the weight of every
/// position of the first two lines (0 where the check does not look). A
/// zone's check digits are then plain multiply-accumulate passes over its
/// values instead of a walk over spans; a check the format lacks has
/// all-zero weights and is never judged. The document number's weights are
/// those of a short (nine-character) number; a TD1/TD2 long number is summed
/// apart. `u16` because that is the lane width SSE2 multiplies natively.
static WEIGHTS: [[[u16; COVERED]; 5]; 5] = {
    let layouts = [&TD1, &TD2, &TD3, &MRV_A, &MRV_B];
    let mut out = [[[0u16; COVERED]; 5]; 5];
    let mut f = 0;
    while f < 5 {
        let l = layouts[f];
        weigh(&mut out[f][NUMBER], &[l.number]);
        weigh(&mut out[f][BIRTH], &[l.birth]);
        weigh(&mut out[f][EXPIRY], &[l.expiry]);
        if l.optional1_check.is_some() {
            weigh(&mut out[f][OPTIONAL], &[l.optional1]);
        }
        if let Some((_, spans)) = l.composite {
            weigh(&mut out[f][COMPOSITE], spans);
        }
        f += 1;
    }
    out
};

/// The weighted sums of every check digit over the first two lines. Only
/// TD1 has a check digit on its first line, so the others sum the second
/// line alone (padded to 48), half the work.
fn weighted_sums(lines: &Lines, format: MrzFormat) -> [u16; 5] {
    let w = &WEIGHTS[format as usize];
    let zone = lines.rows.as_flattened();
    let (at, whole) = if format == MrzFormat::Td1 {
        (0, true)
    } else {
        (44, false)
    };
    match (whole, zone.get(at..)) {
        (true, Some(b)) => b.first_chunk::<COVERED>().map(|b| dot(b, w, 0)),
        (false, Some(b)) => b.first_chunk::<48>().map(|b| dot(b, w, 44)),
        _ => None,
    }
    .unwrap_or_default()
}

/// Weighted sums of `bytes` against the weights from `offset` on, as
/// fixed-length branch-free loops the compiler vectorises. Bytes outside the
/// alphabet count as 0, as in [`sums`].
#[inline(always)]
fn dot<const N: usize>(bytes: &[u8; N], w: &[[u16; COVERED]; 5], offset: usize) -> [u16; 5] {
    let mut vals = [0u16; N];
    for (v, &c) in vals.iter_mut().zip(bytes) {
        let digit = if c.wrapping_sub(b'0') < 10 {
            c - b'0'
        } else {
            0
        };
        let letter = if c.wrapping_sub(b'A') < 26 {
            c - b'A' + 10
        } else {
            0
        };
        *v = u16::from(digit | letter);
    }
    // A full sum is at most 96 * 35 * 7 = 23520: no overflow.
    let mut out = [0u16; 5];
    for (o, w) in out.iter_mut().zip(w) {
        let w: &[u16; N] = w[offset..].first_chunk().unwrap_or(&[0; N]);
        *o = vals.iter().zip(w).map(|(v, w)| v * w).sum();
    }
    out
}

/// Verifies every check digit the layout defines.
pub(crate) fn digits(lines: &Lines, l: &Layout) -> Digits {
    let sum = weighted_sums(lines, l.format);
    let digit = |k: usize| (sum[k] % 10) as u8;
    let number_check = lines.at(l.number_check);
    let (number, number_form) = if l.long_number && number_check == b'<' {
        let n = sums(lines.span(l.number));
        let opt = lines.span(l.optional1);
        match opt.iter().position(|&c| c == b'<').unwrap_or(opt.len()) {
            0 => (judge(digit(NUMBER), b'<', false), Number::BrokenLong),
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
        (judge(digit(NUMBER), number_check, false), Number::Short)
    };
    let birth = judge(digit(BIRTH), lines.at(l.birth_check), false);
    let expiry = judge(digit(EXPIRY), lines.at(l.expiry_check), false);
    let optional = match l.optional1_check {
        Some(c) => {
            let found = lines.at(c);
            // Only a filler needs to know whether the field is unused.
            let unused = found == b'<' && lines.span(l.optional1).iter().all(|&b| b == b'<');
            judge(digit(OPTIONAL), found, unused)
        }
        None => Digit::NotDefined,
    };
    let composite = match l.composite {
        // Doc 9303 order is encoded in `WEIGHTS`; the test
        // `composite_matches_direct_computation` ties it to the spans.
        Some((at, _)) => judge(digit(COMPOSITE), lines.at(at), false),
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
