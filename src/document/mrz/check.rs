//! ICAO 9303 part 3 check digits: each character is valued (`0`-`9` as
//! themselves, `A`-`Z` as 10-35, the filler `<` as 0), multiplied by the
//! repeating weights 7, 3, 1, and the sum taken modulo 10. Composite check
//! digits run the same weights across several non-adjacent segments, which is
//! why the computation takes a list of slices instead of concatenating.

/// Check value of every byte: `0`-`9` → 0-9, `A`-`Z` → 10-35, `<` → 0,
/// anything else `NONE`. A table keeps the hot loop branch-free.
const VALUES: [u8; 256] = {
    let mut t = [NONE; 256];
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
const NONE: u8 = u8::MAX;

/// Check digit (0-9) of the concatenation of `segments`, or `None` when a
/// byte is outside the MRZ alphabet (`A`-`Z`, `0`-`9`, `<`).
pub(crate) fn compute(segments: &[&[u8]]) -> Option<u8> {
    const WEIGHTS: [u32; 3] = [7, 3, 1];
    let mut sum = 0u32;
    let mut w = 0usize;
    for seg in segments {
        for &c in *seg {
            let v = VALUES[c as usize];
            if v == NONE {
                return None;
            }
            sum += u32::from(v) * WEIGHTS[w];
            w = if w == 2 { 0 } else { w + 1 };
        }
    }
    Some((sum % 10) as u8)
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
        /// Computed digit (`None` if the data itself holds non-MRZ bytes).
        expected: Option<u8>,
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

/// Verifies `found` against the check digit of `segments`. `filler_ok`
/// accepts `<` in place of the digit when every data byte is a filler, which
/// ICAO allows for an unused TD3 personal-number field.
pub(crate) fn verify(segments: &[&[u8]], found: u8, filler_ok: bool) -> Digit {
    let expected = compute(segments);
    if found == b'<' && filler_ok && segments.iter().all(|s| s.iter().all(|&c| c == b'<')) {
        return Digit::Pass;
    }
    match expected {
        Some(d) if found == b'0' + d => Digit::Pass,
        _ => Digit::Fail { expected, found },
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
    fn verify_filler_rule() {
        assert_eq!(verify(&[b"<<<<"], b'<', true), Digit::Pass);
        assert_eq!(verify(&[b"<<<<"], b'0', true), Digit::Pass);
        assert!(!verify(&[b"<<<<"], b'<', false).holds());
        assert!(!verify(&[b"AB<<"], b'<', true).holds());
        assert_eq!(
            verify(&[b"740812"], b'3', false),
            Digit::Fail {
                expected: Some(2),
                found: b'3'
            }
        );
        assert!(Digit::NotDefined.holds());
    }
}
