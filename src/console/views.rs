//! The console's pages, rendered on the server with `maud` (checked at compile time, escaped by
//! default). Plain HTML forms posting back to the server: no script is needed to use any page.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use super::operators::{OpAction, OperatorRole};
use super::users::{Action, SignedIn};
use crate::store::console::Realm;

/// The stylesheet, served from `/console/assets/console.css`.
pub const CSS: &str = include_str!("../../assets/console/console.css");

/// A page with the navigation of `who`'s role.
pub fn page(title: &str, who: Option<&SignedIn>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · kycd console" }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                @if let Some(who) = who {
                    @if who.realm == Realm::Operator {
                        (operator_header(who))
                    } @else {
                        (tenant_header(who))
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn tenant_header(who: &SignedIn) -> Markup {
    html! {
        header {
            nav {
                a.brand href="/console/" { "kycd" }
                a href="/console/" { "Overview" }
                a href="/console/verifications" { "Verifications" }
                @if who.role.allows(Action::Review) {
                    a href="/console/review" { "Review queue" }
                }
                @if who.role.allows(Action::ManageKeys) {
                    a href="/console/keys" { "API keys" }
                }
                @if who.role.allows(Action::EditWorkflow) {
                    a href="/console/workflow" { "Workflow" }
                }
                @if who.role.allows(Action::ManageWebhooks) {
                    a href="/console/webhooks" { "Webhooks" }
                }
                @if who.role.allows(Action::ViewBilling) {
                    a href="/console/usage" { "Usage" }
                }
                @if who.role.allows(Action::ViewAudit) {
                    a href="/console/audit" { "Audit log" }
                }
                @if who.role.allows(Action::ManageUsers) {
                    a href="/console/users" { "Users" }
                }
            }
            form.signout method="post" action="/console/logout" {
                (csrf(who))
                a.who href="/console/security" title="password and second factor" { (who.user.email) " · " (who.role.as_str()) }
                button type="submit" { "Sign out" }
            }
        }
    }
}

fn operator_header(who: &SignedIn) -> Markup {
    let role = OperatorRole::parse(&who.user.role);
    let may = |a: OpAction| role.is_some_and(|r| r.allows(a));
    html! {
        header.operator {
            nav {
                a.brand href="/admin/" { "kycd operator" }
                a href="/admin/" { "Tenants" }
                @if may(OpAction::ViewPlans) { a href="/admin/plans" { "Plans" } }
                @if may(OpAction::ViewRevenue) { a href="/admin/revenue" { "Revenue" } }
                @if may(OpAction::ViewSystem) { a href="/admin/system" { "System" } }
                @if may(OpAction::ViewAudit) { a href="/admin/audit" { "Audit" } }
            }
            form.signout method="post" action="/admin/logout" {
                (csrf(who))
                a.who href="/admin/security" title="password and second factor" { (who.user.email) " · " (who.user.role) }
                button type="submit" { "Sign out" }
            }
        }
    }
}

/// A Unix time as the console shows it (UTC, RFC 3339).
pub fn when(t: i64) -> String {
    crate::workflow::jobs::rfc3339(t)
}

/// The hidden field every form that changes something carries.
pub fn csrf(who: &SignedIn) -> Markup {
    html! { input type="hidden" name="_csrf" value=(who.csrf); }
}

/// The sign-in form, with what went wrong last time.
pub fn login(error: Option<&str>) -> Markup {
    login_at("Sign in", "/console/login", error)
}

/// A sign-in form posting to `action`.
pub fn login_at(title: &str, action: &str, error: Option<&str>) -> Markup {
    page(
        title,
        None,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.login method="post" action=(action) {
                label { "Email" input type="email" name="email" autocomplete="username" required autofocus; }
                label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// A message page (errors and refusals).
pub fn message(title: &str, who: Option<&SignedIn>, text: &str) -> Markup {
    page(title, who, html! { p.error { (text) } })
}

/// One module's use this month.
pub struct ModuleLine {
    /// The module.
    pub module: &'static str,
    /// Units used.
    pub used: i64,
    /// The quota, if any.
    pub quota: Option<i64>,
}

/// The overview's figures.
pub struct Overview {
    /// `YYYY-MM`.
    pub month: String,
    /// Use per module.
    pub modules: Vec<ModuleLine>,
    /// Decisions this month: accepted, review, rejected.
    pub decisions: [(&'static str, i64); 3],
    /// Jobs failed this month and jobs finished.
    pub failed: i64,
    /// Jobs finished this month.
    pub finished: i64,
    /// p95 of a job's run time this month, milliseconds.
    pub p95_ms: Option<i64>,
    /// Jobs waiting for review.
    pub in_review: i64,
    /// Verifications over the chosen range.
    pub chart: Chart,
}

/// Verifications per bucket of time, by outcome.
pub struct Chart {
    /// `24h`, `7d` or `30d`.
    pub range: &'static str,
    /// Unix seconds at the start of the first bucket.
    pub from: i64,
    /// Seconds per bucket.
    pub width: i64,
    /// Per bucket: accepted, review, rejected, failed.
    pub buckets: Vec<[i64; 4]>,
}

/// The outcomes a chart stacks, bottom up.
const OUTCOMES: [&str; 4] = ["accepted", "review", "rejected", "failed"];

/// Stacked bars drawn as SVG on the server (no script, no library).
fn chart(c: &Chart) -> Markup {
    let (w, h, top, bottom) = (1040.0_f64, 150.0_f64, 8.0_f64, 20.0_f64);
    let n = c.buckets.len().max(1) as f64;
    let peak = c
        .buckets
        .iter()
        .map(|b| b.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = w / n;
    let bar = (slot * 0.7).max(1.0);
    let scale = (h - top - bottom) / peak;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="100%" height="{h}" role="img" aria-label="verifications per {}">"#,
        if c.width == 3_600 { "hour" } else { "day" }
    );
    for (i, b) in c.buckets.iter().enumerate() {
        let x = i as f64 * slot + (slot - bar) / 2.0;
        let mut y = h - bottom;
        for (k, outcome) in OUTCOMES.iter().enumerate() {
            if b[k] == 0 {
                continue;
            }
            let bh = b[k] as f64 * scale;
            y -= bh;
            svg.push_str(&format!(
                r#"<rect class="{outcome}" x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.1}"><title>{}: {} {outcome}</title></rect>"#,
                bucket_label(c, i),
                b[k]
            ));
        }
    }
    svg.push_str(&format!(
        r#"<line class="axis" x1="0" y1="{0}" x2="{w}" y2="{0}"/><text x="0" y="{1}">{2}</text><text x="{w}" y="{1}" text-anchor="end">{3}</text><text x="4" y="{4}">{5}</text></svg>"#,
        h - bottom,
        h - 5.0,
        bucket_label(c, 0),
        bucket_label(c, c.buckets.len().saturating_sub(1)),
        top + 10.0,
        peak as i64
    ));
    html! { (PreEscaped(svg)) }
}

/// The start of bucket `i`: `HH:00` for hours, `MM-DD` for days (UTC).
fn bucket_label(c: &Chart, i: usize) -> String {
    let t = c.from + i as i64 * c.width;
    let at =
        time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    if c.width == 3_600 {
        format!("{:02}:00", at.hour())
    } else {
        format!("{:02}-{:02}", u8::from(at.month()), at.day())
    }
}

/// The overview page.
pub fn overview(who: &SignedIn, o: &Overview) -> Markup {
    let error_rate = if o.finished > 0 {
        format!("{:.1} %", 100.0 * o.failed as f64 / o.finished as f64)
    } else {
        "–".into()
    };
    page(
        "Overview",
        Some(who),
        html! {
            section.cards {
                @for (decision, n) in &o.decisions {
                    div.card data-decision=(decision) {
                        span.label { (decision) }
                        span.value { (n) }
                    }
                }
                div.card { span.label { "error rate" } span.value { (error_rate) } }
                div.card {
                    span.label { "p95 verification time" }
                    span.value { @if let Some(p) = o.p95_ms { (p) " ms" } @else { "–" } }
                }
                @if who.role.allows(Action::Review) {
                    a.card href="/console/review" { span.label { "waiting for review" } span.value { (o.in_review) } }
                }
            }
            h2 { "Verifications, last " (o.chart.range) }
            nav.months {
                @for r in ["24h", "7d", "30d"] {
                    @if r == o.chart.range { strong { (r) } } @else { a href={ "/console/?range=" (r) } { (r) } }
                }
                span.legend { @for k in OUTCOMES { i class=(k) {} (k) " " } }
            }
            @let total: i64 = o.chart.buckets.iter().map(|b| b.iter().sum::<i64>()).sum();
            figure.chart data-range=(o.chart.range) data-total=(total) { (chart(&o.chart)) }
            h2 { "Usage in " (o.month) }
            table.usage {
                thead { tr { th { "module" } th.num { "used" } th.num { "quota" } th { "" } } }
                tbody {
                    @for m in &o.modules {
                        tr data-module=(m.module) data-used=(m.used) {
                            td { (m.module) }
                            td.num { (m.used) }
                            td.num { @if let Some(q) = m.quota { (q) } @else { "no quota" } }
                            td {
                                @if let Some(q) = m.quota.filter(|q| *q > 0) {
                                    (bar(m.used, q))
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A horizontal bar of `used` out of `of`, drawn as SVG on the server.
fn bar(used: i64, of: i64) -> Markup {
    let share = (used as f64 / of as f64).clamp(0.0, 1.0);
    let width = (share * 200.0).round();
    let class = if share >= 0.9 { "bar hot" } else { "bar" };
    html! {
        (PreEscaped(format!(
            r#"<svg class="{class}" width="200" height="10" viewBox="0 0 200 10" role="img" aria-label="{:.0} %"><rect width="200" height="10" rx="2" class="track"/><rect width="{width}" height="10" rx="2" class="fill"/></svg>"#,
            share * 100.0
        )))
    }
}

/// A row of the verifications list or the review queue.
pub struct JobLine {
    /// The job.
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// `queued`, `running`, `completed`, `failed`.
    pub status: String,
    /// Its decision.
    pub decision: Option<String>,
    /// Its score.
    pub score: Option<i64>,
}

/// A list of jobs, below `above` (a filter form).
pub fn jobs(
    title: &str,
    who: &SignedIn,
    jobs: &[JobLine],
    empty: &str,
    above: Option<Markup>,
) -> Markup {
    page(
        title,
        Some(who),
        html! {
            @if let Some(a) = above { (a) }
            @if jobs.is_empty() {
                p.empty { (empty) }
            } @else {
                table.jobs {
                    thead { tr { th { "job" } th { "submitted" } th { "status" } th { "decision" } th { "score" } } }
                    tbody {
                        @for j in jobs {
                            tr data-job=(j.id) {
                                td { a href={ "/console/jobs/" (j.id) } { (j.id) } }
                                td { (crate::workflow::jobs::rfc3339(j.created_at)) }
                                td { (j.status) }
                                td { span class={ "decision " (j.decision.as_deref().unwrap_or("")) } { (j.decision.as_deref().unwrap_or("–")) } }
                                td.num { @if let Some(s) = j.score { (s) } @else { "–" } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The verifications list's filter, as shown in its form.
pub struct ListFilter<'a> {
    /// Status, or empty.
    pub status: &'a str,
    /// Decision, or empty.
    pub decision: &'a str,
    /// `YYYY-MM-DD` or empty.
    pub from: &'a str,
    /// `YYYY-MM-DD` or empty.
    pub to: &'a str,
    /// Reference, or empty.
    pub reference: &'a str,
}

/// The verifications list with its filter form.
pub fn verifications(who: &SignedIn, rows: &[JobLine], f: &ListFilter<'_>) -> Markup {
    let select = |name: &str, current: &str, options: &[&str]| {
        html! {
            select name=(name) {
                option value="" { "any " (name) }
                @for o in options { option value=(o) selected[*o == current] { (o) } }
            }
        }
    };
    let filter = html! {
        form.search.filters method="get" action="/console/verifications" {
            (select("status", f.status, &["queued", "running", "completed", "failed"]))
            (select("decision", f.decision, &["accepted", "review", "rejected"]))
            label.inline { "from " input type="date" name="from" value=(f.from); }
            label.inline { "to " input type="date" name="to" value=(f.to); }
            input type="text" name="reference" value=(f.reference) placeholder="reference" maxlength="256";
            button type="submit" { "Filter" }
            a href="/console/verifications" { "Clear" }
        }
    };
    jobs(
        "Verifications",
        who,
        rows,
        "No verifications match.",
        Some(filter),
    )
}

/// One verification: its images, decision, factors, reasons, fields, MRZ checks, and the review
/// form.
pub fn job(who: &SignedIn, view: &Value, can_review: bool) -> Markup {
    const SHOWN: [(&str, &str); 4] = [
        ("selfie", "Selfie"),
        ("face_crop", "Document portrait"),
        ("document_front", "Document front"),
        ("document_back", "Document back"),
    ];
    let images: Vec<(&str, &str)> = if who.role.allows(Action::ViewImages) {
        SHOWN
            .iter()
            .filter_map(|(kind, label)| Some((view["media"][*kind].as_str()?, *label)))
            .collect()
    } else {
        Vec::new()
    };
    let id = view["job_id"].as_str().unwrap_or_default();
    let decision = view["decision"].as_str().unwrap_or("–");
    page(
        &format!("Verification {id}"),
        Some(who),
        html! {
            p.summary {
                "Status " strong { (view["status"].as_str().unwrap_or("")) }
                " · decision " strong id="decision" class={ "decision " (decision) } { (decision) }
                @if let Some(s) = view["score"].as_i64() { " · score " strong { (s) } }
                @if let Some(r) = view["reference"].as_str() { " · reference " code { (r) } }
            }
            @if let Some(review) = view.get("review").filter(|r| r.is_object()) {
                p.review {
                    "Reviewed by " strong { (review["reviewer"].as_str().unwrap_or("")) }
                    " (" (review["outcome"].as_str().unwrap_or("")) ", " (review["at"].as_str().unwrap_or("")) ")"
                    @if let Some(c) = review["comment"].as_str().filter(|c| !c.is_empty()) { ": " q { (c) } }
                }
            }
            @if !images.is_empty() {
                section.images {
                    @for (id, label) in &images {
                        figure {
                            img src={ "/console/media/" (id) } alt=(label) loading="lazy";
                            figcaption { (label) }
                        }
                    }
                }
            }
            @if can_review {
                form.review method="post" action={ "/console/jobs/" (id) "/review" } {
                    (csrf(who))
                    label { "Comment" textarea name="comment" rows="2" maxlength="2000" {} }
                    button name="outcome" value="approved" type="submit" { "Approve" }
                    button.danger name="outcome" value="rejected" type="submit" { "Reject" }
                }
            }
            @if let Some(reasons) = view["reasons"].as_array().filter(|r| !r.is_empty()) {
                h2 { "Reasons" }
                ul.reasons { @for r in reasons { li { (r.as_str().unwrap_or("")) } } }
            }
            @if let Some(factors) = view["factors"].as_object() {
                h2 { "Factors" }
                table.factors {
                    thead { tr { th { "factor" } th.num { "score" } th.num { "weight" } } }
                    tbody {
                        @for (name, f) in factors {
                            tr { td { (name) } td.num { (f["score"]) } td.num { (f["weight"]) } }
                        }
                    }
                }
            }
            @if let Some(fields) = view["extracted"].as_object().filter(|f| !f.is_empty()) {
                h2 { "Extracted fields" }
                table.fields {
                    tbody {
                        @for (name, v) in fields {
                            tr { th { (name) } td { (v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())) } }
                        }
                    }
                }
            }
            @if let Some(checks) = view["steps"]["document"]["mrz"]["checks"].as_array() {
                h2 { "MRZ checks" }
                table.checks {
                    tbody {
                        @for c in checks {
                            tr { td { (c["name"].as_str().unwrap_or("")) } td class={ "check " (c["status"].as_str().unwrap_or("")) } { (c["status"].as_str().unwrap_or("")) } }
                        }
                    }
                }
            }
        },
    )
}

/// A key as the keys page lists it.
pub struct KeyLine {
    /// `ak_…`.
    pub id: String,
    /// Its label.
    pub label: String,
    /// `active` or `revoked`.
    pub status: String,
    /// `live` or `sandbox`.
    pub environment: String,
    /// Module scopes.
    pub scopes: String,
    /// Unix seconds of the last signed request.
    pub last_used_at: Option<i64>,
}

/// The API keys page; `created` holds a new key's id and secret, shown this once.
pub fn keys(who: &SignedIn, keys: &[KeyLine], created: Option<(&str, &str)>) -> Markup {
    page(
        "API keys",
        Some(who),
        html! {
            @if let Some((id, secret)) = created {
                div.secret role="status" {
                    p { "New secret for key " code { (id) } ", shown this once — store it now:" }
                    pre id="secret" { (secret) }
                }
            }
            @if who.role.allows(Action::ManageKeys) {
                form.create method="post" action="/console/keys" {
                    (csrf(who))
                    label { "Label" input type="text" name="label" maxlength="200"; }
                    fieldset {
                        legend { "Modules it may call" }
                        @for m in crate::tenancy::plans::Module::ALL {
                            label.inline { input type="checkbox" name="scopes" value=(m.as_str()) checked; " " (m.as_str()) }
                        }
                    }
                    button id="create-key" type="submit" { "Create key" }
                }
            }
            table.keys {
                thead { tr { th { "key" } th { "label" } th { "environment" } th { "scopes" } th { "last used" } th { "status" } th { "" } } }
                tbody {
                    @for k in keys {
                        tr data-key=(k.id) {
                            td { code { (k.id) } }
                            td { (k.label) }
                            td { (k.environment) }
                            td { (k.scopes) }
                            td { @if let Some(t) = k.last_used_at { (crate::workflow::jobs::rfc3339(t)) } @else { "never" } }
                            td { (k.status) }
                            td {
                                @if k.status == "active" && who.role.allows(Action::ManageKeys) {
                                    form.rotate method="post" action={ "/console/keys/" (k.id) "/rotate" } {
                                        (csrf(who))
                                        select name="overlap" aria-label="old secret keeps working for" {
                                            option value="0" { "old secret stops now" }
                                            option value="3600" { "old secret works 1 h more" }
                                            option value="86400" selected { "old secret works 24 h more" }
                                            option value="604800" { "old secret works 7 days more" }
                                        }
                                        button type="submit" { "Rotate" }
                                    }
                                    form method="post" action={ "/console/keys/" (k.id) "/revoke" } {
                                        (csrf(who))
                                        button.danger type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// Micro-units as an amount with two decimals.
fn money(micros: i64) -> String {
    format!("{:.2}", micros as f64 / 1e6)
}

/// Usage and the invoice of a month, with the months to choose from.
pub fn usage(
    who: &SignedIn,
    invoice: &crate::tenancy::invoice::Invoice,
    months: &[String],
) -> Markup {
    page(
        &format!("Usage and invoice, {}", invoice.month),
        Some(who),
        html! {
            nav.months {
                @for m in months {
                    @if *m == invoice.month { strong { (m) } } @else { a href={ "/console/usage?month=" (m) } { (m) } }
                }
            }
            table.invoice {
                thead { tr { th { "module" } th.num { "units" } th.num { "unit price" } th.num { "discount %" } th.num { "amount" } } }
                tbody {
                    @for l in &invoice.lines {
                        tr data-line=(l.module) data-count=(l.count) {
                            td { (l.module) }
                            td.num { (l.count) }
                            td.num { (money(l.unit_price_micros)) }
                            td.num { (l.discount_percent) }
                            td.num { (money(l.amount_micros)) }
                        }
                    }
                    tr.total { th { "total (" (invoice.status) ")" } td {} td {} td {} td.num { strong { (money(invoice.total_micros)) " " (invoice.currency) } } }
                }
            }
            p { a id="csv" href={ "/console/usage/" (invoice.month) ".csv" } download { "Download CSV" } }
        },
    )
}

/// The audit log of the tenant, searched.
pub fn audit(who: &SignedIn, q: &str, rows: &[crate::store::audit::AuditRow]) -> Markup {
    page(
        "Audit log",
        Some(who),
        html! {
            form.search method="get" action="/console/audit" {
                input type="text" name="q" value=(q) placeholder="search: key, revoke, user:owner@…";
                button type="submit" { "Search" }
                a href="/console/audit/export?format=jsonl" download { "JSONL" }
                " · "
                a href="/console/audit/export?format=csv" download { "CSV" }
            }
            table.audit {
                thead { tr { th { "when" } th { "who" } th { "what" } th { "target" } } }
                tbody {
                    @for r in rows {
                        tr data-action=(r.action) {
                            td { (crate::workflow::jobs::rfc3339(r.at)) }
                            td { (r.actor) }
                            td { (r.action) }
                            td { code { (r.target.as_deref().unwrap_or("")) } }
                        }
                    }
                }
            }
        },
    )
}

/// The users page; `shown` is a new or reset password for `email`, shown this once.
pub fn users(
    who: &SignedIn,
    users: &[crate::store::console::UserRow],
    shown: Option<(&str, &str)>,
) -> Markup {
    let now = crate::store::now();
    page(
        "Users",
        Some(who),
        html! {
            @if let Some((email, password)) = shown {
                div.secret role="status" {
                    p { "Temporary password for " strong { (email) } ", shown this once — hand it over; they change it after signing in:" }
                    pre id="password" { (password) }
                }
            }
            form.create method="post" action="/console/users" {
                (csrf(who))
                label { "Email" input type="email" name="email" required; }
                label { "Role"
                    select name="role" {
                        @for r in super::users::Role::ALL { option value=(r.as_str()) { (r.as_str()) } }
                    }
                }
                button id="add-user" type="submit" { "Add user" }
            }
            table.users {
                thead { tr { th { "email" } th { "role" } th { "status" } th { "second factor" } th { "last sign-in" } th { "" } } }
                tbody {
                    @for u in users {
                        tr data-user=(u.email) data-status=(u.status) {
                            td { (u.email) }
                            td { (u.role) }
                            td {
                                (u.status)
                                @if u.locked_until.is_some_and(|l| l > now) { " (locked)" }
                            }
                            td { @if u.totp_secret.is_some() { "on" } @else { "off" } }
                            td { @if let Some(t) = u.last_login_at { (crate::workflow::jobs::rfc3339(t)) } @else { "never" } }
                            td.actions {
                                @if u.id != who.user.id {
                                    @let next = if u.status == "active" { ("disable", "Disable") } else { ("enable", "Enable") };
                                    form method="post" action={ "/console/users/" (u.id) "/" (next.0) } {
                                        (csrf(who)) button.danger type="submit" { (next.1) }
                                    }
                                    form method="post" action={ "/console/users/" (u.id) "/reset" } {
                                        (csrf(who)) button.danger type="submit" { "Reset password" }
                                    }
                                    @if u.totp_secret.is_some() {
                                        form method="post" action={ "/console/users/" (u.id) "/remove-2fa" } {
                                            (csrf(who)) button.danger type="submit" { "Remove second factor" }
                                        }
                                    }
                                } @else {
                                    a href="/console/security" { "My password and second factor" }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// Changing one's own password.
/// The change-password form of the console at `path` (`/console` or `/admin`).
pub fn password(path: &str, who: &SignedIn, error: Option<&str>) -> Markup {
    page(
        "Change password",
        Some(who),
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.create method="post" action=(format!("{path}/password")) {
                (csrf(who))
                label { "Current password" input type="password" name="current" autocomplete="current-password" required; }
                label { "New password (at least 12 characters)" input type="password" name="new" autocomplete="new-password" required minlength="12"; }
                button type="submit" { "Change password" }
            }
        },
    )
}
