//! Scale-out: media in an S3-compatible bucket (a throw-away moto server) and rate buckets in
//! Redis (a throw-away redis-server), whatever the suite's database.

use std::io::ErrorKind;
use std::path::Path;

use kycd::media::objects::Objects;
use kycd::media::s3::ObjectsConfig;
use serde_json::json;

use crate::common::services::{self, S3};
use crate::common::{contains_bytes, TestApp};

/// `name` of `s3://name/prefix`.
fn bucket_name(url: &str) -> &str {
    url.strip_prefix("s3://")
        .and_then(|rest| rest.split('/').next())
        .expect("an s3:// URL")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// The keys in a bucket, read with a plain (unsigned) ListObjectsV2 that moto accepts.
fn keys_in(s3: &S3, bucket_url: &str) -> Vec<String> {
    let bucket = bucket_name(bucket_url);
    let xml = agent()
        .get(&format!("{}/{bucket}?list-type=2", s3.endpoint()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    xml.split("<Key>")
        .skip(1)
        .map(|k| k.split("</Key>").next().unwrap().to_owned())
        .collect()
}

fn object_url(s3: &S3, bucket_url: &str, key: &str) -> String {
    let bucket = bucket_name(bucket_url);
    format!("{}/{bucket}/{key}", s3.endpoint())
}

/// Writes `bytes` at `key` with a signed PUT (moto refuses unsigned overwrites).
fn overwrite(s3: &S3, bucket_url: &str, key: &str, bytes: &[u8]) {
    use object_store::ObjectStoreExt;
    let bucket = bucket_name(bucket_url);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_endpoint(s3.endpoint())
        .with_region("us-east-1")
        .with_access_key_id("kycd-test")
        .with_secret_access_key("kycd-test-secret")
        .with_allow_http(true)
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(store.put(&key.into(), bytes.to_vec().into()))
        .unwrap();
}

#[test]
fn a_bucket_holds_content_addressed_verified_blobs() {
    let Some(s3) = services::s3() else { return };
    let url = s3.fresh_bucket();
    let mut config = ObjectsConfig::default();
    s3.configure(&mut config, url.clone());
    let objects = Objects::open(&config, Path::new("/nonexistent")).expect("bucket opens");
    assert!(objects.describe().starts_with("s3://kycd-"));

    let address = objects.put(b"sealed bytes").unwrap();
    assert_eq!(address.len(), 64);
    assert_eq!(objects.get(&address).unwrap(), b"sealed bytes");
    let key = format!("media/{}/{}", &address[..2], &address[2..]);
    assert_eq!(keys_in(s3, &url), vec![key.clone()]);

    // Bytes changed behind kycd's back are refused, not handed to the decryptor.
    overwrite(s3, &url, &key, b"sealed bytez");
    assert_eq!(
        objects.get(&address).unwrap_err().kind(),
        ErrorKind::InvalidData
    );

    assert!(objects.delete(&address).unwrap());
    assert!(!objects.delete(&address).unwrap(), "already gone");
    assert_eq!(
        objects.get(&address).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        objects.get("../../etc/passwd").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert!(keys_in(s3, &url).is_empty());

    // A bucket that does not exist fails when opened, in the server's words.
    config.url = Some("s3://kycd-no-such-bucket/x".into());
    let err = Objects::open(&config, Path::new("/nonexistent"))
        .err()
        .expect("missing bucket refused");
    assert!(err.to_string().contains("kycd-no-such-bucket"), "{err}");
}

#[test]
fn media_uploaded_over_http_lives_sealed_in_the_bucket_and_erasure_removes_it() {
    let Some(s3) = services::s3() else { return };
    let url = s3.fresh_bucket();
    let app = TestApp::spawn_with(|c| s3.configure(&mut c.objects, url.clone()));
    let key = app.tenant_with_key();
    let img = image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 40])
    });
    let jpeg = kycd::media::intake::encode_jpeg(&img, 90);
    let body = serde_json::to_vec(&json!({
        "kind": "selfie",
        "image_base64": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &jpeg),
    }))
    .unwrap();
    let r = app.signed(&key, "POST", "/v1/subjects/s3-subject/media", &body);
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["media"]["id"].as_str().unwrap().to_owned();

    let keys = keys_in(s3, &url);
    assert_eq!(keys.len(), 1, "{keys:?}");
    let sealed = agent()
        .get(&object_url(s3, &url, &keys[0]))
        .call()
        .unwrap()
        .body_mut()
        .read_to_vec()
        .unwrap();
    assert!(!contains_bytes(&sealed, b"JFIF"), "sealed, not a JPEG");
    let back = app.signed(&key, "GET", &format!("/v1/media/{id}"), b"");
    assert_eq!(back.status, 200);
    assert_eq!(
        back.headers["content-type"], "image/jpeg",
        "decrypted on read"
    );

    let r = app.signed(&key, "DELETE", "/v1/subjects/s3-subject", b"");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["deleted"]["media"], 1);
    assert!(keys_in(s3, &url).is_empty(), "erasure deletes the blob");
}

#[test]
fn two_nodes_share_a_keys_rate_budget_in_redis() {
    use kycd::tenancy::plans::Budget;
    use kycd::tenancy::ratelimit::{redis_pool, RateLimiter};
    let Some(redis) = services::redis() else {
        return;
    };
    let nodes = [
        RateLimiter::redis(redis_pool(&redis.url()).unwrap()),
        RateLimiter::redis(redis_pool(&redis.url()).unwrap()),
    ];
    let budget = Budget {
        per_minute: 5,
        per_day: 1000,
    };
    let key = format!("ak_redis_{}", crate::common::now());
    for i in 0..5 {
        let d = nodes[i % 2].check(&key, "*", budget);
        assert!(d.allowed, "request {}", i + 1);
        assert_eq!((d.limit, d.remaining), (5, 4 - i as u32));
    }
    let d = nodes[1].check(&key, "*", budget);
    assert!(!d.allowed);
    assert!((1..=12).contains(&d.retry_after_secs.unwrap()), "{d:?}");
    assert!(nodes[0].check(&format!("{key}-other"), "*", budget).allowed);
    assert!(nodes[0].check(&key, "POST /v1/kyc/verify", budget).allowed);
    // A Redis that does not answer is refused when the node starts.
    assert!(redis_pool("redis://127.0.0.1:1/0").is_err());
}
