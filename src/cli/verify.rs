//! `kycd verify --selfie S --document D [--back B]`: the whole verification offline, with no
//! server or tenant — the same pipeline and scoring as `POST /v1/kyc/verify`, under the default
//! workflow or one given as JSON. Progress goes to stderr on a terminal; the report (or JSON) to
//! stdout.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::config::Config;
use crate::kya::Applicant;
use crate::vision::service::Vision;
use crate::workflow::config::{self, WorkflowConfig};
use crate::workflow::pipeline::{self, Settings, Subject};

/// `kycd verify` arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The selfie.
    #[arg(long)]
    selfie: PathBuf,
    /// The document's front (or passport data page).
    #[arg(long)]
    document: PathBuf,
    /// The card's back.
    #[arg(long)]
    back: Option<PathBuf>,
    /// A workflow configuration (JSON, as `PUT /v1/workflow` takes); default the built-in one.
    #[arg(long)]
    workflow: Option<PathBuf>,
    /// The applicant's declared name, for the name check.
    #[arg(long)]
    name: Option<String>,
    /// The applicant's email.
    #[arg(long)]
    email: Option<String>,
    /// The applicant's phone.
    #[arg(long)]
    phone: Option<String>,
    /// The applicant's country.
    #[arg(long)]
    country: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `kycd verify`.
pub fn run(config: &Config, args: VerifyArgs) -> anyhow::Result<()> {
    let workflow = match &args.workflow {
        Some(p) => config::from_json(&std::fs::read(p)?)
            .map_err(|e| anyhow::anyhow!("{}: {} {}", p.display(), e.field, e.message))?,
        None => WorkflowConfig::default(),
    };
    let load = |p: &PathBuf| super::face::load_image(config, p);
    let subject = Subject {
        selfie: load(&args.selfie)?,
        document_front: load(&args.document)?,
        document_back: args.back.as_ref().map(load).transpose()?,
        frames: Vec::new(),
        applicant: Applicant {
            name: args.name,
            email: args.email,
            phone: args.phone,
            country: args.country,
            ip: None,
        },
    };
    let tty = std::io::stderr().is_terminal();
    let say = |msg: &str| {
        if tty {
            eprintln!("{msg}");
        }
    };
    say("loading models…");
    let vision = Arc::new(Vision::load(&config.models)?);
    let settings = Settings {
        workflow,
        liveness: Default::default(),
        kya: crate::kya::settings(&config.kya).map_err(anyhow::Error::msg)?,
        faces: None,
    };
    say("verifying: liveness and document in parallel…");
    let progress = |step: &'static str, ms: u64| {
        if tty {
            eprintln!("  ✓ {step} ({ms} ms)");
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(pipeline::run(vision, subject, &settings, &progress))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
        return Ok(());
    }
    let v = &outcome.verdict;
    println!(
        "decision: {}   score {} / 100",
        v.decision.name().to_uppercase(),
        v.score
    );
    println!();
    for (name, f) in &v.factors {
        println!("  {name:<11} {:>5.1}  × weight {}", f.score, f.weight);
    }
    if !v.reasons.is_empty() {
        println!("\nreasons:");
        for r in &v.reasons {
            println!("  - {r}");
        }
    }
    if let Some(fields) = outcome.extracted.as_object().filter(|f| !f.is_empty()) {
        println!("\ndocument:");
        for (k, val) in fields {
            println!("  {k:<16} {}", val.as_str().unwrap_or(&val.to_string()));
        }
    }
    println!("\ntook {} ms", outcome.timings["total_ms"]);
    Ok(())
}
