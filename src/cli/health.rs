//! `kycd health`: asks the local server's `/readyz` and exits 0 only on 200 — the container's
//! HEALTHCHECK and a systemd or monitoring probe, without curl in the image.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use crate::config::Config;

/// `kycd health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Ask this URL instead of the configured listener's /readyz.
    #[arg(long)]
    url: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

/// The URL of this node's `/readyz`: the listener, on loopback when it listens on every address.
pub fn readyz_url(config: &Config) -> String {
    let mut addr: SocketAddr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let scheme = if config.tls.enabled() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{addr}/readyz")
}

/// Runs `kycd health`.
pub fn run(config: &Config, args: HealthArgs) -> anyhow::Result<()> {
    let url = args.url.unwrap_or_else(|| readyz_url(config));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(args.timeout.max(1))))
        // The probe runs on the node itself: the certificate names the public host, not
        // 127.0.0.1, so it is not checked here (clients check it).
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build(),
        )
        .build()
        .into();
    let response = agent
        .get(&url)
        .call()
        .with_context(|| format!("{url}: no answer"))?;
    let status = response.status().as_u16();
    if status != 200 {
        bail!("{url}: {status}, not ready");
    }
    println!("{url}: ready");
    Ok(())
}
