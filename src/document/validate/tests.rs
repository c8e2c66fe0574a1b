//! Tests of the validation verdict: option-dependent checks, VIZ
//! consistency, warnings, JSON shape, confidence, and a property test that
//! validation never panics and stays under 1 ms.

use std::collections::BTreeSet;

use proptest::prelude::*;
use time::macros::date;

use super::*;

const TD3: [&str; 2] = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
];

fn input() -> MrzInput {
    MrzInput::Text(TD3.join("\n"))
}

/// A day on which the specimen (expiry 2012-04-15) is still valid.
fn opts_2010() -> ValidateOptions {
    ValidateOptions::new(date!(2010 - 01 - 01))
}

fn status(v: &Validation, name: &str) -> CheckStatus {
    v.check(name)
        .unwrap_or_else(|| panic!("no check {name}: {:#?}", v.checks))
        .status
}

fn failing(v: &Validation) -> BTreeSet<&str> {
    v.checks
        .iter()
        .filter(|c| c.status == Fail)
        .map(|c| &*c.name)
        .collect()
}

fn viz_ok() -> VizFields {
    VizFields {
        surname: Some("Eriksson".into()),
        given_names: Some("Anna María".into()),
        document_number: Some("L898902C3".into()),
        birth_date: Some("12 AUG/AOÛT 74".into()),
        expiry_date: Some("15.04.2012".into()),
        issue_date: Some("2002-04-16".into()),
        sex: Some("F/F".into()),
        nationality: Some("UTO".into()),
        issuing_country: Some(" uto ".into()),
    }
}

#[test]
fn check_names_are_exactly_the_documented_ones() {
    let v = validate(&input(), Some(&viz_ok()), &opts_2010()).unwrap();
    let names: Vec<&str> = v.checks.iter().map(|c| &*c.name).collect();
    assert_eq!(
        names,
        [
            "mrz_format",
            "mrz_checksum_document_number",
            "mrz_checksum_birth_date",
            "mrz_checksum_expiry",
            "mrz_checksum_optional",
            "mrz_checksum_composite",
            "birth_date_valid",
            "expiry_date_valid",
            "issuer_code_valid",
            "nationality_code_valid",
            "sex_valid",
            "field_lengths",
            "not_expired",
            "age_plausible",
            "viz_mrz_consistency_surname",
            "viz_mrz_consistency_given_names",
            "viz_mrz_consistency_document_number",
            "viz_mrz_consistency_birth_date",
            "viz_mrz_consistency_expiry_date",
            "viz_mrz_consistency_sex",
            "viz_mrz_consistency_nationality",
            "viz_mrz_consistency_issuing_country",
        ]
    );
    assert!(v.document_valid, "{:#?}", v.checks);
    assert!(failing(&v).is_empty());
    assert!(
        v.checks
            .iter()
            .filter(|c| c.name.starts_with("viz_"))
            .all(|c| c.status == Pass),
        "{:#?}",
        v.checks
    );
    // Without VIZ there are no viz_ checks.
    let v = validate(&input(), None, &opts_2010()).unwrap();
    assert_eq!(v.checks.len(), 14);
}

#[test]
fn expiry_makes_the_document_invalid_unless_disabled() {
    let today = date!(2026 - 05 - 20);
    let v = validate(&input(), None, &ValidateOptions::new(today)).unwrap();
    assert!(!v.document_valid);
    assert_eq!(failing(&v), BTreeSet::from(["not_expired"]));
    assert!(v
        .check("not_expired")
        .unwrap()
        .detail
        .contains("2012-04-15"));
    assert!(v.confidence <= 0.5);
    let v = validate(
        &input(),
        None,
        &ValidateOptions {
            check_expiry: false,
            ..ValidateOptions::new(today)
        },
    )
    .unwrap();
    assert!(v.document_valid);
    assert_eq!(status(&v, "not_expired"), Skipped);
    // The expiry day itself is still valid.
    let v = validate(&input(), None, &ValidateOptions::new(date!(2012 - 04 - 15))).unwrap();
    assert_eq!(status(&v, "not_expired"), Pass);
    let v = validate(&input(), None, &ValidateOptions::new(date!(2012 - 04 - 16))).unwrap();
    assert_eq!(status(&v, "not_expired"), Fail);
}

#[test]
fn age_bounds_are_configurable() {
    // Born 1974-08-12: 35 on 2010-01-01.
    let base = opts_2010();
    let run = |o: ValidateOptions| status(&validate(&input(), None, &o).unwrap(), "age_plausible");
    assert_eq!(run(base), Pass);
    assert_eq!(
        run(ValidateOptions {
            min_age: Some(35),
            ..base
        }),
        Pass
    );
    assert_eq!(
        run(ValidateOptions {
            min_age: Some(36),
            ..base
        }),
        Fail
    );
    assert_eq!(
        run(ValidateOptions {
            max_age: 35,
            ..base
        }),
        Pass
    );
    assert_eq!(
        run(ValidateOptions {
            max_age: 34,
            ..base
        }),
        Fail
    );
    // Birthday boundary: 36 on 2010-08-12, still 35 the day before.
    assert_eq!(
        run(ValidateOptions {
            min_age: Some(36),
            ..ValidateOptions::new(date!(2010 - 08 - 12))
        }),
        Pass
    );
    assert_eq!(
        run(ValidateOptions {
            min_age: Some(36),
            ..ValidateOptions::new(date!(2010 - 08 - 11))
        }),
        Fail
    );
    // Birth dates are never in the future: on 1 Jan 2010 "100102" reads as
    // 1910-01-02 (age 99), which fails a 98-year maximum.
    let l2 = super::super::mrz::tests::fix_td3("L898902C3<UTO100102<F1204159ZE184226B<<<<<<<");
    let zone = MrzInput::Text(format!("{}\n{l2}", TD3[0]));
    let v = validate(
        &zone,
        None,
        &ValidateOptions {
            max_age: 98,
            ..base
        },
    )
    .unwrap();
    assert_eq!(v.fields.birth_date.as_deref(), Some("1910-01-02"));
    assert_eq!(status(&v, "age_plausible"), Fail);
    assert_eq!(
        status(&validate(&zone, None, &base).unwrap(), "age_plausible"),
        Pass
    );
}

/// Changes one printed field.
type Mutate = fn(&mut VizFields);

#[test]
fn each_viz_mismatch_fails_its_own_check() {
    let cases: [(&str, Mutate); 8] = [
        ("surname", |v| v.surname = Some("Eriksen".into())),
        ("given_names", |v| v.given_names = Some("Anna".into())),
        ("document_number", |v| {
            v.document_number = Some("L898902C4".into())
        }),
        ("birth_date", |v| v.birth_date = Some("1974-08-13".into())),
        ("expiry_date", |v| {
            v.expiry_date = Some("15 APR 2013".into())
        }),
        ("sex", |v| v.sex = Some("M".into())),
        ("nationality", |v| v.nationality = Some("SWE".into())),
        ("issuing_country", |v| {
            v.issuing_country = Some("Sweden".into())
        }),
    ];
    for (field, mutate) in cases {
        let mut viz = viz_ok();
        mutate(&mut viz);
        let v = validate(&input(), Some(&viz), &opts_2010()).unwrap();
        let name = format!("viz_mrz_consistency_{field}");
        assert_eq!(failing(&v), BTreeSet::from([name.as_str()]), "{field}");
        assert!(!v.document_valid);
    }
}

#[test]
fn viz_normalisation_is_tolerant() {
    let viz = VizFields {
        surname: Some("ERIKSSON".into()),
        given_names: Some("anna-maria".into()),
        document_number: Some("l 898902 c3".into()),
        birth_date: Some("12.08.1974".into()),
        expiry_date: Some("2012-04-15".into()),
        sex: Some("female".into()),
        nationality: Some("UTO".into()),
        ..VizFields::default()
    };
    let v = validate(&input(), Some(&viz), &opts_2010()).unwrap();
    assert!(failing(&v).is_empty(), "{:#?}", v.checks);
    // Unreadable printed values are not compared rather than failed.
    let viz = VizFields {
        surname: Some("埃里克松".into()),
        birth_date: Some("sometime in 1974".into()),
        sex: Some("?".into()),
        nationality: Some("Utopian".into()),
        given_names: Some("   ".into()),
        ..VizFields::default()
    };
    let v = validate(&input(), Some(&viz), &opts_2010()).unwrap();
    assert!(v.document_valid);
    let viz_checks: Vec<_> = v
        .checks
        .iter()
        .filter(|c| c.name.starts_with("viz_"))
        .map(|c| c.status)
        .collect();
    assert_eq!(viz_checks, [Warn, Warn, Warn, Warn]);
    // German D<< matches DEU, D, Germany and DE.
    let l1 = "P<D<<MUSTERMANN<<ERIKA<<<<<<<<<<<<<<<<<<<<<<";
    let l2 = super::super::mrz::tests::fix_td3("C01X00T470D<<6408120F2710310<<<<<<<<<<<<<<00");
    for nat in ["DEU", "D", "Germany", "de", "Deutschland"] {
        let viz = VizFields {
            nationality: Some(nat.into()),
            surname: Some("Mustermann".into()),
            ..VizFields::default()
        };
        let v = validate(
            &MrzInput::Lines(vec![l1.into(), l2.clone()]),
            Some(&viz),
            &opts_2010(),
        )
        .unwrap();
        let want = if nat == "Deutschland" { Warn } else { Pass };
        assert_eq!(status(&v, "viz_mrz_consistency_nationality"), want, "{nat}");
    }
}

#[test]
fn truncated_name_matches_as_prefix_with_warning() {
    let l1 = &"P<UTOSCHMIDT<<MARIA<ANNEGRET<ELISABETH<JOHANNA"[..44];
    let l2 = TD3[1];
    let viz = VizFields {
        given_names: Some("Maria Annegret Elisabeth Johanna".into()),
        ..VizFields::default()
    };
    let v = validate(
        &MrzInput::Lines(vec![l1.into(), l2.into()]),
        Some(&viz),
        &opts_2010(),
    )
    .unwrap();
    assert!(v.fields.name_possibly_truncated);
    assert_eq!(status(&v, "viz_mrz_consistency_given_names"), Warn);
    assert!(v.warnings.iter().any(|w| w.contains("truncated")));
    assert!(v.document_valid);
}

#[test]
fn issue_date_warnings() {
    let warn = |issue: &str| {
        let viz = VizFields {
            issue_date: Some(issue.into()),
            ..VizFields::default()
        };
        validate(&input(), Some(&viz), &opts_2010())
            .unwrap()
            .warnings
    };
    let ten = |w: &Vec<Cow<'static, str>>| w.iter().any(|w| w.contains("more than 10 years"));
    assert!(ten(&warn("2002-04-14")));
    assert!(!ten(&warn("2002-04-15")));
    assert!(!ten(&warn("15.04.2007")));
    assert!(warn("2011-01-01").iter().any(|w| w.contains("future")));
    assert!(warn("2013-01-01").iter().any(|w| w.contains("not after")));
    assert!(warn("soon")
        .iter()
        .any(|w| w.contains("not a recognised date")));
}

#[test]
fn json_shape() {
    let l2 = TD3[1].replacen("UTO", "UT0", 1);
    let v = validate(
        &MrzInput::Lines(vec![TD3[0].into(), l2]),
        None,
        &opts_2010(),
    )
    .unwrap();
    let j = serde_json::to_value(&v).unwrap();
    assert_eq!(j["document_valid"], true);
    assert_eq!(j["format"], "td3");
    assert_eq!(
        j["checks"][0],
        serde_json::json!({"name": "mrz_format", "status": "pass", "detail": "TD3: 2 lines of 44"})
    );
    assert_eq!(j["checks"][4]["status"], "pass");
    assert_eq!(j["checks"][8]["name"], "issuer_code_valid");
    assert_eq!(j["checks"][8]["status"], "warn");
    assert_eq!(
        j["repairs"],
        serde_json::json!([{"line": 2, "position": 13, "from": "0", "to": "O"}])
    );
    assert_eq!(j["fields"]["birth_date"], "1974-08-12");
    assert_eq!(j["fields"]["document_type"], "passport");
    assert_eq!(j["fields"]["sex"], "F");
    assert_eq!(j["fields"]["nationality"]["code"], "UTO");
    assert_eq!(j["fields"]["nationality"]["kind"], "specimen");
    assert!(j["confidence"].as_f64().unwrap() > 0.8);
    let back: Validation = serde_json::from_value(j).unwrap();
    assert_eq!(back, v);
    let skipped = validate(
        &MrzInput::Lines(vec![
            "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<".into(),
            "L8988901C4XXX4009078F9612109<<<<<<<<".into(),
        ]),
        None,
        &opts_2010(),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(skipped.check("mrz_checksum_composite").unwrap()).unwrap()["status"],
        "skipped"
    );
    let viz: VizFields = serde_json::from_str(r#"{"surname": "Eriksson", "unknown": 1}"#).unwrap();
    assert_eq!(viz.surname.as_deref(), Some("Eriksson"));
}

#[test]
fn confidence_orders_sensibly() {
    let clean = validate(&input(), Some(&viz_ok()), &opts_2010())
        .unwrap()
        .confidence;
    let repaired = {
        let l2 = TD3[1].replacen("7408122", "74O8122", 1);
        validate(
            &MrzInput::Lines(vec![TD3[0].into(), l2]),
            Some(&viz_ok()),
            &opts_2010(),
        )
        .unwrap()
        .confidence
    };
    let bad = {
        let l2 = TD3[1].replacen("7408122", "7408123", 1);
        validate(
            &MrzInput::Lines(vec![TD3[0].into(), l2]),
            Some(&viz_ok()),
            &opts_2010(),
        )
        .unwrap()
    };
    assert!(
        clean > repaired && repaired > bad.confidence,
        "{clean} {repaired} {}",
        bad.confidence
    );
    assert!((0.0..=1.0).contains(&clean) && clean > 0.9);
    assert!(!bad.document_valid && bad.confidence <= 0.5);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn validation_never_panics(
        text in any::<String>(),
        fields in proptest::collection::vec(proptest::option::of(any::<String>()), 9),
        edits in proptest::collection::vec((0usize..2, 0usize..44, "[A-Z0-9<]"), 0..8),
        today in 0i32..80_000,
        min_age in proptest::option::of(0u32..200),
        max_age in 0u32..200,
    ) {
        let viz = VizFields {
            surname: fields[0].clone(), given_names: fields[1].clone(), document_number: fields[2].clone(),
            birth_date: fields[3].clone(), expiry_date: fields[4].clone(), issue_date: fields[5].clone(),
            sex: fields[6].clone(), nationality: fields[7].clone(), issuing_country: fields[8].clone(),
        };
        let today = Date::from_julian_day(2_400_000 + today).unwrap();
        let opts = ValidateOptions { today, check_expiry: true, min_age, max_age };
        let mut rows: Vec<String> = TD3.iter().map(|s| (*s).to_owned()).collect();
        for (line, pos, ch) in edits {
            rows[line].replace_range(pos..pos + 1, &ch);
        }
        let damaged = MrzInput::Lines(rows);
        let garbage = MrzInput::Text(text);
        crate::document::mrz::tests::assert_fast(|| validate(&damaged, Some(&viz), &opts));
        crate::document::mrz::tests::assert_fast(|| validate(&garbage, Some(&viz), &opts));
        let v = validate(&damaged, Some(&viz), &opts).expect("lengths kept");
        prop_assert!((0.0..=1.0).contains(&v.confidence));
        prop_assert_eq!(v.document_valid, v.checks.iter().all(|c| c.status != Fail));
    }
}
