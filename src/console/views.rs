//! The console's pages, rendered on the server with `maud` (checked at compile time, escaped by
//! default). Plain HTML forms posting back to the server: no script is needed to use any page.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use super::users::{Action, SignedIn};

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
                            a.who href="/console/password" { (who.user.email) " · " (who.role.as_str()) }
                            button type="submit" { "Sign out" }
                        }
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

/// The hidden field every form that changes something carries.
pub fn csrf(who: &SignedIn) -> Markup {
    html! { input type="hidden" name="_csrf" value=(who.csrf); }
}

/// The sign-in form, with what went wrong last time.
pub fn login(error: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.login method="post" action="/console/login" {
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
                    span.value { @if let Some(p) = o.p95_ms { (format!("{:.1} s", p as f64 / 1000.0)) } @else { "–" } }
                }
                @if who.role.allows(Action::Review) {
                    a.card href="/console/review" { span.label { "waiting for review" } span.value { (o.in_review) } }
                }
            }
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

/// A list of jobs.
pub fn jobs(title: &str, who: &SignedIn, jobs: &[JobLine], empty: &str) -> Markup {
    page(
        title,
        Some(who),
        html! {
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
                    p { "Key " code { (id) } " created. Its secret is shown this once — store it now:" }
                    pre id="secret" { (secret) }
                }
            }
            @if who.role.allows(Action::ManageKeys) {
                form.create method="post" action="/console/keys" {
                    (csrf(who))
                    label { "Label" input type="text" name="label" maxlength="200"; }
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
                thead { tr { th { "email" } th { "role" } th { "status" } th { "last sign-in" } th { "" } } }
                tbody {
                    @for u in users {
                        tr data-user=(u.email) data-status=(u.status) {
                            td { (u.email) }
                            td { (u.role) }
                            td {
                                (u.status)
                                @if u.locked_until.is_some_and(|l| l > now) { " (locked)" }
                            }
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
                                } @else {
                                    a href="/console/password" { "Change my password" }
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
pub fn password(who: &SignedIn, error: Option<&str>) -> Markup {
    page(
        "Change password",
        Some(who),
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.create method="post" action="/console/password" {
                (csrf(who))
                label { "Current password" input type="password" name="current" autocomplete="current-password" required; }
                label { "New password (at least 12 characters)" input type="password" name="new" autocomplete="new-password" required minlength="12"; }
                button type="submit" { "Change password" }
            }
        },
    )
}
