//! `kycd openapi [--postman] [--out FILE]`: the OpenAPI 3.1 description, or a Postman collection
//! made from it whose pre-request script signs every `/v1` call (HMAC-SHA256, as the server
//! checks it) and adds the operator token on `/admin/v1`.

use std::path::PathBuf;

use serde_json::{json, Value};

/// Arguments of `kycd openapi`.
#[derive(Debug, clap::Args)]
pub struct OpenapiArgs {
    /// Write a Postman (v2.1) collection instead of the OpenAPI document.
    #[arg(long)]
    pub postman: bool,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The collection's pre-request script (Postman's sandbox provides `CryptoJS` and `pm`).
const SIGNER: &str = r#"// kycd request signing: X-API-SIGN = hex HMAC-SHA256(secret, ts\nMETHOD\npath?query\nhex(sha256(body))\nnonce)
// The path is signed as written: keep path and query values URL-safe (ids are), since Postman
// percent-encodes what it sends. Raw JSON bodies only; multipart uploads need another client.
const path = pm.variables.replaceIn(pm.request.url.getPathWithQuery());
if (path.startsWith('/v1/')) {
  const ts = Math.floor(Date.now() / 1000).toString();
  const raw = pm.request.body && pm.request.body.mode === 'raw' ? pm.variables.replaceIn(pm.request.body.raw || '') : '';
  const digest = CryptoJS.SHA256(raw).toString(CryptoJS.enc.Hex);
  const nonce = ts + '-' + Math.random().toString(36).slice(2, 12);
  const canonical = [ts, pm.request.method.toUpperCase(), path, digest, nonce].join('\n');
  const signature = CryptoJS.HmacSHA256(canonical, pm.variables.get('apiSecret')).toString(CryptoJS.enc.Hex);
  pm.request.headers.upsert({ key: 'X-API-KEY', value: pm.variables.get('apiKey') });
  pm.request.headers.upsert({ key: 'X-API-TIMESTAMP', value: ts });
  pm.request.headers.upsert({ key: 'X-API-NONCE', value: nonce });
  pm.request.headers.upsert({ key: 'X-API-SIGN', value: signature });
} else if (path.startsWith('/admin/v1/') || (path === '/api/v1/iad/config' && pm.request.method === 'POST')) {
  pm.request.headers.upsert({ key: 'Authorization', value: 'Bearer ' + pm.variables.get('adminToken') });
}
"#;

/// Builds a Postman v2.1 collection from an OpenAPI document.
pub fn postman(spec: &Value) -> Value {
    let mut folders: Vec<(String, Vec<Value>)> = Vec::new();
    let mut path_vars = std::collections::BTreeSet::new();
    if let Some(paths) = spec["paths"].as_object() {
        for (path, item) in paths {
            let Some(ops) = item.as_object() else {
                continue;
            };
            for (method, op) in ops {
                if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                    continue;
                }
                // `{id}` becomes the collection variable `{{id}}`.
                let mut segments = Vec::new();
                for seg in path.trim_start_matches('/').split('/') {
                    if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        path_vars.insert(name.to_owned());
                        segments.push(format!("{{{{{name}}}}}"));
                    } else {
                        segments.push(seg.to_owned());
                    }
                }
                let raw = format!("{{{{baseUrl}}}}/{}", segments.join("/"));
                let mut request = json!({
                    "method": method.to_uppercase(),
                    "header": [],
                    "url": { "raw": raw, "host": ["{{baseUrl}}"], "path": segments },
                    "description": op["description"].as_str().or(op["summary"].as_str()).unwrap_or_default(),
                });
                let body = &op["requestBody"]["content"]["application/json"];
                if body.is_object() {
                    let example = body.get("example").cloned().unwrap_or_else(|| json!({}));
                    request["header"] =
                        json!([{ "key": "Content-Type", "value": "application/json" }]);
                    request["body"] = json!({
                        "mode": "raw",
                        "raw": serde_json::to_string_pretty(&example).unwrap_or_default(),
                        "options": { "raw": { "language": "json" } },
                    });
                }
                let name = op["summary"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{} {path}", method.to_uppercase()));
                let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
                let entry = json!({ "name": name, "request": request });
                match folders.iter_mut().find(|(t, _)| *t == tag) {
                    Some((_, items)) => items.push(entry),
                    None => folders.push((tag, vec![entry])),
                }
            }
        }
    }
    let mut variables = vec![
        json!({ "key": "baseUrl", "value": "http://127.0.0.1:8080" }),
        json!({ "key": "apiKey", "value": "ak_…" }),
        json!({ "key": "apiSecret", "value": "sk_…" }),
        json!({ "key": "adminToken", "value": "" }),
    ];
    variables.extend(
        path_vars
            .into_iter()
            .map(|v| json!({ "key": v, "value": "" })),
    );
    json!({
        "info": {
            "name": "kycd",
            "description": "Requests to kycd; the collection's pre-request script signs /v1 calls with apiKey/apiSecret and adds adminToken to /admin/v1 calls.",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
        },
        "event": [{
            "listen": "prerequest",
            "script": { "type": "text/javascript", "exec": SIGNER.lines().collect::<Vec<_>>() },
        }],
        "variable": variables,
        "item": folders.into_iter().map(|(name, item)| json!({ "name": name, "item": item })).collect::<Vec<_>>(),
    })
}

/// Runs `kycd openapi`.
pub fn run(args: &OpenapiArgs) -> anyhow::Result<()> {
    let text = if args.postman {
        let spec: Value = serde_json::from_str(crate::http::openapi::spec_json())?;
        serde_json::to_string_pretty(&postman(&spec))?
    } else {
        crate::http::openapi::spec_json().to_owned()
    };
    match &args.out {
        Some(path) => std::fs::write(path, text + "\n")?,
        None => println!("{text}"),
    }
    Ok(())
}
