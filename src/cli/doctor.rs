//! `kycd doctor`: checks what a node needs before and while it serves, and says what to fix —
//! configuration, the data directory's owner and modes, the master key, free disk, the clock,
//! the database, TLS files and the models. Exits 1 when a check fails (warnings pass).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use clap::Args;
use serde_json::json;

use crate::config::Config;

/// `kycd doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Skip loading the models (a few seconds and ~1 GB of memory).
    #[arg(long)]
    no_models: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Finding {
    level: Level,
    check: &'static str,
    said: String,
    fix: Option<String>,
}

#[derive(Default)]
struct Report(Vec<Finding>);

impl Report {
    fn ok(&mut self, check: &'static str, said: impl Into<String>) {
        self.0.push(Finding {
            level: Level::Ok,
            check,
            said: said.into(),
            fix: None,
        });
    }

    fn bad(
        &mut self,
        level: Level,
        check: &'static str,
        said: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Finding {
            level,
            check,
            said: said.into(),
            fix: Some(fix.into()),
        });
    }
}

fn mode(path: &Path) -> Option<(u32, u32)> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.permissions().mode() & 0o777, m.uid()))
}

fn data_dir(config: &Config, r: &mut Report) {
    let dir = &config.data_dir;
    let me = unsafe { libc::geteuid() };
    match mode(dir) {
        None => r.bad(
            Level::Fail,
            "data directory",
            format!("{} does not exist", dir.display()),
            format!(
                "install -d -m 0700 {} (owned by the service user)",
                dir.display()
            ),
        ),
        Some((_, uid)) if uid != me => r.bad(
            Level::Fail,
            "data directory",
            format!(
                "{} is owned by uid {uid}, kycd runs as uid {me}",
                dir.display()
            ),
            format!("chown -R <service user> {}", dir.display()),
        ),
        Some((m, _)) if m & 0o077 != 0 => r.bad(
            Level::Fail,
            "data directory",
            format!("{} is mode {m:04o}: other users can look in", dir.display()),
            format!("chmod 0700 {}", dir.display()),
        ),
        Some((m, _)) => {
            let probe = dir.join(format!(".doctor-{}", std::process::id()));
            match std::fs::write(&probe, b"") {
                Ok(()) => {
                    let _ = std::fs::remove_file(&probe);
                    r.ok(
                        "data directory",
                        format!("{} ({m:04o}, writable)", dir.display()),
                    );
                }
                Err(e) => r.bad(
                    Level::Fail,
                    "data directory",
                    format!("cannot write in {}: {e}", dir.display()),
                    "give the service user write access (systemd: ReadWritePaths=)",
                ),
            }
        }
    }
    let key = config.master_key_path();
    match (mode(&key), std::fs::metadata(&key).map(|m| m.len())) {
        (None, _) => r.bad(
            Level::Warn,
            "master key",
            format!("{} does not exist yet", key.display()),
            "kycd serve creates it on first start; back it up (kycd backup) once it exists",
        ),
        (Some(_), Ok(len)) if len != 32 => r.bad(
            Level::Fail,
            "master key",
            format!("{} holds {len} bytes, not 32", key.display()),
            "restore the key file from a backup: without it no sealed data opens",
        ),
        (Some((m, _)), _) if m & 0o077 != 0 => r.bad(
            Level::Fail,
            "master key",
            format!("{} is mode {m:04o}", key.display()),
            format!("chmod 0600 {}", key.display()),
        ),
        (Some((m, _)), _) => r.ok(
            "master key",
            format!("{} ({m:04o}, 32 bytes)", key.display()),
        ),
    }
    let token = config.admin_token_path();
    if let Some((m, _)) = mode(&token) {
        if m & 0o077 != 0 {
            r.bad(
                Level::Fail,
                "admin token",
                format!("{} is mode {m:04o}", token.display()),
                format!("chmod 0600 {}", token.display()),
            );
        } else {
            r.ok("admin token", format!("{} ({m:04o})", token.display()));
        }
    }
}

fn disk(config: &Config, r: &mut Report) {
    let Ok(path) = std::ffi::CString::new(config.data_dir.as_os_str().as_encoded_bytes()) else {
        return;
    };
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return;
    }
    let free = st.f_bavail as u64 * st.f_frsize as u64;
    let total = st.f_blocks as u64 * st.f_frsize as u64;
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let said = format!("{:.1} GiB free of {:.1} GiB", gib(free), gib(total));
    if free < 1 << 30 {
        r.bad(
            Level::Fail,
            "disk",
            said,
            "free space on the data directory's file system: under 1 GiB, uploads and the database fail",
        );
    } else if free < 5 << 30 || free * 10 < total {
        r.bad(
            Level::Warn,
            "disk",
            said,
            "under 5 GiB or 10 % free: shorten media.retention or grow the volume",
        );
    } else {
        r.ok("disk", said);
    }
}

fn clock(config: &Config, r: &mut Report) {
    // The kernel knows whether NTP (or chrony) keeps the clock synchronised.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    let skew = config.auth.max_skew_secs;
    if state == libc::TIME_ERROR || tx.status & libc::STA_UNSYNC != 0 {
        r.bad(
            Level::Warn,
            "clock",
            "the clock is not synchronised (NTP)",
            format!("run chrony or systemd-timesyncd against your own time source: signed requests more than {skew} s off are refused"),
        );
    } else {
        r.ok(
            "clock",
            format!("synchronised, estimated error {} µs", tx.maxerror),
        );
    }
    // A clock behind the newest audit entry went backwards (or the data came from elsewhere).
    if config.store.url.is_none() && config.db_path().exists() {
        let newest = crate::store::files::newest_audit_at(&config.db_path());
        if let Ok(newest) = newest {
            let now = crate::store::now();
            if newest > now + 60 {
                r.bad(
                    Level::Fail,
                    "clock",
                    format!("the newest audit entry is {} s in the future", newest - now),
                    "set the clock right before serving: usage, expiry and the audit chain's times depend on it",
                );
            }
        }
    }
}

fn database(config: &Config, r: &mut Report) {
    if let Some(url) = &config.store.url {
        let shown = url.split('@').next_back().unwrap_or_default();
        let supported = crate::store::migrations::POSTGRES_VERSION as i64;
        match crate::store::migrations::postgres_version(url) {
            Err(e) => r.bad(
                Level::Fail,
                "database",
                format!("PostgreSQL at {shown}: {e}"),
                "check store.url, the network path and the role's rights",
            ),
            Ok(v) if v > supported => r.bad(
                Level::Fail,
                "database",
                format!("PostgreSQL at {shown}: schema {v} is newer than this kycd ({supported})"),
                "install the kycd that wrote it, or a later one",
            ),
            Ok(v) => r.ok(
                "database",
                format!("PostgreSQL at {shown} (schema {v}; this kycd writes {supported})"),
            ),
        }
        return;
    }
    let db = config.db_path();
    if !db.exists() {
        r.ok(
            "database",
            format!("{} will be created on first start", db.display()),
        );
        return;
    }
    let checked = crate::store::files::schema_version(&db)
        .and_then(|v| Ok((v, crate::store::files::check(&db, false)?)));
    let supported = crate::store::migrations::SQLITE_VERSION as i64;
    match checked {
        Err(e) => r.bad(
            Level::Fail,
            "database",
            format!("{}: {e}", db.display()),
            "restore the data directory from a backup (kycd restore)",
        ),
        Ok((_, check)) if check != "ok" => r.bad(
            Level::Fail,
            "database",
            format!("{} fails its check: {check}", db.display()),
            "stop kycd and restore from a backup (kycd restore)",
        ),
        Ok((v, _)) if v > supported => r.bad(
            Level::Fail,
            "database",
            format!("schema {v} is newer than this kycd ({supported})"),
            "install the kycd that wrote it, or a later one",
        ),
        Ok((v, _)) if v < supported => r.bad(
            Level::Warn,
            "database",
            format!("schema {v}; this kycd migrates it to {supported} at start"),
            "a copy is kept in backups/ first; take a kycd backup before upgrading anyway",
        ),
        Ok((v, _)) => r.ok(
            "database",
            format!("{} (schema {v}, quick_check ok)", db.display()),
        ),
    }
}

fn tls(config: &Config, r: &mut Report) {
    if !config.tls.enabled() {
        r.ok(
            "tls",
            "off (plain HTTP: put kycd behind a TLS reverse proxy, or set tls.cert and tls.key)",
        );
        return;
    }
    match crate::http::tls::server_config(&config.tls) {
        Ok(_) => r.ok("tls", "certificate and key load, TLS 1.2 and 1.3"),
        Err(e) => r.bad(
            Level::Fail,
            "tls",
            e.to_string(),
            "fix tls.cert / tls.key (PEM, the key matching the leaf)",
        ),
    }
}

fn models(config: &Config, r: &mut Report) {
    let started = std::time::Instant::now();
    match crate::vision::service::Vision::load(&config.models).and_then(|v| v.warm_up()) {
        Ok(()) => r.ok(
            "models",
            format!(
                "every model loads with its sha256 and runs ({} ms)",
                started.elapsed().as_millis()
            ),
        ),
        Err(e) => r.bad(
            Level::Fail,
            "models",
            e.to_string(),
            "unset models.dir to use the models inside the binary, or copy the files MODELS.md lists",
        ),
    }
}

/// Runs `kycd doctor`.
pub fn run(config: &Config, args: DoctorArgs) -> anyhow::Result<()> {
    let mut r = Report::default();
    r.ok("config", "parsed and valid");
    data_dir(config, &mut r);
    disk(config, &mut r);
    clock(config, &mut r);
    database(config, &mut r);
    tls(config, &mut r);
    if !args.no_models {
        models(config, &mut r);
    }
    let serving = super::health::readyz_url(config);
    let failed = r.0.iter().filter(|f| f.level == Level::Fail).count();
    if args.json {
        let findings: Vec<_> = r
            .0
            .iter()
            .map(|f| {
                json!({
                    "check": f.check,
                    "level": match f.level { Level::Ok => "ok", Level::Warn => "warn", Level::Fail => "fail" },
                    "said": f.said,
                    "fix": f.fix,
                })
            })
            .collect();
        println!(
            "{}",
            json!({ "ok": failed == 0, "checks": findings, "readyz": serving })
        );
    } else {
        for f in &r.0 {
            let tag = match f.level {
                Level::Ok => "ok  ",
                Level::Warn => "WARN",
                Level::Fail => "FAIL",
            };
            println!("{tag} {:<15} {}", f.check, f.said);
            if let Some(fix) = &f.fix {
                println!("     {:<15} → {fix}", "");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} check(s) failed");
    }
    Ok(())
}
