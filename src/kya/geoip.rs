//! The applicant's IP address against the declared country, through a MaxMind-format (`.mmdb`)
//! country database the operator provides (GeoLite2/GeoIP2 Country or compatible). Without one the
//! check is `skipped`: no database ships with kycd (MaxMind's licence forbids redistributing it).

use std::net::IpAddr;
use std::path::Path;

use maxminddb::geoip2;

use super::{alpha2, Check, Status};

/// An opened country database.
pub struct GeoIp {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl GeoIp {
    /// Opens the database at `path`.
    pub fn open(path: &Path) -> Result<GeoIp, String> {
        maxminddb::Reader::open_readfile(path)
            .map(|reader| GeoIp { reader })
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The ISO alpha-2 country of `ip`, when the database knows it.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let c: geoip2::Country = self.reader.lookup(ip).ok()?;
        c.country?.iso_code.map(str::to_owned)
    }
}

/// `ip_country`.
pub fn check(db: Option<&GeoIp>, ip: Option<&str>, country: Option<&str>) -> Check {
    let name = "ip_country";
    let Some(ip) = ip else {
        return Check::new(name, Status::Skipped, "no IP address declared");
    };
    let Ok(ip) = ip.trim().parse::<IpAddr>() else {
        return Check::new(name, Status::Fail, format!("`{ip}` is not an IP address"));
    };
    let Some(db) = db else {
        return Check::new(name, Status::Skipped, "no IP country database configured");
    };
    let Some(declared) = country.and_then(alpha2) else {
        return Check::new(name, Status::Skipped, "no country declared");
    };
    match db.country(ip) {
        Some(c) if c == declared => Check::new(
            name,
            Status::Pass,
            format!("IP country {c} = declared {declared}"),
        ),
        Some(c) => Check::new(
            name,
            Status::Fail,
            format!("IP country {c} ≠ declared {declared}"),
        ),
        None => Check::new(
            name,
            Status::Skipped,
            format!("{ip} is not in the database"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_database_the_check_is_skipped_and_bad_input_fails() {
        assert_eq!(
            check(None, Some("192.0.2.1"), Some("FR")).status,
            Status::Skipped
        );
        assert_eq!(check(None, None, Some("FR")).status, Status::Skipped);
        assert_eq!(
            check(None, Some("300.1.1.1"), Some("FR")).status,
            Status::Fail
        );
        let bad = std::env::temp_dir().join("kycd-not-a.mmdb");
        std::fs::write(&bad, b"not a database").unwrap();
        assert!(GeoIp::open(&bad).is_err());
    }
}
