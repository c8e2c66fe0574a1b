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

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::door::{self, OperatorDoor};
use super::operators::{OpAction, OperatorRole};
use super::users::SignedIn;
use super::{see_other, ConsoleError};
use crate::http::AppState;

/// Registers the routes (after `/admin/v1`, which keeps its own scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .route("/login", web::get().to(door::login_form::<OperatorDoor>))
            .route("/login", web::post().to(door::login::<OperatorDoor>))
            .route(
                "/login/code",
                web::get().to(door::code_form::<OperatorDoor>),
            )
            .route("/login/code", web::post().to(door::code::<OperatorDoor>))
            .route("/logout", web::post().to(logout))
            .configure(super::signin::configure::<OperatorDoor>)
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
        let found = door::session::<OperatorDoor>(req);
        Box::pin(async move {
            let who = door::signed_in::<OperatorDoor>(found).await?;
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
        super::check_csrf(&self.who, sent)
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
    door::sign_out::<OperatorDoor>(&req, &state, op.who).await
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
