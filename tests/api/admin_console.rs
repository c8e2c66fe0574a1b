//! The operator console at `/admin` in a real browser (Debian's Chromium, headless, as for the
//! tenant console): a superadmin with a second factor runs a tenant's plan, quota, suspension and
//! a plan's price; support looks but cannot change a plan; the system page agrees with
//! `/metrics`; the audit page finds the operator's actions and verifies the chain.

use serde_json::Value;

use crate::common::{Key, TestApp};
use crate::console::{browser, click_and_wait, go, html, set_value, shot, sign_in_at, type_into};

/// An operator account made with the CLI; returns (password, TOTP secret bytes if any).
fn operator(app: &TestApp, email: &str, role: &str) -> (String, Option<Vec<u8>>) {
    let (code, out, err) = crate::cli::kycd(
        app.data_dir.path(),
        &[
            "admin", "operator", "create", "--email", email, "--role", role, "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let secret = v["totp_secret"]
        .as_str()
        .map(|s| kycd::console::totp::decode(s).unwrap());
    if role == "superadmin" {
        assert!(secret.is_some(), "a superadmin gets a second factor: {out}");
        assert!(v["totp_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/kycd:"));
    }
    (v["password"].as_str().unwrap().to_owned(), secret)
}

fn sign_in(tab: &headless_chrome::Tab, app: &TestApp, email: &str, password: &str) {
    sign_in_at(tab, app, "/admin/login", email, password);
}

fn validate(app: &TestApp, key: &Key) -> crate::common::Resp {
    app.signed(
        key,
        "POST",
        "/v1/document/validate",
        br#"{"mrz":["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<","L898902C36UTO7408122F1204159ZE184226B<<<<<10"]}"#,
    )
}

fn ocr(app: &TestApp, key: &Key) -> crate::common::Resp {
    let (doc, _) = crate::workflow::passport_b64(11, "obama.jpg", false);
    app.signed(
        key,
        "POST",
        "/v1/document/ocr",
        &serde_json::to_vec(&serde_json::json!({ "image_front_base64": doc })).unwrap(),
    )
}

#[test]
fn a_superadmin_runs_a_tenant_and_a_plan_and_support_only_looks() {
    let Some(browser) = browser() else { return };
    let app = TestApp::spawn();
    let (root_pw, root_totp) = operator(&app, "root@operator.example", "superadmin");
    let root_totp = root_totp.unwrap();
    let (support_pw, support_totp) = operator(&app, "help@operator.example", "support");
    assert!(support_totp.is_none());

    // Sign-in: password, then the code (the password alone opens nothing).
    let tab = browser.new_tab().unwrap();
    go(&tab, &app, "/admin/");
    assert!(tab.get_url().ends_with("/admin/login"), "{}", tab.get_url());
    shot(&tab, "30-admin-sign-in");
    sign_in(&tab, &app, "root@operator.example", &root_pw);
    assert!(
        tab.get_url().ends_with("/admin/login/code"),
        "{}",
        tab.get_url()
    );
    go(&tab, &app, "/admin/plans");
    assert!(
        tab.get_url().ends_with("/admin/login/code"),
        "pending opens nothing"
    );
    type_into(
        &tab,
        "input[name=code]",
        &kycd::console::totp::code_at(&root_totp, crate::common::now()),
    );
    click_and_wait(&tab, "form.login button");
    assert!(
        tab.get_url().ends_with("/admin/"),
        "{} {}",
        tab.get_url(),
        html(&tab)
    );

    // A tenant, created from the list.
    type_into(&tab, "input[name=name]", "Operator Bank");
    click_and_wait(&tab, "#create-tenant");
    let url = tab.get_url();
    let tenant = url.rsplit('/').next().unwrap().to_owned();
    assert!(tenant.starts_with("ten_"), "{url}");
    shot(&tab, "31-admin-tenant");

    // Pro with an OCR quota of 150: a refused value is shown beside its field first.
    tab.evaluate(
        "document.querySelector('select[name=plan]').value = 'pro'",
        false,
    )
    .unwrap();
    set_value(&tab, "overrides.modules.ocr.price", "lots");
    click_and_wait(&tab, "#save-plan");
    let page = html(&tab);
    assert!(
        page.contains("data-field=\"overrides.modules.ocr.price\""),
        "{page}"
    );
    shot(&tab, "32-admin-plan-refused");
    tab.evaluate(
        "document.querySelector('select[name=plan]').value = 'pro'",
        false,
    )
    .unwrap();
    set_value(&tab, "overrides.modules.ocr.price", "");
    set_value(&tab, "overrides.modules.ocr.monthly_quota", "150");
    click_and_wait(&tab, "#save-plan");
    let plan = tab
        .wait_for_element("#plan")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert_eq!(plan, "pro", "{}", html(&tab));
    let sub = app.admin("GET", &format!("/tenants/{tenant}/plan"), None);
    assert_eq!(
        sub.body["effective"]["modules"]["ocr"]["monthly_quota"],
        150
    );

    // A key made here; 150 OCR units pass, the 151st is refused. The first 149 units are put
    // in the month's counter as earlier use (an OCR call takes about a second); the 150th and
    // 151st are real calls.
    click_and_wait(&tab, "#create-key");
    let page = html(&tab);
    let key_id = page
        .split("Secret of key ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let secret = tab
        .wait_for_element("#secret")
        .unwrap()
        .get_inner_text()
        .unwrap();
    let key = Key {
        tenant_id: tenant.clone(),
        key_id,
        secret: secret.trim().to_owned(),
    };
    let period = kycd::tenancy::meter::period_of(crate::common::now());
    app.write_store(|c| {
        c.execute(
            "INSERT INTO usage_counters (tenant_id, module, period, used, billed) VALUES (?1, 'ocr', ?2, 149, 149)",
            kycd::store::params![tenant, period],
        )
    });
    let r = ocr(&app, &key);
    assert_eq!(r.status, 200, "the 150th: {}", r.text);
    let r = ocr(&app, &key);
    r.assert_error(429, "quota_exceeded");
    assert_eq!(r.body["error"]["details"]["limit"], 150);

    // Suspended: signed calls are refused; reactivated: they pass again.
    go(&tab, &app, &format!("/admin/tenants/{tenant}"));
    click_and_wait(&tab, "#suspend");
    assert_eq!(
        tab.wait_for_element("#status")
            .unwrap()
            .get_inner_text()
            .unwrap(),
        "suspended"
    );
    validate(&app, &key).assert_error(403, "tenant_suspended");
    click_and_wait(&tab, "#activate");
    assert_eq!(validate(&app, &key).status, 200);

    // A plan's price: the preview names the change and the tenant; once saved, the next use is
    // invoiced at it.
    go(&tab, &app, "/admin/plans/pro");
    set_value(&tab, "modules.validation.price", "0.33");
    click_and_wait(&tab, "#preview-plan");
    let page = html(&tab);
    assert!(page.contains("id=\"preview\""), "{page}");
    assert!(
        page.contains("modules.validation.unit_price_micros: ") && page.contains("→ 330000"),
        "{page}"
    );
    assert!(
        page.contains(&format!("data-tenant=\"{tenant}\"")),
        "{page}"
    );
    shot(&tab, "33-admin-plan-preview");
    click_and_wait(&tab, "#save-plan");
    assert!(html(&tab).contains("Saved."), "{}", html(&tab));
    assert_eq!(validate(&app, &key).status, 200);
    let month = kycd::tenancy::invoice::current_month();
    let inv = app.admin("GET", &format!("/tenants/{tenant}/invoices/{month}"), None);
    assert!(
        inv.body["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["module"] == "validation" && l["unit_price_micros"] == 330_000),
        "{}",
        inv.text
    );
    go(&tab, &app, &format!("/admin/revenue?month={month}"));
    assert!(html(&tab).contains(&format!(
        "data-tenant=\"{tenant}\" data-module=\"validation\""
    )));
    shot(&tab, "34-admin-revenue");

    // The system page's queue depth is the one /metrics reports.
    go(&tab, &app, "/admin/system");
    let depth: i64 = tab
        .wait_for_element("#queue-depth")
        .unwrap()
        .get_inner_text()
        .unwrap()
        .parse()
        .unwrap();
    let metrics = app.raw(
        "GET",
        "/metrics",
        &[(
            "Authorization",
            format!("Bearer {}", crate::common::ADMIN_TOKEN),
        )],
        b"",
    );
    let reported: i64 = metrics
        .text
        .lines()
        .find(|l| l.starts_with("kycd_jobs{") && l.contains("status=\"queued\""))
        .map_or(0, |l| {
            l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as i64
        });
    assert_eq!(depth, reported, "{}", metrics.text);
    assert!(html(&tab).contains("yunet_2023mar_dynamic.onnx"));
    shot(&tab, "35-admin-system");

    // The audit page: the suspension by this operator, and the chain verifies.
    go(&tab, &app, "/admin/audit?q=suspend");
    let page = html(&tab);
    assert!(
        page.contains(
            "data-action=\"tenant.suspend\" data-actor=\"operator:root@operator.example\""
        ),
        "{page}"
    );
    click_and_wait(&tab, "#verify-chain");
    let chain = tab.wait_for_element("#chain").unwrap();
    assert_eq!(
        chain.get_attribute_value("data-ok").unwrap().as_deref(),
        Some("true")
    );
    let head = tab
        .wait_for_element("#head-hash")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert_eq!(head.len(), 64, "{head}");
    shot(&tab, "36-admin-audit");

    // A verification's images, for a superadmin only with a reason, audited before shown.
    let reader = app.create_key_with(
        &tenant,
        serde_json::json!({ "permissions": ["results:read", "workflow:write"] }),
    );
    let r = app.signed(
        &reader,
        "PUT",
        "/v1/workflow",
        br#"{"steps": ["liveness"], "mandatory_fields": []}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let (doc, _) = crate::workflow::passport_b64(12, "obama.jpg", false);
    let job = crate::workflow::submit(
        &app,
        &reader,
        &serde_json::json!({ "selfie": crate::workflow::face_b64("obama2.jpg"), "document_front": doc }),
    );
    crate::workflow::wait(&app, &reader, &job);
    go(&tab, &app, &format!("/admin/tenants/{tenant}"));
    type_into(&tab, "input[name=job]", &job);
    type_into(&tab, "input[name=reason]", "curious");
    click_and_wait(&tab, "#open-verification");
    assert!(
        html(&tab).contains("data-field=\"reason\""),
        "a reason is required"
    );
    assert!(!html(&tab).contains("data:image/jpeg"));
    type_into(&tab, "input[name=job]", &job);
    type_into(
        &tab,
        "input[name=reason]",
        "ticket OPS-1234: applicant disputes the decision",
    );
    click_and_wait(&tab, "#open-verification");
    assert!(
        html(&tab).contains("src=\"data:image/jpeg;base64,"),
        "{}",
        html(&tab)
    );
    let audit = app.admin("GET", "/audit?q=personal_data", None);
    let entry = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "operator.personal_data")
        .unwrap_or_else(|| panic!("{}", audit.text))
        .clone();
    assert_eq!(entry["actor"], "operator:root@operator.example");
    assert_eq!(entry["target"], job.as_str());
    assert!(entry["details"].to_string().contains("OPS-1234"), "{entry}");
    go(&tab, &app, "/admin/");
    assert!(html(&tab).contains(&format!("data-tenant=\"{tenant}\"")));
    shot(&tab, "38-admin-tenants");
    go(&tab, &app, "/admin/plans");
    shot(&tab, "39-admin-plans");

    // Support looks but cannot change a plan: no control, and the POST is refused.
    let context = browser.new_context().unwrap();
    let tab = context.new_tab().unwrap();
    sign_in(&tab, &app, "help@operator.example", &support_pw);
    assert!(tab.get_url().ends_with("/admin/"), "{}", tab.get_url());
    go(&tab, &app, "/admin/plans/pro");
    let page = html(&tab);
    assert!(!page.contains("save-plan"), "no save for support");
    assert!(page.contains("disabled"), "inputs are read-only");
    shot(&tab, "37-admin-support-plan");
    go(&tab, &app, "/admin/revenue");
    assert!(
        html(&tab).contains("does not allow this"),
        "support sees no money"
    );
    let csrf = {
        let page = html(&tab);
        let at = page.find("name=\"_csrf\" value=\"").unwrap() + 20;
        page[at..at + 32].to_owned()
    };
    let cookie = tab
        .get_cookies()
        .unwrap()
        .into_iter()
        .find(|c| c.name == "kycd_admin")
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let r = agent
        .post(&format!("{}/admin/plans/pro", app.base))
        .header("Cookie", &format!("kycd_admin={}", cookie.value))
        .send_form([
            ("_csrf", csrf.as_str()),
            ("intent", "save"),
            ("name", "Pro"),
            ("currency", "USD"),
            ("quota_mode", "hard"),
        ])
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = agent
        .post(&format!("{}/admin/tenants/{tenant}/suspend", app.base))
        .header("Cookie", &format!("kycd_admin={}", cookie.value))
        .send_form([("_csrf", csrf.as_str())])
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "support cannot suspend");
    // A tenant's console session opens nothing here, and the other way round.
    let r = agent
        .get(&format!("{}/console/", app.base))
        .header("Cookie", &format!("kycd_console={}", cookie.value))
        .call()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        303,
        "an operator cookie is not a console session"
    );
}

/// With the job workers paused, submitted verifications wait in the queue: the system page shows
/// the same depth as `/metrics` (and a support operator may see it).
#[test]
fn the_system_page_shows_the_queue_that_metrics_reports() {
    let Some(browser) = browser() else { return };
    let app = TestApp::spawn_with(|c| c.workflow.workers = 0);
    let key = app.tenant_with_key();
    let (doc, _) = crate::workflow::passport_b64(13, "obama.jpg", false);
    for _ in 0..3 {
        crate::workflow::submit(
            &app,
            &key,
            &serde_json::json!({ "selfie": crate::workflow::face_b64("obama2.jpg"), "document_front": doc }),
        );
    }
    let (password, _) = operator(&app, "watch@operator.example", "support");
    let tab = browser.new_tab().unwrap();
    sign_in(&tab, &app, "watch@operator.example", &password);
    go(&tab, &app, "/admin/system");
    let depth = tab
        .wait_for_element("#queue-depth")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert_eq!(depth, "3", "{}", html(&tab));
    let metrics = app.raw(
        "GET",
        "/metrics",
        &[(
            "Authorization",
            format!("Bearer {}", crate::common::ADMIN_TOKEN),
        )],
        b"",
    );
    let reported = metrics
        .text
        .lines()
        .find(|l| l.starts_with("kycd_jobs{") && l.contains("status=\"queued\""))
        .unwrap_or_else(|| panic!("{}", metrics.text))
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(reported, depth, "{}", metrics.text);
    shot(&tab, "40-admin-system-queue");
}

/// An operator looks after their own account from `/admin/security`: a support operator turns a
/// second factor on (asked for at the next sign-in) and changes the password (the old one no
/// longer opens); a superadmin cannot turn theirs off.
#[test]
fn an_operator_sets_up_a_second_factor_and_a_new_password_and_a_superadmin_keeps_theirs() {
    let Some(browser) = browser() else { return };
    let app = TestApp::spawn();
    let (password, _) = operator(&app, "desk@operator.example", "support");
    let tab = browser.new_tab().unwrap();
    sign_in(&tab, &app, "desk@operator.example", &password);
    assert!(tab.get_url().ends_with("/admin/"), "{}", tab.get_url());
    click_and_wait(&tab, "header a.who");
    assert!(
        tab.get_url().ends_with("/admin/security"),
        "{}",
        tab.get_url()
    );
    let encoded = tab
        .wait_for_element("#totp-secret")
        .unwrap()
        .get_inner_text()
        .unwrap();
    let raw = kycd::console::totp::decode(encoded.trim()).unwrap();
    type_into(
        &tab,
        "form.create input[name=code]",
        &kycd::console::totp::code_at(&raw, crate::common::now()),
    );
    click_and_wait(&tab, "#totp-enable");
    let status = tab
        .wait_for_element("#totp-status")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert!(status.contains("on"), "{status} {}", html(&tab));
    shot(&tab, "41-admin-own-second-factor");

    // The password, changed from the page: every session ends, the old one no longer opens.
    click_and_wait(&tab, "#change-password");
    type_into(&tab, "input[name=current]", &password);
    type_into(&tab, "input[name=new]", "a much longer operator passphrase");
    click_and_wait(&tab, "form.create button");
    assert!(tab.get_url().ends_with("/admin/login"), "{}", tab.get_url());
    sign_in(&tab, &app, "desk@operator.example", &password);
    assert!(tab.get_url().ends_with("/admin/login"), "{}", tab.get_url());
    sign_in(
        &tab,
        &app,
        "desk@operator.example",
        "a much longer operator passphrase",
    );
    assert!(
        tab.get_url().ends_with("/admin/login/code"),
        "the second factor is asked for: {}",
        tab.get_url()
    );
    type_into(
        &tab,
        "input[name=code]",
        &kycd::console::totp::code_at(&raw, crate::common::now() + 30),
    );
    click_and_wait(&tab, "form.login button");
    assert!(
        tab.get_url().ends_with("/admin/"),
        "{} {}",
        tab.get_url(),
        html(&tab)
    );
    let audit = app.admin("GET", "/audit?q=desk", None);
    for action in ["user.totp_enable", "user.change_password"] {
        assert!(audit.text.contains(action), "{action}: {}", audit.text);
    }
    assert!(
        audit.text.contains("operator:desk@operator.example"),
        "{}",
        audit.text
    );

    // A superadmin's second factor stays on.
    let (root_pw, root_totp) = operator(&app, "chief@operator.example", "superadmin");
    let root_totp = root_totp.unwrap();
    let tab = browser.new_tab().unwrap();
    sign_in(&tab, &app, "chief@operator.example", &root_pw);
    type_into(
        &tab,
        "input[name=code]",
        &kycd::console::totp::code_at(&root_totp, crate::common::now()),
    );
    click_and_wait(&tab, "form.login button");
    go(&tab, &app, "/admin/security");
    type_into(
        &tab,
        "form.create input[name=code]",
        &kycd::console::totp::code_at(&root_totp, crate::common::now() + 30),
    );
    click_and_wait(&tab, "#totp-disable");
    let page = html(&tab);
    assert!(page.contains("cannot turn the second factor off"), "{page}");
    assert!(
        tab.wait_for_element("#totp-status")
            .unwrap()
            .get_inner_text()
            .unwrap()
            .contains("on"),
        "{page}"
    );
}
