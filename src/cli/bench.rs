//! `kycd bench`: latency of the inference pipelines on this machine, as median and p95 over
//! repeated runs after a warm-up. Speed is measured here, not in tests.

use std::path::PathBuf;
use std::time::Instant;

use clap::Subcommand;
use image::imageops::FilterType;
use image::RgbImage;

use crate::config::Config;
use crate::vision::align::align_face;
use crate::vision::detect::{DetectorConfig, FaceDetector};
use crate::vision::embed::FaceEmbedder;
use crate::vision::facematch::{Role, DEFAULT_MATCH_THRESHOLD};
use crate::vision::service::Vision;

/// Bench subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Face detection, embedding and a whole 1:1 match at 640×480 and 1920×1080.
    Face {
        /// A photo with one face (resized to each test size).
        #[arg(long, default_value = "tests/fixtures/faces/obama.jpg")]
        image: PathBuf,
        /// Timed runs per measurement.
        #[arg(long, default_value_t = 30)]
        iterations: usize,
    },
}

/// Median and 95th percentile of `runs` timings of `f`, in milliseconds, after 3 warm-ups.
fn measure(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..3 {
        f();
    }
    let mut ms: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (pick(0.5), pick(0.95))
}

/// Runs a bench subcommand.
pub fn run(config: &Config, command: BenchCommand) -> anyhow::Result<()> {
    let BenchCommand::Face { image, iterations } = command;
    let vision = Vision::load(config.models.dir.as_deref(), config.models.threads)?;
    vision.warm_up()?;
    let source = super::face::load_image(config, &image)?;
    let detector = FaceDetector::new(vision.models.detector.clone(), DetectorConfig::default());
    let embedder = FaceEmbedder::new(vision.models.recognizer.clone());
    println!(
        "kycd bench face: {} cores, inference threads {}, {iterations} runs each (ms, median / p95)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        config.models.threads.map_or("default".into(), |t| t.to_string()),
    );
    for (w, h) in [(640u32, 480u32), (1920, 1080)] {
        let img: RgbImage = image::imageops::resize(&source, w, h, FilterType::Triangle);
        let face = vision.analyzer.analyze(&img, Role::Selfie)?.face;
        let (d50, d95) = measure(iterations, || {
            detector.detect(&img).expect("detects");
        });
        let (e50, e95) = measure(iterations, || {
            embedder
                .embed(&align_face(&img, &face.landmarks))
                .expect("embeds");
        });
        let (m50, m95) = measure(iterations, || {
            vision
                .match_faces(&img, &img, DEFAULT_MATCH_THRESHOLD)
                .expect("matches");
        });
        println!("{w}×{h}: detect {d50:.1} / {d95:.1}   align+embed {e50:.1} / {e95:.1}   whole 1:1 match {m50:.1} / {m95:.1}");
    }
    Ok(())
}
