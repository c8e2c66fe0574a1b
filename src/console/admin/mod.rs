//! The operator console at `/admin` (the API under `/admin/v1` is apart and keeps its bearer
//! token): operators sign in like tenant users (their own accounts, sessions and cookie, path
//! `/admin`; a superadmin always with a second factor) and manage tenants, plans, revenue, the
//! system and the audit log through the same domain functions as `/admin/v1`. Every change is
//! audited as `operator:<email>`.

mod plans;
mod system;
mod tenants;

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::operators::{OpAction, OperatorRole};
use super::users::{self, SignedIn, UserError};
use super::views::{self, csrf, page};
use super::{blocking, html as page_response, internal, see_other, ConsoleError};
use crate::http::AppState;
use crate::store::console::Realm;

/// The operator session cookie's name.
pub const COOKIE: &str = "kycd_admin";

/// Registers the routes (after `/admin/v1`, which keeps its own scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .route("/login", web::get().to(login_form))
            .route("/login", web::post().to(login))
            .route("/login/code", web::get().to(code_form))
            .route("/login/code", web::post().to(code))
            .route("/logout", web::post().to(logout))
            .configure(tenants::configure)
            .configure(plans::configure)
            .configure(system::configure)
            .app_data(web::PayloadConfig::default().limit(super::FORM_BYTES))
            .app_data(web::FormConfig::default().limit(super::FORM_BYTES))
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> Result<HttpResponse, ConsoleError> {
    Err(ConsoleError::NotFound(None))
}

/// A signed-in operator and their role; in each handler's signature.
pub struct Op {
    /// The session.
    pub who: SignedIn,
    /// Their role.
    pub role: OperatorRole,
}

impl FromRequest for Op {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let token = req.cookie(COOKIE).map(|c| c.value().to_owned());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let (Some(token), Some(state)) = (token, state) else {
                return Err(ConsoleError::OperatorSignIn);
            };
            let found = blocking(move || {
                users::session(&state.store, Realm::Operator, &token).map_err(internal)
            })
            .await?;
            let who = match found {
                Some(s) if s.mfa_pending => return Err(ConsoleError::OperatorSecondFactor),
                Some(s) => s,
                None => return Err(ConsoleError::OperatorSignIn),
            };
            let Some(role) = OperatorRole::parse(&who.user.role) else {
                return Err(ConsoleError::OperatorSignIn);
            };
            // A superadmin without a second factor (removed outside kycd) opens nothing.
            if role.needs_second_factor() && who.user.totp_secret.is_none() {
                return Err(ConsoleError::Refused(
                    Box::new(who),
                    StatusCode::FORBIDDEN,
                    "A superadmin signs in with a second factor; this account has none. Make a new superadmin with `kycd admin operator create`.".into(),
                ));
            }
            Ok(Op { who, role })
        })
    }
}

impl Op {
    /// Refuses unless the role allows `action`.
    pub fn may(&self, action: OpAction) -> Result<(), ConsoleError> {
        if self.role.allows(action) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(Box::new(self.who.clone())))
        }
    }

    /// Refuses a change whose form does not carry this session's token.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), ConsoleError> {
        let ok = sent.is_some_and(|s| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                s.as_bytes(),
                self.who.csrf.as_bytes(),
            ))
        });
        if ok {
            Ok(())
        } else {
            Err(ConsoleError::Csrf)
        }
    }

    /// `operator:<email>`.
    pub fn actor(&self) -> String {
        self.who.actor()
    }

    /// A refusal shown on a page with this operator's navigation.
    pub fn refused(&self, status: StatusCode, why: impl Into<String>) -> ConsoleError {
        ConsoleError::Refused(Box::new(self.who.clone()), status, why.into())
    }

    /// Not there.
    pub fn not_found(&self) -> ConsoleError {
        ConsoleError::NotFound(Some(Box::new(self.who.clone())))
    }
}

fn cookie(req: &HttpRequest, value: String, max_age: i64) -> Cookie<'static> {
    let mut c = Cookie::build(COOKIE, value)
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age))
        .finish();
    if req.connection_info().scheme() == "https" {
        c.set_secure(true);
    }
    c
}

async fn login_form() -> HttpResponse {
    super::ok(views::login_at("Operator sign-in", "/admin/login", None))
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, ConsoleError> {
    super::signin::throttle(&req, &state)?;
    let LoginForm { email, password } = form.into_inner();
    let st = state.clone();
    let result = web::block(move || users::sign_in(&st.store, Realm::Operator, &email, &password))
        .await
        .map_err(internal)?;
    match result {
        Ok((token, who)) => {
            let (age, to) = if who.mfa_pending {
                (users::MFA_SECS, "/admin/login/code")
            } else {
                (users::ABSOLUTE_SECS, "/admin/")
            };
            Ok(HttpResponse::SeeOther()
                .cookie(cookie(&req, token, age))
                .insert_header((header::LOCATION, to))
                .finish())
        }
        Err(UserError::Store(e)) => Err(internal(e)),
        Err(e) => Ok(page_response(
            StatusCode::UNAUTHORIZED,
            views::login_at("Operator sign-in", "/admin/login", Some(&e.to_string())),
        )),
    }
}

/// An operator session waiting for its second factor.
struct Pending(SignedIn);

impl FromRequest for Pending {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let token = req.cookie(COOKIE).map(|c| c.value().to_owned());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let (Some(token), Some(state)) = (token, state) else {
                return Err(ConsoleError::OperatorSignIn);
            };
            let found = blocking(move || {
                users::session(&state.store, Realm::Operator, &token).map_err(internal)
            })
            .await?;
            match found {
                Some(s) if s.mfa_pending => Ok(Pending(s)),
                _ => Err(ConsoleError::OperatorSignIn),
            }
        })
    }
}

fn code_page(who: &SignedIn, error: Option<&str>) -> Markup {
    page(
        "Operator sign-in: code",
        None,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.login method="post" action="/admin/login/code" {
                (csrf(who))
                p { "Enter the 6-digit code your authenticator app shows for kycd (" (who.user.email) ")." }
                label { "Code" input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus; }
                button type="submit" { "Continue" }
            }
        },
    )
}

async fn code_form(who: Pending) -> HttpResponse {
    super::ok(code_page(&who.0, None))
}

#[derive(Deserialize)]
struct CodeForm {
    _csrf: Option<String>,
    #[serde(default)]
    code: String,
}

async fn code(
    req: HttpRequest,
    who: Pending,
    state: web::Data<AppState>,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, ConsoleError> {
    let sent = form._csrf.as_deref().unwrap_or_default();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        sent.as_bytes(),
        who.0.csrf.as_bytes(),
    )) {
        return Err(ConsoleError::Csrf);
    }
    super::signin::throttle(&req, &state)?;
    let (st, signed, code) = (state.clone(), who.0.clone(), form.into_inner().code);
    let done = web::block(move || super::totp::complete_sign_in(&st.store, &signed, &code))
        .await
        .map_err(internal)?;
    match done {
        Ok(token) => Ok(HttpResponse::SeeOther()
            .cookie(cookie(&req, token, users::ABSOLUTE_SECS))
            .insert_header((header::LOCATION, "/admin/"))
            .finish()),
        Err(UserError::Store(e)) => Err(internal(e)),
        Err(e @ UserError::Locked { .. }) => Ok(page_response(
            StatusCode::UNAUTHORIZED,
            views::login_at("Operator sign-in", "/admin/login", Some(&e.to_string())),
        )),
        Err(e) => Ok(page_response(
            StatusCode::UNAUTHORIZED,
            code_page(&who.0, Some(&e.to_string())),
        )),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    _csrf: Option<String>,
}

async fn logout(
    req: HttpRequest,
    op: Op,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    op.check_csrf(form._csrf.as_deref())?;
    let who = op.who.clone();
    blocking(move || users::sign_out(&state.store, &who).map_err(internal)).await?;
    let mut gone = cookie(&req, String::new(), 0);
    gone.make_removal();
    Ok(HttpResponse::SeeOther()
        .cookie(gone)
        .insert_header((header::LOCATION, "/admin/login"))
        .finish())
}

/// Micro-units as an amount with two decimals.
fn money(micros: i64) -> String {
    format!("{:.2}", micros as f64 / 1e6)
}

/// A decimal amount typed in a form, as micro-units.
fn micros_of(s: &str) -> Option<i64> {
    let v: f64 = s.trim().parse().ok()?;
    (0.0..1e9).contains(&v).then(|| (v * 1e6).round() as i64)
}

/// The message beside the input `name` when the refused field is it (or, for a price, its
/// micro-unit field).
fn field_error(bad: Option<(&str, &str)>, name: &str) -> Markup {
    let hit = bad.filter(|(field, _)| {
        *field == name
            || name
                .strip_suffix(".price")
                .is_some_and(|p| *field == format!("{p}.unit_price_micros"))
    });
    html! {
        @if let Some((field, why)) = hit {
            span.field-error data-field=(field) role="alert" { (why) }
        }
    }
}

/// Redirect after a change.
fn back(to: &str) -> HttpResponse {
    see_other(to)
}
