//! `kycd mrz`: the document-validation endpoint's logic on the command line.

use crate::document::mrz::{CheckStatus, MrzInput};
use crate::document::validate::{self, ValidateOptions};

/// Validates the MRZ given as arguments and prints the result; fails when it is not valid.
pub fn run(lines: &[String], json: bool, no_expiry_check: bool) -> anyhow::Result<()> {
    let text = lines.join("\n").replace("\\n", "\n");
    let mut opts = ValidateOptions::today_utc();
    opts.check_expiry = !no_expiry_check;
    let result = validate::validate(&MrzInput::Text(text), None, &opts)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        let f = &result.fields;
        println!(
            "{} — {}",
            if result.document_valid {
                "VALID"
            } else {
                "NOT VALID"
            },
            serde_json::to_value(result.format)?
                .as_str()
                .unwrap_or_default()
        );
        println!("{}", serde_json::to_string_pretty(f)?);
        println!("checks (confidence {:.2}):", result.confidence);
        for c in &result.checks {
            let mark = match c.status {
                CheckStatus::Pass => "pass",
                CheckStatus::Fail => "FAIL",
                CheckStatus::Warn => "warn",
                CheckStatus::Skipped => "skip",
            };
            println!("  {mark:4}  {:32} {}", c.name, c.detail);
        }
        for r in &result.repairs {
            println!("  repaired: {}", serde_json::to_string(r)?);
        }
        for w in &result.warnings {
            println!("  warning: {w}");
        }
    }
    if result.document_valid {
        Ok(())
    } else {
        std::process::exit(1)
    }
}
