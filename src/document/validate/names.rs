//! Printed names in MRZ form: upper case, separators (space, hyphen, comma)
//! as one space, apostrophes dropped, and letters transliterated per ICAO
//! 9303 part 3 section 6 (Latin with diacritics, Cyrillic). Where the table
//! allows two spellings (Ä → AE or A, Ü → UE or U, Ñ → N or NXX) either
//! is accepted, by matching the printed token sequence against the MRZ text
//! instead of producing a single normal form.

use super::{Check, CheckStatus};

use CheckStatus::{Fail, Pass, Warn};

/// Longest printed name compared; anything longer is not a name.
const MAX_VIZ_CHARS: usize = 200;

/// One printed character in MRZ terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(u8),
    Space,
    /// Any one of these spellings (possibly empty, for soft signs).
    Alt(&'static [&'static str]),
}

/// ICAO 9303 part 3 transliterations of upper-case Latin and Cyrillic letters.
pub(super) fn translit(c: char) -> Option<&'static [&'static str]> {
    Some(match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ā' | 'Ă' | 'Ą' => &["A"],
        'Ä' => &["AE", "A"],
        'Å' => &["AA", "A"],
        'Æ' => &["AE"],
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => &["C"],
        'Ď' | 'Đ' | 'Ð' => &["D"],
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => &["E"],
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => &["G"],
        'Ĥ' | 'Ħ' => &["H"],
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => &["I"],
        'Ĳ' => &["IJ"],
        'Ĵ' => &["J"],
        'Ķ' => &["K"],
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => &["L"],
        'Ñ' => &["N", "NXX"],
        'Ń' | 'Ņ' | 'Ň' | 'Ŋ' => &["N"],
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ō' | 'Ŏ' | 'Ő' => &["O"],
        'Ö' => &["OE", "O"],
        'Ø' => &["OE", "O"],
        'Œ' => &["OE"],
        'Ŕ' | 'Ŗ' | 'Ř' => &["R"],
        'Ś' | 'Ŝ' | 'Ş' | 'Š' | 'Ș' => &["S"],
        'ẞ' => &["SS"],
        'Ţ' | 'Ť' | 'Ŧ' | 'Ț' => &["T"],
        'Þ' => &["TH"],
        'Ù' | 'Ú' | 'Û' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => &["U"],
        'Ü' => &["UE", "UXX", "U"],
        'Ŵ' => &["W"],
        'Ý' | 'Ÿ' | 'Ŷ' => &["Y"],
        'Ź' | 'Ż' | 'Ž' => &["Z"],
        'А' => &["A"],
        'Б' => &["B"],
        'В' => &["V"],
        'Г' => &["G", "H"],
        'Ґ' | 'Ѓ' => &["G"],
        'Д' | 'Ђ' => &["D"],
        'Е' | 'Ё' | 'Э' => &["E"],
        'Є' => &["IE", "YE"],
        'Ж' => &["ZH"],
        'З' => &["Z"],
        'Ѕ' | 'Џ' => &["DZ"],
        'И' => &["I", "Y"],
        'І' => &["I"],
        'Ї' => &["I", "YI"],
        'Й' => &["I", "Y"],
        'Ј' => &["J"],
        'К' | 'Ќ' => &["K"],
        'Л' => &["L"],
        'Љ' => &["LJ"],
        'М' => &["M"],
        'Н' => &["N"],
        'Њ' => &["NJ"],
        'О' => &["O"],
        'П' => &["P"],
        'Р' => &["R"],
        'С' => &["S"],
        'Т' => &["T"],
        'Ћ' => &["C"],
        'У' | 'Ў' => &["U"],
        'Ф' => &["F"],
        'Х' => &["KH"],
        'Ц' => &["TS"],
        'Ч' => &["CH"],
        'Ш' => &["SH"],
        'Щ' => &["SHCH"],
        'Ъ' => &["IE"],
        'Ы' => &["Y"],
        'Ь' => &[""],
        'Ю' => &["IU", "YU"],
        'Я' => &["IA", "YA"],
        _ => return None,
    })
}

/// Printed name to tokens; `None` when a character has no transliteration
/// (the comparison is then not possible, rather than failed).
fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let mut out = Vec::with_capacity(s.len());
    let push_space = |out: &mut Vec<Tok>| {
        if !matches!(out.last(), None | Some(Tok::Space)) {
            out.push(Tok::Space);
        }
    };
    for c in s.chars().take(MAX_VIZ_CHARS + 1) {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => out.push(Tok::Lit(c.to_ascii_uppercase() as u8)),
            '\'' | '’' | '‘' | '`' | 'ʼ' | '´' => {}
            c if c.is_whitespace() || matches!(c, '-' | '‐' | '–' | ',' | '.' | '<' | '_') => {
                push_space(&mut out)
            }
            'ß' => out.push(Tok::Alt(&["SS"])),
            c => {
                let mut up = c.to_uppercase();
                let (Some(u), None) = (up.next(), up.next()) else {
                    return None;
                };
                out.push(Tok::Alt(translit(u)?));
            }
        }
    }
    if out.last() == Some(&Tok::Space) {
        out.pop();
    }
    Some(out)
}

/// Whether `toks` spell `target` (exactly, or with `prefix` as a prefix of
/// the printed spelling). Memoised on positions, so linear in
/// `toks.len() * target.len()`.
fn spells(toks: &[Tok], target: &[u8], prefix: bool) -> bool {
    fn go(
        toks: &[Tok],
        target: &[u8],
        i: usize,
        j: usize,
        prefix: bool,
        dead: &mut [bool],
    ) -> bool {
        if j == target.len() && (i == toks.len() || prefix) {
            return true;
        }
        if i == toks.len() {
            return false;
        }
        let key = i * (target.len() + 1) + j;
        if dead[key] {
            return false;
        }
        let ok = match toks[i] {
            Tok::Lit(c) => {
                target.get(j) == Some(&c) && go(toks, target, i + 1, j + 1, prefix, dead)
            }
            Tok::Space => {
                target.get(j) == Some(&b' ') && go(toks, target, i + 1, j + 1, prefix, dead)
            }
            Tok::Alt(alts) => alts.iter().any(|a| {
                let a = a.as_bytes();
                let end = (j + a.len()).min(target.len());
                // A truncated MRZ may cut a transliteration in half.
                let fits = target[j..].starts_with(a)
                    || (prefix && end == target.len() && a.starts_with(&target[j..]));
                fits && go(
                    toks,
                    target,
                    i + 1,
                    (j + a.len()).min(target.len()),
                    prefix,
                    dead,
                )
            }),
        };
        if !ok {
            dead[key] = true;
        }
        ok
    }
    let mut dead = vec![false; (toks.len() + 1) * (target.len() + 1)];
    go(toks, target, 0, 0, prefix, &mut dead)
}

pub(super) fn name_check(name: &'static str, printed: &str, mrz: &str, truncated: bool) -> Check {
    if printed.chars().count() > MAX_VIZ_CHARS {
        return Check::new(name, Fail, "printed name is implausibly long");
    }
    let Some(toks) = tokenize(printed) else {
        return Check::new(
            name,
            Warn,
            "printed name has characters without an ICAO transliteration; not compared",
        );
    };
    let target = mrz.as_bytes();
    if spells(&toks, target, false) {
        Check::new(
            name,
            Pass,
            "printed name matches the MRZ after transliteration",
        )
    } else if truncated && !target.is_empty() && spells(&toks, target, true) {
        Check::new(name, Warn, "MRZ name is a truncation of the printed name")
    } else {
        Check::new(
            name,
            Fail,
            "printed name differs from the MRZ after transliteration",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transliterated_names() {
        let ok =
            |printed: &str, mrz: &str| spells(&tokenize(printed).unwrap(), mrz.as_bytes(), false);
        assert!(ok("Müller", "MUELLER"));
        assert!(ok("Müller", "MULLER"));
        assert!(ok("Strauß", "STRAUSS"));
        assert!(ok("Ødegård", "OEDEGAARD"));
        assert!(ok("Ødegård", "ODEGARD"));
        assert!(ok("Æsir", "AESIR"));
        assert!(ok("Núñez", "NUNEZ"));
        assert!(ok("O'Brien-Smith", "OBRIEN SMITH"));
        assert!(ok("  anna   maría ", "ANNA MARIA"));
        assert!(ok("Ерікссон", "ERIKSSON") || ok("Ерикссон", "ERIKSSON"));
        assert!(ok("Горбачёв", "GORBACHEV"));
        assert!(!ok("Müller", "MILLER"));
        assert!(!ok("Anna", "ANNA MARIA"));
        assert!(spells(
            &tokenize("Mustermann-Schmidtke").unwrap(),
            b"MUSTERMANN SCHMI",
            true
        ));
        assert!(tokenize("李").is_none());
    }
}
