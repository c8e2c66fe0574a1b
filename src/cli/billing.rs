//! `kycd admin plan …`, `kycd admin tenant plan`, `kycd admin invoice`: plans, subscriptions and
//! invoices, straight on the data directory (audited as `cli`).

use std::path::PathBuf;

use clap::Subcommand;

use crate::store::Store;
use crate::tenancy::{invoice, plans::Plan, subscription};

const ACTOR: &str = "cli";

/// Plan subcommands.
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Print every plan (JSON).
    List,
    /// Print one plan (JSON), ready to edit and `set`.
    Show {
        /// free, pro or enterprise.
        #[arg(long)]
        plan: String,
    },
    /// Replace a plan's definition with a JSON file (every tenant on it is affected).
    Set {
        /// free, pro or enterprise.
        #[arg(long)]
        plan: String,
        /// The definition, as `show` prints it.
        #[arg(long)]
        file: PathBuf,
    },
}

fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("serialisable")
}

/// Runs a plan subcommand.
pub fn run_plan(store: &Store, command: PlanCommand) -> anyhow::Result<()> {
    match command {
        PlanCommand::List => {
            let plans: serde_json::Map<String, serde_json::Value> =
                subscription::list_plans(store)?
                    .into_iter()
                    .map(|(id, p)| (id, serde_json::to_value(p).unwrap_or_default()))
                    .collect();
            println!("{}", pretty(&plans));
        }
        PlanCommand::Show { plan } => {
            let p = store.read(|c| subscription::plan(c, &plan))?;
            println!("{}", pretty(&p));
        }
        PlanCommand::Set { plan, file } => {
            let text = std::fs::read(&file)?;
            let spec: Plan =
                serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&text))
                    .map_err(|e| anyhow::anyhow!("{}: {}", e.path(), e.inner()))?;
            subscription::set_plan(store, &plan, &spec, ACTOR)?;
            println!("plan {plan} updated");
        }
    }
    Ok(())
}

/// `kycd admin tenant plan`: moves a tenant to a plan and/or sets its overrides.
pub fn set_tenant_plan(
    store: &Store,
    tenant: &str,
    plan: Option<&str>,
    overrides: Option<&PathBuf>,
    clear_overrides: bool,
) -> anyhow::Result<()> {
    let overrides = match (overrides, clear_overrides) {
        (Some(path), _) => Some(serde_json::from_slice(&std::fs::read(path)?)?),
        (None, true) => Some(serde_json::Value::Null),
        (None, false) => None,
    };
    let s = subscription::set_subscription(store, tenant, plan, overrides.as_ref(), ACTOR)?;
    println!("{}", pretty(&s));
    Ok(())
}

/// `kycd admin invoice`: a tenant's invoice for a month, as a table, CSV or JSON.
pub fn print_invoice(
    store: &Store,
    tenant: &str,
    month: Option<String>,
    csv: bool,
    json: bool,
) -> anyhow::Result<()> {
    crate::tenancy::get_tenant(store, tenant)?;
    let month = month.unwrap_or_else(invoice::current_month);
    let inv = invoice::invoice(store, tenant, &month)?;
    if json {
        println!("{}", pretty(&inv));
    } else if csv {
        print!("{}", inv.to_csv());
    } else {
        println!(
            "invoice {} {} ({}, {})",
            inv.tenant_id, inv.month, inv.status, inv.currency
        );
        println!(
            "{:<12} {:>8} {:>12} {:>6} {:>12} {:>14}",
            "module", "units", "list", "disc%", "unit", "amount"
        );
        let money = |m: i64| format!("{:.6}", m as f64 / 1e6);
        for l in &inv.lines {
            println!(
                "{:<12} {:>8} {:>12} {:>6} {:>12} {:>14}",
                l.module,
                l.count,
                money(l.list_price_micros),
                l.discount_percent,
                money(l.unit_price_micros),
                money(l.amount_micros)
            );
        }
        println!(
            "total {} {} ({} minor units)",
            money(inv.total_micros),
            inv.currency,
            inv.total_minor
        );
    }
    Ok(())
}
