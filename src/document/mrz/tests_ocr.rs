//! Tests of OCR confusion repair: damaged readings of the ICAO specimens must
//! come back to the specimen exactly when the check digits or the country
//! table confirm the substitutions, and be left alone (with a warning) when
//! they do not.

use super::tests::{fix_td3, parsed, TD1, TD3};
use super::*;

fn r(line: usize, position: usize, from: char, to: char) -> Repair {
    Repair {
        line,
        position,
        from,
        to,
    }
}

/// Parses `damaged`, asserts the repairs, and that the result equals the
/// parse of `clean` apart from repairs and warnings.
fn assert_repairs_to(damaged: &[&str], clean: &[&str], want: &[Repair]) -> Parsed {
    let got = parsed(damaged);
    assert_eq!(got.repairs, want, "warnings: {:?}", got.warnings);
    let clean = parsed(clean);
    assert_eq!(got.mrz, clean.mrz);
    assert_eq!(got.fields, clean.fields);
    assert_eq!(got.checks, clean.checks);
    got
}

#[test]
fn nationality_and_issuer_ut0_repair_to_uto() {
    let l1 = TD3[0].replacen("UTO", "UT0", 1);
    let l2 = TD3[1].replacen("UTO", "UT0", 1);
    assert_repairs_to(&[&l1, &l2], &TD3, &[r(1, 5, '0', 'O'), r(2, 13, '0', 'O')]);
    // Nationality alone (line 2 only), as in `...C36UT07408122...`.
    assert_repairs_to(&[TD3[0], &l2], &TD3, &[r(2, 13, '0', 'O')]);
}

#[test]
fn letters_in_digit_fields_repair_when_check_digits_hold() {
    // Birth 740812 read 74OBI2, expiry 120415 read I2O4IS, document-number
    // check 6 read G, composite 0 read O.
    let l2 = "L898902C3GUTO74OBI22FI2O4IS9ZE184226B<<<<<1O";
    let p = assert_repairs_to(
        &[TD3[0], l2],
        &TD3,
        &[
            r(2, 10, 'G', '6'),
            r(2, 16, 'O', '0'),
            r(2, 17, 'B', '8'),
            r(2, 18, 'I', '1'),
            r(2, 22, 'I', '1'),
            r(2, 24, 'O', '0'),
            r(2, 26, 'I', '1'),
            r(2, 27, 'S', '5'),
            r(2, 44, 'O', '0'),
        ],
    );
    assert!(p.warnings.iter().all(|w| !w.contains("not applied")));
    // TD1: Q and D also read as 0, Z as 2.
    let l2 = TD1[1]
        .replacen("7408122", "74D812Z", 1)
        .replacen("1204159", "12Q4159", 1);
    assert_repairs_to(
        &[TD1[0], &l2, TD1[2]],
        &TD1,
        &[r(2, 3, 'D', '0'), r(2, 7, 'Z', '2'), r(2, 11, 'Q', '0')],
    );
}

#[test]
fn digits_in_names_and_document_code() {
    let l1 = "P<UTOERIKSS0N<<ANNA<MAR1A<<<<<<<<<<<<<<<<<<<";
    assert_repairs_to(
        &[l1, TD3[1]],
        &TD3,
        &[r(1, 12, '0', 'O'), r(1, 24, '1', 'I')],
    );
    let l3 = TD1[2].replacen("ERIKSSON", "ER1K55ON", 1);
    let l1 = TD1[0].replacen("I<", "1<", 1);
    assert_repairs_to(
        &[&l1, TD1[1], &l3],
        &TD1,
        &[
            r(1, 1, '1', 'I'),
            r(3, 3, '1', 'I'),
            r(3, 5, '5', 'S'),
            r(3, 6, '5', 'S'),
        ],
    );
}

#[test]
fn german_d_read_as_zero() {
    let clean_l1 = &format!("{:<<44}", "P<D<<MUSTERMANN<<ERIKA");
    let clean_l2 = fix_td3(
        &[
            "C01X00T47",
            "0",
            "D<<",
            "640812",
            "0",
            "F",
            "271031",
            "0",
            "<<<<<<<<<<<<<<",
            "00",
        ]
        .concat(),
    );
    let l1 = clean_l1.replacen("P<D", "P<0", 1);
    let l2 = clean_l2.replacen("D<<", "0<<", 1);
    let p = assert_repairs_to(
        &[&l1, &l2],
        &[clean_l1, &clean_l2],
        &[r(1, 3, '0', 'D'), r(2, 11, '0', 'D')],
    );
    assert_eq!(p.fields.nationality.alpha3.as_deref(), Some("DEU"));
}

#[test]
fn filler_read_as_k_in_check_digit() {
    let clean = fix_td3(&format!("{:<<44}", "L898902C3<UTO7408122F1204159"));
    let mut clean = clean.into_bytes();
    clean[42] = b'<';
    // With an unused personal number the check digit may be `<`, which
    // counts 0 in the composite just like the computed `0`.
    let clean = String::from_utf8(clean).unwrap();
    let mut damaged = clean.clone().into_bytes();
    damaged[42] = b'K';
    let damaged = String::from_utf8(damaged).unwrap();
    assert_repairs_to(
        &[TD3[0], &damaged],
        &[TD3[0], &clean],
        &[r(2, 43, 'K', '<')],
    );
}

#[test]
fn unconfirmed_repairs_are_not_applied() {
    // Letter in the birth date but the expiry check digit is wrong too: the
    // repair cannot make every check digit hold, so nothing changes.
    let l2 = "L898902C36UTO74O8122F1204158ZE184226B<<<<<10";
    let p = parsed(&[TD3[0], l2]);
    assert!(p.repairs.is_empty());
    assert!(
        p.warnings.iter().any(|w| w.contains("not applied")),
        "{:?}",
        p.warnings
    );
    assert_eq!(p.check("mrz_format").unwrap().status, CheckStatus::Fail);
    assert_eq!(
        p.check("mrz_checksum_birth_date").unwrap().status,
        CheckStatus::Fail
    );
    assert_eq!(p.fields.birth_date, None);

    // A country code that cannot become a known one.
    let l2 = TD3[1].replacen("UTO", "U70", 1);
    let p = parsed(&[TD3[0], &l2]);
    assert!(p.repairs.is_empty());
    assert_eq!(
        p.check("nationality_code_valid").unwrap().status,
        CheckStatus::Fail
    );

    // More than MAX_SUSPECTS impossible characters: give up.
    let l2 = "L898902C36UTOOOOOOOOFOOOOOOOZE184226B<<<<<10";
    let p = parsed(&[TD3[0], l2]);
    assert!(p.repairs.is_empty());
    assert!(
        p.warnings.iter().any(|w| w.contains("not attempted")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn country_repair_picks_the_only_known_code() {
    // 0 may be O or D in a country code; only one reading is a known code.
    for (read, want) in [
        ("0MN", "OMN"),
        ("0OM", "DOM"),
        ("00M", "DOM"),
        ("P0L", "POL"),
    ] {
        let p = parsed(&[TD3[0], &td3_with_nationality(read)]);
        assert_eq!(p.fields.nationality.code, want, "{read}");
        assert_eq!(p.repairs.len(), read.matches('0').count());
    }
}

/// The specimen's TD3 second line with another nationality, check digits recomputed.
fn td3_with_nationality(nat: &str) -> String {
    fix_td3(
        &[
            "L898902C3",
            "0",
            nat,
            "740812",
            "0",
            "F",
            "120415",
            "0",
            "ZE184226B<<<<<",
            "00",
        ]
        .concat(),
    )
}

#[test]
fn ambiguity_is_refused() {
    // `GB0`: GBO (British Overseas Citizen) and GBD (British Overseas
    // Territories Citizen) are both known, so the reading stays unrepaired.
    let l2 = td3_with_nationality("GB0");
    let p = parsed(&[TD3[0], &l2]);
    assert!(p.repairs.is_empty());
    assert_eq!(p.fields.nationality.code, "GB0");
    assert!(
        p.warnings.iter().any(|w| w.contains("more than one")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn an_o_read_for_zero_in_a_document_number_is_repaired_by_its_check_digit() {
    let clean = [
        "I<CANPXAUXAX0R1<<<<<<<<<<<<<<<",
        "5501085M3111253CAN<<<<<<<<<<<8",
        "SCHMIDT<<MARCO<<<<<<<<<<<<<<<<",
    ];
    let damaged = ["I<CANPXAUXAXOR1<<<<<<<<<<<<<<<", clean[1], clean[2]];
    assert_repairs_to(&damaged, &clean, &[r(1, 13, 'O', '0')]);
    // An O the check digits accept as it is stays an O.
    let p = parsed(&["I<CANPXAUXAXOR7<<<<<<<<<<<<<<<", clean[1], clean[2]]);
    assert!(p.repairs.iter().all(|x| x.from != 'O'), "{:?}", p.repairs);
}
