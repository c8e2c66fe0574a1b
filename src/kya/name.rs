//! The declared name against the document's: both transliterated to ASCII (deunicode), upper
//! case, split into words; each declared word is paired with its most similar document word
//! (Jaro–Winkler), so order does not matter ("Anna Maria Eriksson" vs `ERIKSSON, ANNA MARIA`) and
//! a missing middle name only costs its share.

use super::{Check, Status};
use crate::document::ascii_words as words;

/// Similarity at or above which names cohere.
pub const MATCH_THRESHOLD: f64 = 0.85;

/// Order-insensitive similarity of two names in [0, 1].
pub fn similarity(declared: &str, document: &str) -> f64 {
    let (a, b) = (words(declared), words(document));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    // Score from the side with fewer words, so a name with an extra middle name still matches
    // the shorter one, then scale by coverage so dropping most of a name is not free.
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let best: f64 = short
        .iter()
        .map(|w| {
            long.iter()
                .map(|v| strsim::jaro_winkler(w, v))
                .fold(0.0, f64::max)
        })
        .sum::<f64>()
        / short.len() as f64;
    let coverage = short.len() as f64 / long.len() as f64;
    best * (0.8 + 0.2 * coverage)
}

/// The `name_match` check.
pub fn check(declared: Option<&str>, document: Option<&str>) -> Check {
    match (declared, document) {
        (Some(d), Some(doc)) => {
            let s = similarity(d, doc);
            let status = if s >= MATCH_THRESHOLD {
                Status::Pass
            } else {
                Status::Fail
            };
            Check::new(
                "name_match",
                status,
                format!("name similarity {s:.2} (threshold {MATCH_THRESHOLD})"),
            )
        }
        (None, _) => Check::new("name_match", Status::Skipped, "no name declared"),
        (_, None) => Check::new(
            "name_match",
            Status::Skipped,
            "no name read from the document",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_accents_and_case_do_not_matter() {
        assert!(similarity("Anna Maria Eriksson", "ERIKSSON ANNA MARIA") > 0.99);
        assert!(similarity("José Müller", "MULLER JOSE") > 0.99);
        assert!(similarity("Anna Eriksson", "ERIKSSON ANNA MARIA") >= MATCH_THRESHOLD);
    }

    #[test]
    fn different_people_do_not_match() {
        assert!(similarity("John Smith", "ERIKSSON ANNA MARIA") < 0.7);
        assert_eq!(
            check(Some("John Smith"), Some("ERIKSSON ANNA")).status,
            Status::Fail
        );
        assert_eq!(check(None, Some("X")).status, Status::Skipped);
        assert_eq!(similarity("", "ANNA"), 0.0);
    }

    #[test]
    fn a_typo_still_matches() {
        assert!(similarity("Ana Maria Eriksson", "ERIKSSON ANNA MARIA") >= MATCH_THRESHOLD);
    }
}
