//! The system page (version, models and their checksums, readiness, the job queue, the webhook
//! backlog, disk, retention, recent failures), revenue per month (per tenant and module, CSV),
//! and the audit log across tenants (search, chain verification with the head hash, export).

use std::path::Path;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::{money, Op};
use crate::console::operators::OpAction;
use crate::console::views::{csrf, page, when};
use crate::console::{blocking, internal, ok, ConsoleError};
use crate::http::AppState;
use crate::store::{self, Backend};

/// Failed jobs the system page lists.
const RECENT_FAILURES: i64 = 20;
/// Files counted when measuring the data directory, at most.
const MAX_FILES: usize = 1_000_000;

/// Registers the routes (inside `/admin`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/system", web::get().to(system))
        .route("/revenue", web::get().to(revenue))
        .route("/revenue/{file}", web::get().to(revenue_csv))
        .route("/audit", web::get().to(audit))
        .route("/audit/verify", web::post().to(verify))
        .route("/audit/export", web::get().to(export));
}

/// Bytes under `dir` (files only; stops counting after [`MAX_FILES`]).
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut seen = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            seen += 1;
            if seen > MAX_FILES {
                return total;
            }
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// What the system page shows.
struct System {
    ready: Result<(), String>,
    backend: &'static str,
    objects: String,
    jobs: Vec<(String, i64)>,
    queued: i64,
    oldest_queued_age: i64,
    deliveries: Vec<(String, i64)>,
    data_dir_bytes: u64,
    database_bytes: Option<i64>,
    swept: u64,
    failures: Vec<(String, String, String, i64)>,
}

async fn system(op: Op, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    op.may(OpAction::ViewSystem)?;
    let st = state.clone();
    let s = blocking(move || {
        let now = store::now();
        let stored = crate::telemetry::metrics::stored_state(&st.store, now).map_err(internal)?;
        let ready = if !st.is_ready() {
            Err("starting up".to_owned())
        } else {
            st.store.check_writable().map_err(|e| e.to_string())
        };
        let backend = match st.store.backend() {
            Backend::Sqlite => "SQLite (embedded)",
            Backend::Postgres => "PostgreSQL",
        };
        let database_bytes = match st.store.backend() {
            Backend::Postgres => st
                .store
                .read(|c| {
                    c.query_row(
                        "SELECT pg_database_size(current_database())",
                        store::params![],
                        |r| r.get::<i64>(0),
                    )
                })
                .ok(),
            Backend::Sqlite => {
                let db = st.config.data_dir.join("kycd.db");
                let wal = st.config.data_dir.join("kycd.db-wal");
                let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
                i64::try_from(size(&db) + size(&wal)).ok()
            }
        };
        let failures = st
            .store
            .read(|c| {
                c.query_map(
                    "SELECT tenant_id, id, COALESCE(error, ''), COALESCE(finished_at, created_at) \
                     FROM jobs WHERE status = 'failed' ORDER BY finished_at DESC LIMIT ?1",
                    store::params![RECENT_FAILURES],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
            })
            .map_err(internal)?;
        Ok(System {
            ready,
            backend,
            objects: st.config.objects.url.clone().map_or_else(
                || "local directory (encrypted)".to_owned(),
                |u| u.split('?').next().unwrap_or_default().to_owned(),
            ),
            queued: stored
                .jobs
                .iter()
                .find(|(s, _)| s == "queued")
                .map_or(0, |(_, n)| *n),
            jobs: stored.jobs,
            oldest_queued_age: stored.oldest_queued_age,
            deliveries: stored.deliveries,
            data_dir_bytes: dir_bytes(&st.config.data_dir),
            database_bytes,
            swept: st
                .metrics
                .media_swept
                .with_label_values(&["retention"])
                .get(),
            failures,
        })
    })
    .await?;
    let models: Vec<crate::vision::runtime::ModelFile> = crate::vision::runtime::ALL_MODELS
        .into_iter()
        .chain([
            crate::vision::runtime::OCR_DET,
            crate::vision::runtime::OCR_REC,
            crate::vision::runtime::OCR_KEYS,
        ])
        .collect();
    Ok(ok(page(
        "System",
        Some(&op.who),
        html! {
            section.cards {
                div.card { span.label { "version" } span.value { (env!("CARGO_PKG_VERSION")) } }
                div.card data-ready=(s.ready.is_ok()) {
                    span.label { "readiness" }
                    span.value { @match &s.ready { Ok(()) => "ready", Err(e) => (e) } }
                }
                div.card { span.label { "jobs queued" } span.value id="queue-depth" { (s.queued) } }
                div.card { span.label { "oldest queued" } span.value id="queue-age" { (s.oldest_queued_age) " s" } }
                div.card {
                    span.label { "webhook backlog" }
                    span.value id="webhook-backlog" { (s.deliveries.iter().find(|(k, _)| k == "pending").map_or(0, |(_, n)| *n)) }
                }
            }
            h2 { "Jobs and deliveries" }
            table {
                tbody {
                    @for (status, n) in &s.jobs { tr data-jobs=(status) { th { "jobs " (status) } td.num { (n) } } }
                    @for (status, n) in &s.deliveries { tr { th { "webhook deliveries " (status) } td.num { (n) } } }
                }
            }
            h2 { "Storage" }
            table {
                tbody {
                    tr { th { "database" } td { (s.backend) @if let Some(b) = s.database_bytes { ", " (mib(b.max(0) as u64)) } } }
                    tr { th { "objects" } td { (s.objects) } }
                    tr { th { "data directory" } td { (mib(s.data_dir_bytes)) } }
                    tr { th { "images deleted by retention (this node, since start)" } td { (s.swept) } }
                }
            }
            h2 { "Models (checksums verified at load)" }
            table.models {
                thead { tr { th { "file" } th { "sha256" } } }
                tbody { @for m in &models { tr { td { (m.file) } td { code { (m.sha256) } } } } }
            }
            h2 { "Recent failures" }
            @if s.failures.is_empty() { p.empty { "No failed jobs." } }
            table {
                tbody {
                    @for (tenant, job, error, at) in &s.failures {
                        tr { td { (when(*at)) } td { code { (tenant) } } td { code { (job) } } td { (error) } }
                    }
                }
            }
        },
    )))
}

#[derive(Deserialize)]
struct MonthQuery {
    month: Option<String>,
}

/// (tenant, name, invoice) for every tenant with usage in `month`.
fn invoices(
    state: &AppState,
    month: &str,
) -> Result<Vec<(String, String, crate::tenancy::invoice::Invoice)>, ConsoleError> {
    let mut out = Vec::new();
    for t in crate::tenancy::list_tenants(&state.store).map_err(internal)? {
        let inv = crate::tenancy::invoice::invoice(&state.store, &t.id, month).map_err(internal)?;
        if !inv.lines.is_empty() {
            out.push((t.id, t.name, inv));
        }
    }
    Ok(out)
}

fn month_of(op: &Op, month: Option<String>) -> Result<String, ConsoleError> {
    let month = month.unwrap_or_else(crate::tenancy::invoice::current_month);
    if crate::tenancy::meter::period_bounds(&month).is_none() {
        return Err(op.refused(StatusCode::UNPROCESSABLE_ENTITY, "A month is YYYY-MM."));
    }
    Ok(month)
}

async fn revenue(
    op: Op,
    state: web::Data<AppState>,
    query: web::Query<MonthQuery>,
) -> Result<HttpResponse, ConsoleError> {
    op.may(OpAction::ViewRevenue)?;
    let month = month_of(&op, query.into_inner().month)?;
    let m = month.clone();
    let rows = blocking(move || invoices(&state, &m)).await?;
    let mut by_module: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    for (_, _, inv) in &rows {
        for l in &inv.lines {
            let e = by_module.entry(l.module.clone()).or_default();
            e.0 += l.count;
            e.1 += l.amount_micros;
        }
    }
    let total: i64 = rows.iter().map(|(_, _, i)| i.total_micros).sum();
    Ok(ok(page(
        &format!("Revenue, {month}"),
        Some(&op.who),
        html! {
            form.search method="get" action="/admin/revenue" {
                input type="month" name="month" value=(month);
                button type="submit" { "Show" }
                a id="revenue-csv" href={ "/admin/revenue/" (month) ".csv" } download { "CSV" }
            }
            h2 { "Per module" }
            table.revenue-modules {
                thead { tr { th { "module" } th.num { "units" } th.num { "amount" } } }
                tbody {
                    @for (m, (units, amount)) in &by_module {
                        tr data-module=(m) { td { (m) } td.num { (units) } td.num { (money(*amount)) } }
                    }
                    tr.total { th { "total" } td {} td.num { strong id="revenue-total" { (money(total)) } } }
                }
            }
            h2 { "Per tenant" }
            table.revenue {
                thead { tr { th { "tenant" } th { "module" } th.num { "units" } th.num { "unit price" } th.num { "amount" } } }
                tbody {
                    @for (id, name, inv) in &rows {
                        @for l in &inv.lines {
                            tr data-tenant=(id) data-module=(l.module) {
                                td { (name) " " code { (id) } }
                                td { (l.module) }
                                td.num { (l.count) }
                                td.num { (money(l.unit_price_micros)) }
                                td.num { (money(l.amount_micros)) " " (inv.currency) }
                            }
                        }
                    }
                }
            }
        },
    )))
}

async fn revenue_csv(
    op: Op,
    state: web::Data<AppState>,
    file: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    op.may(OpAction::ViewRevenue)?;
    let file = file.into_inner();
    let Some(month) = file.strip_suffix(".csv") else {
        return Err(op.not_found());
    };
    let month = month_of(&op, Some(month.to_owned()))?;
    let m = month.clone();
    let rows = blocking(move || invoices(&state, &m)).await?;
    let mut out = String::from(
        "month,tenant_id,tenant,module,count,unit_price_micros,amount_micros,currency\n",
    );
    for (id, name, inv) in &rows {
        for l in &inv.lines {
            out.push_str(&format!(
                "{month},{id},{},{},{},{},{},{}\n",
                crate::console::csv_field(name),
                l.module,
                l.count,
                l.unit_price_micros,
                l.amount_micros,
                inv.currency
            ));
        }
    }
    Ok(crate::console::download(
        crate::console::CSV,
        &format!("kycd-revenue-{month}.csv"),
        out,
    ))
}

#[derive(Deserialize)]
struct AuditQuery {
    q: Option<String>,
    tenant: Option<String>,
}

fn audit_page(
    op: &Op,
    q: &str,
    tenant: &str,
    rows: &[store::audit::AuditRow],
    verified: Option<&crate::audit::Verification>,
) -> Markup {
    page(
        "Audit log",
        Some(&op.who),
        html! {
            form.search method="get" action="/admin/audit" {
                input type="text" name="q" value=(q) placeholder="search: suspend, plan, operator:…";
                input type="text" name="tenant" value=(tenant) placeholder="tenant id";
                button type="submit" { "Search" }
                a href="/admin/audit/export" download { "Export JSONL" }
            }
            form method="post" action="/admin/audit/verify" {
                (csrf(&op.who))
                button id="verify-chain" type="submit" { "Verify the chain" }
            }
            @if let Some(v) = verified {
                div class={ "verified " (if v.ok { "ok" } else { "broken" }) } id="chain" data-ok=(v.ok) role="status" {
                    @if v.ok { "The chain verifies: " (v.entries) " entries, no break." }
                    @else { "The chain is broken: " (v.breaks.len()) " break(s) in " (v.entries) " entries." }
                    @if let Some((seq, hash)) = &v.head {
                        br; "Head: entry " (seq) ", hash " code id="head-hash" { (hash) } " — keep it elsewhere to detect a truncated tail."
                    }
                }
            }
            table.audit {
                thead { tr { th { "when" } th { "who" } th { "what" } th { "tenant" } th { "target" } } }
                tbody {
                    @for r in rows {
                        tr data-action=(r.action) data-actor=(r.actor) {
                            td { (when(r.at)) }
                            td { (r.actor) }
                            td { (r.action) }
                            td { code { (r.tenant_id.as_deref().unwrap_or("")) } }
                            td { code { (r.target.as_deref().unwrap_or("")) } }
                        }
                    }
                }
            }
        },
    )
}

async fn audit(
    op: Op,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ConsoleError> {
    op.may(OpAction::ViewAudit)?;
    let AuditQuery { q, tenant } = query.into_inner();
    let rows = crate::console::audit_search(&state, &op.who, q.clone(), tenant.clone()).await?;
    Ok(ok(audit_page(
        &op,
        q.as_deref().unwrap_or(""),
        tenant.as_deref().unwrap_or(""),
        &rows,
        None,
    )))
}

#[derive(Deserialize)]
struct CsrfOnly {
    _csrf: Option<String>,
}

async fn verify(
    op: Op,
    state: web::Data<AppState>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, ConsoleError> {
    op.check_csrf(form._csrf.as_deref())?;
    op.may(OpAction::ViewAudit)?;
    let st = state.clone();
    let v = blocking(move || crate::audit::verify(&st.store).map_err(internal)).await?;
    let rows = crate::console::audit_search(&state, &op.who, None, None).await?;
    Ok(ok(audit_page(&op, "", "", &rows, Some(&v))))
}

async fn export(op: Op, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    op.may(OpAction::ViewAudit)?;
    let body = blocking(move || {
        let mut out = Vec::new();
        crate::audit::export(&state.store, &mut out).map_err(internal)?;
        Ok(out)
    })
    .await?;
    Ok(crate::console::download(
        crate::console::JSONL,
        "kycd-audit.jsonl",
        body,
    ))
}
