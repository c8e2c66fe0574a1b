//! `kycd backup --out FILE`, `kycd backup verify FILE`, `kycd restore FILE --data-dir D`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use serde_json::json;

use crate::backup::seal::Secret;
use crate::backup::{self, Event, Summary};
use crate::config::Config;

/// How the backup is encrypted or opened.
#[derive(Debug, Args)]
pub struct SecretArgs {
    /// A file whose first line is the passphrase (at least 12 characters; or env
    /// KYCD_BACKUP_PASSPHRASE). Stretched with Argon2id.
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// A key file of at least 32 bytes (e.g. `head -c 32 /dev/urandom`) instead of a passphrase.
    #[arg(long, conflicts_with = "passphrase_file")]
    key_file: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl SecretArgs {
    fn secret(&self) -> anyhow::Result<Secret> {
        Ok(match (&self.key_file, &self.passphrase_file) {
            (Some(path), _) => Secret::from_file(path, true)?,
            (None, Some(path)) => Secret::from_file(path, false)?,
            (None, None) => match std::env::var("KYCD_BACKUP_PASSPHRASE") {
                Ok(p) if !p.is_empty() => Secret::passphrase(p)?,
                _ => bail!(
                    "give --passphrase-file, --key-file or KYCD_BACKUP_PASSPHRASE: backups are always encrypted"
                ),
            },
        })
    }
}

/// `kycd backup`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: Option<BackupCommand>,
    /// Write the backup here (a new file; FILE.sha256 is written beside it).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    secret: SecretArgs,
}

/// `kycd backup …` subcommands.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Read a backup end to end and check every chunk, file and blob, writing nothing.
    Verify {
        /// The backup file.
        file: PathBuf,
        #[command(flatten)]
        secret: SecretArgs,
    },
}

/// `kycd restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file; it is verified completely before anything is written.
    file: PathBuf,
    #[command(flatten)]
    secret: SecretArgs,
}

fn bars() -> impl FnMut(Event) {
    let mut bar: Option<ProgressBar> = None;
    move |event| match event {
        Event::Start(what, total) => {
            let pb = if total == 0 {
                ProgressBar::new_spinner()
            } else {
                ProgressBar::new(total)
            };
            pb.set_style(
                ProgressStyle::with_template(
                    "{msg:>18} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            pb.set_message(what.to_owned());
            bar = Some(pb);
        }
        Event::Advance(n) => {
            if let Some(pb) = &bar {
                pb.inc(n);
            }
        }
        Event::Finish => {
            if let Some(pb) = bar.take() {
                pb.finish_and_clear();
            }
        }
    }
}

fn report(verb: &str, file: &Path, s: &Summary, json_out: bool) {
    let m = &s.manifest;
    if json_out {
        println!(
            "{}",
            json!({
                "file": file.display().to_string(),
                "bytes": s.bytes,
                "sha256": s.sha256,
                "created_at": m.created_at,
                "kycd": m.kycd,
                "schema_version": m.schema_version,
                "objects": m.objects,
                "object_bytes": m.object_bytes,
                "objects_missing": m.objects_missing.len(),
                "jobs": m.jobs,
            })
        );
        return;
    }
    println!("{verb} {}", file.display());
    println!("  size      {} ({} bytes)", HumanBytes(s.bytes), s.bytes);
    println!("  sha256    {}", s.sha256);
    println!(
        "  taken     {} by kycd {} (schema {})",
        m.created_at, m.kycd, m.schema_version
    );
    println!(
        "  media     {} blobs, {}{}",
        m.objects,
        HumanBytes(m.object_bytes),
        match m.objects_missing.len() {
            0 => String::new(),
            n => format!(" ({n} deleted by retention while it ran)"),
        }
    );
    let jobs: Vec<String> = m.jobs.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!(
        "  jobs      {}",
        if jobs.is_empty() {
            "none".into()
        } else {
            jobs.join(", ")
        }
    );
}

/// Runs `kycd backup`.
pub fn run(config: &Config, args: BackupArgs) -> anyhow::Result<()> {
    match args.command {
        Some(BackupCommand::Verify { file, secret }) => {
            let summary = backup::verify(&file, &secret.secret()?, &mut bars())
                .with_context(|| format!("{} does not verify", file.display()))?;
            report("verified", &file, &summary, secret.json);
            Ok(())
        }
        None => {
            let Some(out) = args.out else {
                bail!("give --out FILE (or `kycd backup verify FILE`)");
            };
            let secret = args.secret.secret()?;
            let summary =
                backup::create(config, &out, &secret, &mut bars()).context("backup failed")?;
            report("wrote", &out, &summary, args.secret.json);
            Ok(())
        }
    }
}

/// Runs `kycd restore`.
pub fn restore(config: &Config, args: RestoreArgs) -> anyhow::Result<()> {
    let summary = backup::restore(
        &args.file,
        &args.secret.secret()?,
        &config.data_dir,
        &mut bars(),
    )
    .with_context(|| format!("restore of {} failed", args.file.display()))?;
    report(
        &format!("restored into {} from", config.data_dir.display()),
        &args.file,
        &summary,
        args.secret.json,
    );
    Ok(())
}
