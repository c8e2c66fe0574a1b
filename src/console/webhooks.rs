//! The webhooks screens: endpoints (added with the secret shown once, deleted), each one's
//! delivery log with every attempt, redelivery, a test ping, and the job-callback secret. Every
//! action calls [`crate::workflow::endpoints`], as `/v1/webhooks` does.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::{html, Markup};

use super::users::{Action, SignedIn};
use super::views::{csrf, page, when};
use super::{blocking, internal, ok, see_other, Console, ConsoleError, CsrfForm, Fields};
use crate::http::AppState;
use crate::store::webhooks::{AttemptRow, DeliveryRow, WebhookRow};
use crate::store::StoreError;
use crate::workflow::endpoints::{self, EndpointError};
use crate::workflow::webhooks::{self as hooks, EVENTS};

/// Registers the routes (inside `/console`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks", web::get().to(list))
        .route("/webhooks", web::post().to(create))
        .route("/webhooks/callback-secret", web::post().to(callback_secret))
        .route(
            "/webhooks/deliveries/{id}/redeliver",
            web::post().to(redeliver),
        )
        .route("/webhooks/{id}", web::get().to(endpoint))
        .route("/webhooks/{id}/test", web::post().to(test_ping))
        .route("/webhooks/{id}/delete", web::post().to(delete));
}

/// What the list page shows besides the endpoints.
#[derive(Default)]
struct Shown<'a> {
    /// A secret made just now: (what it signs, the secret).
    secret: Option<(&'a str, &'a str)>,
    /// The add form as sent, with the field that was refused and why.
    refused: Option<(&'a str, &'a [String], &'a str, &'a str)>,
}

fn store_error(who: &Console, e: StoreError) -> ConsoleError {
    let signed = Box::new(who.0.clone());
    match e {
        StoreError::NotFound(_) => ConsoleError::NotFound(Some(signed)),
        StoreError::Conflict(why) => ConsoleError::Refused(signed, StatusCode::CONFLICT, why),
        StoreError::Invalid { reason, .. } => {
            ConsoleError::Refused(signed, StatusCode::UNPROCESSABLE_ENTITY, reason)
        }
        e => internal(e),
    }
}

async fn rows(state: &web::Data<AppState>, who: &Console) -> Result<Vec<WebhookRow>, ConsoleError> {
    let (st, tenant) = (state.clone(), who.tenant().to_owned());
    blocking(move || endpoints::list(&st.store, &tenant).map_err(internal)).await
}

async fn list(who: Console, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    who.may(Action::ManageWebhooks)?;
    let rows = rows(&state, &who).await?;
    Ok(ok(list_page(&who.0, &rows, Shown::default())))
}

async fn create(
    who: Console,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let form = Fields::parse(&body)?;
    who.check_csrf(form.get("_csrf"))?;
    who.may(Action::ManageWebhooks)?;
    let url = form.get("url").unwrap_or_default().trim().to_owned();
    let events: Vec<String> = form.all("events").map(str::to_owned).collect();
    let (st, tenant, actor) = (state.clone(), who.tenant().to_owned(), who.actor());
    let (u, ev) = (url.clone(), events.clone());
    let made = web::block(move || {
        // A person at the console is held to the live rules (https, public address).
        endpoints::create(
            &st.store,
            st.jobs.egress(),
            &tenant,
            true,
            u,
            Some(ev),
            &actor,
        )
    })
    .await
    .map_err(internal)?;
    let rows_now = rows(&state, &who).await?;
    match made {
        Ok(made) => Ok(ok(list_page(
            &who.0,
            &rows_now,
            Shown {
                secret: Some((&made.endpoint.url, &made.secret)),
                ..Shown::default()
            },
        ))),
        Err(EndpointError::Invalid { field, reason }) => {
            let field = if field.starts_with("events") {
                "events"
            } else {
                "url"
            };
            Ok(super::html(
                StatusCode::UNPROCESSABLE_ENTITY,
                list_page(
                    &who.0,
                    &rows_now,
                    Shown {
                        refused: Some((&url, &events, field, &reason)),
                        ..Shown::default()
                    },
                ),
            ))
        }
        Err(EndpointError::Store(e)) => Err(store_error(&who, e)),
    }
}

async fn callback_secret(
    who: Console,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_csrf(form._csrf.as_deref())?;
    who.may(Action::ManageWebhooks)?;
    let (st, tenant, actor) = (state.clone(), who.tenant().to_owned(), who.actor());
    let secret = blocking(move || {
        hooks::rotate_callback_secret(&st.store, &tenant, &actor).map_err(internal)
    })
    .await?;
    let rows = rows(&state, &who).await?;
    Ok(ok(list_page(
        &who.0,
        &rows,
        Shown {
            secret: Some(("job callback URLs", &secret)),
            ..Shown::default()
        },
    )))
}

async fn endpoint(
    who: Console,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    who.may(Action::ManageWebhooks)?;
    let (st, tenant, id) = (state.clone(), who.tenant().to_owned(), id.into_inner());
    let signed = Box::new(who.0.clone());
    let found = blocking(move || {
        let hook = st
            .store
            .read(|c| crate::store::webhooks::get(c, &tenant, &id))
            .map_err(internal)?
            .ok_or(ConsoleError::NotFound(Some(signed)))?;
        let log = endpoints::deliveries(&st.store, &tenant, &id).map_err(internal)?;
        Ok((hook, log))
    })
    .await?;
    Ok(ok(endpoint_page(&who.0, &found.0, &found.1)))
}

async fn test_ping(
    who: Console,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_csrf(form._csrf.as_deref())?;
    who.may(Action::ManageWebhooks)?;
    let (st, tenant, actor, id) = (
        state.clone(),
        who.tenant().to_owned(),
        who.actor(),
        id.into_inner(),
    );
    let to = format!("/console/webhooks/{id}");
    let done = web::block(move || endpoints::test_ping(&st.store, &tenant, &id, &actor))
        .await
        .map_err(internal)?;
    done.map_err(|e| store_error(&who, e))?;
    state.jobs.deliverer.wake.notify_one();
    Ok(see_other(&to))
}

async fn delete(
    who: Console,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_csrf(form._csrf.as_deref())?;
    who.may(Action::ManageWebhooks)?;
    let (st, tenant, actor, id) = (
        state.clone(),
        who.tenant().to_owned(),
        who.actor(),
        id.into_inner(),
    );
    let done = web::block(move || endpoints::delete(&st.store, &tenant, &id, &actor))
        .await
        .map_err(internal)?;
    done.map_err(|e| store_error(&who, e))?;
    Ok(see_other("/console/webhooks"))
}

#[derive(serde::Deserialize)]
struct RedeliverForm {
    _csrf: Option<String>,
    /// The endpoint page to go back to.
    webhook: Option<String>,
}

async fn redeliver(
    who: Console,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<RedeliverForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_csrf(form._csrf.as_deref())?;
    who.may(Action::ManageWebhooks)?;
    let (st, tenant, actor, id) = (
        state.clone(),
        who.tenant().to_owned(),
        who.actor(),
        id.into_inner(),
    );
    let done = web::block(move || endpoints::redeliver(&st.store, &tenant, &id, &actor))
        .await
        .map_err(internal)?;
    done.map_err(|e| store_error(&who, e))?;
    state.jobs.deliverer.wake.notify_one();
    let back = form
        .into_inner()
        .webhook
        .filter(|w| {
            w.starts_with("whk_") && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
        .map_or_else(
            || "/console/webhooks".to_owned(),
            |w| format!("/console/webhooks/{w}"),
        );
    Ok(see_other(&back))
}

fn list_page(who: &SignedIn, rows: &[WebhookRow], shown: Shown<'_>) -> Markup {
    let (url, picked, bad_field, why) = match shown.refused {
        Some((u, e, f, w)) => (u, Some(e), f, w),
        None => ("", None, "", ""),
    };
    let checked = |e: &str| match picked {
        Some(p) => p.iter().any(|x| x == e),
        None => endpoints::DEFAULT_EVENTS.contains(&e),
    };
    page(
        "Webhooks",
        Some(who),
        html! {
            @if let Some((what, secret)) = shown.secret {
                div.secret role="status" {
                    p { "Signing secret for " strong { (what) } ", shown this once — store it now:" }
                    pre id="secret" { (secret) }
                }
            }
            form.create method="post" action="/console/webhooks" {
                (csrf(who))
                label {
                    "Endpoint URL (https, reachable from this server)"
                    input type="text" name="url" value=(url) placeholder="https://hooks.example.com/kyc" required maxlength="2048" aria-invalid=[(bad_field == "url").then_some("true")];
                    @if bad_field == "url" { span.field-error id="url-error" { (why) } }
                }
                fieldset.events {
                    legend { "Events" }
                    @for e in EVENTS {
                        label.inline { input type="checkbox" name="events" value=(e) checked[checked(e)]; " " (e) }
                    }
                    @if bad_field == "events" { span.field-error id="events-error" { (why) } }
                }
                button id="add-webhook" type="submit" { "Add endpoint" }
            }
            @if rows.is_empty() {
                p.empty { "No endpoints yet." }
            } @else {
                table.webhooks {
                    thead { tr { th { "endpoint" } th { "url" } th { "events" } th { "added" } th { "" } } }
                    tbody {
                        @for w in rows {
                            tr data-webhook=(w.id) {
                                td { a href={ "/console/webhooks/" (w.id) } { code { (w.id) } } }
                                td { (w.url) }
                                td { (w.events.join(", ")) }
                                td { (when(w.created_at)) }
                                td.actions {
                                    a href={ "/console/webhooks/" (w.id) } { "Deliveries" }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Job callback secret" }
            p.muted { "Signs deliveries to a job's own " code { "callback_url" } ". Making a new one replaces the old at once." }
            form method="post" action="/console/webhooks/callback-secret" {
                (csrf(who))
                button.danger type="submit" id="callback-secret" { "Make a new callback secret" }
            }
        },
    )
}

fn attempt_line(a: &AttemptRow) -> String {
    let outcome = match (a.status, a.error.as_deref()) {
        (Some(s), _) => format!("HTTP {s}"),
        (None, Some(e)) => e.to_owned(),
        (None, None) => "no answer".into(),
    };
    format!(
        "#{} {} · {} · {} ms",
        a.attempt,
        when(a.at),
        outcome,
        a.duration_ms
    )
}

fn endpoint_page(
    who: &SignedIn,
    hook: &WebhookRow,
    log: &[(DeliveryRow, Vec<AttemptRow>)],
) -> Markup {
    page(
        &format!("Webhook {}", hook.id),
        Some(who),
        html! {
            p.summary { code { (hook.url) } " · " (hook.events.join(", ")) " · added " (when(hook.created_at)) }
            div.buttons {
                form method="post" action={ "/console/webhooks/" (hook.id) "/test" } {
                    (csrf(who)) button id="test-ping" type="submit" { "Send test ping" }
                }
                form method="post" action={ "/console/webhooks/" (hook.id) "/delete" } {
                    (csrf(who)) button.danger id="delete-webhook" type="submit" { "Delete endpoint" }
                }
            }
            h2 { "Deliveries" }
            @if log.is_empty() {
                p.empty { "Nothing sent yet." }
            } @else {
                table.deliveries {
                    thead { tr { th { "delivery" } th { "event" } th { "queued" } th { "status" } th { "attempts" } th { "" } } }
                    tbody {
                        @for (d, attempts) in log {
                            tr data-delivery=(d.id) data-status=(d.status) data-event=(d.event) {
                                td { code { (d.id) } }
                                td { (d.event) }
                                td { (when(d.created_at)) }
                                td class={ "delivery " (d.status) } {
                                    (d.status)
                                    @if d.status == "pending" && d.attempts > 0 { br; small { "next try " (when(d.next_attempt_at)) } }
                                }
                                td {
                                    @if attempts.is_empty() { "–" }
                                    ol.attempts { @for a in attempts { li { (attempt_line(a)) } } }
                                }
                                td {
                                    @if d.status != "pending" {
                                        form method="post" action={ "/console/webhooks/deliveries/" (d.id) "/redeliver" } {
                                            (csrf(who))
                                            input type="hidden" name="webhook" value=(hook.id);
                                            button type="submit" { "Redeliver" }
                                        }
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
