//! Know your applicant: checks on what the applicant declared — email (syntax, then MX over DNS
//! when a resolver is reachable), phone (E.164, and its country against the declared one),
//! IP address against the country (when a MaxMind-format database is configured) and the
//! declared name against the document's. Offline first: a check that cannot run is `skipped`
//! with why, never guessed.

pub mod email;
pub mod geoip;
pub mod name;
pub mod phone;

use serde::{Deserialize, Serialize};

use crate::document::countries;

/// What the applicant declared (every field optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applicant {
    /// Full name as the applicant typed it.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Phone number, preferably E.164 (`+44…`).
    pub phone: Option<String>,
    /// Country of residence: name, alpha-2 or alpha-3.
    pub country: Option<String>,
    /// The applicant's IP address.
    pub ip: Option<String>,
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The check passed.
    Pass,
    /// The check failed.
    Fail,
    /// The check could not run (no input, offline, not configured).
    Skipped,
}

/// One KYA check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `email_syntax`, `email_mx`, `phone_valid`, `phone_country`, `ip_country`, `name_match`.
    pub name: &'static str,
    /// Outcome.
    pub status: Status,
    /// Why, with the values that decided.
    pub detail: String,
}

impl Check {
    pub(crate) fn new(name: &'static str, status: Status, detail: impl Into<String>) -> Self {
        Check {
            name,
            status,
            detail: detail.into(),
        }
    }
}

/// The alpha-2 code of a declared country (name, alpha-2 or alpha-3).
pub fn alpha2(country: &str) -> Option<&'static str> {
    let c = country.trim();
    if c.len() == 2 {
        let upper = c.to_ascii_uppercase();
        return countries::all()
            .iter()
            .find(|k| k.alpha2 == Some(upper.as_str()))
            .and_then(|k| k.alpha2);
    }
    countries::lookup(c).and_then(|k| k.alpha2)
}

/// How the checks that need the outside world are set up.
#[derive(Clone, Default)]
pub struct KyaSettings {
    /// Where MX lookups go (off by default).
    pub mx: email::MxResolver,
    /// DNS timeout.
    pub dns_timeout: std::time::Duration,
    /// The IP country database, when configured.
    pub geoip: Option<std::sync::Arc<geoip::GeoIp>>,
}

/// Every KYA check on `applicant`; `document_name` is the holder's name as read from the
/// document (surname and given names), for the name check.
pub async fn run(
    applicant: &Applicant,
    document_name: Option<&str>,
    settings: &KyaSettings,
) -> Vec<Check> {
    let country = applicant.country.as_deref();
    let mut checks = email::checks(
        applicant.email.as_deref(),
        &settings.mx,
        settings.dns_timeout,
    )
    .await;
    checks.extend(phone::checks(applicant.phone.as_deref(), country));
    checks.push(geoip::check(
        settings.geoip.as_deref(),
        applicant.ip.as_deref(),
        country,
    ));
    checks.push(name::check(applicant.name.as_deref(), document_name));
    checks
}

/// Settings from the `[kya]` configuration: the resolver parsed, the IP database opened.
pub fn settings(config: &crate::config::KyaConfig) -> Result<KyaSettings, String> {
    let mx = config
        .mx_resolver
        .parse::<email::MxResolver>()
        .map_err(|e| format!("kya.mx_resolver: {e}"))?;
    let geoip = config
        .geoip_db
        .as_deref()
        .map(geoip::GeoIp::open)
        .transpose()
        .map_err(|e| format!("kya.geoip_db: {e}"))?
        .map(std::sync::Arc::new);
    Ok(KyaSettings {
        mx,
        dns_timeout: std::time::Duration::from_millis(config.dns_timeout_ms),
        geoip,
    })
}
