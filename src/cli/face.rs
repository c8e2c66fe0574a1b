//! `kycd face match A B`: the 1:1 face match of `POST /v1/face/match`, offline.

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::Config;
use crate::media::intake::{self, IntakeLimits};
use crate::vision::facematch::DEFAULT_MATCH_THRESHOLD;
use crate::vision::service::Vision;

/// Face subcommands.
#[derive(Debug, Subcommand)]
pub enum FaceCommand {
    /// Compare the face in a selfie with the (largest) face in a second image.
    Match {
        /// The selfie: exactly one face.
        a: PathBuf,
        /// The reference: a document or another photo.
        b: PathBuf,
        /// Decision threshold on similarity (0–1).
        #[arg(long, default_value_t = DEFAULT_MATCH_THRESHOLD)]
        threshold: f32,
        /// Print JSON (the body of POST /v1/face/match).
        #[arg(long)]
        json: bool,
    },
}

/// Loads an image file through the service's intake path.
pub(crate) fn load_image(
    config: &Config,
    path: &std::path::Path,
) -> anyhow::Result<image::RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let limits = IntakeLimits {
        max_bytes: config.media.max_image_bytes,
        max_pixels: config.media.max_pixels,
    };
    Ok(intake::load(&bytes, &limits)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .image)
}

/// Runs a face subcommand.
pub fn run(config: &Config, command: FaceCommand) -> anyhow::Result<()> {
    match command {
        FaceCommand::Match {
            a,
            b,
            threshold,
            json,
        } => {
            let vision = Vision::load(&config.models)?;
            let started = std::time::Instant::now();
            let report = vision.match_faces(
                &load_image(config, &a)?,
                &load_image(config, &b)?,
                threshold,
            )?;
            let ms = started.elapsed().as_millis() as u64;
            if json {
                let mut v = serde_json::to_value(&report)?;
                v["processing_ms"] = ms.into();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "{} — similarity {:.3} (cosine {:.3}), threshold {:.2}, {ms} ms",
                    if report.is_match { "MATCH" } else { "NO MATCH" },
                    report.similarity,
                    report.cosine,
                    report.threshold
                );
                for (name, f) in [("a", &report.faces.a), ("b", &report.faces.b)] {
                    let warnings: Vec<&str> = f.warnings.iter().map(|w| w.code()).collect();
                    println!(
                        "  {name}: face at {:?}, {:.0} px between the eyes, warnings {:?}",
                        f.face.bbox.map(|v| v.round()),
                        f.quality.inter_eye_px,
                        warnings
                    );
                }
            }
            Ok(())
        }
    }
}
