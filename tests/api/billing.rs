//! Plans, quotas, usage, invoices, rate limits and key lifecycle, over HTTP.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{Key, Resp, TestApp};

const TD3: [&str; 2] = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
];

/// A billed call that costs microseconds: MRZ validation.
fn validate(app: &TestApp, key: &Key) -> Resp {
    let body = json!({ "mrz": TD3, "options": { "check_expiry": false } });
    app.signed(
        key,
        "POST",
        "/v1/document/validate",
        &serde_json::to_vec(&body).unwrap(),
    )
}

fn set_plan(app: &TestApp, tenant: &str, plan: &str, overrides: Value) {
    let r = app.admin(
        "PUT",
        &format!("/tenants/{tenant}/plan"),
        Some(json!({ "plan": plan, "overrides": overrides })),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

fn month() -> String {
    kycd::tenancy::meter::period_of(crate::common::now())
}

fn events_of(app: &TestApp, tenant: &str) -> (i64, i64, i64) {
    app.with_store(|c| {
        c.query_row(
            "SELECT COUNT(*), CAST(COALESCE(SUM(unit_price_micros), 0) AS BIGINT), \
             (SELECT CAST(COALESCE(SUM(used), 0) AS BIGINT) FROM usage_counters WHERE tenant_id = ?1) \
             FROM usage_events WHERE tenant_id = ?1",
            kycd::store::params![tenant],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    })
}

/// 200 requests at once from 4 keys of one tenant: each lands exactly once, and a quota of 150
/// lets exactly 150 through.
#[test]
fn concurrent_requests_are_counted_exactly_and_the_quota_holds() {
    let app = TestApp::spawn();
    let fast = json!({ "rate_limit": { "per_minute": 1000, "per_day": 100000 } });
    for (quota, expect_ok) in [(Value::Null, 200), (json!(150), 150)] {
        let tenant = app.create_tenant_on("Busy", "pro");
        let mut o = fast.clone();
        o["modules"] = json!({ "validation": { "monthly_quota": quota } });
        set_plan(&app, &tenant, "pro", o);
        let keys: Vec<Key> = (0..4).map(|_| app.create_key(&tenant)).collect();
        let results: Vec<Resp> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..200)
                .map(|i| {
                    let (app, key) = (&app, &keys[i % 4]);
                    s.spawn(move || validate(app, key))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok = results.iter().filter(|r| r.status == 200).count();
        let refused: Vec<&Resp> = results.iter().filter(|r| r.status != 200).collect();
        assert_eq!(ok, expect_ok, "quota {quota}");
        assert_eq!(refused.len(), 200 - expect_ok);
        for r in &refused {
            r.assert_error(429, "quota_exceeded");
            let d = &r.body["error"]["details"];
            assert_eq!(d["module"], "validation");
            assert_eq!(d["limit"], 150);
            assert_eq!(d["used"], 150);
            assert!(d["resets_at"].as_str().unwrap().ends_with("-01T00:00:00Z"));
        }
        let (events, _, counted) = events_of(&app, &tenant);
        assert_eq!((events, counted), (expect_ok as i64, expect_ok as i64));
        let usage = app.signed(&keys[0], "GET", "/v1/usage", b"");
        assert_eq!(usage.status, 200, "{}", usage.text);
        let v = usage.body["modules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["module"] == "validation")
            .unwrap()
            .clone();
        assert_eq!(v["used"], expect_ok);
    }
}

/// 80 % and 100 % of a quota are announced once per period; past the quota a hard plan refuses
/// and a soft one allows and flags the overage.
#[test]
fn thresholds_fire_once_and_soft_quotas_flag_overage() {
    // Tenant labels on the quota gauges are opt-in.
    let app = TestApp::spawn_with(|c| c.metrics.tenant_labels = true);
    let tenant = app.create_tenant_on("Metered", "pro");
    set_plan(
        &app,
        &tenant,
        "pro",
        json!({ "modules": { "validation": { "monthly_quota": 10 } } }),
    );
    let key = app.create_key(&tenant);
    let hook = app.signed(
        &key,
        "POST",
        "/v1/webhooks",
        br#"{"url":"http://127.0.0.1:9/hook","events":["quota.threshold"]}"#,
    );
    assert_eq!(hook.status, 201, "{}", hook.text);
    for _ in 0..10 {
        assert_eq!(validate(&app, &key).status, 200);
    }
    validate(&app, &key).assert_error(429, "quota_exceeded");
    // Overrides are replaced as a whole: the quota is restated.
    set_plan(
        &app,
        &tenant,
        "pro",
        json!({ "quota_mode": "soft", "modules": { "validation": { "monthly_quota": 10 } } }),
    );
    let over = validate(&app, &key);
    assert_eq!(over.status, 200, "{}", over.text);
    assert_eq!(over.body["usage"]["overage"], true);
    assert_eq!(over.body["usage"]["billed"], true);
    assert_eq!(validate(&app, &key).status, 200);

    let usage = app.signed(&key, "GET", "/v1/usage", b"").body;
    let marks: Vec<(i64, i64)> = usage["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["threshold"].as_i64().unwrap(),
                a["used"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(marks, [(80, 8), (100, 10)]);
    let hook_id = hook.body["id"].as_str().unwrap();
    let deliveries = app.signed(
        &key,
        "GET",
        &format!("/v1/webhooks/{hook_id}/deliveries"),
        b"",
    );
    assert_eq!(deliveries.status, 200, "{}", deliveries.text);
    let events: Vec<&Value> = deliveries.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["event"] == "quota.threshold")
        .collect();
    assert_eq!(events.len(), 2, "{}", deliveries.text);
    let overage: i64 = app.with_store(|c| {
        c.query_row(
            "SELECT CAST(SUM(overage) AS BIGINT) FROM usage_events WHERE tenant_id = ?1",
            kycd::store::params![tenant],
            |r| r.get(0),
        )
    });
    assert_eq!(overage, 2);

    let metrics = app.metrics();
    let labels = format!("{{module=\"validation\",tenant=\"{tenant}\"}}");
    assert!(
        metrics.contains(&format!("kycd_quota_used_units{labels} 12")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("kycd_quota_limit_units{labels} 10")),
        "{metrics}"
    );
    assert!(
        metrics.contains("kycd_webhook_deliveries{status=\"pending\"} 2"),
        "{metrics}"
    );
}

/// 60 a minute: the 61st is refused with a Retry-After that is enough; another key of the same
/// tenant is untouched; an endpoint with its own budget counts separately.
#[test]
fn rate_limits_are_per_key_with_retry_after_and_headers() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant_on("Chatty", "pro");
    set_plan(
        &app,
        &tenant,
        "pro",
        json!({ "rate_limit": { "endpoints": { "POST /v1/document/validate": { "per_minute": 2, "per_day": 100 } } } }),
    );
    let (a, b) = (app.create_key(&tenant), app.create_key(&tenant));
    let started = Instant::now();
    let mut allowed = 0;
    let refused = loop {
        let r = app.signed(&a, "GET", "/v1/ping", b"");
        if r.status != 200 {
            break r;
        }
        allowed += 1;
        assert_eq!(r.headers["x-ratelimit-limit"], "60");
        assert!(allowed <= 120, "never limited");
    };
    // GCRA refills one request a second: a slow machine may earn a few more than 60.
    let grace = started.elapsed().as_secs() as usize;
    assert!((60..=60 + grace).contains(&allowed), "{allowed} allowed");
    refused.assert_error(429, "rate_limited");
    assert_eq!(refused.headers["x-ratelimit-remaining"], "0");
    let retry: u64 = refused.headers["retry-after"].parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");

    let other = app.signed(&b, "GET", "/v1/ping", b"");
    assert_eq!(other.status, 200);
    assert_eq!(other.headers["x-ratelimit-remaining"], "59");
    // The validate route has its own bucket: a's shared budget does not apply to it.
    assert_eq!(validate(&app, &a).status, 200);
    assert_eq!(validate(&app, &a).headers["x-ratelimit-limit"], "2");
    validate(&app, &a).assert_error(429, "rate_limited");

    std::thread::sleep(Duration::from_secs(retry));
    let again = app.signed(&a, "GET", "/v1/ping", b"");
    assert_eq!(again.status, 200, "{}", again.text);
    let reset: u64 = again.headers["x-ratelimit-reset"].parse().unwrap();
    assert!((1..=60).contains(&reset), "reset {reset}");
}

/// During a rotation's overlap both secrets verify; after it only the new one.
#[test]
fn rotated_keys_accept_both_secrets_during_the_overlap_only() {
    let app = TestApp::spawn();
    let old = app.tenant_with_key();
    let r = app.admin(
        "POST",
        &format!("/keys/{}/rotate", old.key_id),
        Some(json!({ "overlap_seconds": 2 })),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let new = Key {
        secret: r.body["secret"].as_str().unwrap().to_owned(),
        ..old.clone()
    };
    assert_ne!(new.secret, old.secret);
    let until = r.body["previous_secret_valid_until"].as_i64().unwrap();
    assert_eq!(app.signed(&old, "GET", "/v1/ping", b"").status, 200);
    assert_eq!(app.signed(&new, "GET", "/v1/ping", b"").status, 200);
    while crate::common::now() <= until {
        std::thread::sleep(Duration::from_millis(200));
    }
    app.signed(&old, "GET", "/v1/ping", b"")
        .assert_error(401, "invalid_signature");
    assert_eq!(app.signed(&new, "GET", "/v1/ping", b"").status, 200);

    // Without an overlap the old secret stops at once; a revoked key cannot be rotated.
    let r = app.admin(
        "POST",
        &format!("/keys/{}/rotate", new.key_id),
        Some(json!({ "overlap_seconds": 0 })),
    );
    let newest = Key {
        secret: r.body["secret"].as_str().unwrap().to_owned(),
        ..old.clone()
    };
    app.signed(&new, "GET", "/v1/ping", b"")
        .assert_error(401, "invalid_signature");
    assert_eq!(app.signed(&newest, "GET", "/v1/ping", b"").status, 200);
    let keys = app.admin("GET", &format!("/tenants/{}/keys", old.tenant_id), None);
    let listed = &keys.body["keys"][0];
    assert!(listed["last_used_at"].as_i64().is_some(), "{}", keys.text);
    assert!(listed["rotated_at"].as_i64().is_some());
    assert!(listed.get("secret").is_none());
    app.admin("POST", &format!("/keys/{}/revoke", old.key_id), None);
    // An empty body rotates with the default overlap (24 h) — here refused: the key is revoked.
    let r = app.admin("POST", &format!("/keys/{}/rotate", old.key_id), None);
    r.assert_error(409, "conflict");
    let r = app.admin(
        "POST",
        &format!("/keys/{}/rotate", old.key_id),
        Some(json!({ "overlap_seconds": -1 })),
    );
    r.assert_error(422, "invalid_input");
}

/// The invoice's lines are the usage rows summed by price; tiers start at their first unit;
/// sandbox units are counted but not billed.
#[test]
fn invoices_match_usage_to_the_micro_unit_with_tiers_at_their_boundaries() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant_on("Billed", "pro");
    set_plan(
        &app,
        &tenant,
        "pro",
        json!({ "tiers": [{ "from_units": 4, "discount_percent": 25 }],
                "modules": { "validation": { "unit_price_micros": 30000 } } }),
    );
    let live = app.create_key(&tenant);
    let sandbox = {
        let r = app.admin(
            "POST",
            &format!("/tenants/{tenant}/keys"),
            Some(json!({ "environment": "sandbox" })),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        Key {
            tenant_id: tenant.clone(),
            key_id: r.body["id"].as_str().unwrap().to_owned(),
            secret: r.body["secret"].as_str().unwrap().to_owned(),
        }
    };
    for i in 0..8 {
        let key = if i == 1 || i == 5 { &sandbox } else { &live };
        let r = validate(&app, key);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["usage"]["billed"], key.key_id == live.key_id);
    }
    let m = month();
    let inv = app.admin("GET", &format!("/tenants/{tenant}/invoices/{m}"), None);
    assert_eq!(inv.status, 200, "{}", inv.text);
    let lines: Vec<(i64, i64, i64, i64)> = inv.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            assert_eq!(l["module"], "validation");
            let n = |k: &str| l[k].as_i64().unwrap();
            (
                n("discount_percent"),
                n("count"),
                n("unit_price_micros"),
                n("amount_micros"),
            )
        })
        .collect();
    // 6 billed units: 1–3 at 0.03, 4–6 at 0.0225.
    assert_eq!(lines, [(0, 3, 30_000, 90_000), (25, 3, 22_500, 67_500)]);
    let (events, sum, _) = events_of(&app, &tenant);
    assert_eq!(events, 8);
    assert_eq!(inv.body["total_micros"], sum);
    assert_eq!(sum, 157_500);
    assert_eq!(inv.body["total_minor"], 16); // 15.75 cents, rounded once
    assert_eq!(inv.body["unbilled_units"]["validation"], 2);
    assert_eq!(inv.body["status"], "open");

    let csv = app.admin(
        "GET",
        &format!("/tenants/{tenant}/invoices/{m}?format=csv"),
        None,
    );
    assert!(
        csv.text.contains(&format!(
            "{m},validation,3,0.030000,25,0.022500,0.067500,0,USD"
        )),
        "{}",
        csv.text
    );
    assert!(
        csv.text.contains(&format!("{m},total,,,,,0.157500,,USD")),
        "{}",
        csv.text
    );
    app.admin("GET", &format!("/tenants/{tenant}/invoices/2026-13"), None)
        .assert_error(422, "invalid_input");

    // The CLI prints the same invoice from the data directory.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kycd"))
        .arg("--data-dir")
        .arg(app.data_path(""))
        .envs(crate::common::store_env(std::path::Path::new(
            &app.data_path(""),
        )))
        .args([
            "admin", "invoice", "--tenant", &tenant, "--month", &m, "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["total_micros"], 157_500);
    assert_eq!(cli["lines"], inv.body["lines"]);
}

/// Scopes confine a key to modules; Free tenants get sandbox keys only.
#[test]
fn scopes_and_sandbox_keys() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant_on("Scoped", "pro");
    let r = app.admin(
        "POST",
        &format!("/tenants/{tenant}/keys"),
        Some(json!({ "scopes": ["validation"] })),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["scopes"], json!(["validation"]));
    let key = Key {
        tenant_id: tenant.clone(),
        key_id: r.body["id"].as_str().unwrap().to_owned(),
        secret: r.body["secret"].as_str().unwrap().to_owned(),
    };
    assert_eq!(validate(&app, &key).status, 200);
    let face = app.signed(
        &key,
        "POST",
        "/v1/face/match",
        br#"{"image_a_base64":"x","image_b_base64":"y"}"#,
    );
    face.assert_error(403, "forbidden_module");
    assert_eq!(face.body["error"]["details"]["module"], "face_match");
    let kyc = app.signed(
        &key,
        "POST",
        "/v1/kyc/verify",
        br#"{"selfie":"x","document_front":"y"}"#,
    );
    kyc.assert_error(403, "forbidden_module");
    // The Facia credential of a scoped key keeps its scopes.
    let facia = app.admin(
        "POST",
        &format!("/tenants/{tenant}/keys"),
        Some(json!({ "scopes": ["validation"], "facia_hash": true })),
    );
    let hash = facia.body["facia_hash_id"].as_str().unwrap();
    let body = json!({ "hash_id": hash, "selfie_image": "x", "document_image": "y" });
    let r = app.raw(
        "POST",
        "/process_face",
        &[("Content-Type", "application/json".into())],
        &serde_json::to_vec(&body).unwrap(),
    );
    r.assert_error(403, "forbidden_module");

    // A workflow reserves every module it runs: over one quota, the job is refused up front.
    let all = app.create_key(&tenant);
    set_plan(
        &app,
        &tenant,
        "pro",
        json!({ "modules": { "face_match": { "monthly_quota": 0 } } }),
    );
    let kyc = app.signed(
        &all,
        "POST",
        "/v1/kyc/verify",
        br#"{"selfie":"x","document_front":"y"}"#,
    );
    kyc.assert_error(429, "quota_exceeded");
    assert_eq!(kyc.body["error"]["details"]["module"], "face_match");
    let bad = app.admin(
        "POST",
        &format!("/tenants/{tenant}/keys"),
        Some(json!({ "scopes": ["telepathy"] })),
    );
    assert_eq!(bad.status / 100, 4, "{}", bad.text);

    let free = app.create_tenant_on("Trial", "free");
    let live = app.admin(
        "POST",
        &format!("/tenants/{free}/keys"),
        Some(json!({ "environment": "live" })),
    );
    live.assert_error(422, "invalid_input");
    assert_eq!(live.body["error"]["details"]["field"], "environment");
    let k = app.create_key(&free);
    let keys = app.admin("GET", &format!("/tenants/{free}/keys"), None);
    assert_eq!(keys.body["keys"][0]["environment"], "sandbox");
    let r = validate(&app, &k);
    assert_eq!(r.body["usage"]["billed"], false);
    let inv = app.admin(
        "GET",
        &format!("/tenants/{free}/invoices/{}", month()),
        None,
    );
    assert_eq!(inv.body["total_micros"], 0);
    assert_eq!(inv.body["unbilled_units"]["validation"], 1);
    // An upgrade makes the keys live: from then on they are billed.
    set_plan(&app, &free, "pro", Value::Null);
    let keys = app.admin("GET", &format!("/tenants/{free}/keys"), None);
    assert_eq!(keys.body["keys"][0]["environment"], "live");
    assert_eq!(validate(&app, &k).body["usage"]["billed"], true);
}

/// Plans are edited as a whole and validated; every change is audited.
#[test]
fn plans_are_validated_and_changes_audited() {
    let app = TestApp::spawn();
    let plans = app.admin("GET", "/plans", None);
    assert_eq!(plans.status, 200);
    let ids: Vec<&str> = plans.body["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["free", "pro", "enterprise"]);
    let mut pro = app.admin("GET", "/plans/pro", None).body;
    pro["modules"]["ocr"]["unit_price_micros"] = json!(90_000);
    let r = app.admin("PUT", "/plans/pro", Some(pro.clone()));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        app.admin("GET", "/plans/pro", None).body["modules"]["ocr"]["unit_price_micros"],
        90_000
    );
    pro["tiers"] = json!([{ "from_units": 1, "discount_percent": 5 }]);
    let r = app.admin("PUT", "/plans/pro", Some(pro));
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "tiers[0].from_units");
    app.admin("GET", "/plans/gold", None)
        .assert_error(404, "not_found");

    let tenant = app.create_tenant_on("Audited", "pro");
    let r = app.admin(
        "PUT",
        &format!("/tenants/{tenant}/plan"),
        Some(json!({ "overrides": { "modules": { "ocr": { "monthly_quota": -5 } } } })),
    );
    r.assert_error(422, "invalid_input");
    assert_eq!(
        r.body["error"]["details"]["field"],
        "overrides.modules.ocr.monthly_quota"
    );
    set_plan(&app, &tenant, "enterprise", json!({ "quota_mode": "hard" }));
    let s = app
        .admin("GET", &format!("/tenants/{tenant}/plan"), None)
        .body;
    assert_eq!(s["plan"], "enterprise");
    assert_eq!(s["effective"]["quota_mode"], "hard");
    let audit = app.admin("GET", "/audit?q=plan", None);
    let actions: HashMap<String, usize> =
        audit.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .fold(HashMap::new(), |mut m, e| {
                *m.entry(e["action"].as_str().unwrap().to_owned())
                    .or_default() += 1;
                m
            });
    assert_eq!(actions.get("plan.update"), Some(&1), "{}", audit.text);
    assert_eq!(actions.get("tenant.plan"), Some(&1), "{}", audit.text);
}
