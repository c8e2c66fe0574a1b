//! The MRZ's name field checked against the printed names. No check digit covers names, and the
//! recogniser sometimes reads an OCR-B `I` as `H` ("SMHTH"); the same name printed above in a
//! proportional font is read right far more often. Where the two differ only by such look-alike
//! pairs, the printed spelling wins; any other difference leaves the MRZ as read.

use super::mrz::{name_field, Repair};
use super::printed::PrintedField;

/// Pairs of characters the recogniser confuses in OCR-B: (as read in the MRZ, as printed).
const LOOK_ALIKES: &[(char, char)] = &[('H', 'I'), ('I', 'H'), ('1', 'I'), ('0', 'O'), ('8', 'B')];

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
}
