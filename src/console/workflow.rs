//! The workflow settings screen: a form over the tenant's workflow (steps, thresholds, weights,
//! bands, mandatory fields, rules, deduplication). Its field names are the configuration's JSON
//! paths (`thresholds.face_match`, `rules[2].value`), so the form becomes the same JSON
//! `PUT /v1/workflow` takes, goes through the same [`tenant_config::update`] (validation,
//! operator floors, audit), and a refusal lands beside the field it names.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde_json::{json, Map, Value};

use super::users::{Action, SignedIn};
use super::views::{csrf, page};
use super::{blocking, internal, ok, Console, ConsoleError, Fields};
use crate::http::AppState;
use crate::workflow::config::{Condition, Decision, Step, WorkflowConfig, KNOWN_FIELDS, MAX_RULES};
use crate::workflow::tenant_config::{self, ConfigError};

/// Empty rule rows offered for adding rules.
const SPARE_RULES: usize = 2;

/// Registers the routes (inside `/console`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/workflow", web::get().to(form))
        .route("/workflow", web::post().to(save));
}

async fn form(who: Console, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    who.may(Action::EditWorkflow)?;
    let (st, tenant) = (state.clone(), who.tenant().to_owned());
    let (config, floors) = blocking(move || {
        let config = tenant_config::effective(&st.store, &tenant).map_err(internal)?;
        let floors = tenant_config::floors(&st.store, &tenant).map_err(internal)?;
        Ok((config, floors))
    })
    .await?;
    let values = Values::of(&config);
    Ok(ok(page_of(&who.0, &values, &floors, None, false)))
}

async fn save(
    who: Console,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let fields = Fields::parse(&body)?;
    who.check_csrf(fields.get("_csrf"))?;
    who.may(Action::EditWorkflow)?;
    let values = Values::from_form(&fields);
    let document = values.to_json();
    let (st, tenant, actor) = (state.clone(), who.tenant().to_owned(), who.actor());
    let (result, floors) = blocking(move || {
        let bytes = serde_json::to_vec(&document).unwrap_or_default();
        let result = tenant_config::update(&st.store, &tenant, &bytes, &actor);
        let floors = tenant_config::floors(&st.store, &tenant).map_err(internal)?;
        Ok((result, floors))
    })
    .await?;
    match result {
        Ok(config) => Ok(ok(page_of(
            &who.0,
            &Values::of(&config),
            &floors,
            None,
            true,
        ))),
        Err(ConfigError::Invalid(e)) => Ok(super::html(
            StatusCode::UNPROCESSABLE_ENTITY,
            page_of(
                &who.0,
                &values,
                &floors,
                Some((&e.field, &e.message)),
                false,
            ),
        )),
        Err(e) => Err(internal(e)),
    }
}

/// A rule row as the form holds it.
#[derive(Default, Clone)]
struct RuleRow {
    when: String,
    value: String,
    decision: String,
}

/// The form's values: the stored workflow, or what was sent (kept as typed, so a refused value
/// is shown back to be corrected).
struct Values {
    steps: Vec<String>,
    numbers: Vec<(&'static str, String)>,
    mandatory: Vec<String>,
    collection: String,
    enrol_accepted: bool,
    rules: Vec<RuleRow>,
}

/// The numeric fields, by JSON path.
const NUMBERS: [&str; 10] = [
    "thresholds.face_match",
    "thresholds.liveness",
    "thresholds.ocr_confidence",
    "weights.liveness",
    "weights.face_match",
    "weights.document",
    "weights.kya",
    "bands.accepted",
    "bands.review",
    "dedup.threshold",
];

impl Values {
    fn of(c: &WorkflowConfig) -> Values {
        let v = serde_json::to_value(c).unwrap_or_default();
        let number = |path: &str| {
            let mut at = &v;
            for part in path.split('.') {
                at = &at[part];
            }
            match at.as_f64() {
                // f32 thresholds print as their short decimal (0.75, not 0.75000001).
                Some(f) if at.is_f64() => format!("{}", (f * 1e4).round() / 1e4),
                _ => at.to_string(),
            }
        };
        Values {
            steps: c.steps.iter().map(|s| s.name().to_owned()).collect(),
            numbers: NUMBERS.iter().map(|p| (*p, number(p))).collect(),
            mandatory: c.mandatory_fields.clone(),
            collection: c.dedup.collection.clone().unwrap_or_default(),
            enrol_accepted: c.dedup.enrol_accepted,
            rules: c
                .rules
                .iter()
                .map(|r| RuleRow {
                    when: r.when.name().to_owned(),
                    value: r.value.map(|v| v.to_string()).unwrap_or_default(),
                    decision: r.decision.name().to_owned(),
                })
                .collect(),
        }
    }

    fn from_form(f: &Fields) -> Values {
        let mut rules = Vec::new();
        for i in 0..MAX_RULES + SPARE_RULES {
            let at = |k: &str| {
                f.get(&format!("rules[{i}].{k}"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            };
            let row = RuleRow {
                when: at("when"),
                value: at("value"),
                decision: at("decision"),
            };
            // A row whose condition is left empty is not a rule (spare rows, removed rules).
            if !row.when.is_empty() {
                rules.push(row);
            }
        }
        Values {
            steps: f.all("steps").map(str::to_owned).collect(),
            numbers: NUMBERS
                .iter()
                .map(|p| (*p, f.get(p).unwrap_or_default().trim().to_owned()))
                .collect(),
            mandatory: f.all("mandatory_fields").map(str::to_owned).collect(),
            collection: f
                .get("dedup.collection")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            enrol_accepted: f.get("dedup.enrol_accepted").is_some(),
            rules,
        }
    }

    fn number(&self, path: &str) -> &str {
        self.numbers
            .iter()
            .find(|(p, _)| *p == path)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The whole workflow as JSON. A number that does not parse is passed on as the text it
    /// is, so the validation refuses it naming its field.
    fn to_json(&self) -> Value {
        let num = |s: &str| -> Value {
            s.parse::<u64>()
                .map(Value::from)
                .or_else(|_| s.parse::<f64>().map(Value::from))
                .unwrap_or_else(|_| Value::String(s.to_owned()))
        };
        let mut doc = Map::new();
        for (path, v) in &self.numbers {
            let (group, key) = path.split_once('.').unwrap_or(("", path));
            doc.entry(group)
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|o| o.insert(key.to_owned(), num(v)));
        }
        doc.insert("steps".into(), json!(self.steps));
        doc.insert("mandatory_fields".into(), json!(self.mandatory));
        if let Some(d) = doc.get_mut("dedup").and_then(Value::as_object_mut) {
            d.insert("enrol_accepted".into(), json!(self.enrol_accepted));
            if !self.collection.is_empty() {
                d.insert("collection".into(), json!(self.collection));
            }
        }
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                let mut o = json!({ "when": r.when, "decision": r.decision });
                if !r.value.is_empty() {
                    o["value"] = num(&r.value);
                }
                o
            })
            .collect();
        doc.insert("rules".into(), Value::Array(rules));
        Value::Object(doc)
    }
}

/// The form; `refused` is (field path, why), shown beside that field (or on top when the field
/// is not one of the form's).
fn page_of(
    who: &SignedIn,
    v: &Values,
    floors: &crate::workflow::config::Floors,
    refused: Option<(&str, &str)>,
    saved: bool,
) -> Markup {
    let (bad, why) = refused.unwrap_or(("", ""));
    // `steps[2]` and `rules[1].when` belong to the group or row shown.
    let at = |field: &str| bad == field;
    let error = |field: &str| -> Markup {
        html! { @if at(field) { span.field-error data-field=(field) role="alert" { (why) } } }
    };
    let group_error = |prefix: &str| -> Markup {
        let hit = bad == prefix || bad.starts_with(&format!("{prefix}["));
        html! { @if hit { span.field-error data-field=(bad) role="alert" { (why) } } }
    };
    let known = NUMBERS.contains(&bad)
        || bad == "steps"
        || bad.starts_with("steps[")
        || bad.starts_with("rules")
        || bad.starts_with("mandatory_fields")
        || bad.starts_with("dedup.");
    let ordered: Vec<&str> = v
        .steps
        .iter()
        .map(String::as_str)
        .chain(
            Step::ALL
                .iter()
                .map(|s| s.name())
                .filter(|n| !v.steps.iter().any(|x| x == n)),
        )
        .collect();
    let number = |path: &'static str, label: &str, step: &str, hint: Option<String>| -> Markup {
        html! {
            label {
                (label)
                input type="number" name=(path) value=(v.number(path)) step=(step) aria-invalid=[at(path).then_some("true")];
                @if let Some(h) = hint { small.muted { (h) } }
                (error(path))
            }
        }
    };
    let mut rule_rows = v.rules.clone();
    rule_rows.extend(std::iter::repeat_n(RuleRow::default(), SPARE_RULES));
    page(
        "Workflow settings",
        Some(who),
        html! {
            @if saved { p.saved role="status" { "Saved. New verifications use these settings." } }
            @if !bad.is_empty() && !known {
                p.error role="alert" data-field=(bad) { (bad) ": " (why) }
            }
            form.workflow method="post" action="/console/workflow" {
                (csrf(who))
                fieldset {
                    legend { "Steps (run in this order; independent steps run in parallel)" }
                    @for name in &ordered {
                        label.inline { input type="checkbox" name="steps" value=(name) checked[v.steps.iter().any(|s| s == name)]; " " (name) }
                    }
                    (group_error("steps"))
                }
                fieldset.grid {
                    legend { "Thresholds (0–1)" }
                    (number("thresholds.face_match", "Face match", "0.01", Some(format!("operator's floor {}", floors.face_match))))
                    (number("thresholds.liveness", "Liveness", "0.01", Some(format!("operator's floor {}", floors.liveness))))
                    (number("thresholds.ocr_confidence", "Document confidence", "0.01", None))
                }
                fieldset.grid {
                    legend { "Weights (relative)" }
                    (number("weights.liveness", "Liveness", "1", None))
                    (number("weights.face_match", "Face match", "1", None))
                    (number("weights.document", "Document", "1", None))
                    (number("weights.kya", "KYA", "1", None))
                }
                fieldset.grid {
                    legend { "Decision bands (score 0–100)" }
                    (number("bands.accepted", "Accepted from", "1", Some(format!("floor {}", floors.bands.accepted))))
                    (number("bands.review", "Review from", "1", Some(format!("floor {}", floors.bands.review))))
                }
                fieldset {
                    legend { "Mandatory document fields" }
                    @for f in KNOWN_FIELDS {
                        label.inline { input type="checkbox" name="mandatory_fields" value=(f) checked[v.mandatory.iter().any(|m| m == f)]; " " (f) }
                    }
                    (group_error("mandatory_fields"))
                }
                fieldset {
                    legend { "Rules (a rule can only make the decision stricter; empty condition = no rule)" }
                    table.rules {
                        thead { tr { th { "when" } th { "value" } th { "decision" } } }
                        tbody {
                            @for (i, r) in rule_rows.iter().enumerate() {
                                @let row = format!("rules[{i}]");
                                @let row_bad = bad == row || bad.starts_with(&format!("{row}."));
                                tr data-rule=(i) class=[row_bad.then_some("invalid")] {
                                    td {
                                        select name={ (row) ".when" } {
                                            option value="" { "—" }
                                            @for c in Condition::ALL {
                                                option value=(c.name()) selected[r.when == c.name()] { (c.name()) }
                                            }
                                        }
                                    }
                                    td { input type="number" name={ (row) ".value" } value=(r.value) min="0" step="1" placeholder="years (age_below)"; }
                                    td {
                                        select name={ (row) ".decision" } {
                                            @for d in [Decision::Review, Decision::Rejected, Decision::Accepted] {
                                                option value=(d.name()) selected[r.decision == d.name()] { (d.name()) }
                                            }
                                        }
                                        @if row_bad { span.field-error data-field=(bad) role="alert" { (why) } }
                                    }
                                }
                            }
                        }
                    }
                    @if bad == "rules" { span.field-error data-field="rules" role="alert" { (why) } }
                }
                fieldset.grid {
                    legend { "Duplicate faces (the dedup step)" }
                    (number("dedup.threshold", "Same person at similarity ≥", "0.01", None))
                    label { "Collection" input type="text" name="dedup.collection" value=(v.collection) placeholder="default" maxlength="64"; (error("dedup.collection")) }
                    label.inline { input type="checkbox" name="dedup.enrol_accepted" value="true" checked[v.enrol_accepted]; " enrol the selfie of every accepted verification" (error("dedup.enrol_accepted")) }
                }
                button id="save-workflow" type="submit" { "Save" }
            }
        },
    )
}
