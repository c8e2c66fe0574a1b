//! `kycd document ocr IMG [--back IMG]`: a document photo read offline exactly as
//! `POST /v1/document/ocr` reads it — type and country, fields, the MRZ with its checks,
//! portrait and quality — as a short report or the API's JSON.

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::Config;
use crate::document::mrz::CheckStatus;
use crate::document::read::{self, Hints};
use crate::document::report;
use crate::vision::service::Vision;

/// Document subcommands.
#[derive(Debug, Subcommand)]
pub enum DocumentCommand {
    /// Read a document photo: type, country, fields, MRZ, portrait and quality.
    Ocr {
        /// The front (or the passport's data page): JPEG, PNG or WebP.
        image: PathBuf,
        /// The back of a card (TD1 cards carry the MRZ there).
        #[arg(long)]
        back: Option<PathBuf>,
        /// `passport`, `id_card`, `driver_license`, `residence_permit` or `other`.
        #[arg(long)]
        document_hint: Option<String>,
        /// The issuing country's name or code.
        #[arg(long)]
        country_hint: Option<String>,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a document subcommand.
pub fn run(config: &Config, command: DocumentCommand) -> anyhow::Result<()> {
    let DocumentCommand::Ocr {
        image,
        back,
        document_hint,
        country_hint,
        json,
    } = command;
    let front_img = super::face::load_image(config, &image)?;
    let back_img = back
        .as_deref()
        .map(|p| super::face::load_image(config, p))
        .transpose()?;
    let vision = Vision::load(&config.models)?;
    let hints = Hints {
        document_type: document_hint,
        country: country_hint,
    };
    let front = read::read(&vision.ocr, &vision.analyzer, &front_img, &hints)?;
    let back = match back_img.map(|b| read::read(&vision.ocr, &vision.analyzer, &b, &hints)) {
        Some(Ok(b)) => Some(b),
        Some(Err(read::ReadError::NoDocument)) | None => None,
        Some(Err(e)) => return Err(e.into()),
    };
    if json {
        let out = report::ocr_report(&front, back.as_ref());
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for l in &front.lines {
        println!("{:.2}  {}", l.confidence, l.text);
    }
    let d = &front.detected;
    println!(
        "\ndetected: {} {} (confidence {:.2}, from {})",
        d.document_type,
        d.country.as_deref().unwrap_or("?"),
        d.confidence,
        d.source
    );
    match report::chosen_mrz(&front, back.as_ref()) {
        Some(m) => {
            let format = m
                .validation
                .as_ref()
                .map_or("unparseable", |v| v.format.name());
            println!("MRZ ({format}):");
            for (line, c) in m.corrected_lines().iter().zip(&m.reading.confidences) {
                println!("  {line}   ({c:.2})");
            }
            if let Some(v) = &m.validation {
                let failed: Vec<_> = v
                    .checks
                    .iter()
                    .filter(|c| c.status == CheckStatus::Fail)
                    .map(|c| c.name.as_ref())
                    .collect();
                println!(
                    "document_valid: {}   confidence {:.2}   repairs {}   failed: {}",
                    v.document_valid,
                    v.confidence,
                    v.repairs.len(),
                    if failed.is_empty() {
                        "none".into()
                    } else {
                        failed.join(", ")
                    }
                );
            }
        }
        None => println!("no MRZ found"),
    }
    for p in &front.printed {
        println!("{}: {}", p.name, p.value);
    }
    println!(
        "portrait: {}   sharpness {:.0}   glare {:.1} %",
        if front.face_crop_jpeg.is_some() {
            "found"
        } else {
            "not found"
        },
        front.quality.sharpness,
        front.quality.glare * 100.0
    );
    for w in &front.warnings {
        println!("warning: {w}");
    }
    Ok(())
}
