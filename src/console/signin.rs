//! Signing in past the password: the per-address throttle on sign-in attempts, the second-factor
//! step of a sign-in, and the page where a user turns their own second factor (TOTP) on or off.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;

use super::door::{Door, Own};
use super::users::{self, SignedIn, UserError};
use super::views::{self, csrf, page};
use super::{internal, ok, ConsoleError};
use crate::http::AppState;
use crate::tenancy::plans::Budget;

/// Sign-in attempts (passwords and codes) one address may make: a burst of 20, then 20 a
/// minute, at most 500 a day. Shared by every node (the API's rate buckets).
pub const SIGNIN_BUDGET: Budget = Budget {
    per_minute: 20,
    per_day: 500,
};

/// Registers the own-account routes inside `D`'s scope: the second factor and the password.
pub fn configure<D: Door>(cfg: &mut web::ServiceConfig) {
    cfg.route("/security", web::get().to(security::<D>))
        .route("/security/enable", web::post().to(enable::<D>))
        .route("/security/disable", web::post().to(disable::<D>))
        .route("/password", web::get().to(password_form::<D>))
        .route("/password", web::post().to(change_password::<D>));
}

/// The address a sign-in comes from: the peer, or — when the peer is this host (a reverse
/// proxy beside kycd) — the last address the proxy appended to `X-Forwarded-For`.
pub fn client_addr(req: &HttpRequest) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    let forwarded = || {
        req.headers()
            .get("x-forwarded-for")?
            .to_str()
            .ok()?
            .rsplit(',')
            .next()?
            .trim()
            .parse::<IpAddr>()
            .ok()
    };
    match peer {
        Some(ip) if ip.is_loopback() => forwarded().unwrap_or(ip).to_string(),
        Some(ip) => ip.to_string(),
        None => "unknown".into(),
    }
}

/// Counts a sign-in attempt from the request's address; refuses past [`SIGNIN_BUDGET`].
pub fn throttle(req: &HttpRequest, state: &AppState) -> Result<(), ConsoleError> {
    let addr = client_addr(req);
    let d = state
        .rate_limiter
        .check(&format!("console-signin:{addr}"), "signin", SIGNIN_BUDGET);
    if d.allowed {
        Ok(())
    } else {
        Err(ConsoleError::Throttled(d.retry_after_secs.unwrap_or(60)))
    }
}

#[derive(Deserialize)]
struct CodeForm {
    _csrf: Option<String>,
    #[serde(default)]
    code: String,
    /// The secret being set up (enrolment only).
    #[serde(default)]
    secret: String,
}

fn security_page<D: Door>(
    who: &SignedIn,
    setup: Option<(&str, &str)>,
    message: Option<(&str, bool)>,
) -> Markup {
    page(
        "Sign-in security",
        Some(who),
        html! {
            @if let Some((m, good)) = message {
                p class=(if good { "saved" } else { "error" }) role="alert" { (m) }
            }
            @if who.user.totp_secret.is_some() {
                p id="totp-status" { "Second factor: " strong { "on" } " — signing in asks for a code from your authenticator app." }
                form.create method="post" action=(format!("{}/security/disable", D::PATH)) {
                    (csrf(who))
                    label { "Current code (to turn it off)" input type="text" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" required; }
                    button.danger id="totp-disable" type="submit" { "Turn off" }
                }
            } @else if let Some((secret, qr)) = setup {
                p id="totp-status" { "Second factor: " strong { "off" } ". Scan the code with an authenticator app (or type the key), then enter the code it shows." }
                div.qr { (PreEscaped(qr)) }
                p { "Key: " code id="totp-secret" { (secret) } }
                form.create method="post" action=(format!("{}/security/enable", D::PATH)) {
                    (csrf(who))
                    input type="hidden" name="secret" value=(secret);
                    label { "Code from the app" input type="text" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" required; }
                    button id="totp-enable" type="submit" { "Turn on" }
                }
            }
            p { a id="change-password" href=(format!("{}/password", D::PATH)) { "Change password" } }
        },
    )
}

fn setup_page<D: Door>(
    who: &SignedIn,
    message: Option<(&str, bool)>,
    secret: Option<String>,
) -> Markup {
    let secret = secret.unwrap_or_else(|| super::totp::new_secret().1);
    let qr = super::totp::qr_svg(&super::totp::otpauth_url(&who.user.email, &secret));
    security_page::<D>(who, Some((&secret, &qr)), message)
}

async fn security<D: Door>(who: Own<D>) -> HttpResponse {
    ok(setup_page::<D>(&who.0, None, None))
}

async fn enable<D: Door>(
    who: Own<D>,
    state: web::Data<AppState>,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_csrf(form._csrf.as_deref())?;
    let CodeForm { code, secret, .. } = form.into_inner();
    let Some(raw) = super::totp::decode(&secret) else {
        return Ok(super::html(
            StatusCode::UNPROCESSABLE_ENTITY,
            setup_page::<D>(
                &who.0,
                Some(("The key is not valid; start again.", false)),
                None,
            ),
        ));
    };
    let (st, signed) = (state.clone(), who.0.clone());
    let done = web::block(move || super::totp::enable(&st.store, &signed, &raw, &code))
        .await
        .map_err(internal)?;
    match done {
        Ok(()) => {
            let mut now_on = who.0.clone();
            now_on.user.totp_secret = Some(Vec::new());
            Ok(ok(security_page::<D>(
                &now_on,
                None,
                Some(("Second factor is on.", true)),
            )))
        }
        Err(UserError::Store(e)) => Err(internal(e)),
        Err(e) => Ok(super::html(
            StatusCode::UNPROCESSABLE_ENTITY,
            setup_page::<D>(&who.0, Some((&e.to_string(), false)), Some(secret)),
        )),
    }
}

async fn disable<D: Door>(
    who: Own<D>,
    state: web::Data<AppState>,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_csrf(form._csrf.as_deref())?;
    let code = form.into_inner().code;
    let (st, signed) = (state.clone(), who.0.clone());
    let done = web::block(move || super::totp::disable(&st.store, &signed, &code))
        .await
        .map_err(internal)?;
    match done {
        Ok(()) => {
            let mut now_off = who.0.clone();
            now_off.user.totp_secret = None;
            Ok(ok(setup_page::<D>(
                &now_off,
                Some(("Second factor is off.", true)),
                None,
            )))
        }
        Err(UserError::Store(e)) => Err(internal(e)),
        Err(e) => Ok(super::html(
            StatusCode::UNPROCESSABLE_ENTITY,
            security_page::<D>(&who.0, None, Some((&e.to_string(), false))),
        )),
    }
}

async fn password_form<D: Door>(who: Own<D>) -> HttpResponse {
    ok(views::password(D::PATH, &who.0, None))
}

#[derive(Deserialize)]
struct PasswordForm {
    _csrf: Option<String>,
    current: String,
    new: String,
}

/// A person changes their own password; all their sessions end, so they sign in again with it.
async fn change_password<D: Door>(
    who: Own<D>,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_csrf(form._csrf.as_deref())?;
    let PasswordForm { current, new, .. } = form.into_inner();
    let (st, signed) = (state.clone(), who.0.clone());
    let result = web::block(move || users::change_own_password(&st.store, &signed, &current, &new))
        .await
        .map_err(internal)?;
    match result {
        Ok(()) => Ok(super::see_other(&format!("{}/login", D::PATH))),
        Err(UserError::Store(e)) => Err(internal(e)),
        Err(UserError::BadCredentials) => Ok(super::html(
            StatusCode::UNPROCESSABLE_ENTITY,
            views::password(D::PATH, &who.0, Some("The current password is wrong.")),
        )),
        Err(e) => Ok(super::html(
            StatusCode::UNPROCESSABLE_ENTITY,
            views::password(D::PATH, &who.0, Some(&e.to_string())),
        )),
    }
}
