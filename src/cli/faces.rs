//! `kycd faces import`: bulk enrolment of a directory of photos into a tenant's face index.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::faces::index::FaceIndex;
use crate::faces::{Enrolment, Faces};
use crate::server::open_store;
use crate::vision::facematch::Role;
use crate::vision::service::Vision;

/// Face-index subcommands.
#[derive(Debug, Subcommand)]
pub enum FacesCommand {
    /// Enrol every JPEG, PNG and WebP under DIR for a tenant. The subject of a photo is the
    /// folder it is in (`DIR/<subject>/<photo>.jpg`), or its file name without the extension
    /// when it lies in DIR itself. Photos below the quality floor, without exactly one face or
    /// with an unusable subject name are listed at the end, with why. Safe while `kycd serve`
    /// runs: its index follows within a second.
    Import {
        /// The directory of photos.
        dir: PathBuf,
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The collection (default `default`).
        #[arg(long)]
        collection: Option<String>,
    },
}

/// Runs a faces subcommand.
pub fn run(config: &Config, command: FacesCommand) -> anyhow::Result<()> {
    let FacesCommand::Import {
        dir,
        tenant,
        collection,
    } = command;
    let photos = photos_under(&dir)?;
    if photos.is_empty() {
        bail!(
            "no .jpg, .jpeg, .png or .webp files under {}",
            dir.display()
        );
    }
    let store = Arc::new(open_store(config)?);
    if store
        .read(|c| crate::store::tenants::get(c, &tenant))?
        .is_none()
    {
        bail!("no tenant {tenant}");
    }
    eprintln!("loading models…");
    let vision = Vision::load(&config.models).context("cannot load the models")?;
    let faces = Faces::new(store, Arc::new(FaceIndex::new()));
    let bar = ProgressBar::new(photos.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message("enrolling");
    let started = std::time::Instant::now();
    let (mut enrolled, mut refused) = (0usize, Vec::new());
    for (path, subject) in &photos {
        let result = (|| -> anyhow::Result<()> {
            let image = super::face::load_image(config, path)?;
            let face = vision.analyzer.analyze(&image, Role::Selfie)?;
            let e = Enrolment {
                tenant_id: &tenant,
                subject_id: subject,
                collection: collection.as_deref(),
                job_id: None,
            };
            faces.enrol(&e, &face, crate::store::now(), "cli")?;
            Ok(())
        })();
        match result {
            Ok(()) => enrolled += 1,
            Err(e) => refused.push((path.clone(), format!("{e:#}"))),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "enrolled {enrolled} of {} photos for tenant {tenant} in {:.1} s",
        photos.len(),
        started.elapsed().as_secs_f64()
    );
    if !refused.is_empty() {
        println!("refused {}:", refused.len());
        for (path, why) in &refused {
            println!("  {}: {why}", path.display());
        }
    }
    Ok(())
}

/// The photos under `dir` with their subjects, in path order.
fn photos_under(dir: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            if !matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png" | "webp")) {
                continue;
            }
            let subject = if d == dir {
                path.file_stem()
            } else {
                d.file_name()
            };
            let subject = subject.and_then(|s| s.to_str()).unwrap_or("").to_owned();
            out.push((path, subject));
        }
    }
    out.sort();
    Ok(out)
}
