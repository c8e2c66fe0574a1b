//! `kycd bench`: latency of the inference pipelines on this machine, as median and p95 over
//! repeated runs after a warm-up. Speed is measured here, not in tests.

use std::path::PathBuf;
use std::sync::Arc;
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
    /// Passive liveness on a 1280×720 selfie (whole pipeline and each signal), active liveness on
    /// 5 frames, and optionally APCER/BPCER on the generated attack set.
    Liveness {
        /// A photo with one face (placed on a 1280×720 frame).
        #[arg(long, default_value = "tests/fixtures/faces/obama.jpg")]
        image: PathBuf,
        /// Timed runs per measurement.
        #[arg(long, default_value_t = 30)]
        iterations: usize,
        /// Also generate attacks and genuine captures from these photos and report APCER/BPCER.
        #[arg(long, num_args = 1..)]
        evaluate: Vec<PathBuf>,
        /// Attacks of each kind per source photo for --evaluate.
        #[arg(long, default_value_t = 17)]
        attacks: usize,
        /// Genuine captures per source photo for --evaluate.
        #[arg(long, default_value_t = 13)]
        bona_fide: usize,
        /// Seed of the generated set.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Document OCR of a passport page resized to 1280×900: detection, all lines, the MRZ, and
    /// the whole `POST /v1/document/ocr` reading.
    Ocr {
        /// A document photo.
        #[arg(long, default_value = "tests/fixtures/documents/passport-td3.jpg")]
        image: PathBuf,
        /// Timed runs per measurement.
        #[arg(long, default_value_t = 10)]
        iterations: usize,
    },
    /// The whole verification (liveness ∥ document, validation, face match, KYA, score) on a
    /// selfie and a passport page, as a job runs it.
    Workflow {
        /// The selfie.
        #[arg(long, default_value = "tests/fixtures/faces/obama2.jpg")]
        selfie: PathBuf,
        /// The document photo.
        #[arg(long, default_value = "tests/fixtures/documents/passport-td3.jpg")]
        document: PathBuf,
        /// Timed runs.
        #[arg(long, default_value_t = 10)]
        iterations: usize,
    },
    /// The 1:N face index on synthetic unit vectors with planted near-duplicates: search
    /// p50/p95, recall@1 against an exact f32 scan, resident memory per face, insert rate.
    Dedup {
        /// Faces enrolled (one tenant).
        #[arg(long, default_value_t = 100_000)]
        faces: usize,
        /// Timed searches (each also checked against the exact scan).
        #[arg(long, default_value_t = 200)]
        queries: usize,
        /// Also store the faces sealed in a throw-away SQLite database (one subject each) and
        /// time the index's rebuild from it, as at start-up.
        #[arg(long)]
        rebuild: bool,
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
    match command {
        BenchCommand::Face { image, iterations } => face(config, &image, iterations),
        BenchCommand::Liveness {
            image,
            iterations,
            evaluate,
            attacks,
            bona_fide,
            seed,
        } => {
            liveness(config, &image, iterations)?;
            if !evaluate.is_empty() {
                evaluation(config, &evaluate, bona_fide, attacks, seed)?;
            }
            Ok(())
        }
        BenchCommand::Ocr { image, iterations } => ocr(config, &image, iterations),
        BenchCommand::Workflow {
            selfie,
            document,
            iterations,
        } => workflow(config, &selfie, &document, iterations),
        BenchCommand::Dedup {
            faces,
            queries,
            rebuild,
        } => {
            dedup(faces, queries.max(1))?;
            if rebuild {
                dedup_database(faces)?;
            }
            Ok(())
        }
    }
}

/// Resident memory of this process, bytes (Linux `/proc/self/statm`).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn dedup(faces: usize, queries: usize) -> anyhow::Result<()> {
    use crate::faces::index::{FaceIndex, DIM};
    use crate::vision::liveness::synthetic::Rng;
    let mut rng = Rng::new(0x6b79_6364);
    let unit = |rng: &mut Rng| -> Vec<f32> {
        let v: Vec<f32> = (0..DIM).map(|_| rng.range(-1.0, 1.0)).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    };
    let vectors: Vec<Vec<f32>> = (0..faces).map(|_| unit(&mut rng)).collect();
    let ids: Vec<String> = (0..faces).map(|i| format!("face_{i:024x}")).collect();
    let subjects: Vec<String> = (0..faces).map(|i| format!("subject-{i:08}")).collect();
    let before = resident_bytes();
    let index = FaceIndex::new();
    let t = Instant::now();
    for i in 0..faces {
        index.insert("bench", &ids[i], &subjects[i], "default", &vectors[i]);
    }
    let build = t.elapsed();
    let per_face = resident_bytes().saturating_sub(before) as f64 / faces.max(1) as f64;
    let exact_top = |q: &[f32]| -> usize {
        let mut best = (f32::MIN, 0);
        for (i, v) in vectors.iter().enumerate() {
            let c: f32 = q.iter().zip(v).map(|(a, b)| a * b).sum();
            if c > best.0 {
                best = (c, i);
            }
        }
        best.1
    };
    // Planted near-duplicates (the same face photographed again: cosine about 0.9) and plain
    // random queries (the nearest of strangers: the hard case for a quantised index).
    let mut planted_ms = Vec::with_capacity(queries);
    let (mut planted_hits, mut random_hits, mut random_int8) = (0, 0, 0);
    for _ in 0..queries {
        let target = (rng.next_u64() % faces as u64) as usize;
        let noise = unit(&mut rng);
        let q: Vec<f32> = vectors[target]
            .iter()
            .zip(&noise)
            .map(|(a, b)| a + 0.45 * b)
            .collect();
        let n = q.iter().map(|x| x * x).sum::<f32>().sqrt();
        let q: Vec<f32> = q.into_iter().map(|x| x / n).collect();
        let t = Instant::now();
        let hits = index.search("bench", &q, None, 10, -1.0);
        planted_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if hits.first().map(|h| h.face_id.as_str()) == Some(ids[exact_top(&q)].as_str()) {
            planted_hits += 1;
        }
        let r = unit(&mut rng);
        let hits = index.search("bench", &r, None, 1, -1.0);
        if hits.first().map(|h| h.face_id.as_str()) == Some(ids[exact_top(&r)].as_str()) {
            random_hits += 1;
        }
        if hits.first().map(|h| &h.face_id)
            == index
                .search_every_face("bench", &r, 1)
                .first()
                .map(|h| &h.face_id)
        {
            random_int8 += 1;
        }
    }
    planted_ms.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| planted_ms[((planted_ms.len() as f64 - 1.0) * q).round() as usize];
    println!("faces                     {faces}");
    println!(
        "build (insert all)        {:.2} s ({:.0} faces/s)",
        build.as_secs_f64(),
        faces as f64 / build.as_secs_f64()
    );
    println!("resident memory per face  {per_face:.0} bytes");
    println!(
        "search top-10             p50 {:.2} ms  p95 {:.2} ms  ({queries} queries, {} threads)",
        at(0.5),
        at(0.95),
        std::thread::available_parallelism().map_or(1, |t| t.get())
    );
    println!(
        "recall@1 vs exact f32     planted near-duplicates {:.3}, random queries {:.3}",
        planted_hits as f64 / queries as f64,
        random_hits as f64 / queries as f64
    );
    println!(
        "recall@1 vs every face    random queries {:.3} (the sign-code prefilter against scoring \
         every int8 code)",
        random_int8 as f64 / queries as f64
    );
    Ok(())
}

/// Seals `faces` random faces into a throw-away database, then rebuilds an index from it.
fn dedup_database(faces: usize) -> anyhow::Result<()> {
    use crate::faces::{index::FaceIndex, Enrolment, Faces};
    use crate::store::{crypto::MasterKey, tenants::TenantRow, Location, Store};
    use crate::vision::embed::Embedding;
    use crate::vision::liveness::synthetic::Rng;
    let dir = std::env::temp_dir().join(format!("kycd-bench-dedup-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> anyhow::Result<()> {
        let store = Arc::new(Store::connect(
            &Location::Sqlite(dir.join("kycd.db")),
            MasterKey::generate(),
            2,
        )?);
        let now = crate::store::now();
        store.write(|tx| {
            crate::store::tenants::insert(
                tx,
                &TenantRow {
                    id: "bench".into(),
                    name: "bench".into(),
                    plan: "pro".into(),
                    status: "active".into(),
                    created_at: now,
                },
            )
        })?;
        let mut rng = Rng::new(7);
        let t = Instant::now();
        for start in (0..faces).step_by(5_000) {
            store.write(|tx| {
                for i in start..(start + 5_000).min(faces) {
                    let subject = format!("subject-{i:08}");
                    let raw = (0..crate::faces::index::DIM)
                        .map(|_| rng.range(-1.0, 1.0))
                        .collect();
                    let embedding = Embedding::from_raw(raw).expect("non-zero");
                    let key = store.subject_key(tx, "bench", &subject, now)?;
                    let e = Enrolment {
                        tenant_id: "bench",
                        subject_id: &subject,
                        collection: None,
                        job_id: None,
                    };
                    Faces::store_in(tx, &key, &e, &embedding, serde_json::json!({}), now)
                        .map_err(|e| crate::store::StoreError::Conflict(e.to_string()))?;
                }
                Ok(())
            })?;
        }
        let stored = t.elapsed();
        let size = std::fs::metadata(dir.join("kycd.db"))?.len();
        let index = Arc::new(FaceIndex::new());
        let loaded = Faces::new(store, index.clone()).load(&mut |_| {})?;
        println!(
            "stored sealed in SQLite   {:.1} s ({:.0} faces/s, a subject and its key each; {:.0} bytes/face on disk)",
            stored.as_secs_f64(),
            faces as f64 / stored.as_secs_f64(),
            size as f64 / faces.max(1) as f64
        );
        println!(
            "rebuild at start          {:.2} s ({} faces: read, unwrap each subject's key, open, insert)",
            loaded.ms as f64 / 1000.0,
            loaded.faces,
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn ocr(config: &Config, image: &std::path::Path, iterations: usize) -> anyhow::Result<()> {
    use crate::document::read::{self, Hints};
    let vision = Vision::load(&config.models)?;
    vision.warm_up()?;
    let page = image::imageops::resize(
        &super::face::load_image(config, image)?,
        1280,
        900,
        FilterType::Triangle,
    );
    println!(
        "kycd bench ocr: {}, {iterations} runs each (ms, median / p95)",
        describe(config)
    );
    let lines = vision.ocr.read_lines(&page)?;
    let (d50, d95) = measure(iterations, || {
        vision.ocr.detect(&page).expect("detects");
    });
    let (l50, l95) = measure(iterations, || {
        vision.ocr.read_lines(&page).expect("reads");
    });
    let (m50, m95) = measure(iterations, || {
        vision.ocr.read_mrz(&page, &lines).expect("reads the MRZ");
    });
    let card = crate::document::card::find(&page);
    let (c50, c95) = measure(iterations, || {
        if let Some(q) = crate::document::card::find(&page) {
            crate::document::card::warp(&page, &q);
        }
    });
    let (r50, r95) = measure(iterations, || {
        read::read(&vision.ocr, &vision.analyzer, &page, &Hints::default()).expect("reads");
    });
    println!(
        "1280×900, {} lines: detection {d50:.0} / {d95:.0}   detect + recognise all {l50:.0} / {l95:.0}   MRZ re-read {m50:.0} / {m95:.0}   card {} {c50:.0} / {c95:.0}   whole reading (+ MRZ validation, portrait, quality) {r50:.0} / {r95:.0}",
        lines.len(),
        if card.is_some() { "found + warp" } else { "search (none)" },
    );
    Ok(())
}

fn workflow(
    config: &Config,
    selfie: &std::path::Path,
    document: &std::path::Path,
    iterations: usize,
) -> anyhow::Result<()> {
    use crate::workflow::pipeline::{self, Settings, Subject};
    let vision = std::sync::Arc::new(Vision::load(&config.models)?);
    vision.warm_up()?;
    let (selfie, page) = (
        super::face::load_image(config, selfie)?,
        super::face::load_image(config, document)?,
    );
    let settings = Settings {
        workflow: Default::default(),
        liveness: Default::default(),
        kya: crate::kya::settings(&config.kya).map_err(anyhow::Error::msg)?,
        faces: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "kycd bench workflow: {}, {iterations} runs (ms, median / p95)",
        describe(config)
    );
    let mut decision = String::new();
    let (w50, w95) = measure(iterations, || {
        let subject = Subject {
            selfie: selfie.clone(),
            document_front: page.clone(),
            document_back: None,
            frames: Vec::new(),
            applicant: Default::default(),
        };
        let o = runtime
            .block_on(pipeline::run(
                vision.clone(),
                subject,
                &settings,
                &|_, _| {},
            ))
            .expect("runs");
        decision = format!("{} {}", o.verdict.decision.name(), o.verdict.score);
    });
    println!(
        "selfie {}×{}, document {}×{} → {decision}: whole workflow {w50:.0} / {w95:.0}",
        selfie.width(),
        selfie.height(),
        page.width(),
        page.height()
    );
    Ok(())
}

fn describe(config: &Config) -> String {
    format!(
        "{} cores, inference threads {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        config
            .models
            .threads
            .map_or("default".into(), |t| t.to_string()),
    )
}

/// `image` scaled to 720 px high and centred on a 1280×720 frame over a blurred copy of itself,
/// as a landscape webcam frame would show a person.
fn webcam_frame(source: &RgbImage) -> RgbImage {
    let (w, h) = source.dimensions();
    let fw = (w as f32 * 720.0 / h as f32).round().clamp(1.0, 1280.0) as u32;
    let person = image::imageops::resize(source, fw, 720, FilterType::Triangle);
    let mut frame = image::imageops::blur(
        &image::imageops::resize(source, 1280, 720, FilterType::Triangle),
        12.0,
    );
    image::imageops::overlay(&mut frame, &person, i64::from((1280 - fw) / 2), 0);
    frame
}

fn liveness(config: &Config, image: &std::path::Path, iterations: usize) -> anyhow::Result<()> {
    use crate::vision::liveness::{active::Challenges, frame_edges, spectrum, LivenessThresholds};
    let vision = Vision::load(&config.models)?;
    vision.warm_up()?;
    let img = webcam_frame(&super::face::load_image(config, image)?);
    let t = LivenessThresholds::default();
    let analyzed = vision.analyzer.analyze(&img, Role::Selfie)?;
    let antispoof = crate::vision::antispoof::AntiSpoof::new(&vision.models);
    println!(
        "kycd bench liveness: {}, {iterations} runs each (ms, median / p95)",
        describe(config)
    );
    let (a50, a95) = measure(iterations, || {
        vision.analyzer.analyze(&img, Role::Selfie).expect("face");
    });
    let (m50, m95) = measure(iterations, || {
        antispoof.score(&img, &analyzed.face).expect("scores");
    });
    let (s50, s95) = measure(iterations, || {
        spectrum::measure(&img, analyzed.face.bbox);
    });
    let (f50, f95) = measure(iterations, || {
        frame_edges::measure(&img, analyzed.face.bbox);
    });
    let (p50, p95) = measure(iterations, || {
        vision
            .liveness(&img, &[], Challenges::default(), &t)
            .expect("liveness");
    });
    println!(
        "1280×720: face (detect+refine+embed) {a50:.1} / {a95:.1}   MiniFASNet×2 {m50:.1} / {m95:.1}   texture {s50:.1} / {s95:.1}   frame {f50:.1} / {f95:.1}"
    );
    println!("1280×720: whole passive liveness {p50:.1} / {p95:.1}");
    let frames: Vec<RgbImage> = (0..5)
        .map(|i| {
            // Slightly different crops, so the sequence is not static.
            let dx = i * 8;
            image::imageops::crop_imm(&img, dx, 0, 1280 - 40, 720).to_image()
        })
        .collect();
    let (q50, q95) = measure(iterations.div_ceil(3), || {
        vision
            .liveness(
                &img,
                &frames,
                Challenges {
                    blink: true,
                    pose: true,
                },
                &t,
            )
            .expect("liveness");
    });
    println!("1280×720 + 5 frames: active liveness {q50:.1} / {q95:.1}");
    Ok(())
}

fn evaluation(
    config: &Config,
    sources: &[PathBuf],
    bona_fide: usize,
    attacks: usize,
    seed: u64,
) -> anyhow::Result<()> {
    use crate::vision::liveness::{evaluate, LivenessThresholds};
    let vision = Vision::load(&config.models)?;
    let images = sources
        .iter()
        .map(|p| super::face::load_image(config, p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let e = evaluate::run(
        &vision.passive,
        &images,
        bona_fide,
        attacks,
        seed,
        &LivenessThresholds::default(),
    );
    println!(
        "generated set (synthetic; seed {seed}): {}",
        serde_json::to_string_pretty(&e)?
    );
    println!(
        "APCER {:.1} % ({} attacks judged)   BPCER {:.1} % ({} genuine judged)",
        e.apcer * 100.0,
        e.screen.judged() + e.print.judged() + e.framed.judged(),
        e.bpcer * 100.0,
        e.bona_fide.judged()
    );
    Ok(())
}

fn face(config: &Config, image: &std::path::Path, iterations: usize) -> anyhow::Result<()> {
    let vision = Vision::load(&config.models)?;
    vision.warm_up()?;
    let source = super::face::load_image(config, image)?;
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
