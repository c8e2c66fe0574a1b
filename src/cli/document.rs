//! `kycd document ocr IMG`: the text lines and the MRZ of a document photo, offline, with the MRZ
//! validated (check digits, dates, codes) as `POST /v1/document/validate` does.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use crate::config::Config;
use crate::document::mrz::{CheckStatus, MrzInput};
use crate::document::ocr::Ocr;
use crate::document::validate::{self, ValidateOptions};
use crate::vision::runtime::RuntimeOptions;

/// Document subcommands.
#[derive(Debug, Subcommand)]
pub enum DocumentCommand {
    /// Read the text and the MRZ of a document photo.
    Ocr {
        /// The document photo (JPEG, PNG or WebP).
        image: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a document subcommand.
pub fn run(config: &Config, command: DocumentCommand) -> anyhow::Result<()> {
    let DocumentCommand::Ocr { image, json } = command;
    let img = super::face::load_image(config, &image)?;
    let opts = RuntimeOptions {
        threads: config.models.threads,
    };
    let ocr = Ocr::load(config.models.dir.as_deref(), &opts)?;
    let lines = ocr.read_lines(&img)?;
    let mrz = ocr.read_mrz(&img, &lines)?;
    let validation = mrz.as_ref().and_then(|m| {
        validate::validate(
            &MrzInput::Lines(m.lines.clone()),
            None,
            &ValidateOptions::today_utc(),
        )
        .ok()
    });
    if json {
        let out = json!({ "lines": lines, "mrz": mrz, "validation": validation });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for l in &lines {
        println!("{:.2}  {}", l.confidence, l.text);
    }
    match (&mrz, &validation) {
        (Some(m), Some(v)) => {
            println!("\nMRZ ({}):", v.format.name());
            for (line, c) in m.lines.iter().zip(&m.confidences) {
                println!("  {line}   ({c:.2})");
            }
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
        (Some(m), None) => println!("\nMRZ lines found but not parseable: {:?}", m.lines),
        (None, _) => println!("\nno MRZ found"),
    }
    Ok(())
}
