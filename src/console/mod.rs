//! The tenant console at `/console`: people (not keys) signed in with a password, looking at
//! their tenant's verifications, deciding the ones in review, managing API keys.
//!
//! Served by the same binary, every asset embedded. Pages are rendered on the server
//! ([`views`]); each handler reads the session ([`Console`], in its signature), checks the role
//! for the action, calls the same domain function the API calls, and renders. Every form that
//! changes something carries the session's CSRF token, checked before anything else; the
//! session cookie is HttpOnly and SameSite=Strict (and Secure when the request came over TLS).

mod admin;
pub mod door;
pub mod operators;
mod signin;
pub mod totp;
pub mod users;
pub mod views;
mod webhooks;
mod workflow;

use std::future::Future;
use std::pin::Pin;

use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use maud::Markup;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::http::AppState;
use crate::store::console::Realm;
use crate::store::{self, StoreError};
use crate::tenancy::plans::Module;
use crate::workflow::review::{self, Outcome, Reviewer};
use door::{Door, TenantDoor};
use users::{Action, SignedIn, UserError};

/// The session cookie's name.
pub const COOKIE: &str = TenantDoor::COOKIE;

/// Largest form the console accepts, bytes.
pub const FORM_BYTES: usize = 64 * 1024;

/// Registers the operator console at `/admin` (after the `/admin/v1` API scope, which keeps
/// its own routes).
pub fn configure_operator(cfg: &mut web::ServiceConfig) {
    admin::configure(cfg);
}

/// Registers the console's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .route("/assets/console.css", web::get().to(css))
            .route("/login", web::get().to(door::login_form::<TenantDoor>))
            .route("/login", web::post().to(door::login::<TenantDoor>))
            .route("/login/code", web::get().to(door::code_form::<TenantDoor>))
            .route("/login/code", web::post().to(door::code::<TenantDoor>))
            .route("/logout", web::post().to(logout))
            .route("/", web::get().to(overview))
            .route("", web::get().to(overview))
            .route("/verifications", web::get().to(verifications))
            .route("/review", web::get().to(review_queue))
            .route("/jobs/{id}", web::get().to(job))
            .route("/jobs/{id}/review", web::post().to(decide))
            .route("/media/{id}", web::get().to(media))
            .route("/usage", web::get().to(usage))
            .route("/usage/{file}", web::get().to(usage_csv))
            .route("/audit", web::get().to(audit))
            .route("/audit/export", web::get().to(audit_export))
            .route("/users", web::get().to(users_page))
            .route("/users", web::post().to(add_user))
            .route("/users/{id}/{change}", web::post().to(change_user))
            .route("/keys", web::get().to(keys))
            .route("/keys", web::post().to(create_key))
            .route("/keys/{id}/revoke", web::post().to(revoke_key))
            .route("/keys/{id}/rotate", web::post().to(rotate_key))
            .configure(webhooks::configure)
            .configure(signin::configure::<TenantDoor>)
            .configure(workflow::configure)
            // Console forms are small; nothing posted here needs more.
            .app_data(web::PayloadConfig::default().limit(FORM_BYTES))
            .app_data(web::FormConfig::default().limit(FORM_BYTES))
            .default_service(web::to(not_found)),
    );
}

/// Why a console request was not served.
#[derive(Debug)]
pub enum ConsoleError {
    /// No live session: go and sign in.
    SignIn,
    /// The password was right; the second factor is still to come.
    SecondFactor,
    /// No live operator session: go and sign in at `/admin/login`.
    OperatorSignIn,
    /// An operator's password was right; the second factor is still to come.
    OperatorSecondFactor,
    /// Too many sign-in attempts from this address: try again after this many seconds.
    Throttled(u64),
    /// The role does not allow it (the page and the action both refuse).
    Forbidden(Box<SignedIn>),
    /// Not this tenant's, or nothing there.
    NotFound(Option<Box<SignedIn>>),
    /// A change without the session's CSRF token.
    Csrf,
    /// A value is not acceptable, or the state forbids it (already reviewed).
    Refused(Box<SignedIn>, StatusCode, String),
    /// Our fault.
    Internal(String),
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the user row (it holds the password hash).
        f.write_str(match self {
            ConsoleError::SignIn => "not signed in",
            ConsoleError::SecondFactor | ConsoleError::OperatorSecondFactor => {
                "second factor awaited"
            }
            ConsoleError::OperatorSignIn => "not signed in",
            ConsoleError::Throttled(_) => "too many sign-in attempts",
            ConsoleError::Forbidden(_) => "not allowed for this role",
            ConsoleError::NotFound(_) => "not found",
            ConsoleError::Csrf => "missing or stale CSRF token",
            ConsoleError::Refused(..) => "refused",
            ConsoleError::Internal(_) => "internal error",
        })
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn
            | ConsoleError::SecondFactor
            | ConsoleError::OperatorSignIn
            | ConsoleError::OperatorSecondFactor => StatusCode::SEE_OTHER,
            ConsoleError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ConsoleError::Forbidden(_) | ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Refused(_, s, _) => *s,
            ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let markup = match self {
            ConsoleError::SignIn => return see_other("/console/login"),
            ConsoleError::SecondFactor => return see_other("/console/login/code"),
            ConsoleError::OperatorSignIn => return see_other("/admin/login"),
            ConsoleError::OperatorSecondFactor => return see_other("/admin/login/code"),
            ConsoleError::Throttled(secs) => {
                let mut r = html(
                    self.status_code(),
                    views::message(
                        "Too many sign-in attempts",
                        None,
                        &format!("Too many sign-in attempts from your address: try again in {secs} seconds."),
                    ),
                );
                if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return r;
            }
            ConsoleError::Forbidden(who) => views::message(
                "Not allowed",
                Some(who.as_ref()),
                &format!("Your role ({}) does not allow this.", who.user.role),
            ),
            ConsoleError::NotFound(who) => {
                views::message("Not found", who.as_deref(), "There is nothing here.")
            }
            ConsoleError::Csrf => views::message(
                "Form expired",
                None,
                "This form is no longer valid (its security token is missing or old). Go back, reload the page and try again.",
            ),
            ConsoleError::Refused(who, _, why) => {
                views::message("Not done", Some(who.as_ref()), why)
            }
            ConsoleError::Internal(e) => {
                tracing::error!(error = %e, "console request failed");
                views::message("Something went wrong", None, "The request failed on our side.")
            }
        };
        html(self.status_code(), markup)
    }
}

pub(super) fn html(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ))
        .insert_header(("X-Frame-Options", "DENY"))
        .body(markup.into_string())
}

/// CSV's media type.
pub(super) const CSV: &str = "text/csv; charset=utf-8";
/// JSON lines' media type.
pub(super) const JSONL: &str = "application/x-ndjson";

/// A file the browser saves as `name` (never cached).
pub(super) fn download(
    kind: &str,
    name: &str,
    body: impl actix_web::body::MessageBody + 'static,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

pub(super) fn ok(markup: Markup) -> HttpResponse {
    html(StatusCode::OK, markup)
}

pub(super) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// The signed-in user of a console request; without a live session the request is sent to the
/// sign-in page.
pub struct Console(pub SignedIn);

impl FromRequest for Console {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let found = door::session::<TenantDoor>(req);
        Box::pin(async move { door::signed_in::<TenantDoor>(found).await.map(Console) })
    }
}

/// Refuses a change whose form does not carry `who`'s session token (constant time).
pub(super) fn check_csrf(who: &SignedIn, sent: Option<&str>) -> Result<(), ConsoleError> {
    match sent {
        Some(s) if bool::from(s.as_bytes().ct_eq(who.csrf.as_bytes())) => Ok(()),
        _ => Err(ConsoleError::Csrf),
    }
}

impl Console {
    /// Refuses unless the role allows `action`.
    pub(super) fn may(&self, action: Action) -> Result<(), ConsoleError> {
        if self.0.role.allows(action) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(Box::new(self.0.clone())))
        }
    }

    /// Refuses a change whose form does not carry this session's token.
    pub(super) fn check_csrf(&self, sent: Option<&str>) -> Result<(), ConsoleError> {
        check_csrf(&self.0, sent)
    }

    pub(super) fn tenant(&self) -> &str {
        &self.0.user.tenant_id
    }

    pub(super) fn actor(&self) -> String {
        self.0.actor()
    }
}

/// Runs blocking domain work.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ConsoleError> + Send + 'static,
) -> Result<T, ConsoleError> {
    web::block(f)
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))?
}

pub(super) fn internal(e: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Internal(e.to_string())
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(views::CSS)
}

async fn not_found() -> Result<HttpResponse, ConsoleError> {
    Err(ConsoleError::NotFound(None))
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    pub(super) _csrf: Option<String>,
}

/// A posted form as its fields in order, repeated names kept (checkbox groups, rule rows).
pub(super) struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub(super) fn parse(body: &[u8]) -> Result<Fields, ConsoleError> {
        serde_urlencoded::from_bytes(body)
            .map(Fields)
            .map_err(|_| ConsoleError::Csrf)
    }

    /// The first value of `name`.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub(super) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn logout(
    req: HttpRequest,
    who: Console,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_csrf(form._csrf.as_deref())?;
    door::sign_out::<TenantDoor>(&req, &state, who.0).await
}

#[derive(Deserialize)]
struct OverviewQuery {
    range: Option<String>,
}

/// The chart's ranges: name, bucket width (seconds), buckets.
const RANGES: [(&str, i64, i64); 3] = [("24h", 3_600, 24), ("7d", 86_400, 7), ("30d", 86_400, 30)];

async fn overview(
    who: Console,
    state: web::Data<AppState>,
    query: web::Query<OverviewQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let tenant = who.tenant().to_owned();
    let wanted = query.into_inner().range;
    let (range, width, n) = RANGES
        .into_iter()
        .find(|(name, _, _)| Some(*name) == wanted.as_deref())
        .unwrap_or(RANGES[0]);
    let o = blocking(move || {
        let month = crate::tenancy::invoice::current_month();
        let report = crate::tenancy::invoice::usage_report(&state.store, &tenant, &month)
            .map_err(internal)?;
        let (from, to) = crate::tenancy::meter::period_bounds(&month).unwrap_or((0, i64::MAX));
        let now = store::now();
        // Buckets end with the current hour (or UTC day).
        let chart_from = (now / width + 1 - n) * width;
        let (counts, mut runs, in_review, histogram) = state
            .store
            .read(|c| {
                Ok((
                    store::console::job_counts(c, &tenant, from, to)?,
                    store::console::run_ms(c, &tenant, from, to, 10_000)?,
                    store::console::review_count(c, &tenant)?,
                    store::console::job_histogram(c, &tenant, chart_from, width, n)?,
                ))
            })
            .map_err(internal)?;
        let count = |f: &dyn Fn(&str, Option<&str>) -> bool| -> i64 {
            counts
                .iter()
                .filter(|(s, d, _)| f(s, d.as_deref()))
                .map(|(_, _, n)| n)
                .sum()
        };
        let decided = |want: &'static str| (want, count(&|_, d| d == Some(want)));
        runs.sort_unstable();
        let mut buckets = vec![[0i64; 4]; n as usize];
        for (b, outcome, k) in histogram {
            let slot = match outcome.as_str() {
                "accepted" => 0,
                "review" => 1,
                "rejected" => 2,
                "failed" => 3,
                _ => continue,
            };
            if let Some(bucket) = usize::try_from(b).ok().and_then(|b| buckets.get_mut(b)) {
                bucket[slot] += k;
            }
        }
        Ok(views::Overview {
            modules: report
                .modules
                .iter()
                .map(|m| views::ModuleLine {
                    module: m.module,
                    used: m.used,
                    quota: m.quota,
                })
                .collect(),
            month,
            decisions: [decided("accepted"), decided("review"), decided("rejected")],
            failed: count(&|s, _| s == "failed"),
            finished: count(&|s, _| s == "failed" || s == "completed"),
            p95_ms: (!runs.is_empty())
                .then(|| runs[((runs.len() - 1) as f64 * 0.95).round() as usize]),
            in_review,
            chart: views::Chart {
                range,
                from: chart_from,
                width,
                buckets,
            },
        })
    })
    .await?;
    Ok(ok(views::overview(&who.0, &o)))
}

fn job_lines(rows: Vec<store::jobs::JobRow>) -> Vec<views::JobLine> {
    rows.into_iter()
        .map(|j| views::JobLine {
            id: j.id,
            created_at: j.created_at,
            status: j.status,
            decision: j.decision,
            score: j.score,
        })
        .collect()
}

#[derive(Deserialize, Default)]
struct ListQuery {
    status: Option<String>,
    decision: Option<String>,
    /// `YYYY-MM-DD`, UTC, inclusive.
    from: Option<String>,
    /// `YYYY-MM-DD`, UTC, inclusive.
    to: Option<String>,
    reference: Option<String>,
}

/// Verifications a list shows at most.
const LIST_ROWS: i64 = 200;

/// Unix seconds at the start of a `YYYY-MM-DD` (UTC).
fn day_start(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(s, format).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

async fn verifications(
    who: Console,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ConsoleError> {
    who.may(Action::ViewVerifications)?;
    let tenant = who.tenant().to_owned();
    let q = query.into_inner();
    let pick = |v: &Option<String>, allowed: &[&str]| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| allowed.contains(v))
            .map(str::to_owned)
    };
    let bad_date = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty() && day_start(d).is_none())
            .is_some()
    };
    if bad_date(&q.from) || bad_date(&q.to) {
        return Err(ConsoleError::Refused(
            Box::new(who.0.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "A date is YYYY-MM-DD.".into(),
        ));
    }
    let filter = store::console::JobFilter {
        status: pick(&q.status, &["queued", "running", "completed", "failed"]),
        decision: pick(&q.decision, &["accepted", "review", "rejected"]),
        from: q.from.as_deref().and_then(|d| day_start(d.trim())),
        to: q
            .to
            .as_deref()
            .and_then(|d| day_start(d.trim()))
            .map(|t| t + 86_400),
        reference: q
            .reference
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| r.chars().take(256).collect()),
    };
    let f = filter.clone();
    let rows = blocking(move || {
        state
            .store
            .read(|c| store::console::search_jobs(c, &tenant, &f, LIST_ROWS))
            .map_err(internal)
    })
    .await?;
    let shown = views::ListFilter {
        status: filter.status.as_deref().unwrap_or(""),
        decision: filter.decision.as_deref().unwrap_or(""),
        from: q.from.as_deref().unwrap_or("").trim(),
        to: q.to.as_deref().unwrap_or("").trim(),
        reference: filter.reference.as_deref().unwrap_or(""),
    };
    Ok(ok(views::verifications(&who.0, &job_lines(rows), &shown)))
}

async fn review_queue(
    who: Console,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    who.may(Action::Review)?;
    let tenant = who.tenant().to_owned();
    let rows = blocking(move || {
        state
            .store
            .read(|c| {
                let ids = store::console::review_queue(c, &tenant, 200)?;
                let mut rows = Vec::with_capacity(ids.len());
                for (id, _, _) in ids {
                    if let Some(j) = store::jobs::get(c, &tenant, &id)? {
                        rows.push(j);
                    }
                }
                Ok(rows)
            })
            .map_err(internal)
    })
    .await?;
    Ok(ok(views::jobs(
        "Review queue",
        &who.0,
        &job_lines(rows),
        "Nothing is waiting for review.",
        None,
    )))
}

async fn job(
    who: Console,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    who.may(Action::ViewVerifications)?;
    let tenant = who.tenant().to_owned();
    let signed = who.0.clone();
    let view = blocking(move || {
        let job = state
            .store
            .read(|c| store::jobs::get(c, &tenant, &id))
            .map_err(internal)?
            .ok_or(ConsoleError::NotFound(Some(Box::new(signed))))?;
        Ok(state.jobs.view(&job))
    })
    .await?;
    let can_review = view["decision"] == "review"
        && view.get("review").is_none()
        && who.0.role.allows(Action::Review);
    Ok(ok(views::job(&who.0, &view, can_review)))
}

/// An image of a verification, decrypted for a user whose role may see images; every view is in
/// the audit log with the user.
async fn media(
    who: Console,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    who.may(Action::ViewImages)?;
    let (tenant, actor, signed) = (who.tenant().to_owned(), who.actor(), who.0.clone());
    let id = id.into_inner();
    let bytes = blocking(move || {
        let (row, bytes) = match state.media.get(&tenant, &id) {
            Ok(found) => found,
            Err(crate::media::MediaError::Store(StoreError::NotFound(_))) => {
                return Err(ConsoleError::NotFound(Some(Box::new(signed))))
            }
            Err(e) => return Err(internal(e)),
        };
        let now = store::now();
        state
            .store
            .write(|tx| {
                store::audit::append(
                    tx,
                    &crate::audit::NewEntry::new(actor, "media.view")
                        .tenant(&tenant)
                        .target(&row.id)
                        .details(serde_json::json!({ "kind": row.kind })),
                    now,
                )
                .map(drop)
            })
            .map_err(internal)?;
        Ok(bytes)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(bytes))
}

#[derive(Deserialize)]
struct ReviewForm {
    _csrf: Option<String>,
    outcome: String,
    #[serde(default)]
    comment: String,
}

async fn decide(
    who: Console,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<ReviewForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_csrf(form._csrf.as_deref())?;
    who.may(Action::Review)?;
    let form = form.into_inner();
    let outcome = match form.outcome.as_str() {
        "approved" => Outcome::Approved,
        "rejected" => Outcome::Rejected,
        _ => {
            return Err(ConsoleError::Refused(
                Box::new(who.0.clone()),
                StatusCode::UNPROCESSABLE_ENTITY,
                "Approve or reject.".into(),
            ))
        }
    };
    let signed = who.0.clone();
    let job_id = id.into_inner();
    let to = format!("/console/jobs/{job_id}");
    let st = state.clone();
    blocking(move || {
        let reviewer = Reviewer {
            user_id: &signed.user.id,
            email: &signed.user.email,
        };
        match review::decide(
            &st.store,
            &signed.user.tenant_id,
            &job_id,
            &reviewer,
            outcome,
            &form.comment,
        ) {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound(_)) => Err(ConsoleError::NotFound(Some(Box::new(signed)))),
            Err(StoreError::Conflict(why)) => Err(ConsoleError::Refused(
                Box::new(signed),
                StatusCode::CONFLICT,
                why,
            )),
            Err(StoreError::Invalid { reason, .. }) => Err(ConsoleError::Refused(
                Box::new(signed),
                StatusCode::UNPROCESSABLE_ENTITY,
                reason,
            )),
            Err(e) => Err(internal(e)),
        }
    })
    .await?;
    state.jobs.deliverer.wake.notify_one();
    Ok(see_other(&to))
}

async fn key_lines(
    state: &web::Data<AppState>,
    tenant: &str,
) -> Result<Vec<views::KeyLine>, ConsoleError> {
    let (st, tenant) = (state.clone(), tenant.to_owned());
    let rows =
        blocking(move || crate::auth::keys::list_keys(&st.store, Some(&tenant)).map_err(internal))
            .await?;
    Ok(rows
        .into_iter()
        .map(|k| views::KeyLine {
            id: k.id,
            label: k.label.unwrap_or_default(),
            status: k.status,
            environment: k.environment,
            scopes: k
                .scopes
                .map_or_else(|| "all modules".into(), |s| s.join(", ")),
            last_used_at: k.last_used_at,
        })
        .collect())
}

async fn keys(who: Console, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    who.may(Action::ManageKeys)?;
    let lines = key_lines(&state, who.tenant()).await?;
    Ok(ok(views::keys(&who.0, &lines, None)))
}

async fn create_key(
    who: Console,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let form = Fields::parse(&body)?;
    who.check_csrf(form.get("_csrf"))?;
    who.may(Action::ManageKeys)?;
    let (st, tenant, actor, signed) = (
        state.clone(),
        who.tenant().to_owned(),
        who.actor(),
        who.0.clone(),
    );
    let label = form.get("label").unwrap_or_default().trim().to_owned();
    let modules: Vec<Module> = form.all("scopes").filter_map(Module::parse).collect();
    // Every module ticked is the same as none named: the key follows new modules too.
    let scopes = (modules.len() < Module::ALL.len()).then_some(modules);
    let created = blocking(move || {
        let spec = crate::auth::keys::KeySpec {
            label: Some(label).filter(|l| !l.is_empty()),
            scopes,
            ..Default::default()
        };
        crate::auth::keys::create_key_with(&st.store, &tenant, &spec, &actor).map_err(|e| {
            ConsoleError::Refused(
                Box::new(signed),
                StatusCode::UNPROCESSABLE_ENTITY,
                e.to_string(),
            )
        })
    })
    .await?;
    let lines = key_lines(&state, who.tenant()).await?;
    Ok(ok(views::keys(
        &who.0,
        &lines,
        Some((&created.key.id, &created.secret)),
    )))
}

#[derive(Deserialize)]
struct RotateForm {
    _csrf: Option<String>,
    /// Seconds the old secret keeps working.
    #[serde(default)]
    overlap: i64,
}

/// A key's own tenant's key, or 404.
async fn own_key(state: &web::Data<AppState>, who: &Console, id: &str) -> Result<(), ConsoleError> {
    let (st, tenant, id, signed) = (
        state.clone(),
        who.tenant().to_owned(),
        id.to_owned(),
        who.0.clone(),
    );
    blocking(move || {
        let owned = crate::auth::keys::list_keys(&st.store, Some(&tenant))
            .map_err(internal)?
            .iter()
            .any(|k| k.id == id);
        if owned {
            Ok(())
        } else {
            Err(ConsoleError::NotFound(Some(Box::new(signed))))
        }
    })
    .await
}

async fn rotate_key(
    who: Console,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<RotateForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_csrf(form._csrf.as_deref())?;
    who.may(Action::ManageKeys)?;
    let id = id.into_inner();
    own_key(&state, &who, &id).await?;
    let (st, actor, signed) = (state.clone(), who.actor(), who.0.clone());
    let overlap = form.overlap;
    let key_id = id.clone();
    let rotated = blocking(move || {
        crate::auth::keys::rotate_key(&st.store, &key_id, overlap, &actor).map_err(|e| {
            ConsoleError::Refused(
                Box::new(signed),
                StatusCode::UNPROCESSABLE_ENTITY,
                e.to_string(),
            )
        })
    })
    .await?;
    let lines = key_lines(&state, who.tenant()).await?;
    Ok(ok(views::keys(
        &who.0,
        &lines,
        Some((&id, &rotated.secret)),
    )))
}

async fn revoke_key(
    who: Console,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_csrf(form._csrf.as_deref())?;
    who.may(Action::ManageKeys)?;
    let id = id.into_inner();
    own_key(&state, &who, &id).await?;
    let actor = who.actor();
    blocking(move || {
        crate::auth::keys::revoke_key(&state.store, &id, &actor).map_err(internal)?;
        Ok(())
    })
    .await?;
    Ok(see_other("/console/keys"))
}

#[derive(Deserialize)]
struct MonthQuery {
    month: Option<String>,
}

/// The last twelve months, newest first.
fn recent_months() -> Vec<String> {
    let now = store::now();
    let mut months: Vec<String> = Vec::new();
    let mut at = now;
    while months.len() < 12 {
        let m = crate::tenancy::meter::period_of(at);
        if months.last() != Some(&m) {
            months.push(m);
        }
        at -= 20 * 86_400;
    }
    months
}

fn month_or_refuse(who: &Console, month: Option<String>) -> Result<String, ConsoleError> {
    let month = month.unwrap_or_else(crate::tenancy::invoice::current_month);
    if crate::tenancy::meter::period_bounds(&month).is_none() {
        return Err(ConsoleError::Refused(
            Box::new(who.0.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "A month is YYYY-MM.".into(),
        ));
    }
    Ok(month)
}

async fn usage(
    who: Console,
    state: web::Data<AppState>,
    query: web::Query<MonthQuery>,
) -> Result<HttpResponse, ConsoleError> {
    who.may(Action::ViewBilling)?;
    let month = month_or_refuse(&who, query.into_inner().month)?;
    let tenant = who.tenant().to_owned();
    let invoice = blocking(move || {
        crate::tenancy::invoice::invoice(&state.store, &tenant, &month).map_err(internal)
    })
    .await?;
    Ok(ok(views::usage(&who.0, &invoice, &recent_months())))
}

async fn usage_csv(
    who: Console,
    state: web::Data<AppState>,
    file: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    who.may(Action::ViewBilling)?;
    let file = file.into_inner();
    let Some(month) = file.strip_suffix(".csv") else {
        return Err(ConsoleError::NotFound(Some(Box::new(who.0.clone()))));
    };
    let month = month_or_refuse(&who, Some(month.to_owned()))?;
    let tenant = who.tenant().to_owned();
    let name = format!("kycd-invoice-{month}.csv");
    let invoice = blocking(move || {
        crate::tenancy::invoice::invoice(&state.store, &tenant, &month).map_err(internal)
    })
    .await?;
    Ok(download(CSV, &name, invoice.to_csv()))
}

#[derive(Deserialize)]
struct AuditQuery {
    q: Option<String>,
    format: Option<String>,
}

/// Entries shown or exported at most.
const AUDIT_ROWS: i64 = 1_000;

/// Audit entries matching `q` (of `tenant` only, when given), newest first, at most
/// [`AUDIT_ROWS`]; a query the search cannot read is refused on a page for `who`.
pub(super) async fn audit_search(
    state: &web::Data<AppState>,
    who: &SignedIn,
    q: Option<String>,
    tenant: Option<String>,
) -> Result<Vec<store::audit::AuditRow>, ConsoleError> {
    let (st, signed) = (state.clone(), who.clone());
    blocking(move || {
        let search = store::audit::Search {
            query: q.as_deref().map(str::trim).filter(|q| !q.is_empty()),
            tenant_id: tenant.as_deref().map(str::trim).filter(|t| !t.is_empty()),
            from: None,
            to: None,
            limit: AUDIT_ROWS,
        };
        match st.store.read(|c| store::audit::search(c, &search)) {
            Ok(rows) => Ok(rows),
            Err(StoreError::Conflict(why)) => Err(ConsoleError::Refused(
                Box::new(signed),
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("The search is not understood: {why}"),
            )),
            Err(e) => Err(internal(e)),
        }
    })
    .await
}

async fn audit(
    who: Console,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ConsoleError> {
    who.may(Action::ViewAudit)?;
    let q = query.into_inner().q.unwrap_or_default();
    let rows = audit_search(
        &state,
        &who.0,
        Some(q.clone()),
        Some(who.tenant().to_owned()),
    )
    .await?;
    Ok(ok(views::audit(&who.0, &q, &rows)))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

async fn audit_export(
    who: Console,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ConsoleError> {
    who.may(Action::ViewAudit)?;
    let AuditQuery { q, format } = query.into_inner();
    let rows = audit_search(&state, &who.0, q, Some(who.tenant().to_owned())).await?;
    let (body, kind, ext) = match format.as_deref().unwrap_or("jsonl") {
        "jsonl" => (
            rows.iter()
                .map(|r| serde_json::to_string(r).unwrap_or_default() + "\n")
                .collect::<String>(),
            JSONL,
            "jsonl",
        ),
        "csv" => {
            let mut out = String::from("seq,at,actor,action,target,details,hash\n");
            for r in &rows {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    r.seq,
                    crate::workflow::jobs::rfc3339(r.at),
                    csv_field(&r.actor),
                    csv_field(&r.action),
                    csv_field(r.target.as_deref().unwrap_or("")),
                    csv_field(&r.details),
                    r.hash
                ));
            }
            (out, CSV, "csv")
        }
        _ => {
            return Err(ConsoleError::Refused(
                Box::new(who.0.clone()),
                StatusCode::UNPROCESSABLE_ENTITY,
                "The format is jsonl or csv.".into(),
            ))
        }
    };
    Ok(download(kind, &format!("kycd-audit.{ext}"), body))
}

async fn users_list(
    state: &web::Data<AppState>,
    tenant: &str,
) -> Result<Vec<store::console::UserRow>, ConsoleError> {
    let (st, tenant) = (state.clone(), tenant.to_owned());
    blocking(move || {
        st.store
            .read(|c| store::console::users(c, Realm::Tenant, &tenant))
            .map_err(internal)
    })
    .await
}

async fn users_page(
    who: Console,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    who.may(Action::ManageUsers)?;
    let list = users_list(&state, who.tenant()).await?;
    Ok(ok(views::users(&who.0, &list, None)))
}

#[derive(Deserialize)]
struct UserForm {
    _csrf: Option<String>,
    email: String,
    role: String,
}

fn refused(who: &Console, e: UserError) -> ConsoleError {
    match e {
        UserError::Store(StoreError::NotFound(_)) => {
            ConsoleError::NotFound(Some(Box::new(who.0.clone())))
        }
        UserError::Store(StoreError::Conflict(why)) => {
            ConsoleError::Refused(Box::new(who.0.clone()), StatusCode::CONFLICT, why)
        }
        UserError::Store(e) => internal(e),
        e => ConsoleError::Refused(
            Box::new(who.0.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
        ),
    }
}

/// An owner adds a user of their tenant: the temporary password is shown once (the appliance
/// sends no email; the owner hands it over).
async fn add_user(
    who: Console,
    state: web::Data<AppState>,
    form: web::Form<UserForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_csrf(form._csrf.as_deref())?;
    who.may(Action::ManageUsers)?;
    let UserForm { email, role, .. } = form.into_inner();
    let Some(role) = users::Role::parse(&role) else {
        return Err(refused(
            &who,
            UserError::Invalid {
                field: "role",
                reason: "owner, admin, reviewer or viewer".into(),
            },
        ));
    };
    let (st, tenant, actor) = (state.clone(), who.tenant().to_owned(), who.actor());
    let password = users::generate_password();
    let made = {
        let password = password.clone();
        web::block(move || {
            users::create_user(
                &st.store,
                Realm::Tenant,
                &tenant,
                &email,
                role.as_str(),
                &password,
                &actor,
            )
        })
        .await
        .map_err(internal)?
    };
    let user = made.map_err(|e| refused(&who, e))?;
    let list = users_list(&state, who.tenant()).await?;
    Ok(ok(views::users(
        &who.0,
        &list,
        Some((&user.email, &password)),
    )))
}

async fn change_user(
    who: Console,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_csrf(form._csrf.as_deref())?;
    who.may(Action::ManageUsers)?;
    let (id, change) = path.into_inner();
    let change = match change.as_str() {
        "disable" => users::Change::Disable,
        "enable" => users::Change::Enable,
        "reset" => users::Change::ResetPassword,
        "remove-2fa" => users::Change::RemoveSecondFactor,
        _ => return Err(ConsoleError::NotFound(Some(Box::new(who.0.clone())))),
    };
    let (st, signed) = (state.clone(), who.0.clone());
    let target = id.clone();
    let done = web::block(move || users::change_user(&st.store, &signed, &target, change))
        .await
        .map_err(internal)?
        .map_err(|e| refused(&who, e))?;
    match done {
        Some(password) => {
            let list = users_list(&state, who.tenant()).await?;
            let email = list
                .iter()
                .find(|u| u.id == id)
                .map(|u| u.email.clone())
                .unwrap_or_default();
            Ok(ok(views::users(&who.0, &list, Some((&email, &password)))))
        }
        None => Ok(see_other("/console/users")),
    }
}
