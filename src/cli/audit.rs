//! `kycd audit verify` and `kycd audit export`.

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::Config;
use crate::server::open_store;

/// Audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the chain and report every edited, deleted or reordered entry (exit 1 if any).
    Verify {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write every entry with its chain hashes as JSON lines, for WORM storage.
    Export {
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs an audit subcommand.
pub fn run(config: &Config, command: AuditCommand) -> anyhow::Result<()> {
    let store = open_store(config)?;
    match command {
        AuditCommand::Verify { json } => {
            let v = crate::audit::verify(&store)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if v.ok {
                let head = v
                    .head
                    .as_ref()
                    .map_or("empty".into(), |(s, h)| format!("head {s} {h}"));
                println!("audit chain intact: {} entries, {head}", v.entries);
            } else {
                println!("audit chain BROKEN ({} entries read):", v.entries);
                for b in &v.breaks {
                    println!("  {}", serde_json::to_string(b)?);
                }
            }
            if !v.ok {
                std::process::exit(1);
            }
            Ok(())
        }
        AuditCommand::Export { out } => {
            let n = match out {
                Some(path) => {
                    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
                    let n = crate::audit::export(&store, &mut f)?;
                    std::io::Write::flush(&mut f)?;
                    n
                }
                None => crate::audit::export(&store, &mut std::io::stdout().lock())?,
            };
            eprintln!("exported {n} entries");
            Ok(())
        }
    }
}
