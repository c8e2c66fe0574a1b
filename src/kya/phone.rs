//! Phone numbers: parsed and validated with the `phonenumber` crate (Google's libphonenumber
//! metadata), then the number's country compared with the declared one.

use super::{alpha2, Check, Status};

/// `phone_valid` and `phone_country`.
pub fn checks(phone: Option<&str>, country: Option<&str>) -> Vec<Check> {
    let Some(raw) = phone else {
        return vec![
            Check::new("phone_valid", Status::Skipped, "no phone declared"),
            Check::new("phone_country", Status::Skipped, "no phone declared"),
        ];
    };
    let hint = country
        .and_then(alpha2)
        .and_then(|a2| a2.parse::<phonenumber::country::Id>().ok());
    let number = match phonenumber::parse(hint, raw) {
        Ok(n) if phonenumber::is_valid(&n) => n,
        Ok(_) | Err(_) => {
            return vec![
                Check::new("phone_valid", Status::Fail, "not a valid phone number"),
                Check::new(
                    "phone_country",
                    Status::Skipped,
                    "the phone number is not valid",
                ),
            ]
        }
    };
    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
    let region = number.country().id().map(|id| id.as_ref().to_owned());
    let valid = Check::new("phone_valid", Status::Pass, format!("valid ({e164})"));
    let country_check = match (region, country.and_then(alpha2)) {
        (Some(r), Some(c)) if r == c => Check::new(
            "phone_country",
            Status::Pass,
            format!("phone country {r} = declared {c}"),
        ),
        (Some(r), Some(c)) => Check::new(
            "phone_country",
            Status::Fail,
            format!("phone country {r} ≠ declared {c}"),
        ),
        (None, _) => Check::new(
            "phone_country",
            Status::Skipped,
            "the number has no single country",
        ),
        (_, None) => Check::new("phone_country", Status::Skipped, "no country declared"),
    };
    vec![valid, country_check]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers_are_validated_and_placed() {
        let c = checks(Some("+44 20 7946 0958"), Some("GBR"));
        assert_eq!(c[0].status, Status::Pass, "{c:?}");
        assert_eq!(c[1].status, Status::Pass, "{c:?}");
        let c = checks(Some("+33 1 42 68 53 00"), Some("Germany"));
        assert_eq!(c[0].status, Status::Pass, "{c:?}");
        assert_eq!(c[1].status, Status::Fail, "{c:?}");
        assert!(c[1].detail.contains("FR"));
    }

    #[test]
    fn national_numbers_use_the_declared_country_and_junk_fails() {
        let c = checks(Some("030 901820"), Some("DE"));
        assert_eq!(c[0].status, Status::Pass, "{c:?}");
        assert_eq!(checks(Some("12"), Some("DE"))[0].status, Status::Fail);
        assert_eq!(checks(None, None)[0].status, Status::Skipped);
    }
}
