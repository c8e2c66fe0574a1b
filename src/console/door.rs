//! The way in, shared by both consoles: a [`Door`] names the realm, cookie and path (the
//! tenant's `/console`, the operator's `/admin`); the sign-in form and its handler, the
//! second-factor step, the session cookie and reading the session are written once over it.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::users::{self, SignedIn, UserError};
use super::views::{self, csrf, page};
use super::{blocking, internal, ConsoleError};
use crate::http::AppState;
use crate::store::console::Realm;

/// A console's way in.
pub trait Door: 'static {
    /// Whose accounts.
    const REALM: Realm;
    /// The session cookie.
    const COOKIE: &'static str;
    /// Where the console lives (the cookie's path).
    const PATH: &'static str;
    /// The sign-in page's title.
    const TITLE: &'static str;
    /// No live session: to the sign-in page.
    fn sign_in() -> ConsoleError;
    /// A session waiting for its second factor: to the code form.
    fn second_factor() -> ConsoleError;
}

/// The tenant console's.
pub struct TenantDoor;

impl Door for TenantDoor {
    const REALM: Realm = Realm::Tenant;
    const COOKIE: &'static str = "kycd_console";
    const PATH: &'static str = "/console";
    const TITLE: &'static str = "Sign in";
    fn sign_in() -> ConsoleError {
        ConsoleError::SignIn
    }
    fn second_factor() -> ConsoleError {
        ConsoleError::SecondFactor
    }
}

/// The operator console's.
pub struct OperatorDoor;

impl Door for OperatorDoor {
    const REALM: Realm = Realm::Operator;
    const COOKIE: &'static str = "kycd_admin";
    const PATH: &'static str = "/admin";
    const TITLE: &'static str = "Operator sign-in";
    fn sign_in() -> ConsoleError {
        ConsoleError::OperatorSignIn
    }
    fn second_factor() -> ConsoleError {
        ConsoleError::OperatorSecondFactor
    }
}

/// The session cookie of `D` (HttpOnly, SameSite=Strict, the console's path, Secure over TLS).
pub fn session_cookie<D: Door>(req: &HttpRequest, value: String, max_age: i64) -> Cookie<'static> {
    let mut cookie = Cookie::build(D::COOKIE, value)
        .path(D::PATH)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age))
        .finish();
    if req.connection_info().scheme() == "https" {
        cookie.set_secure(true);
    }
    cookie
}

/// The cookie that ends the session in the browser.
pub fn removal<D: Door>(req: &HttpRequest) -> Cookie<'static> {
    let mut gone = session_cookie::<D>(req, String::new(), 0);
    gone.make_removal();
    gone
}

/// The live session of a request at `D`, pending or not; `D::sign_in()` without one.
pub fn session<D: Door>(
    req: &HttpRequest,
) -> impl Future<Output = Result<SignedIn, ConsoleError>> + 'static {
    let token = req.cookie(D::COOKIE).map(|c| c.value().to_owned());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    async move {
        let (Some(token), Some(state)) = (token, state) else {
            return Err(D::sign_in());
        };
        blocking(move || users::session(&state.store, D::REALM, &token).map_err(internal))
            .await?
            .ok_or_else(D::sign_in)
    }
}

/// The signed-in person of a request at `D` (second factor given).
pub async fn signed_in<D: Door>(
    session: impl Future<Output = Result<SignedIn, ConsoleError>>,
) -> Result<SignedIn, ConsoleError> {
    let who = session.await?;
    if who.mfa_pending {
        return Err(D::second_factor());
    }
    Ok(who)
}

/// The signed-in person at `D`, for the pages about their own account (password, second
/// factor), which every role of that console may open.
pub struct Own<D>(pub SignedIn, PhantomData<D>);

impl<D: Door> FromRequest for Own<D> {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let found = session::<D>(req);
        Box::pin(async move { signed_in::<D>(found).await.map(|s| Own(s, PhantomData)) })
    }
}

impl<D> Own<D> {
    /// Refuses a change whose form does not carry this session's token.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), ConsoleError> {
        super::check_csrf(&self.0, sent)
    }
}

/// A session whose password was right and whose second factor is awaited.
pub struct Pending<D>(pub SignedIn, PhantomData<D>);

impl<D: Door> FromRequest for Pending<D> {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let found = session::<D>(req);
        Box::pin(async move {
            match found.await? {
                s if s.mfa_pending => Ok(Pending(s, PhantomData)),
                _ => Err(D::sign_in()),
            }
        })
    }
}

fn login_page<D: Door>(error: Option<&str>) -> Markup {
    views::login_at(D::TITLE, &format!("{}/login", D::PATH), error)
}

/// The sign-in form.
pub async fn login_form<D: Door>() -> HttpResponse {
    super::ok(login_page::<D>(None))
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
}

/// Signs in (throttled per address): to the console, or to the code form when the account has
/// a second factor.
pub async fn login<D: Door>(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, ConsoleError> {
    super::signin::throttle(&req, &state)?;
    let LoginForm { email, password } = form.into_inner();
    let st = state.clone();
    let result = web::block(move || users::sign_in(&st.store, D::REALM, &email, &password))
        .await
        .map_err(internal)?;
    match result {
        Ok((token, who)) => {
            let (age, to) = if who.mfa_pending {
                (users::MFA_SECS, format!("{}/login/code", D::PATH))
            } else {
                (users::ABSOLUTE_SECS, format!("{}/", D::PATH))
            };
            Ok(HttpResponse::SeeOther()
                .cookie(session_cookie::<D>(&req, token, age))
                .insert_header((header::LOCATION, to))
                .finish())
        }
        Err(UserError::Store(e)) => Err(internal(e)),
        Err(e) => Ok(super::html(
            StatusCode::UNAUTHORIZED,
            login_page::<D>(Some(&e.to_string())),
        )),
    }
}

fn code_page<D: Door>(who: &SignedIn, error: Option<&str>) -> Markup {
    page(
        &format!("{}: code", D::TITLE),
        None,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.login method="post" action={ (D::PATH) "/login/code" } {
                (csrf(who))
                p { "Enter the 6-digit code your authenticator app shows for kycd (" (who.user.email) ")." }
                label { "Code" input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus; }
                button type="submit" { "Continue" }
            }
        },
    )
}

/// The code form of a pending sign-in.
pub async fn code_form<D: Door>(who: Pending<D>) -> HttpResponse {
    super::ok(code_page::<D>(&who.0, None))
}

#[derive(Deserialize)]
pub struct CodeForm {
    _csrf: Option<String>,
    #[serde(default)]
    code: String,
}

/// Completes a pending sign-in with its code (throttled per address; wrong codes count toward
/// the account's lock).
pub async fn code<D: Door>(
    req: HttpRequest,
    who: Pending<D>,
    state: web::Data<AppState>,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, ConsoleError> {
    super::check_csrf(&who.0, form._csrf.as_deref())?;
    super::signin::throttle(&req, &state)?;
    let (st, signed, code) = (state.clone(), who.0.clone(), form.into_inner().code);
    let done = web::block(move || super::totp::complete_sign_in(&st.store, &signed, &code))
        .await
        .map_err(internal)?;
    match done {
        Ok(token) => Ok(HttpResponse::SeeOther()
            .cookie(session_cookie::<D>(&req, token, users::ABSOLUTE_SECS))
            .insert_header((header::LOCATION, format!("{}/", D::PATH)))
            .finish()),
        Err(UserError::Store(e)) => Err(internal(e)),
        Err(e @ UserError::Locked { .. }) => Ok(super::html(
            StatusCode::UNAUTHORIZED,
            login_page::<D>(Some(&e.to_string())),
        )),
        Err(e) => Ok(super::html(
            StatusCode::UNAUTHORIZED,
            code_page::<D>(&who.0, Some(&e.to_string())),
        )),
    }
}

/// Ends a session on the server and in the browser.
pub async fn sign_out<D: Door>(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    who: SignedIn,
) -> Result<HttpResponse, ConsoleError> {
    let st = state.clone();
    blocking(move || users::sign_out(&st.store, &who).map_err(internal)).await?;
    Ok(HttpResponse::SeeOther()
        .cookie(removal::<D>(req))
        .insert_header((header::LOCATION, format!("{}/login", D::PATH)))
        .finish())
}
