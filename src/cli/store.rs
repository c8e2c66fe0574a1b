//! `kycd store migrate`: moves a single node's data to PostgreSQL and an S3-compatible bucket.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::media::objects::{ObjectDir, Objects};
use crate::store::copy::{copy_database, Progress};
use crate::store::crypto::MasterKey;
use crate::store::{Location, Store};

/// Store subcommands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy a single node's data directory — tenants, keys, jobs, usage, the audit chain with its
    /// hashes, media — to PostgreSQL and an S3 bucket (the global `--objects s3://…`), then
    /// verify counts, the chain and every blob. Restartable; run it last with the node stopped.
    Migrate {
        /// The node's data directory (its kycd.db, objects/ and master.key).
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database: `postgres://user:password@host/db`.
        #[arg(long)]
        to: String,
        /// The master key the data is sealed under (default: <from>/master.key). Every node of
        /// the cluster needs this key.
        #[arg(long)]
        master_key_file: Option<PathBuf>,
    },
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

/// Runs a store subcommand.
pub fn run(config: &Config, command: StoreCommand) -> anyhow::Result<()> {
    let StoreCommand::Migrate {
        from,
        to,
        master_key_file,
    } = command;
    let key_path = master_key_file.unwrap_or_else(|| from.join("master.key"));
    if !key_path.exists() {
        bail!(
            "no master key at {} (--master-key-file)",
            key_path.display()
        );
    }
    let db = from.join("kycd.db");
    if !db.exists() {
        bail!("no database at {}", db.display());
    }
    let Some(bucket) = &config.objects.url else {
        bail!(
            "the cluster's media needs a bucket: --objects s3://bucket/prefix (or [objects] url)"
        );
    };
    let master = || MasterKey::load_or_create(&key_path).context("cannot read the master key");
    // Opening the source brings it to this binary's schema first.
    let source = Store::connect(&Location::Sqlite(db.clone()), master()?, 1)
        .context("cannot open the source database")?;
    let dest = Store::connect(&Location::Postgres(to.clone()), master()?, 4)
        .context("cannot open the PostgreSQL database")?;
    let objects = Objects::open(&config.objects, &from.join("objects"))
        .with_context(|| format!("cannot open {bucket}"))?;

    let mut current: Option<ProgressBar> = None;
    let counts = copy_database(&db, &dest, &mut |p| match p {
        Progress::Table { name, rows, done } => {
            if let Some(pb) = current.take() {
                pb.finish();
            }
            let pb = bar(rows, name);
            pb.set_position(done);
            current = Some(pb);
        }
        Progress::Rows(n) => {
            if let Some(pb) = &current {
                pb.inc(n);
            }
        }
    })?;
    if let Some(pb) = current.take() {
        pb.finish();
    }
    let media_rows: u64 = counts
        .iter()
        .find(|c| c.table == "media")
        .map_or(0, |c| c.destination as u64);
    let pb = bar(media_rows, "media blobs");
    let from_dir = ObjectDir::open(&from.join("objects"))?;
    let (addresses, missing) =
        crate::media::copy_objects(&dest, &from_dir, &objects, &mut |n| pb.inc(n))?;
    pb.finish();
    let copied = addresses.len() - missing.len();

    // Verification: every table's count, the chain and its head, every blob readable.
    let mut problems = Vec::new();
    for c in &counts {
        println!(
            "{:>24}  {:>8} rows  {:>8} copied",
            c.table, c.source, c.destination
        );
        if c.source != c.destination {
            problems.push(format!(
                "{}: {} rows in the source, {} copied",
                c.table, c.source, c.destination
            ));
        }
    }
    let before = crate::audit::verify(&source)?;
    let after = crate::audit::verify(&dest)?;
    if !after.ok || after.head != before.head || after.entries != before.entries {
        problems.push(format!(
            "audit chain: source {} entries head {:?}, copy {} entries head {:?}, intact {}",
            before.entries, before.head, after.entries, after.head, after.ok
        ));
    }
    let unreadable = addresses
        .iter()
        .filter(|a| !missing.contains(a) && objects.get(a).is_err())
        .count();
    if unreadable > 0 {
        problems.push(format!(
            "{unreadable} blobs cannot be read back from {bucket}"
        ));
    }
    println!(
        "media: {copied} blobs copied to {}{}",
        objects.describe(),
        if missing.is_empty() {
            String::new()
        } else {
            format!(
                "; {} rows had no blob in the source (swept while copying)",
                missing.len()
            )
        }
    );
    let head = after
        .head
        .as_ref()
        .map_or("empty".into(), |(s, h)| format!("head {s} {h}"));
    println!(
        "audit chain intact on PostgreSQL: {} entries, {head}",
        after.entries
    );
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("MISMATCH {p}");
        }
        bail!("the copy does not match its source; run the command again to resume");
    }
    println!(
        "verified. Start every node with --database and --objects as here and the master key {}",
        key_path.display()
    );
    Ok(())
}
