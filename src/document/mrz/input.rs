//! Input normalisation: turns whatever the client or OCR supplied into two or
//! three upper-case lines of one MRZ length, held in a fixed-size byte array
//! so the rest of the parser works on slices without allocating. Tolerant of
//! case, CR/LF, blank lines, surrounding whitespace and a zone given on one
//! line; strict about line lengths and the character set.

use super::{MrzError, MrzInput};

/// Inputs above this size are refused unread, which bounds the work any
/// request can cause; the longest MRZ with generous whitespace is far below.
pub(crate) const MAX_INPUT_BYTES: usize = 4096;

/// Normalised MRZ lines: `count` rows of `len` bytes, each byte in
/// `A`-`Z`, `0`-`9`, `<`; unused rows and row tails are fillers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lines {
    pub(crate) rows: [[u8; 44]; 3],
    pub(crate) count: usize,
    pub(crate) len: usize,
}

impl Lines {
    /// Row `i` (0-based) trimmed to the line length.
    #[inline]
    pub(crate) fn row(&self, i: usize) -> &[u8] {
        &self.rows[i][..self.len]
    }
}

/// Strips what OCR and copy-paste add around a line (whitespace, BOM).
fn trim(s: &str) -> &str {
    let t = s.trim_ascii();
    match (t.as_bytes().first(), t.as_bytes().last()) {
        // Visible ASCII at both ends: nothing Unicode left to trim.
        (Some(a), Some(b)) if a.is_ascii_graphic() && b.is_ascii_graphic() => t,
        (None, _) => t,
        _ => t.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'),
    }
}

/// Collects up to three non-blank lines, counting all of them.
struct Collector<'a> {
    found: [&'a str; 3],
    count: usize,
}

impl<'a> Collector<'a> {
    fn push(&mut self, text: &'a str) {
        // '\n' and '\r' never occur inside a UTF-8 sequence, so slicing at
        // them stays on char boundaries.
        let mut rest = text;
        while let Some(i) = find_break(rest.as_bytes()) {
            self.line(&rest[..i]);
            rest = &rest[i + 1..];
        }
        self.line(rest);
    }

    fn line(&mut self, piece: &'a str) {
        let t = trim(piece);
        if t.is_empty() {
            return;
        }
        if self.count < 3 {
            self.found[self.count] = t;
        }
        self.count += 1;
    }
}

/// Index of the first `\n` or `\r` in `b`, testing eight bytes at a time
/// (lines are 30-44 bytes, so this is a handful of word operations).
fn find_break(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // High bit set in the lowest byte equal to `c` (exact for the lowest
    // match, which is all that is used).
    let has = |x: u64, c: u8| {
        let y = x ^ (LO * u64::from(c));
        y.wrapping_sub(LO) & !y & HI
    };
    let mut chunks = b.chunks_exact(8);
    for (n, chunk) in chunks.by_ref().enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let m = has(x, b'\n') | has(x, b'\r');
        if m != 0 {
            return Some(n * 8 + (m.trailing_zeros() / 8) as usize);
        }
    }
    let done = b.len() - chunks.remainder().len();
    chunks
        .remainder()
        .iter()
        .position(|&c| c == b'\n' || c == b'\r')
        .map(|p| done + p)
}

/// Splits, trims, checks lengths and upper-cases the input.
pub(crate) fn normalise(input: &MrzInput) -> Result<Lines, MrzError> {
    let mut col = Collector {
        found: [""; 3],
        count: 0,
    };
    match input {
        MrzInput::Text(s) => {
            if s.len() > MAX_INPUT_BYTES {
                return Err(MrzError::TooLarge {
                    found: s.len(),
                    max: MAX_INPUT_BYTES,
                });
            }
            if let Some(lines) = exact_text(s) {
                return Ok(lines);
            }
            col.push(s);
        }
        MrzInput::Lines(v) => {
            let total: usize = v.iter().map(|s| s.len()).fold(0, usize::saturating_add);
            if total > MAX_INPUT_BYTES {
                return Err(MrzError::TooLarge {
                    found: total,
                    max: MAX_INPUT_BYTES,
                });
            }
            for s in v {
                col.push(s);
            }
        }
    }
    let (found, count) = (col.found, col.count);
    match count {
        0 => Err(MrzError::Empty),
        1 => single_line(found[0]),
        2 | 3 => {
            let lens = [char_len(found[0]), char_len(found[1]), char_len(found[2])];
            let len = expected_len(count, lens)?;
            let mut lines = Lines {
                rows: [[b'<'; 44]; 3],
                count,
                len,
            };
            for (i, text) in found[..count].iter().enumerate() {
                copy_row(&mut lines.rows[i], text, i)?;
            }
            Ok(lines)
        }
        n => Err(MrzError::LineCount { found: n }),
    }
}

/// The common case of text that is exactly the zone: lines of one MRZ
/// length joined by single `\n`, nothing else. Returns `None` (and the
/// general path runs) unless every line copies cleanly; a clean copy has no
/// whitespace, `\r` or non-ASCII to trim, so the general path would yield
/// the same lines.
fn exact_text(s: &str) -> Option<Lines> {
    let (count, len) = match s.len() {
        92 => (3, 30),
        73 => (2, 36),
        89 => (2, 44),
        _ => return None,
    };
    let b = s.as_bytes();
    if (1..count).any(|i| b[i * (len + 1) - 1] != b'\n') {
        return None;
    }
    let mut lines = Lines {
        rows: [[b'<'; 44]; 3],
        count,
        len,
    };
    for i in 0..count {
        let start = i * (len + 1);
        copy_row(&mut lines.rows[i], s.get(start..start + len)?, i).ok()?;
    }
    Some(lines)
}

/// A whole zone pasted without line breaks: split when the length is exactly
/// that of a known format.
fn single_line(text: &str) -> Result<Lines, MrzError> {
    let n = char_len(text);
    let (count, len) = match n {
        90 => (3, 30),
        72 => (2, 36),
        88 => (2, 44),
        _ => return Err(MrzError::LineCount { found: 1 }),
    };
    // Exact length in chars but not ASCII means an invalid character; report
    // it by position on the single line.
    if text.len() != n {
        let (position, found) = text
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii())
            .map(|(i, c)| (i + 1, c))
            .unwrap_or((1, '?'));
        return Err(MrzError::InvalidCharacter {
            line: 1,
            position,
            found,
        });
    }
    let mut lines = Lines {
        rows: [[b'<'; 44]; 3],
        count,
        len,
    };
    for i in 0..count {
        copy_row(&mut lines.rows[i], &text[i * len..(i + 1) * len], i)?;
    }
    Ok(lines)
}

/// The length every line must have, or the error naming the first line that
/// breaks it. With two lines the first line of a valid length sets the
/// expectation, so a single bad line is the one reported.
fn expected_len(count: usize, lens: [usize; 3]) -> Result<usize, MrzError> {
    if count == 3 {
        return match lens.iter().position(|&l| l != 30) {
            None => Ok(30),
            Some(i) => Err(MrzError::LineLength {
                line: i + 1,
                expected: 30,
                found: lens[i],
                format: "TD1",
            }),
        };
    }
    let fmt = |l: usize| if l == 36 { "TD2/MRV-B" } else { "TD3/MRV-A" };
    let ok = |l: usize| l == 36 || l == 44;
    let (a, b) = (lens[0], lens[1]);
    if ok(a) {
        if a == b {
            return Ok(a);
        }
        return Err(MrzError::LineLength {
            line: 2,
            expected: a,
            found: b,
            format: fmt(a),
        });
    }
    // Line 1 is wrong: expect what line 2 has if that is valid, else the
    // nearer of the two lengths.
    let expected = if ok(b) {
        b
    } else if a <= 40 {
        36
    } else {
        44
    };
    Err(MrzError::LineLength {
        line: 1,
        expected,
        found: a,
        format: fmt(expected),
    })
}

/// Length in characters, without decoding when the text is ASCII.
fn char_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// Copies one line, upper-casing and rejecting characters outside the MRZ
/// alphabet. The caller has checked the length in characters.
fn copy_row(dst: &mut [u8; 44], text: &str, index: usize) -> Result<(), MrzError> {
    // One branch-free pass upper-cases and validates (non-ASCII bytes are
    // never valid); the char-wise loop below only runs to locate an error.
    let src = text.as_bytes();
    if src.len() <= dst.len() {
        // Padding to three 16-byte vectors gives the loop a constant trip
        // count with no scalar tail, so it vectorises completely; fillers in
        // the padding are valid and unchanged.
        let mut buf = [b'<'; 48];
        buf[..src.len()].copy_from_slice(src);
        let mut out = [0u8; 48];
        let mut bad = 0u8;
        for (d, &b) in out.iter_mut().zip(&buf) {
            // 0xFF for a lower-case letter: clears its 0x20 bit.
            let lower = 0u8.wrapping_sub(u8::from(b.wrapping_sub(b'a') < 26));
            let up = b & !(lower & 0x20);
            let ok = u8::from(up.wrapping_sub(b'0') < 10)
                | u8::from(up.wrapping_sub(b'A') < 26)
                | u8::from(up == b'<');
            bad |= ok ^ 1;
            *d = up;
        }
        dst.copy_from_slice(&out[..44]);
        if bad == 0 {
            return Ok(());
        }
    }
    for (pos, ch) in text.chars().enumerate() {
        let up = ch.to_ascii_uppercase();
        if !(up.is_ascii_uppercase() || up.is_ascii_digit() || up == '<') {
            return Err(MrzError::InvalidCharacter {
                line: index + 1,
                position: pos + 1,
                found: ch,
            });
        }
        dst[pos] = up as u8;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const L1: &str = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<";
    const L2: &str = "L898902C36UTO7408122F1204159ZE184226B<<<<<10";

    fn text(s: &str) -> Result<Lines, MrzError> {
        normalise(&MrzInput::Text(s.to_owned()))
    }

    #[test]
    fn tolerant_forms_normalise_identically() {
        let want = text(&format!("{L1}\n{L2}")).unwrap();
        assert_eq!(want.count, 2);
        assert_eq!(want.len, 44);
        assert_eq!(want.row(1), L2.as_bytes());
        let lower = format!("{}\n{}", L1.to_lowercase(), L2.to_lowercase());
        assert_eq!(text(&lower).unwrap(), want);
        assert_eq!(
            text(&format!("\r\n  {L1}\t\r\n\r\n{L2}  \r\n")).unwrap(),
            want
        );
        assert_eq!(text(&format!("\u{feff}{L1}\r{L2}")).unwrap(), want);
        assert_eq!(
            text(&format!("\u{a0}{L1}\u{2003}\n\u{b}{L2}\u{85}")).unwrap(),
            want
        );
        assert_eq!(text(&format!("{L1}{L2}")).unwrap(), want);
        let arr = MrzInput::Lines(vec![format!(" {L1} "), String::new(), L2.to_lowercase()]);
        assert_eq!(normalise(&arr).unwrap(), want);
    }

    #[test]
    fn find_break_matches_a_plain_scan() {
        let plain = |b: &[u8]| b.iter().position(|&c| c == b'\n' || c == b'\r');
        let mut buf = vec![b'A'; 40];
        assert_eq!(find_break(&buf), None);
        for i in 0..40 {
            for c in [b'\n', b'\r'] {
                buf[i] = c;
                for j in (i + 1)..40 {
                    buf[j] = b'\n';
                    assert_eq!(find_break(&buf), plain(&buf));
                    buf[j] = b'A';
                }
                assert_eq!(find_break(&buf), Some(i));
                assert_eq!(find_break(&buf[..i]), None);
                buf[i] = b'A';
            }
        }
        let tricky = [0x0b, 0x0a, 0x8a, 0x0d, 0xff, 0x00, 0x01, 0x0c, 0x0e, 0x09];
        assert_eq!(find_break(&tricky), plain(&tricky));
        assert_eq!(find_break(&tricky[2..]), plain(&tricky[2..]));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(text("  \n\n "), Err(MrzError::Empty));
        assert_eq!(text(L1), Err(MrzError::LineCount { found: 1 }));
        assert_eq!(
            text(&format!("{L1}\n{L2}\n{L2}\n{L2}")),
            Err(MrzError::LineCount { found: 4 })
        );
        assert_eq!(
            text(&format!("{L1}\n{}", &L2[..43])),
            Err(MrzError::LineLength {
                line: 2,
                expected: 44,
                found: 43,
                format: "TD3/MRV-A"
            })
        );
        assert_eq!(
            text(&format!("{}X\n{L2}", L1)),
            Err(MrzError::LineLength {
                line: 1,
                expected: 44,
                found: 45,
                format: "TD3/MRV-A"
            })
        );
        assert_eq!(
            text(&format!(
                "{}\n{}\n{}",
                "A".repeat(30),
                "B".repeat(31),
                "C".repeat(30)
            )),
            Err(MrzError::LineLength {
                line: 2,
                expected: 30,
                found: 31,
                format: "TD1"
            })
        );
        assert_eq!(
            text(&format!("{}\n{}", &L1[..35], &L2[..35])),
            Err(MrzError::LineLength {
                line: 1,
                expected: 36,
                found: 35,
                format: "TD2/MRV-B"
            })
        );
        let bad = L2.replacen('<', "-", 1);
        assert_eq!(
            text(&format!("{L1}\n{bad}")),
            Err(MrzError::InvalidCharacter {
                line: 2,
                position: 38,
                found: '-'
            })
        );
        let uni = L1.replacen('E', "É", 1);
        assert!(matches!(
            text(&format!("{uni}\n{L2}")),
            Err(MrzError::InvalidCharacter {
                line: 1,
                position: 6,
                found: 'É'
            })
        ));
        let big = "<".repeat(MAX_INPUT_BYTES + 1);
        assert!(matches!(text(&big), Err(MrzError::TooLarge { .. })));
    }
}
