//! Where kycd may send webhooks: the tenant chooses the URL, so every address it resolves to is
//! judged before a byte is sent (server-side request forgery), and the connection goes to the
//! address that was judged (no second lookup an attacker's DNS could answer differently).
//!
//! Always refused: loopback (unless the operator's allowlist names a loopback range
//! explicitly — a receiver on the same host), link-local (which holds the cloud metadata
//! service, 169.254.169.254 and fd00:ec2::254 are named too), unspecified, multicast, broadcast
//! and reserved addresses, and kycd's own listeners. Private ranges (RFC 1918, CGNAT,
//! unique-local IPv6) only inside the operator's `webhooks.allow_cidrs`. `http://` only for
//! sandbox keys unless the operator sets `webhooks.allow_http`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;

use ipnet::IpNet;

/// Why an address or URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not an absolute `http(s)://host` URL of a sane length.
    #[error("not a usable URL: {0}")]
    BadUrl(&'static str),
    /// `http://` where `https://` is required.
    #[error("must use https:// (plain http is allowed for sandbox keys, or where the operator allows it)")]
    HttpsRequired,
    /// The host does not resolve.
    #[error("the host cannot be resolved")]
    Unresolvable,
    /// The host resolves to an address kycd does not send to.
    #[error("the host resolves to a {0} address, which webhooks may not reach")]
    Blocked(&'static str),
    /// A port outside the operator's list.
    #[error("port {0} is not one webhooks may use (webhooks.allow_ports)")]
    Port(u16),
}

impl Refusal {
    /// The class recorded in the delivery log.
    pub fn class(&self) -> &'static str {
        match self {
            Refusal::BadUrl(_) | Refusal::HttpsRequired => "invalid_url",
            Refusal::Unresolvable => "dns_failed",
            Refusal::Blocked(_) | Refusal::Port(_) => "blocked_address",
        }
    }
}

/// What the operator allows, plus kycd's own listeners.
#[derive(Debug, Default)]
pub struct Policy {
    /// Ranges that may be reached although private (or loopback, when named explicitly).
    pub allow_cidrs: Vec<IpNet>,
    /// Whether live keys may use plain `http://`.
    pub allow_http: bool,
    /// Ports receivers may listen on; empty = any.
    pub allow_ports: Vec<u16>,
    /// kycd's own listening sockets (known once bound; see [`Policy::set_listeners`]).
    own: std::sync::RwLock<Vec<SocketAddr>>,
    /// The host's own addresses, which a listener on `0.0.0.0` or `::` answers on.
    local: Vec<IpAddr>,
}

impl Policy {
    /// The policy for these settings and listeners, with the host's interface addresses read
    /// now (so a listener on `0.0.0.0` cannot be reached through the host's own address).
    pub fn new(allow_cidrs: Vec<IpNet>, allow_http: bool, allow_ports: Vec<u16>) -> Policy {
        let local = if_addrs::get_if_addrs()
            .map(|v| v.into_iter().map(|i| canonical(i.ip())).collect())
            .unwrap_or_default();
        Policy {
            allow_cidrs,
            allow_http,
            allow_ports,
            own: Default::default(),
            local,
        }
    }

    /// Records kycd's listening sockets once they are bound.
    pub fn set_listeners(&self, addrs: &[SocketAddr]) {
        *self.own.write().unwrap_or_else(|p| p.into_inner()) = addrs.to_vec();
    }
}

const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// The class of an address that is never reachable whatever the allowlist, or that needs it.
enum Class {
    Never(&'static str),
    Loopback,
    Private,
    Public,
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            let seg = v6.segments();
            if v6 == METADATA_V6 {
                Class::Never("metadata")
            } else if v6.is_loopback() {
                Class::Loopback
            } else if v6.is_unspecified() {
                Class::Never("unspecified")
            } else if v6.is_multicast() {
                Class::Never("multicast")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Class::Never("link-local")
            } else if seg[0] & 0xfe00 == 0xfc00 || seg[0] & 0xffc0 == 0xfec0 {
                // Unique-local, and the deprecated site-local.
                Class::Private
            } else if seg[0] == 0x2001 && (seg[1] == 0x0db8 || seg[1] == 0) {
                // Documentation, and Teredo (a tunnel whose far end cannot be judged).
                Class::Never("reserved")
            } else if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
                // NAT64's well-known prefix: judge the embedded IPv4 address.
                let o = v6.octets();
                classify_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            } else if seg[0] == 0x0064 && seg[1] == 0xff9b {
                // 64:ff9b:1::/48, local-use translation: where it leads is the network's business.
                Class::Never("reserved")
            } else if seg[0] == 0x2002 {
                // 6to4: judge the embedded IPv4 address.
                let o = v6.octets();
                classify_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
            } else if seg[0] == 0 {
                // The IPv4-compatible and other ::/8 forms.
                Class::Never("reserved")
            } else {
                Class::Public
            }
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let o = ip.octets();
    if ip == METADATA_V4 {
        Class::Never("metadata")
    } else if ip.is_loopback() {
        Class::Loopback
    } else if ip.is_unspecified() || o[0] == 0 {
        Class::Never("unspecified")
    } else if ip.is_link_local() {
        Class::Never("link-local")
    } else if ip.is_multicast() {
        Class::Never("multicast")
    } else if ip.is_broadcast() || o[0] >= 240 {
        Class::Never("reserved")
    } else if ip.is_private()
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
    {
        Class::Private
    } else if ip.is_documentation() || (o[0] == 192 && o[1] == 0 && o[2] == 0) {
        Class::Never("reserved")
    } else {
        Class::Public
    }
}

impl Policy {
    /// Whether a connection to `addr` is allowed.
    pub fn check_addr(&self, addr: SocketAddr) -> Result<(), Refusal> {
        let ip = canonical(addr.ip());
        let own = self.own.read().unwrap_or_else(|p| p.into_inner());
        let own = own.iter().any(|l| {
            l.port() == addr.port()
                && (canonical(l.ip()) == ip
                    || matches!(classify(ip), Class::Loopback)
                    || (l.ip().is_unspecified() && self.local.contains(&ip)))
        });
        if own {
            return Err(Refusal::Blocked("kycd's own listener"));
        }
        self.check_ip(ip)?;
        if !self.allow_ports.is_empty() && !self.allow_ports.contains(&addr.port()) {
            return Err(Refusal::Port(addr.port()));
        }
        Ok(())
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        // This host's own addresses reach services listening on every interface: like
        // loopback, only when the operator names the address itself.
        if self.local.contains(&ip) && !matches!(classify(ip), Class::Loopback) {
            let named = self
                .allow_cidrs
                .iter()
                .any(|n| n.contains(&ip) && n.prefix_len() == n.max_prefix_len());
            return if named {
                Ok(())
            } else {
                Err(Refusal::Blocked("this host's own"))
            };
        }
        match classify(ip) {
            Class::Never(what) => Err(Refusal::Blocked(what)),
            Class::Public => Ok(()),
            Class::Private => {
                if self.allow_cidrs.iter().any(|n| n.contains(&ip)) {
                    Ok(())
                } else {
                    Err(Refusal::Blocked("private"))
                }
            }
            Class::Loopback => {
                // Only a range that lies inside loopback itself allows it: `0.0.0.0/0` in the
                // allowlist does not open the host's own services.
                let named = self
                    .allow_cidrs
                    .iter()
                    .any(|n| n.contains(&ip) && matches!(classify(n.network()), Class::Loopback));
                if named {
                    Ok(())
                } else {
                    Err(Refusal::Blocked("loopback"))
                }
            }
        }
    }

    /// Checks a URL's form and scheme; returns the host and port to resolve.
    pub fn check_url(&self, url: &str, live: bool) -> Result<(String, u16), Refusal> {
        if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Refusal::BadUrl("at most 2048 characters, no spaces"));
        }
        let uri = ureq::http::Uri::from_str(url).map_err(|_| Refusal::BadUrl("cannot parse"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(Refusal::BadUrl("must start with http:// or https://")),
        };
        if !https && live && !self.allow_http {
            return Err(Refusal::HttpsRequired);
        }
        let authority = uri.authority().ok_or(Refusal::BadUrl("no host"))?;
        if authority.as_str().contains('@') {
            return Err(Refusal::BadUrl("credentials in the URL are not accepted"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(Refusal::BadUrl("no host"));
        }
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok((host.to_owned(), port))
    }

    /// Resolves `host` and checks every address it has (all must be allowed: a name that
    /// answers with one public and one internal address is refused). Blocking.
    pub fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => lookup(host, port)?,
        };
        if addrs.is_empty() {
            return Err(Refusal::Unresolvable);
        }
        for a in &addrs {
            self.check_addr(*a)?;
        }
        Ok(addrs)
    }

    /// The whole check a receiver URL passes before it is stored or called. Blocking.
    pub fn check(&self, url: &str, live: bool) -> Result<Vec<SocketAddr>, Refusal> {
        let (host, port) = self.check_url(url, live)?;
        self.resolve(&host, port)
    }
}

/// Longest wait for a receiver's name to resolve.
const DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The system resolver, bounded by [`DNS_TIMEOUT`] (the lookup itself cannot be interrupted;
/// it finishes on its own thread).
fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let name = host.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(
            (name.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>()),
        );
    });
    match rx.recv_timeout(DNS_TIMEOUT) {
        Ok(Ok(addrs)) => Ok(addrs),
        _ => Err(Refusal::Unresolvable),
    }
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they stand for.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A resolver for the webhook agent: the lookup ureq connects with is the one that was checked.
#[derive(Debug)]
pub struct CheckedResolver(pub std::sync::Arc<Policy>);

impl ureq::unversioned::resolver::Resolver for CheckedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let host = uri
            .host()
            .ok_or(ureq::Error::HostNotFound)?
            .trim_start_matches('[')
            .trim_end_matches(']');
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addrs = self.0.resolve(host, port).map_err(|r| match r {
            Refusal::Unresolvable => ureq::Error::HostNotFound,
            other => ureq::Error::Other(Box::new(other)),
        })?;
        let mut out = self.empty();
        for a in addrs {
            if out.try_push(a).is_err() {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> Policy {
        let p = Policy {
            allow_cidrs: allow.iter().map(|c| c.parse().unwrap()).collect(),
            allow_http: false,
            allow_ports: Vec::new(),
            own: Default::default(),
            local: vec!["10.9.8.7".parse().unwrap(), "203.0.113.9".parse().unwrap()],
        };
        p.set_listeners(&[
            "127.0.0.1:8080".parse().unwrap(),
            "0.0.0.0:9090".parse().unwrap(),
        ]);
        p
    }

    fn blocked(p: &Policy, addr: &str) -> Option<&'static str> {
        match p.check_addr(addr.parse().unwrap()) {
            Ok(()) => None,
            Err(Refusal::Blocked(w)) => Some(w),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let p = policy(&[]);
        assert_eq!(blocked(&p, "127.0.0.1:80"), Some("loopback"));
        assert_eq!(blocked(&p, "[::1]:80"), Some("loopback"));
        assert_eq!(blocked(&p, "[::ffff:127.0.0.1]:80"), Some("loopback"));
        assert_eq!(blocked(&p, "169.254.169.254:80"), Some("metadata"));
        assert_eq!(blocked(&p, "[fd00:ec2::254]:80"), Some("metadata"));
        assert_eq!(blocked(&p, "169.254.1.1:80"), Some("link-local"));
        assert_eq!(blocked(&p, "[fe80::1]:80"), Some("link-local"));
        assert_eq!(blocked(&p, "0.0.0.0:80"), Some("unspecified"));
        assert_eq!(blocked(&p, "10.1.2.3:443"), Some("private"));
        assert_eq!(blocked(&p, "172.20.0.1:443"), Some("private"));
        assert_eq!(blocked(&p, "192.168.0.10:443"), Some("private"));
        assert_eq!(blocked(&p, "100.64.0.1:443"), Some("private"));
        assert_eq!(blocked(&p, "[fd12::1]:443"), Some("private"));
        assert_eq!(blocked(&p, "[64:ff9b::a00:1]:443"), Some("private"));
        assert_eq!(blocked(&p, "224.0.0.1:443"), Some("multicast"));
        assert_eq!(blocked(&p, "255.255.255.255:443"), Some("reserved"));
        assert_eq!(blocked(&p, "93.184.216.34:443"), None);
        assert_eq!(blocked(&p, "[2a00:1450:4001::1]:443"), None);

        let p = policy(&["10.0.0.0/8", "0.0.0.0/0"]);
        assert_eq!(blocked(&p, "10.1.2.3:443"), None);
        assert_eq!(
            blocked(&p, "192.168.0.10:443"),
            None,
            "covered by 0.0.0.0/0"
        );
        // A catch-all does not open loopback, link-local or the metadata service.
        assert_eq!(blocked(&p, "127.0.0.1:80"), Some("loopback"));
        assert_eq!(blocked(&p, "169.254.169.254:80"), Some("metadata"));

        let p = policy(&["127.0.0.0/8"]);
        assert_eq!(blocked(&p, "127.0.0.1:3000"), None);
        // kycd's own listeners stay out of reach, through any loopback address.
        assert_eq!(blocked(&p, "127.0.0.1:8080"), Some("kycd's own listener"));
        assert_eq!(blocked(&p, "127.0.0.2:9090"), Some("kycd's own listener"));
        let p = policy(&["10.0.0.0/8"]);
        assert_eq!(blocked(&p, "10.9.8.7:9090"), Some("kycd's own listener"));
        assert_eq!(blocked(&p, "10.9.8.6:9090"), None);
        assert_eq!(blocked(&p, "93.184.216.34:9090"), None);
        // The host's own addresses, on any port, only when named one by one.
        assert_eq!(blocked(&p, "10.9.8.7:6379"), Some("this host's own"));
        assert_eq!(
            blocked(&policy(&[]), "203.0.113.9:6379"),
            Some("this host's own")
        );
        assert_eq!(blocked(&policy(&["10.9.8.7/32"]), "10.9.8.7:6379"), None);
        // Transition and reserved IPv6 ranges.
        let p = policy(&[]);
        assert_eq!(
            blocked(&p, "[2002:7f00:1::]:443"),
            Some("loopback"),
            "6to4 of 127.0.0.1"
        );
        assert_eq!(
            blocked(&p, "[2002:a00:1::]:443"),
            Some("private"),
            "6to4 of 10.0.0.1"
        );
        assert_eq!(
            blocked(&p, "[2001:0:4136:e378::1]:443"),
            Some("reserved"),
            "Teredo"
        );
        assert_eq!(blocked(&p, "[64:ff9b:1::a00:1]:443"), Some("reserved"));
        assert_eq!(blocked(&p, "[fec0::1]:443"), Some("private"));
        // Ports, when the operator lists them.
        let mut p = policy(&[]);
        p.allow_ports = vec![443];
        assert!(matches!(
            p.check_addr("93.184.216.34:6379".parse().unwrap()),
            Err(Refusal::Port(6379))
        ));
        assert!(p.check_addr("93.184.216.34:443".parse().unwrap()).is_ok());
    }

    #[test]
    fn urls_need_a_host_and_https_for_live_keys() {
        let p = policy(&[]);
        assert_eq!(
            p.check_url("https://hooks.example.com/kyc", true),
            Ok(("hooks.example.com".into(), 443))
        );
        assert_eq!(
            p.check_url("http://hooks.example.com:8000/kyc", true),
            Err(Refusal::HttpsRequired)
        );
        assert_eq!(
            p.check_url("http://hooks.example.com:8000/kyc", false),
            Ok(("hooks.example.com".into(), 8000))
        );
        assert_eq!(
            p.check_url("https://[::1]:8443/x", true),
            Ok(("::1".into(), 8443))
        );
        for bad in [
            "ftp://x/",
            "https:///nohost",
            "https://user:pw@hooks.example.com/",
            "https://a b/",
            "hooks.example.com",
        ] {
            assert!(p.check_url(bad, true).is_err(), "{bad}");
        }
        // Literal addresses are judged without a lookup.
        assert_eq!(
            p.check("https://169.254.169.254/latest/meta-data", true),
            Err(Refusal::Blocked("metadata"))
        );
        assert_eq!(
            p.check("https://127.0.0.1:8080/", true),
            Err(Refusal::Blocked("kycd's own listener"))
        );
    }
}
