//! The tenant console in a real browser: Debian's Chromium, headless, driven over the DevTools
//! protocol (`headless_chrome`), against a server on loopback with no network. Screenshots of each
//! screen go to `target/console-screenshots/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{json, Value};

use crate::common::{Key, TestApp};
use crate::workflow::{face_b64, passport_b64, receiver, submit, wait};

const CHROMIUM: &str = "/usr/bin/chromium";

/// A headless Chromium, or `None` (failing under CI=true) where there is none.
pub(crate) fn browser() -> Option<Browser> {
    if !Path::new(CHROMIUM).exists() {
        crate::common::tool_missing("chromium", "the console's browser tests");
        return None;
    }
    let options = LaunchOptions::default_builder()
        .path(Some(PathBuf::from(CHROMIUM)))
        .headless(true)
        .sandbox(false)
        .window_size(Some((1280, 900)))
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .expect("launch options");
    Some(Browser::new(options).expect("chromium starts"))
}

pub(crate) fn shot(tab: &Tab, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Does `act` (a click, a navigation) and waits until the next document has loaded (polled
/// every 50 ms: DevTools' own navigation wait sleeps far longer).
pub(crate) fn and_wait(tab: &Tab, what: &str, act: impl FnOnce()) {
    tab.evaluate("window.__previous_document = true", false)
        .unwrap();
    act();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let fresh = tab
            .evaluate(
                "typeof window.__previous_document === 'undefined' && document.readyState === 'complete'",
                false,
            )
            .ok()
            .and_then(|r| r.value)
            .is_some_and(|v| v == Value::Bool(true));
        if fresh {
            return;
        }
        assert!(Instant::now() < deadline, "no new page after {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Clicks `selector` (a submit button or a link) and waits until the next document has loaded.
pub(crate) fn click_and_wait(tab: &Tab, selector: &str) {
    and_wait(tab, selector, || {
        tab.find_element(selector).unwrap().click().unwrap();
    });
}

pub(crate) fn go(tab: &Tab, app: &TestApp, path: &str) {
    let url = format!("{}{path}", app.base);
    and_wait(tab, &url, || {
        tab.navigate_to(&url).unwrap();
    });
}

pub(crate) fn html(tab: &Tab) -> String {
    tab.get_content().unwrap()
}

/// Clicks into `selector` and types `text`, key by key.
pub(crate) fn type_into(tab: &Tab, selector: &str, text: &str) {
    tab.wait_for_element(selector).unwrap().click().unwrap();
    tab.send_character(text).unwrap();
}

/// Signs in at `path` (`/console/login` or `/admin/login`).
pub(crate) fn sign_in_at(tab: &Tab, app: &TestApp, path: &str, email: &str, password: &str) {
    go(tab, app, path);
    type_into(tab, "input[name=email]", email);
    type_into(tab, "input[name=password]", password);
    click_and_wait(tab, "form.login button");
}

pub(crate) fn sign_in(tab: &Tab, app: &TestApp, email: &str, password: &str) {
    sign_in_at(tab, app, "/console/login", email, password);
}

/// A console user made with the CLI, as an operator would; returns the generated password.
pub(crate) fn user(app: &TestApp, tenant: &str, email: &str, role: &str) -> String {
    let (code, out, err) = crate::cli::kycd(
        app.data_dir.path(),
        &[
            "admin", "user", "create", "--tenant", tenant, "--email", email, "--role", role,
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["password"].as_str().unwrap().to_owned()
}

/// Plain HTTP with a session cookie, for what a page cannot send (a forged or stripped form).
struct Session {
    agent: ureq::Agent,
    base: String,
    cookie: String,
}

impl Session {
    fn sign_in(app: &TestApp, email: &str, password: &str) -> Session {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let r = agent
            .post(&format!("{}/console/login", app.base))
            .send_form([("email", email), ("password", password)])
            .unwrap();
        assert_eq!(r.status(), 303);
        let set = r.headers().get("set-cookie").unwrap().to_str().unwrap();
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
            assert!(set.contains(attr), "{set}");
        }
        let cookie = set.split(';').next().unwrap().to_owned();
        Session {
            agent,
            base: app.base.clone(),
            cookie,
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut r = self
            .agent
            .get(&format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .call()
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let mut r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .send_form(form.iter().copied())
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }

    /// The CSRF token of the signed-in pages.
    fn csrf(&self) -> String {
        let (_, page) = self.get("/console/");
        let at = page
            .find("name=\"_csrf\" value=\"")
            .expect("a form with the token")
            + 20;
        page[at..at + 32].to_owned()
    }
}

/// A verification that the workflow sends to review (every score below the accepted band).
fn job_in_review(app: &TestApp, key: &Key) -> String {
    let r = app.signed(
        key,
        "PUT",
        "/v1/workflow",
        &serde_json::to_vec(&json!({ "bands": { "accepted": 100, "review": 50 } })).unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let (doc, _) = passport_b64(8, "obama.jpg", false);
    let id = submit(
        app,
        key,
        &json!({ "selfie": face_b64("obama2.jpg"), "document_front": doc, "reference": "applicant-7" }),
    );
    let r = wait(app, key, &id);
    assert_eq!(r["decision"], "review", "{r:#}");
    id
}

#[test]
fn an_owner_signs_in_creates_a_key_once_and_approves_a_case_from_the_review_queue() {
    let Some(browser) = browser() else { return };
    let app = TestApp::spawn();
    let tenant = app.create_tenant("Console Bank");
    let key = app.create_key(&tenant);
    let (hook, got) = receiver(0);
    let r = app.signed(
        &key,
        "POST",
        "/v1/webhooks",
        &serde_json::to_vec(&json!({ "url": hook, "events": ["kyc.reviewed"] })).unwrap(),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let job = job_in_review(&app, &key);
    let password = user(&app, &tenant, "owner@bank.example", "owner");

    let tab = browser.new_tab().unwrap();
    go(&tab, &app, "/console/");
    assert!(
        tab.get_url().ends_with("/console/login"),
        "{}",
        tab.get_url()
    );
    shot(&tab, "01-sign-in");
    sign_in(&tab, &app, "owner@bank.example", &password);
    assert!(
        tab.get_url().ends_with("/console/"),
        "{} {}",
        tab.get_url(),
        html(&tab)
    );
    tab.wait_for_element("section.cards").unwrap();
    shot(&tab, "02-overview");

    // The overview's counts are the API's.
    let usage = app.signed(&key, "GET", "/v1/usage", b"");
    assert_eq!(usage.status, 200, "{}", usage.text);
    let page = html(&tab);
    for m in usage.body["modules"].as_array().unwrap() {
        let row = format!(
            "data-module=\"{}\" data-used=\"{}\"",
            m["module"].as_str().unwrap(),
            m["used"]
        );
        assert!(page.contains(&row), "{row} not in the overview");
    }
    assert!(page.contains("data-decision=\"review\""), "{page}");
    // Page weight and load time of the overview, as the browser measured them.
    let timing = tab
        .evaluate(
            "JSON.stringify((() => { const n = performance.getEntriesByType('navigation')[0]; \
             const r = performance.getEntriesByType('resource'); \
             return { html: n.transferSize, duration: n.duration, \
             resources: r.reduce((s, e) => s + e.transferSize, 0), count: r.length }; })())",
            false,
        )
        .unwrap()
        .value
        .unwrap();
    eprintln!("console overview: {timing}");

    // A key: its secret once, never again.
    go(&tab, &app, "/console/keys");
    tab.wait_for_element("input[name=label]")
        .unwrap()
        .click()
        .unwrap();
    tab.send_character("from the console").unwrap();
    click_and_wait(&tab, "#create-key");
    let secret = tab
        .wait_for_element("#secret")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert!(secret.trim().len() >= 32, "{secret}");
    shot(&tab, "03-key-created");
    go(&tab, &app, "/console/keys");
    let page = html(&tab);
    assert!(!page.contains(secret.trim()), "the secret is shown once");
    assert!(page.contains("from the console"));
    shot(&tab, "04-keys");

    // The review queue has the case; approving it decides the job.
    go(&tab, &app, "/console/review");
    shot(&tab, "05-review-queue");
    click_and_wait(&tab, &format!("tr[data-job=\"{job}\"] a"));
    tab.wait_for_element("form.review textarea")
        .unwrap()
        .click()
        .unwrap();
    tab.send_character("document and selfie checked by hand")
        .unwrap();
    shot(&tab, "06-verification");
    click_and_wait(&tab, "button[value=approved]");
    let decision = tab
        .wait_for_element("#decision")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert_eq!(decision, "accepted");
    assert!(
        !html(&tab).contains("form class=\"review\""),
        "decided once"
    );
    shot(&tab, "07-reviewed");

    let r = app.signed(&key, "GET", &format!("/v1/jobs/{job}"), b"");
    assert_eq!(r.body["decision"], "accepted", "{}", r.text);
    assert_eq!(r.body["review"]["outcome"], "approved");
    assert_eq!(r.body["review"]["reviewer"], "owner@bank.example");
    assert_eq!(
        r.body["review"]["comment"],
        "document and selfie checked by hand"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let event = loop {
        let found = got.lock().unwrap().iter().find_map(|(_, body)| {
            let v: Value = serde_json::from_slice(body).ok()?;
            (v["type"] == "kyc.reviewed").then_some(v)
        });
        if let Some(v) = found {
            break v;
        }
        assert!(Instant::now() < deadline, "no kyc.reviewed webhook");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(event["data"]["job_id"], job.as_str());
    assert_eq!(event["data"]["decision"], "accepted");
    assert_eq!(event["data"]["review"]["reviewer"], "owner@bank.example");
    let audit = app.signed(&key, "GET", "/v1/audit?q=review", b"");
    assert_eq!(audit.status, 200, "{}", audit.text);
    let entry = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "kyc.review")
        .unwrap_or_else(|| panic!("{}", audit.text));
    assert_eq!(entry["actor"], "user:owner@bank.example", "{}", audit.text);
    assert_eq!(entry["target"], job.as_str());
    // Looking at the images is audited with the user too.
    let audit = app.signed(&key, "GET", "/v1/audit?q=view", b"");
    let views: Vec<&Value> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "media.view")
        .collect();
    assert!(views.len() >= 3, "{}", audit.text);
    assert!(views
        .iter()
        .all(|e| e["actor"] == "user:owner@bank.example"));
    let media = &r.body["media"];
    for kind in ["selfie", "document_front", "face_crop"] {
        assert!(
            media[kind].as_str().is_some_and(|m| m.starts_with("med_")),
            "{kind}: {media}"
        );
    }

    // Usage and the invoice, with the CSV a finance team downloads.
    go(&tab, &app, "/console/usage");
    let page = html(&tab);
    for m in usage.body["modules"].as_array().unwrap() {
        let line = format!(
            "data-line=\"{}\" data-count=\"{}\"",
            m["module"].as_str().unwrap(),
            m["used"]
        );
        assert!(page.contains(&line), "{line} not on the usage page");
    }
    shot(&tab, "08-usage");
    // The audit log: the review by this user, searchable, exported.
    go(&tab, &app, "/console/audit?q=review");
    assert!(html(&tab).contains("data-action=\"kyc.review\""));
    shot(&tab, "09-audit");
    let s = Session::sign_in(&app, "owner@bank.example", &password);
    let month = usage.body["month"].as_str().unwrap();
    let (status, csv) = s.get(&format!("/console/usage/{month}.csv"));
    assert_eq!(status, 200);
    assert!(csv.starts_with("month,module,count,"), "{csv}");
    assert!(csv.lines().any(|l| l.contains(",face_match,1,")), "{csv}");
    let (status, jsonl) = s.get("/console/audit/export?format=jsonl");
    assert_eq!(status, 200);
    let entries: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(entries
        .iter()
        .any(|e| e["action"] == "kyc.review" && e["actor"] == "user:owner@bank.example"));
    assert!(
        entries.iter().all(|e| e["tenant_id"] == tenant.as_str()),
        "only this tenant's entries"
    );
    let (status, csv) = s.get("/console/audit/export?format=csv");
    assert_eq!(status, 200);
    assert!(csv.starts_with("seq,at,actor,action,target,details,hash\n"));

    // A second decision on the same job is refused.
    let (status, body) = s.post(
        &format!("/console/jobs/{job}/review"),
        &[("_csrf", &s.csrf()), ("outcome", "rejected")],
    );
    assert_eq!(status, 409, "{body}");

    // Signing out ends the session on the server: the old cookie no longer opens a page.
    let (status, _) = s.get("/console/");
    assert_eq!(status, 200);
    let (status, _) = s.post("/console/logout", &[("_csrf", &s.csrf())]);
    assert_eq!(status, 303);
    let (status, _) = s.get("/console/");
    assert_eq!(status, 303, "signed out");
}

#[test]
fn roles_tenants_csrf_and_lockout_are_enforced_by_the_server() {
    let Some(browser) = browser() else { return };
    let app = TestApp::spawn();
    let a = app.create_tenant("Bank A");
    let b = app.create_tenant("Bank B");
    let key = app.create_key(&a);
    let job = job_in_review(&app, &key);
    let owner = user(&app, &a, "owner@a.example", "owner");
    let reviewer = user(&app, &a, "reviewer@a.example", "reviewer");
    let other = user(&app, &b, "owner@b.example", "owner");

    // A reviewer sees the queue but no key management: no link, the page and the POST refused.
    let tab = browser.new_tab().unwrap();
    sign_in(&tab, &app, "reviewer@a.example", &reviewer);
    let page = html(&tab);
    assert!(page.contains("Review queue"));
    assert!(
        !page.contains("/console/keys"),
        "no keys link for a reviewer"
    );
    go(&tab, &app, "/console/keys");
    assert!(html(&tab).contains("does not allow this"));
    assert!(!html(&tab).contains("create-key"), "no create button");
    shot(&tab, "10-reviewer-refused");
    go(&tab, &app, "/console/usage");
    assert!(
        html(&tab).contains("does not allow this"),
        "a reviewer sees no money"
    );
    let s = Session::sign_in(&app, "reviewer@a.example", &reviewer);
    let (status, _) = s.post("/console/keys", &[("_csrf", &s.csrf()), ("label", "x")]);
    assert_eq!(status, 403);
    let keys_before = app.with_store(|c| {
        c.query_row(
            "SELECT COUNT(*) FROM api_keys WHERE tenant_id = ?1",
            kycd::store::params![a],
            |r| r.get::<i64>(0),
        )
    });
    assert_eq!(keys_before, 1, "the reviewer made no key");

    // Tenant B's owner opening tenant A's job: 404, nothing of it shown.
    // Another person: a browser context of their own (cookies are not shared).
    let context_b = browser.new_context().unwrap();
    let tab_b = context_b.new_tab().unwrap();
    sign_in(&tab_b, &app, "owner@b.example", &other);
    go(&tab_b, &app, &format!("/console/jobs/{job}"));
    let page = html(&tab_b);
    assert!(page.contains("There is nothing here"), "{page}");
    assert!(!page.contains("applicant-7"));
    let sb = Session::sign_in(&app, "owner@b.example", &other);
    assert_eq!(sb.get(&format!("/console/jobs/{job}")).0, 404);
    let (status, _) = sb.post(
        &format!("/console/jobs/{job}/review"),
        &[("_csrf", &sb.csrf()), ("outcome", "approved")],
    );
    assert_eq!(status, 404);

    // A change without the session's CSRF token (or with another session's) is refused.
    let so = Session::sign_in(&app, "owner@a.example", &owner);
    let (status, page) = so.post("/console/keys", &[("label", "forged")]);
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("security token"));
    let (status, _) = so.post(
        "/console/keys",
        &[("_csrf", &sb.csrf()), ("label", "forged")],
    );
    assert_eq!(status, 403);
    let (status, _) = so.post(
        &format!("/console/jobs/{job}/review"),
        &[("outcome", "approved")],
    );
    assert_eq!(status, 403);
    let (status, page) = so.post(
        "/console/keys",
        &[("_csrf", &so.csrf()), ("label", "real"), ("scopes", "ocr")],
    );
    assert_eq!(status, 200, "{page}");
    let (status, page) = so.post(
        "/console/keys",
        &[("_csrf", &so.csrf()), ("label", "no modules")],
    );
    assert_eq!(status, 422, "a key with no module is refused: {page}");

    // Five wrong passwords lock the account, even against the right one, for a while.
    let context_c = browser.new_context().unwrap();
    let tab = context_c.new_tab().unwrap();
    for _ in 0..5 {
        sign_in(&tab, &app, "owner@a.example", "wrong password 123");
    }
    let page = html(&tab);
    assert!(page.contains("too many wrong passwords"), "{page}");
    sign_in(&tab, &app, "owner@a.example", &owner);
    assert!(tab.get_url().ends_with("/console/login"), "still locked");
    assert!(html(&tab).contains("too many wrong passwords"));
    shot(&tab, "11-locked");
    let locked: Option<i64> = app.with_store(|c| {
        c.query_row(
            "SELECT locked_until FROM console_users WHERE email = 'owner@a.example'",
            kycd::store::params![],
            |r| r.get(0),
        )
    });
    let left = locked.unwrap() - crate::common::now();
    assert!((14 * 60..=15 * 60).contains(&left), "{left} s");
}

#[test]
fn an_owner_adds_a_reviewer_who_changes_the_password_and_is_then_disabled() {
    let Some(browser) = browser() else { return };
    let app = TestApp::spawn();
    let tenant = app.create_tenant("Users Bank");
    let owner = user(&app, &tenant, "owner@users.example", "owner");

    let tab = browser.new_tab().unwrap();
    sign_in(&tab, &app, "owner@users.example", &owner);
    go(&tab, &app, "/console/users");
    tab.wait_for_element("input[name=email]")
        .unwrap()
        .click()
        .unwrap();
    tab.send_character("new.reviewer@users.example").unwrap();
    tab.evaluate(
        "document.querySelector('select[name=role]').value = 'reviewer'",
        false,
    )
    .unwrap();
    click_and_wait(&tab, "#add-user");
    let temporary = tab
        .wait_for_element("#password")
        .unwrap()
        .get_inner_text()
        .unwrap();
    let temporary = temporary.trim().to_owned();
    assert!(temporary.len() >= 12, "{temporary}");
    assert!(html(&tab).contains("data-user=\"new.reviewer@users.example\""));
    shot(&tab, "12-users");
    go(&tab, &app, "/console/users");
    assert!(!html(&tab).contains(&temporary), "shown once");

    // The new reviewer signs in with it and sets a password of their own.
    let context = browser.new_context().unwrap();
    let theirs = context.new_tab().unwrap();
    sign_in(&theirs, &app, "new.reviewer@users.example", &temporary);
    assert!(html(&theirs).contains("new.reviewer@users.example · reviewer"));
    go(&theirs, &app, "/console/password");
    theirs
        .wait_for_element("input[name=current]")
        .unwrap()
        .click()
        .unwrap();
    theirs.send_character(&temporary).unwrap();
    theirs
        .find_element("input[name=new]")
        .unwrap()
        .click()
        .unwrap();
    theirs.send_character("a long passphrase of mine").unwrap();
    click_and_wait(&theirs, "form.create button");
    assert!(
        theirs.get_url().ends_with("/console/login"),
        "signed out everywhere"
    );
    sign_in(&theirs, &app, "new.reviewer@users.example", &temporary);
    assert!(html(&theirs).contains("wrong email or password"));
    sign_in(
        &theirs,
        &app,
        "new.reviewer@users.example",
        "a long passphrase of mine",
    );
    assert!(html(&theirs).contains("Review queue"));

    // The owner disables them: their open session ends at once, and they cannot sign in.
    let row = "tr[data-user=\"new.reviewer@users.example\"] form[action$=\"/disable\"] button";
    go(&tab, &app, "/console/users");
    click_and_wait(&tab, row);
    assert!(html(&tab).contains("data-status=\"disabled\""));
    go(&theirs, &app, "/console/review");
    assert!(
        theirs.get_url().ends_with("/console/login"),
        "{}",
        theirs.get_url()
    );
    sign_in(
        &theirs,
        &app,
        "new.reviewer@users.example",
        "a long passphrase of mine",
    );
    assert!(html(&theirs).contains("this account is disabled"));
    // An owner cannot disable themselves.
    let s = Session::sign_in(&app, "owner@users.example", &owner);
    let own_id: String = app.with_store(|c| {
        c.query_row(
            "SELECT id FROM console_users WHERE email = 'owner@users.example'",
            kycd::store::params![],
            |r| r.get(0),
        )
    });
    let (status, page) = s.post(
        &format!("/console/users/{own_id}/disable"),
        &[("_csrf", &s.csrf())],
    );
    assert_eq!(status, 422, "{page}");
    let audit = app.with_store(|c| {
        c.query_row(
            "SELECT COUNT(*) FROM audit_log WHERE actor = 'user:owner@users.example' \
             AND action IN ('user.create', 'user.disable')",
            kycd::store::params![],
            |r| r.get::<i64>(0),
        )
    });
    assert_eq!(audit, 2);
}

/// Sets a form field's value in the page (number and text inputs that hold a value already).
pub(crate) fn set_value(tab: &Tab, name: &str, value: &str) {
    let js = format!(
        "(() => {{ const e = document.querySelector('[name=\"{name}\"]'); e.value = {}; return e.value; }})()",
        serde_json::to_string(value).unwrap()
    );
    let got = tab.evaluate(&js, false).unwrap().value.unwrap();
    assert_eq!(got, Value::String(value.into()), "{name}");
}

/// Waits until `path` (reloaded) contains `needle`.
pub(crate) fn wait_for_text(tab: &Tab, app: &TestApp, path: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        go(tab, app, path);
        let page = html(tab);
        if page.contains(needle) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "{needle} never on {path}: {page}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn webhooks_workflow_filters_keys_and_a_second_factor_from_the_console() {
    let Some(browser) = browser() else { return };
    let app = TestApp::spawn();
    let tenant = app.create_tenant("Settings Bank");
    let key = app.create_key(&tenant);
    let job = job_in_review(&app, &key);
    let password = user(&app, &tenant, "admin@settings.example", "owner");
    let (hook, got) = receiver(0);

    let tab = browser.new_tab().unwrap();
    sign_in(&tab, &app, "admin@settings.example", &password);

    // The overview's chart counts the verification of the last 24 hours, and p95 is in ms.
    let page = html(&tab);
    assert!(
        page.contains("data-range=\"24h\" data-total=\"1\""),
        "{page}"
    );
    assert!(page.contains(" ms</span>"), "p95 in milliseconds: {page}");
    go(&tab, &app, "/console/?range=30d");
    assert!(html(&tab).contains("data-range=\"30d\" data-total=\"1\""));
    shot(&tab, "13-overview-30d");

    // Verifications, filtered by decision, reference and date.
    go(
        &tab,
        &app,
        "/console/verifications?decision=review&reference=applicant-7",
    );
    assert!(html(&tab).contains(&format!("data-job=\"{job}\"")));
    shot(&tab, "14-verifications-filtered");
    go(&tab, &app, "/console/verifications?reference=someone-else");
    assert!(!html(&tab).contains(&format!("data-job=\"{job}\"")));
    assert!(html(&tab).contains("No verifications match."));
    go(&tab, &app, "/console/verifications?decision=accepted");
    assert!(!html(&tab).contains(&format!("data-job=\"{job}\"")));
    let today = kycd::workflow::jobs::rfc3339(crate::common::now())[..10].to_owned();
    go(
        &tab,
        &app,
        &format!("/console/verifications?from={today}&to={today}"),
    );
    assert!(html(&tab).contains(&format!("data-job=\"{job}\"")));
    go(&tab, &app, "/console/verifications?from=2099-01-01");
    assert!(!html(&tab).contains(&format!("data-job=\"{job}\"")));

    // Webhooks: a URL the egress rules refuse is shown beside the field; a good one gets its
    // secret once.
    go(&tab, &app, "/console/webhooks");
    tab.wait_for_element("input[name=url]")
        .unwrap()
        .click()
        .unwrap();
    tab.send_character("ftp://files.example/kyc").unwrap();
    click_and_wait(&tab, "#add-webhook");
    let error = tab
        .wait_for_element("#url-error")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert!(error.contains("url"), "{error}");
    shot(&tab, "15-webhook-refused");
    go(&tab, &app, "/console/webhooks");
    tab.wait_for_element("input[name=url]")
        .unwrap()
        .click()
        .unwrap();
    tab.send_character(&hook).unwrap();
    click_and_wait(&tab, "#add-webhook");
    let secret = tab
        .wait_for_element("#secret")
        .unwrap()
        .get_inner_text()
        .unwrap();
    let secret = secret.trim().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    shot(&tab, "16-webhook-created");
    go(&tab, &app, "/console/webhooks");
    assert!(!html(&tab).contains(&secret), "the secret is shown once");
    let listed = app.signed(&key, "GET", "/v1/webhooks", b"");
    let endpoint = listed.body["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed.body["data"][0]["url"], hook.as_str());
    assert_eq!(
        listed.body["data"][0]["events"],
        json!(["kyc.completed", "kyc.failed", "kyc.reviewed"])
    );

    // A test ping arrives signed with that secret; the log shows it, and redelivery sends it
    // again as a second attempt.
    click_and_wait(&tab, &format!("tr[data-webhook=\"{endpoint}\"] a"));
    click_and_wait(&tab, "#test-ping");
    let path = format!("/console/webhooks/{endpoint}");
    wait_for_text(
        &tab,
        &app,
        &path,
        "data-status=\"delivered\" data-event=\"webhook.test\"",
    );
    {
        let requests = got.lock().unwrap();
        let (headers, body) = requests.last().unwrap();
        let event: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(event["type"], "webhook.test");
        let sig = &headers["x-kycd-signature"];
        let t: i64 = sig.split(',').next().unwrap()[2..].parse().unwrap();
        assert_eq!(
            sig,
            &kycd::workflow::webhooks::signature(secret.as_bytes(), t, body)
        );
    }
    click_and_wait(&tab, "tr[data-event=\"webhook.test\"] form button");
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "redelivery never arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = wait_for_text(&tab, &app, &path, "<li>#2 ");
    assert!(page.contains("HTTP 200"), "{page}");
    shot(&tab, "17-webhook-deliveries");
    let audit = app.signed(&key, "GET", "/v1/audit?q=webhook", b"");
    for action in ["webhook.create", "webhook.test", "webhook.redeliver"] {
        assert!(
            audit.body["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == action && e["actor"] == "user:admin@settings.example"),
            "{action}: {}",
            audit.text
        );
    }

    // Workflow settings: a value below the operator's floor is refused beside its field; a good
    // change is what the API then reads.
    go(&tab, &app, "/console/workflow");
    tab.wait_for_element("#save-workflow").unwrap();
    set_value(&tab, "thresholds.face_match", "0.3");
    click_and_wait(&tab, "#save-workflow");
    let error = tab
        .wait_for_element("span.field-error[data-field=\"thresholds.face_match\"]")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert!(error.contains("floor"), "{error}");
    // What was typed stays, to be corrected.
    assert!(html(&tab).contains("value=\"0.3\""));
    shot(&tab, "18-workflow-refused");
    set_value(&tab, "thresholds.face_match", "0.8");
    set_value(&tab, "weights.kya", "10");
    set_value(&tab, "bands.accepted", "85");
    click_and_wait(&tab, "#save-workflow");
    assert!(html(&tab).contains("Saved."), "{}", html(&tab));
    shot(&tab, "19-workflow-saved");
    let w = app.signed(&key, "GET", "/v1/workflow", b"");
    assert_eq!(w.body["bands"]["accepted"], 85, "{}", w.text);
    assert_eq!(w.body["weights"]["kya"], 10);
    assert!((w.body["thresholds"]["face_match"].as_f64().unwrap() - 0.8).abs() < 1e-6);
    // The rules survived the round trip through the form.
    assert_eq!(
        w.body["rules"].as_array().unwrap().len(),
        kycd::workflow::config::WorkflowConfig::default()
            .rules
            .len()
    );
    // An age rule without its age is refused on its row.
    go(&tab, &app, "/console/workflow");
    let spare = w.body["rules"].as_array().unwrap().len();
    tab.evaluate(
        &format!("document.querySelector('[name=\"rules[{spare}].when\"]').value = 'age_below'"),
        false,
    )
    .unwrap();
    click_and_wait(&tab, "#save-workflow");
    assert!(
        html(&tab).contains(&format!("data-rule=\"{spare}\" class=\"invalid\"")),
        "{}",
        html(&tab)
    );

    // Keys: made with one module, rotated with the new secret shown once and working.
    go(&tab, &app, "/console/keys");
    tab.wait_for_element("input[name=label]")
        .unwrap()
        .click()
        .unwrap();
    tab.send_character("ocr only").unwrap();
    for m in ["liveness", "validation", "face_match"] {
        tab.find_element(&format!("input[name=scopes][value={m}]"))
            .unwrap()
            .click()
            .unwrap();
    }
    click_and_wait(&tab, "#create-key");
    let page = html(&tab);
    let made = page
        .split("data-key=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .find(|id| id != &key.key_id)
        .unwrap();
    assert!(page.contains(">ocr</td>"), "{page}");
    click_and_wait(&tab, &format!("tr[data-key=\"{made}\"] form.rotate button"));
    let rotated = tab
        .wait_for_element("#secret")
        .unwrap()
        .get_inner_text()
        .unwrap();
    shot(&tab, "20-key-rotated");
    let new_key = crate::common::Key {
        tenant_id: tenant.clone(),
        key_id: made.clone(),
        secret: rotated.trim().to_owned(),
    };
    let r = app.signed(&new_key, "GET", "/v1/ping", b"");
    assert_eq!(r.status, 200, "the rotated secret signs: {}", r.text);

    // A second factor: set up from the page (the code computed as an app would), then asked
    // for at the next sign-in; a wrong code is refused, a used one too.
    go(&tab, &app, "/console/security");
    let encoded = tab
        .wait_for_element("#totp-secret")
        .unwrap()
        .get_inner_text()
        .unwrap();
    // The QR code as Chromium drew it decodes to the otpauth URL of this key.
    let png = tab
        .find_element(".qr svg")
        .unwrap()
        .capture_screenshot(CaptureScreenshotFormatOption::Png)
        .unwrap();
    let luma = image::load_from_memory(&png).unwrap().to_luma8();
    let (w, h) = luma.dimensions();
    let decoded = rxing::helpers::detect_in_luma(luma.into_raw(), w, h, None).unwrap();
    assert_eq!(
        decoded.getText(),
        kycd::console::totp::otpauth_url("admin@settings.example", encoded.trim())
    );
    shot(&tab, "21-second-factor-setup");
    let raw = kycd::console::totp::decode(&encoded).unwrap();
    tab.find_element("form.create input[name=code]")
        .unwrap()
        .click()
        .unwrap();
    tab.send_character(&kycd::console::totp::code_at(&raw, crate::common::now()))
        .unwrap();
    click_and_wait(&tab, "#totp-enable");
    let status = tab
        .wait_for_element("#totp-status")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert!(status.contains("on"), "{status}");
    click_and_wait(&tab, "form.signout button");
    sign_in(&tab, &app, "admin@settings.example", &password);
    assert!(
        tab.get_url().ends_with("/console/login/code"),
        "{}",
        tab.get_url()
    );
    shot(&tab, "22-second-factor-asked");
    // The pending session opens no page.
    go(&tab, &app, "/console/keys");
    assert!(
        tab.get_url().ends_with("/console/login/code"),
        "{}",
        tab.get_url()
    );
    tab.wait_for_element("input[name=code]")
        .unwrap()
        .click()
        .unwrap();
    tab.send_character("000000").unwrap();
    click_and_wait(&tab, "form.login button");
    assert!(html(&tab).contains("wrong or was used"), "{}", html(&tab));
    // The next step's code (the current one was used to turn the factor on).
    tab.wait_for_element("input[name=code]")
        .unwrap()
        .click()
        .unwrap();
    tab.send_character(&kycd::console::totp::code_at(
        &raw,
        crate::common::now() + 30,
    ))
    .unwrap();
    click_and_wait(&tab, "form.login button");
    assert!(
        tab.get_url().ends_with("/console/"),
        "{} {}",
        tab.get_url(),
        html(&tab)
    );
    let audit = app.signed(&key, "GET", "/v1/audit?q=totp", b"");
    assert!(audit.text.contains("user.totp_enable"), "{}", audit.text);

    // Sign-in attempts from one address are throttled (20 a minute): the 21st is refused with
    // Retry-After, whatever the account.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut statuses = Vec::new();
    for i in 0..25 {
        let r = agent
            .post(&format!("{}/console/login", app.base))
            .send_form([
                ("email", format!("nobody{i}@x.example").as_str()),
                ("password", "wrong wrong wrong"),
            ])
            .unwrap();
        statuses.push((
            r.status().as_u16(),
            r.headers().get("retry-after").is_some(),
        ));
    }
    assert!(statuses.iter().any(|(s, _)| *s == 401), "{statuses:?}");
    let throttled: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!throttled.is_empty(), "{statuses:?}");
    assert!(throttled.iter().all(|(_, retry)| *retry), "{statuses:?}");
}
