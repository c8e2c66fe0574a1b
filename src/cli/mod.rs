//! The command line: `kycd serve`, `kycd admin …`, `kycd version`. Parses flags, builds the
//! config, and calls the same domain functions the HTTP API calls.

mod admin;
mod audit;
mod backup;
mod bench;
mod billing;
mod doctor;
mod document;
mod face;
mod faces;
mod health;
mod mrz;
mod openapi;
mod store;
mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

/// kycd — on-premises eKYC appliance.
#[derive(Debug, Parser)]
#[command(name = "kycd", version, about)]
pub struct Cli {
    /// Config file (default: ./kycd.toml when present; env KYCD_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data directory (default ./data; env KYCD_DATA_DIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Load models from this directory instead of the binary (env KYCD_MODELS_DIR).
    #[arg(long, global = true)]
    models_dir: Option<PathBuf>,
    /// Run on PostgreSQL: `postgres://user:password@host/db` (default the SQLite file in the
    /// data directory; env KYCD_DATABASE_URL).
    #[arg(long, global = true)]
    database: Option<String>,
    /// Keep media in an S3-compatible bucket: `s3://bucket/prefix` (default the data
    /// directory's objects/; env KYCD_OBJECTS_URL; endpoint and keys from [objects] or AWS_*).
    #[arg(long, global = true)]
    objects: Option<String>,
    /// Keep per-key rate buckets in Redis, shared by every node: `redis://host:port/db`
    /// (default: the PostgreSQL database when nodes share one, else memory; env KYCD_REDIS_URL).
    #[arg(long, global = true)]
    redis: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080; env KYCD_LISTEN).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Serve HTTPS with this PEM certificate chain (needs --tls-key; env KYCD_TLS_CERT).
        /// SIGHUP reads the pair again without dropping connections.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's PEM private key (env KYCD_TLS_KEY).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Operator tasks on the data directory (safe while `kycd serve` runs).
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Move a single node's data to PostgreSQL and an S3 bucket (scale-out).
    Store {
        #[command(subcommand)]
        command: store::StoreCommand,
    },
    /// The hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Back the node up while it serves (database snapshot, media, keys), encrypted; or
    /// `kycd backup verify FILE`.
    Backup(backup::BackupArgs),
    /// Restore a backup into a new data directory (`--data-dir`), after verifying all of it.
    Restore(backup::RestoreArgs),
    /// Ask the local server's /readyz: exit 0 when ready (container HEALTHCHECK, probes).
    Health(health::HealthArgs),
    /// Check the configuration, data directory, master key, disk, clock, database, TLS and
    /// models, and say what to fix (exit 1 when a check fails).
    Doctor(doctor::DoctorArgs),
    /// Verify a person offline: selfie + document → score, decision and reasons.
    Verify(verify::VerifyArgs),
    /// Document tools, offline.
    Document {
        #[command(subcommand)]
        command: document::DocumentCommand,
    },
    /// Face tools, offline.
    Face {
        #[command(subcommand)]
        command: face::FaceCommand,
    },
    /// The 1:N face index: bulk enrolment.
    Faces {
        #[command(subcommand)]
        command: faces::FacesCommand,
    },
    /// Measure the inference pipelines on this machine (median and p95).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Print the OpenAPI 3.1 description of the API, or a Postman collection that signs requests.
    Openapi(openapi::OpenapiArgs),
    /// Parse and validate an ICAO 9303 MRZ, offline.
    ///
    /// Give the lines as separate arguments, or as one argument with newlines (a literal `\n`
    /// is accepted too).
    Mrz {
        /// The MRZ lines.
        #[arg(required = true)]
        lines: Vec<String>,
        /// Print JSON (the same body as POST /v1/document/validate).
        #[arg(long)]
        json: bool,
        /// Do not fail expired documents.
        #[arg(long)]
        no_expiry_check: bool,
    },
    /// Print the version.
    Version {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let (listen, tls_cert, tls_key) = match &cli.command {
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
        } => (*listen, tls_cert.clone(), tls_key.clone()),
        _ => (None, None, None),
    };
    let overrides = Overrides {
        config_file: cli.config,
        data_dir: cli.data_dir,
        listen,
        models_dir: cli.models_dir,
        database: cli.database,
        objects: cli.objects,
        redis: cli.redis,
        tls_cert,
        tls_key,
    };
    match cli.command {
        Command::Version { json } => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "version": env!("CARGO_PKG_VERSION") })
                );
            } else {
                println!("kycd {}", env!("CARGO_PKG_VERSION"));
            }
            Ok(())
        }
        Command::Mrz {
            lines,
            json,
            no_expiry_check,
        } => mrz::run(&lines, json, no_expiry_check),
        Command::Audit { command } => audit::run(&Config::load(&overrides)?, command),
        Command::Store { command } => store::run(&Config::load(&overrides)?, command),
        Command::Face { command } => face::run(&Config::load(&overrides)?, command),
        Command::Faces { command } => faces::run(&Config::load(&overrides)?, command),
        Command::Document { command } => document::run(&Config::load(&overrides)?, command),
        Command::Verify(args) => verify::run(&Config::load(&overrides)?, args),
        Command::Health(args) => health::run(&Config::load(&overrides)?, args),
        Command::Doctor(args) => doctor::run(&Config::load(&overrides)?, args),
        Command::Backup(args) => backup::run(&Config::load(&overrides)?, args),
        Command::Restore(args) => backup::restore(&Config::load(&overrides)?, args),
        Command::Openapi(args) => openapi::run(&args),
        Command::Bench { command } => bench::run(&Config::load(&overrides)?, command),
        Command::Serve { .. } => {
            let config = Config::load(&overrides)?;
            let _log_guard = crate::telemetry::init(&config.log);
            crate::server::serve(config)
        }
        Command::Admin { command } => {
            let config = Config::load(&overrides)?;
            admin::run(&config, command)
        }
    }
}
