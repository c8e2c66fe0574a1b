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
/// `A`-`Z`, `0`-`9`, `<`.
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
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

/// Collects up to three non-blank lines, counting all of them.
struct Collector<'a> {
    found: [&'a str; 3],
    count: usize,
}

impl<'a> Collector<'a> {
    fn push(&mut self, text: &'a str) {
        // Byte search: '\n' and '\r' never occur inside a UTF-8 sequence,
        // so the slices stay on char boundaries.
        let mut start = 0;
        for (i, &b) in text.as_bytes().iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                self.line(&text[start..i]);
                start = i + 1;
            }
        }
        self.line(&text[start..]);
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
    if text.is_ascii() {
        let mut ok = true;
        for (d, &b) in dst.iter_mut().zip(text.as_bytes()) {
            let up = b.to_ascii_uppercase();
            ok &= up.is_ascii_uppercase() || up.is_ascii_digit() || up == b'<';
            *d = up;
        }
        if ok {
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
        assert_eq!(text(&format!("{L1}{L2}")).unwrap(), want);
        let arr = MrzInput::Lines(vec![format!(" {L1} "), String::new(), L2.to_lowercase()]);
        assert_eq!(normalise(&arr).unwrap(), want);
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
