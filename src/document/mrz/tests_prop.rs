//! Property tests of the parser: arbitrary text and line arrays, zones of
//! MRZ characters at valid lengths, and randomly damaged specimens never
//! panic and each parse takes under 1 ms (see [`assert_fast`]).

use proptest::prelude::*;
use time::Date;

use super::tests::{assert_fast, MRV_A, MRV_B, TD1, TD2, TD3, TODAY};
use super::*;

fn mrz_line(len: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('<'),
            Just('<'),
            proptest::char::range('A', 'Z'),
            proptest::char::range('0', '9')
        ],
        len,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn specimen_mutation() -> impl Strategy<Value = Vec<String>> {
    let specs: Vec<Vec<String>> = [&TD1[..], &TD2, &TD3, &MRV_A, &MRV_B]
        .iter()
        .map(|s| s.iter().map(|l| (*l).to_owned()).collect())
        .collect();
    (
        proptest::sample::select(specs),
        proptest::collection::vec((0usize..3, 0usize..44, "[A-Z0-9<]"), 0..12),
    )
        .prop_map(|(mut spec, edits)| {
            for (line, pos, ch) in edits {
                let line = line % spec.len();
                let pos = pos % spec[line].len();
                spec[line].replace_range(pos..pos + 1, &ch);
            }
            spec
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_handled_quickly(s in any::<String>()) {
        let input = MrzInput::Text(s);
        assert_fast(|| parse(&input, TODAY));
    }

    #[test]
    fn any_lines_are_handled_quickly(v in proptest::collection::vec(any::<String>(), 0..6)) {
        let input = MrzInput::Lines(v);
        assert_fast(|| parse(&input, TODAY));
    }

    #[test]
    fn alphabet_zones_at_valid_lengths(
        shape in 0usize..3,
        l in proptest::collection::vec(mrz_line(44), 3),
        prefix in "(P<|I<|V<|ID|AC|IR|D<)",
    ) {
        let (n, len) = [(3, 30), (2, 36), (2, 44)][shape];
        let mut rows: Vec<String> = l.iter().take(n).map(|r| r[..len].to_owned()).collect();
        rows[0].replace_range(0..2, &prefix);
        let input = MrzInput::Lines(rows);
        let p = parse(&input, TODAY).expect("valid lengths and alphabet always parse");
        prop_assert!(p.checks.len() >= 12);
        assert_fast(|| parse(&input, TODAY));
    }

    #[test]
    fn damaged_specimens_never_panic(spec in specimen_mutation(), today in 0i32..80_000) {
        let today = Date::from_julian_day(2_400_000 + today).unwrap();
        let input = MrzInput::Lines(spec);
        let p = parse(&input, today).expect("edits keep lengths");
        prop_assert!(p.repairs.len() <= repair::MAX_SUSPECTS);
        assert_fast(|| parse(&input, today));
    }
}
