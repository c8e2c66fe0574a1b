//! Email: syntax (RFC 5322 via the `email_address` crate), then an MX lookup for the domain over
//! DNS (`hickory-resolver`) when the operator configured a resolver. Offline by default: with no
//! resolver the MX check is `skipped`, and an unreachable resolver is `skipped` too — only a
//! resolver that answers "no such records" fails it.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use email_address::EmailAddress;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::error::ResolveErrorKind;
use hickory_resolver::TokioAsyncResolver;

use super::{Check, Status};

/// Where MX lookups go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MxResolver {
    /// No lookups (the default: air-gapped hosts have no DNS to ask).
    #[default]
    Off,
    /// The resolvers in /etc/resolv.conf.
    System,
    /// One DNS server.
    Server(SocketAddr),
}

impl FromStr for MxResolver {
    type Err = String;

    /// `off`, `system` or `IP:port` (port 53 when omitted).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "" | "off" => Ok(MxResolver::Off),
            "system" => Ok(MxResolver::System),
            other => other
                .parse::<SocketAddr>()
                .or_else(|_| {
                    other
                        .parse::<std::net::IpAddr>()
                        .map(|ip| SocketAddr::new(ip, 53))
                })
                .map(MxResolver::Server)
                .map_err(|_| format!("`{other}` is not off, system or IP[:port]")),
        }
    }
}

/// `email_syntax`, then `email_mx`.
pub async fn checks(email: Option<&str>, resolver: &MxResolver, timeout: Duration) -> Vec<Check> {
    let Some(raw) = email else {
        return vec![
            Check::new("email_syntax", Status::Skipped, "no email declared"),
            Check::new("email_mx", Status::Skipped, "no email declared"),
        ];
    };
    let address = match EmailAddress::from_str(raw.trim()) {
        Ok(a) if a.domain().contains('.') => a,
        _ => {
            return vec![
                Check::new("email_syntax", Status::Fail, "not a valid email address"),
                Check::new("email_mx", Status::Skipped, "the address is not valid"),
            ]
        }
    };
    let domain = address.domain().to_ascii_lowercase();
    vec![
        Check::new(
            "email_syntax",
            Status::Pass,
            format!("valid, domain {domain}"),
        ),
        mx(&domain, resolver, timeout).await,
    ]
}

async fn mx(domain: &str, resolver: &MxResolver, timeout: Duration) -> Check {
    let mut opts = ResolverOpts::default();
    opts.timeout = timeout;
    opts.attempts = 1;
    let resolver = match resolver {
        MxResolver::Off => {
            return Check::new(
                "email_mx",
                Status::Skipped,
                "MX lookup not configured (offline)",
            )
        }
        MxResolver::System => match hickory_resolver::system_conf::read_system_conf() {
            Ok((config, _)) => TokioAsyncResolver::tokio(config, opts),
            Err(e) => {
                return Check::new(
                    "email_mx",
                    Status::Skipped,
                    format!("no system resolver: {e}"),
                )
            }
        },
        MxResolver::Server(addr) => {
            let group = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
            TokioAsyncResolver::tokio(ResolverConfig::from_parts(None, vec![], group), opts)
        }
    };
    // Fully qualified, so no search domain is appended.
    let name = format!("{}.", domain.trim_end_matches('.'));
    match resolver.mx_lookup(name).await {
        Ok(records) => {
            let hosts: Vec<String> = records.iter().map(|r| r.exchange().to_utf8()).collect();
            Check::new("email_mx", Status::Pass, format!("MX {}", hosts.join(", ")))
        }
        Err(e) => match e.kind() {
            // RFC 5321 §5.1: without MX records, mail goes to the domain's own address.
            ResolveErrorKind::NoRecordsFound { .. } => {
                match resolver.lookup_ip(format!("{domain}.")).await {
                    Ok(_) => Check::new(
                        "email_mx",
                        Status::Pass,
                        format!("no MX; {domain} has an address (RFC 5321 fallback)"),
                    ),
                    Err(e) if matches!(e.kind(), ResolveErrorKind::NoRecordsFound { .. }) => {
                        Check::new(
                            "email_mx",
                            Status::Fail,
                            format!("no MX or address record for {domain}"),
                        )
                    }
                    Err(e) => {
                        Check::new("email_mx", Status::Skipped, format!("DNS unreachable: {e}"))
                    }
                }
            }
            _ => Check::new("email_mx", Status::Skipped, format!("DNS unreachable: {e}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(email: Option<&str>, resolver: MxResolver) -> Vec<Check> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(checks(email, &resolver, Duration::from_millis(300)))
    }

    #[test]
    fn syntax_is_checked_and_mx_is_skipped_offline() {
        let c = run(Some("anna.eriksson@example.org"), MxResolver::Off);
        assert_eq!(c[0].status, Status::Pass);
        assert_eq!(c[1].status, Status::Skipped);
        for bad in [
            "anna",
            "anna@",
            "@example.org",
            "a b@example.org",
            "anna@localhost",
        ] {
            assert_eq!(
                run(Some(bad), MxResolver::Off)[0].status,
                Status::Fail,
                "{bad}"
            );
        }
        assert_eq!(run(None, MxResolver::Off)[0].status, Status::Skipped);
    }

    #[test]
    fn an_unreachable_resolver_skips_rather_than_fails() {
        // Nothing listens on this port: the lookup times out or is refused.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let c = run(Some("anna@example.org"), MxResolver::Server(addr));
        assert_eq!(c[1].status, Status::Skipped, "{c:?}");
    }

    #[test]
    fn resolver_setting_parses() {
        assert_eq!("off".parse::<MxResolver>().unwrap(), MxResolver::Off);
        assert_eq!("system".parse::<MxResolver>().unwrap(), MxResolver::System);
        assert_eq!(
            "10.0.0.2".parse::<MxResolver>().unwrap(),
            MxResolver::Server("10.0.0.2:53".parse().unwrap())
        );
        assert!("dns.example".parse::<MxResolver>().is_err());
    }
}
