//! OCR confusion repair. Only characters that are impossible for their field
//! (a letter in a date, a digit in a country code or name) are candidates,
//! and a substitution is kept only when something confirms it:
//! * positions covered by check digits: every check digit of the zone must
//!   hold after the substitutions (tried jointly, exactly one combination may
//!   succeed);
//! * country codes: the code must become a known one, unambiguously;
//! * names and the document code's first letter: nothing can confirm them, but a digit there
//!   is certainly wrong, so the most likely letter is used.
//!
//! The search is bounded: more than [`MAX_SUSPECTS`] impossible characters
//! means the zone is too damaged to guess at, and at most
//! [`MAX_COMBINATIONS`] combinations are ever evaluated.

use std::borrow::Cow;

use super::check;
use super::input::Lines;
use super::layout::{self, Class, Group, Layout};
use super::Repair;
use crate::document::countries;

/// More impossible characters than this and no repair is attempted.
pub(crate) const MAX_SUSPECTS: usize = 12;
/// Upper bound on check-digit combinations evaluated.
pub(crate) const MAX_COMBINATIONS: usize = 256;

/// Replacements for `c` read in a field of `class`, most likely first.
fn candidates(class: Class, c: u8) -> &'static [u8] {
    match class {
        Class::Digit | Class::DigitOrFiller => match c {
            b'O' | b'Q' | b'D' => b"0",
            b'I' | b'L' => b"1",
            b'Z' => b"2",
            b'S' => b"5",
            b'G' => b"6",
            b'B' => b"8",
            b'K' if class == Class::DigitOrFiller => b"<",
            _ => b"",
        },
        Class::Alpha | Class::Country => match c {
            // Germany's `D<<` is a common victim of D/0 confusion.
            b'0' if class == Class::Country => b"OD",
            b'0' => b"O",
            b'1' => b"I",
            b'2' => b"Z",
            b'5' => b"S",
            b'6' => b"G",
            b'8' => b"B",
            _ => b"",
        },
        Class::Sex | Class::Any => b"",
    }
}

#[derive(Debug, Clone, Copy)]
struct Suspect {
    line: u8,
    pos: u8,
    from: u8,
    group: Group,
    options: &'static [u8],
}

/// Repairs `lines` in place and returns the substitutions made, sorted by
/// position, and how many impossible characters remain; explains in
/// `warnings` what could not be repaired.
///
/// After the impossible characters, one more case: a document number is
/// alphanumeric, so an `O` read for `0` there is possible and never a
/// suspect above; when the check digits still fail, `O`/`Q` → `0` inside the
/// number is tried, and kept only if exactly one combination makes every
/// check digit hold.
pub(crate) fn repair(
    lines: &mut Lines,
    layout: &Layout,
    warnings: &mut Vec<Cow<'static, str>>,
) -> (Vec<Repair>, usize) {
    let (mut repairs, mut remaining) = repair_impossible(lines, layout, warnings);
    if repair_state_from_other(lines, layout, &mut repairs, warnings) {
        repairs.sort_by_key(|r| (r.line, r.position));
        remaining = 0;
        layout::for_each_impossible(lines, layout, |_, _, _, _, _| remaining += 1);
    }
    if remaining == 0 && !check::digits(lines, layout).all_hold() {
        let before = repairs.len();
        repair_number_lookalikes(lines, layout, &mut repairs);
        if repairs.len() > before {
            repairs.sort_by_key(|r| (r.line, r.position));
        }
    }
    (repairs, remaining)
}

/// An issuing-state or nationality code that is no known code but one character away from the
/// other one, which is known, becomes that one (`G0R` beside `GBR`): nearly every document is
/// issued to a national of the state that issues it, and an unknown code is certainly misread.
/// Returns whether anything changed.
fn repair_state_from_other(
    lines: &mut Lines,
    layout: &Layout,
    repairs: &mut Vec<Repair>,
    warnings: &mut Vec<Cow<'static, str>>,
) -> bool {
    let code = |l: &Lines, span: layout::Span| -> [u8; 3] {
        let mut c = [0u8; 3];
        c.copy_from_slice(l.span(span));
        c
    };
    let (issuer, nationality) = (layout.issuer, layout.nationality);
    let (a, b) = (code(lines, issuer), code(lines, nationality));
    let known = |c: [u8; 3]| countries::lookup_mrz(c).is_some();
    let (bad, good, what) = match (known(a), known(b)) {
        (false, true) => (issuer, b, "the issuing state code"),
        (true, false) => (nationality, a, "the nationality code"),
        _ => return false,
    };
    let was = code(lines, bad);
    let differing: Vec<usize> = (0..3).filter(|&i| was[i] != good[i]).collect();
    if differing.len() != 1 {
        return false;
    }
    let i = differing[0];
    let pos = bad.start as usize + i;
    lines.rows[bad.line as usize][pos] = good[i];
    repairs.push(Repair {
        line: bad.line as usize + 1,
        position: pos + 1,
        from: char::from(was[i]),
        to: char::from(good[i]),
    });
    // The first pass's note that it could not repair this code no longer holds.
    warnings.retain(|w| !w.contains(what));
    true
}

/// The digit a letter in a document number may really be. Only the round
/// letters: swapping in the other direction (or `B`/`8`, `S`/`5`, …) lets a
/// misread check digit "confirm" a changed number about one time in ten.
fn lookalike(c: u8) -> Option<u8> {
    match c {
        b'O' | b'Q' => Some(b'0'),
        _ => None,
    }
}

/// Turns `O`/`Q` into `0` in the document number when exactly one combination
/// makes every check digit hold.
fn repair_number_lookalikes(lines: &mut Lines, layout: &Layout, repairs: &mut Vec<Repair>) {
    let span = layout.number;
    let row = lines.rows[span.line as usize];
    let mut options: Vec<[u8; 2]> = Vec::new();
    let mut positions: Vec<u8> = Vec::new();
    for i in span.start..span.start + span.len {
        if let Some(other) = lookalike(row[i as usize]) {
            positions.push(i);
            options.push([row[i as usize], other]);
        }
    }
    // 2^8 = MAX_COMBINATIONS; a number with more look-alikes is left alone.
    if positions.is_empty() || positions.len() > 8 {
        return;
    }
    let mut winner = None;
    for mask in 1u32..(1 << positions.len()) {
        let mut trial = *lines;
        for (k, &pos) in positions.iter().enumerate() {
            trial.rows[span.line as usize][pos as usize] = options[k][((mask >> k) & 1) as usize];
        }
        if check::digits(&trial, layout).all_hold() {
            if winner.is_some() {
                return;
            }
            winner = Some(mask);
        }
    }
    let Some(mask) = winner else { return };
    for (k, &pos) in positions.iter().enumerate() {
        if (mask >> k) & 1 == 1 {
            lines.rows[span.line as usize][pos as usize] = options[k][1];
            repairs.push(Repair {
                line: span.line as usize + 1,
                position: pos as usize + 1,
                from: char::from(options[k][0]),
                to: char::from(options[k][1]),
            });
        }
    }
}

/// Repairs the characters impossible for their fields (see the module docs).
fn repair_impossible(
    lines: &mut Lines,
    layout: &Layout,
    warnings: &mut Vec<Cow<'static, str>>,
) -> (Vec<Repair>, usize) {
    // The common clean zone: one vectorised pass, no suspect table to set up.
    if !layout::any_impossible(lines, layout) {
        return (Vec::new(), 0);
    }
    let mut found = [None::<Suspect>; MAX_SUSPECTS];
    let mut count = 0usize;
    layout::for_each_impossible(lines, layout, |span, i, c, class, group| {
        if count < MAX_SUSPECTS {
            let pos = span.start + i as u8;
            let options = candidates(class, c);
            found[count] = Some(Suspect {
                line: span.line,
                pos,
                from: c,
                group,
                options,
            });
        }
        count += 1;
    });
    if count == 0 {
        return (Vec::new(), 0);
    }
    if count > MAX_SUSPECTS {
        warnings.push(format!(
            "{count} characters are impossible for their fields (more than {MAX_SUSPECTS}); OCR repair not attempted"
        ).into());
        return (Vec::new(), count);
    }
    let suspects: Vec<Suspect> = found.into_iter().flatten().collect();
    let mut repairs = Vec::new();

    // Check-digit-covered positions, all together.
    let checked: Vec<&Suspect> = suspects
        .iter()
        .filter(|s| s.group == Group::Checked)
        .collect();
    if !checked.is_empty() {
        match search(lines, &checked, |l| check::digits(l, layout).all_hold()) {
            Outcome::One(choice) => {
                for (s, &k) in checked.iter().zip(&choice) {
                    apply(lines, s, s.options[k], &mut repairs);
                }
            }
            other => warnings.push(
                format!(
                    "OCR repair of {} character(s) covered by check digits not applied: {}",
                    checked.len(),
                    other.reason()
                )
                .into(),
            ),
        }
    }

    // Country codes, each on its own.
    for (group, span) in [
        (Group::Issuer, layout.issuer),
        (Group::Nationality, layout.nationality),
    ] {
        let these: Vec<&Suspect> = suspects.iter().filter(|s| s.group == group).collect();
        if these.is_empty() {
            continue;
        }
        let known = |l: &Lines| {
            let mut code = [0u8; 3];
            code.copy_from_slice(l.span(span));
            countries::lookup_mrz(code).is_some()
        };
        match search(lines, &these, known) {
            Outcome::One(choice) => {
                for (s, &k) in these.iter().zip(&choice) {
                    apply(lines, s, s.options[k], &mut repairs);
                }
            }
            other => {
                let what = if group == Group::Issuer {
                    "issuing state"
                } else {
                    "nationality"
                };
                warnings.push(
                    format!(
                        "OCR repair of the {what} code not applied: {}",
                        other.reason()
                    )
                    .into(),
                );
            }
        }
    }

    // Unconfirmable positions: take the most likely letter.
    for s in suspects.iter().filter(|s| s.group == Group::Free) {
        if let Some(&to) = s.options.first() {
            apply(lines, s, to, &mut repairs);
        }
    }
    repairs.sort_by_key(|r| (r.line, r.position));
    // Every substitution turns an impossible byte into an allowed one.
    let remaining = count - repairs.len();
    (repairs, remaining)
}

/// Writes `to` over the suspect and records the repair.
fn apply(lines: &mut Lines, s: &Suspect, to: u8, repairs: &mut Vec<Repair>) {
    lines.rows[s.line as usize][s.pos as usize] = to;
    repairs.push(Repair {
        line: s.line as usize + 1,
        position: s.pos as usize + 1,
        from: char::from(s.from),
        to: char::from(to),
    });
}

enum Outcome {
    /// Exactly one combination succeeded: the option index per suspect.
    One(Vec<usize>),
    None,
    Ambiguous,
    Unrepairable,
    TooMany,
}

impl Outcome {
    fn reason(&self) -> &'static str {
        match self {
            Outcome::One(_) => "",
            Outcome::None => "no combination of the usual OCR confusions makes the zone consistent",
            Outcome::Ambiguous => "more than one substitution would be consistent",
            Outcome::Unrepairable => "a character has no plausible substitute",
            Outcome::TooMany => "too many combinations",
        }
    }
}

/// Tries every combination of options for `suspects` on a copy of `lines`
/// and reports whether exactly one satisfies `ok`.
fn search(lines: &Lines, suspects: &[&Suspect], ok: impl Fn(&Lines) -> bool) -> Outcome {
    if suspects.iter().any(|s| s.options.is_empty()) {
        return Outcome::Unrepairable;
    }
    let total = suspects
        .iter()
        .try_fold(1usize, |acc, s| acc.checked_mul(s.options.len()));
    let total = match total {
        Some(t) if t <= MAX_COMBINATIONS => t,
        _ => return Outcome::TooMany,
    };
    let mut winner: Option<Vec<usize>> = None;
    let mut choice = vec![0usize; suspects.len()];
    for mut n in 0..total {
        let mut trial = *lines;
        for (s, k) in suspects.iter().zip(choice.iter_mut()) {
            *k = n % s.options.len();
            n /= s.options.len();
            trial.rows[s.line as usize][s.pos as usize] = s.options[*k];
        }
        if ok(&trial) {
            if winner.is_some() {
                return Outcome::Ambiguous;
            }
            winner = Some(choice.clone());
        }
    }
    winner.map_or(Outcome::None, Outcome::One)
}
