//! The MRZ's name field checked against the printed names. No check digit covers names, and the
//! recogniser sometimes reads an OCR-B `I` as `H` ("SMHTH"); the same name printed above in a
//! proportional font is read right far more often. Where the two differ only by such look-alike
//! pairs, the printed spelling wins; any other difference leaves the MRZ as read. Where the
//! labels went unread (a small photo), each name word is compared with the page's printed words
//! instead ([`names_from_words`]).

use super::mrz::{name_field, Repair};
use super::printed::PrintedField;

/// Pairs of characters the recogniser confuses in OCR-B: (as read in the MRZ, as printed).
const LOOK_ALIKES: &[(char, char)] = &[('H', 'I'), ('I', 'H'), ('1', 'I'), ('0', 'O'), ('8', 'B')];

/// Pairs the recogniser confuses in a small OCR-B name word, seen on real photos: `M` read as
/// `H` or `N` (`KINGDOH`, `NAHIA`), besides [`LOOK_ALIKES`]. (as read in the MRZ, as printed)
const SMALL_LOOK_ALIKES: &[(char, char)] = &[('H', 'M'), ('N', 'M')];
/// Pairs a printed word is misread by at a few pixels a glyph: the MRZ's letter is kept.
/// (as read in the MRZ, as read in the print)
const PRINT_MISREADS: &[(char, char)] = &[('D', 'O'), ('O', 'D'), ('Q', 'O')];

/// `lines` with name words respelled from a printed word on the page (`page_text`: the lines
/// outside the MRZ) that spells the same word but for at most two letters, each of them a
/// look-alike the MRZ recogniser confuses (the print's letter is taken) or one the print's
/// reading confuses (the MRZ's is kept), at least one of the first kind — and only where one
/// printed spelling qualifies and none is the MRZ's own. For photos whose labels are unreadable, so that
/// [`names_from_print`] has no printed names to go on.
pub fn names_from_words(lines: &[String], page_text: &[&str]) -> (Vec<String>, Vec<Repair>) {
    let unchanged = (lines.to_vec(), Vec::new());
    let len = lines.first().map_or(0, |l| l.chars().count());
    let Some((row, start, width)) = name_field(lines.len(), len) else {
        return unchanged;
    };
    let page: Vec<Vec<char>> = page_text
        .iter()
        .flat_map(|t| super::ascii_words(t))
        .map(|w| w.chars().collect())
        .collect();
    let mut row_chars: Vec<char> = lines[row].chars().collect();
    let Some(field) = row_chars.get(start..start + width) else {
        return unchanged;
    };
    // Each name word with its position in the line.
    let mut words: Vec<(usize, Vec<char>)> = Vec::new();
    for (i, &c) in field.iter().enumerate() {
        if c.is_ascii_uppercase() {
            match words.last_mut() {
                Some((at, w)) if *at + w.len() == start + i => w.push(c),
                _ => words.push((start + i, vec![c])),
            }
        }
    }
    let mut repairs = Vec::new();
    for (at, word) in words.iter().filter(|(_, w)| w.len() >= 4) {
        let fixes = |printed: &Vec<char>| -> Option<Vec<(usize, char, char)>> {
            if printed.len() != word.len() {
                return None;
            }
            let diffs: Vec<(usize, char, char)> = word
                .iter()
                .zip(printed)
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(|(i, (&a, &b))| (i, a, b))
                .collect();
            let fix = |&(_, a, b): &(usize, char, char)| {
                LOOK_ALIKES.contains(&(a, b)) || SMALL_LOOK_ALIKES.contains(&(a, b))
            };
            let fine = diffs.len() <= 2
                && diffs.iter().any(fix)
                && diffs
                    .iter()
                    .all(|d| fix(d) || PRINT_MISREADS.contains(&(d.1, d.2)));
            fine.then(|| diffs.into_iter().filter(|d| fix(d)).collect())
        };
        // The print spells it as the MRZ reads it somewhere: nothing to settle.
        if page.iter().any(|p| p == word) {
            continue;
        }
        let mut found: Vec<Vec<(usize, char, char)>> = page.iter().filter_map(fixes).collect();
        found.sort();
        found.dedup();
        if let [only] = found.as_slice() {
            repairs.extend(only.iter().map(|&(i, from, to)| Repair {
                line: row + 1,
                position: at + i + 1,
                from,
                to,
            }));
        }
    }
    for r in &repairs {
        row_chars[r.position - 1] = r.to;
    }
    let mut out = lines.to_vec();
    out[row] = row_chars.into_iter().collect();
    (out, repairs)
}

/// The printed surname and given names in MRZ form (`SURNAME<<GIVEN<NAMES`), when both were
/// read and use only `A–Z`, spaces and hyphens.
fn printed_name(printed: &[PrintedField]) -> Option<String> {
    let get = |name: &str| printed.iter().find(|p| p.name == name).map(|p| &p.value);
    let mrz_form = |s: &str| -> Option<String> {
        let s = s.trim();
        s.chars()
            .all(|c| c.is_ascii_uppercase() || c == ' ' || c == '-')
            .then(|| s.replace([' ', '-'], "<"))
    };
    Some(format!(
        "{}<<{}",
        mrz_form(get("surname")?)?,
        mrz_form(get("given_names")?)?
    ))
}

/// `lines` with the name field respelled from the print where that only swaps look-alikes, and
/// the swaps made.
pub fn names_from_print(lines: &[String], printed: &[PrintedField]) -> (Vec<String>, Vec<Repair>) {
    let unchanged = (lines.to_vec(), Vec::new());
    let len = lines.first().map_or(0, |l| l.chars().count());
    let (Some((row, start, width)), Some(name)) =
        (name_field(lines.len(), len), printed_name(printed))
    else {
        return unchanged;
    };
    let mut row_chars: Vec<char> = lines[row].chars().collect();
    let mut want: Vec<char> = name.chars().take(width).collect();
    want.resize(width, '<');
    let mut repairs = Vec::new();
    for (i, &w) in want.iter().enumerate() {
        let Some(&got) = row_chars.get(start + i) else {
            return unchanged;
        };
        if got == w {
            continue;
        }
        if !LOOK_ALIKES.contains(&(got, w)) {
            return unchanged;
        }
        repairs.push(Repair {
            line: row + 1,
            position: start + i + 1,
            from: got,
            to: w,
        });
    }
    for r in &repairs {
        row_chars[r.position - 1] = r.to;
    }
    let mut out = lines.to_vec();
    out[row] = row_chars.into_iter().collect();
    (out, repairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &'static str, value: &str) -> PrintedField {
        PrintedField {
            name,
            raw: value.into(),
            value: value.into(),
            confidence: 1.0,
        }
    }

    #[test]
    fn look_alikes_in_the_name_follow_the_print() {
        let lines = vec![
            "P<CANSMHTH<<JOHN<<<<<<<<<<<<<<<<<<<<<<<<<<<<".to_string(),
            "NWFZET6572CAN7108064F3007033<<<<<<<<<<<<<<<8".to_string(),
        ];
        let printed = [field("surname", "SMITH"), field("given_names", "JOHN")];
        let (fixed, repairs) = names_from_print(&lines, &printed);
        assert_eq!(fixed[0], "P<CANSMITH<<JOHN<<<<<<<<<<<<<<<<<<<<<<<<<<<<");
        assert_eq!(fixed[1], lines[1]);
        assert_eq!(repairs.len(), 1);
        assert_eq!(
            (repairs[0].position, repairs[0].from, repairs[0].to),
            (8, 'H', 'I')
        );
    }

    #[test]
    fn any_other_difference_keeps_the_mrz() {
        let lines = vec![
            "I<ESPXCMG4VMK53<<<<<<<<<<<<<<<".to_string(),
            "7710182M2803135ESP<<<<<<<<<<<4".to_string(),
            "DUPONT<<CHHDH<<<<<<<<<<<<<<<<<".to_string(),
        ];
        // A different given name in print: not a look-alike swap.
        let printed = [field("surname", "DUPONT"), field("given_names", "CLAIRE")];
        assert!(names_from_print(&lines, &printed).1.is_empty());
        let printed = [field("surname", "DUPONT"), field("given_names", "CHIDI")];
        let (fixed, repairs) = names_from_print(&lines, &printed);
        assert_eq!(fixed[2], "DUPONT<<CHIDI<<<<<<<<<<<<<<<<<");
        assert_eq!(repairs.len(), 2);
        // No printed names: nothing to compare with.
        assert!(names_from_print(&lines, &[]).1.is_empty());
    }

    #[test]
    fn name_words_follow_a_printed_word_that_differs_by_look_alikes() {
        let lines = vec![
            "P<GBRUNITED<KINGDOH<TWENTY<SIX<<JODIE<PIPPA<".to_string(),
            "1071828900GBR8501178F1601312<<<<<<<<<<<<<<06".to_string(),
        ];
        // The print misread too (`D` as `O`): the MRZ keeps its `D`, takes the print's `M`.
        let page = ["P", "UKITED-KINGOOM-TWIMTY-SIX", "JODIE PIPFA"];
        let (fixed, repairs) = names_from_words(&lines, &page);
        assert_eq!(fixed[0], "P<GBRUNITED<KINGDOM<TWENTY<SIX<<JODIE<PIPPA<");
        assert_eq!(fixed[1], lines[1]);
        assert_eq!(
            repairs
                .iter()
                .map(|r| (r.position, r.from, r.to))
                .collect::<Vec<_>>(),
            [(19, 'H', 'M')]
        );
        // A printed word with any other difference, or none near enough: the MRZ stays.
        for page in [["KINGDAM"], ["KINGSTON"], ["QUEEN"]] {
            assert!(names_from_words(&lines, &page).1.is_empty(), "{page:?}");
        }
        // Two printed spellings that would fix it differently: left as read.
        let lines = vec![
            "P<UTOERIKSSON<<ANNA<NAHIA<<<<<<<<<<<<<<<<<<<".to_string(),
            lines[1].clone(),
        ];
        assert!(names_from_words(&lines, &["MAHIA", "NAMIA"]).1.is_empty());
        // The print also spells it as the MRZ reads it: left as read.
        assert!(names_from_words(&lines, &["MAHIA", "NAHIA"]).1.is_empty());
        assert_eq!(
            names_from_words(&lines, &["ANNA MAHIA"]).0[0],
            "P<UTOERIKSSON<<ANNA<MAHIA<<<<<<<<<<<<<<<<<<<"
        );
    }
}
