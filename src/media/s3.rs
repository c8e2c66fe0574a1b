//! Sealed blobs in an S3-compatible bucket (MinIO, Ceph RGW, AWS S3) through the `object_store`
//! crate, so several nodes share one set of objects. Same names and checks as the local
//! directory: the key is `<prefix>/aa/bbbb…` of the ciphertext's SHA-256, and a read whose bytes
//! no longer hash to their name is an error.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientConfigKey, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};
use serde::{Deserialize, Serialize};

use super::objects::{address_of, check_address, verified};
use crate::io_runtime::IoRuntime;

/// `[objects]`: where blobs live and how to reach an S3-compatible server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ObjectsConfig {
    /// `s3://bucket/prefix` to keep blobs in a bucket (several nodes share it); unset = the
    /// data directory's `objects/` (env `KYCD_OBJECTS_URL`, flag `--objects`).
    pub url: Option<String>,
    /// The server, e.g. `http://minio.internal:9000`; unset = AWS (or env `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// The region; unset = env `AWS_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Access key id; unset = env `AWS_ACCESS_KEY_ID` (or the instance's role).
    pub access_key_id: Option<String>,
    /// Secret key; unset = env `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// Allow `http://` endpoints (a server on a private network without TLS); default false
    /// (env `AWS_ALLOW_HTTP=true` allows it too).
    #[serde(default)]
    pub allow_http: bool,
}

/// Where an `s3://` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The bucket.
    pub name: String,
    /// The key prefix inside it, without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl Bucket {
    /// Parses `s3://bucket[/prefix]`.
    pub fn parse(url: &str) -> Result<Bucket, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("`{url}` is not an s3://bucket/prefix URL"))?;
        let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_name = (3..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
        if !valid_name {
            return Err(format!(
                "bucket `{name}`: 3 to 63 characters of a–z, 0–9, '-' and '.'"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..")
            || prefix.contains("//")
            || prefix.len() > 512
        {
            return Err(format!("prefix `{prefix}` is not a plain key prefix"));
        }
        Ok(Bucket {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

/// A bucket of sealed blobs.
pub struct S3Objects {
    store: Arc<AmazonS3>,
    bucket: Bucket,
    runtime: Arc<IoRuntime>,
}

/// A request that has not answered within this is an error (a blob is at most a few MB).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries of a failed request (with backoff) before the caller sees the error.
const MAX_RETRIES: usize = 3;

impl S3Objects {
    /// Opens the bucket and checks that it answers (a wrong endpoint, bucket or key fails at
    /// start-up with the server's words, not at the first upload).
    pub fn open(url: &str, config: &ObjectsConfig) -> io::Result<S3Objects> {
        let bucket = Bucket::parse(url).map_err(io::Error::other)?;
        // reqwest's rustls needs a process-wide provider; kycd uses ring everywhere.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = AmazonS3Builder::from_env();
        let env_allows_http = builder
            .get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let mut builder = builder
            .with_bucket_name(&bucket.name)
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(REQUEST_TIMEOUT)
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_allow_http(config.allow_http || env_allows_http),
            )
            .with_retry(RetryConfig {
                max_retries: MAX_RETRIES,
                retry_timeout: Duration::from_secs(60),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = Arc::new(builder.build().map_err(io::Error::other)?);
        let objects = S3Objects {
            store,
            bucket,
            runtime: IoRuntime::new("kycd-s3", 2)?,
        };
        // Listing the prefix proves bucket and credentials (a HEAD of a missing key cannot tell
        // a missing bucket from a missing key).
        let probe = objects.key("kycd-probe");
        let store = objects.store.clone();
        match objects
            .runtime
            .run(async move { store.list_with_delimiter(Some(&probe)).await })
        {
            Ok(_) => Ok(objects),
            Err(e) => Err(io::Error::other(format!(
                "{} does not answer: {e}",
                objects.describe()
            ))),
        }
    }

    fn key(&self, name: &str) -> ObjectPath {
        let shard = if name.len() == 64 {
            format!("{}/{}", &name[..2], &name[2..])
        } else {
            name.to_owned()
        };
        if self.bucket.prefix.is_empty() {
            ObjectPath::from(shard)
        } else {
            ObjectPath::from(format!("{}/{shard}", self.bucket.prefix))
        }
    }

    /// `s3://bucket/prefix`.
    pub fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket.name, self.bucket.prefix)
    }

    /// Stores `sealed` and returns its address (an S3 PUT is all or nothing).
    pub fn put(&self, sealed: &[u8]) -> io::Result<String> {
        let address = address_of(sealed);
        let key = self.key(&address);
        let store = self.store.clone();
        let payload = PutPayload::from(sealed.to_vec());
        self.runtime
            .run(async move { store.put(&key, payload).await })
            .map_err(to_io)?;
        Ok(address)
    }

    /// Reads a blob, failing if its content no longer matches its address.
    pub fn get(&self, address: &str) -> io::Result<Vec<u8>> {
        check_address(address)?;
        let key = self.key(address);
        let store = self.store.clone();
        let bytes = self
            .runtime
            .run(async move { store.get(&key).await?.bytes().await })
            .map_err(to_io)?;
        verified(address, bytes.to_vec())
    }

    /// Deletes a blob; `Ok(false)` if it was already gone (S3's DELETE does not say, so a HEAD
    /// asks first).
    pub fn delete(&self, address: &str) -> io::Result<bool> {
        check_address(address)?;
        let key = self.key(address);
        let store = self.store.clone();
        self.runtime
            .run(async move {
                match store.head(&key).await {
                    Ok(_) => store.delete(&key).await.map(|()| true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .map_err(to_io)
    }
}

fn to_io(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        e => io::Error::other(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls() {
        assert_eq!(
            Bucket::parse("s3://kycd-media/prod/eu/").unwrap(),
            Bucket {
                name: "kycd-media".into(),
                prefix: "prod/eu".into()
            }
        );
        assert_eq!(Bucket::parse("s3://media").unwrap().prefix, "");
        for bad in [
            "media",
            "s3://",
            "s3://AB",
            "s3://ok-bucket/../x",
            "s3://ok-bucket/a//b",
            "file:///tmp",
        ] {
            assert!(Bucket::parse(bad).is_err(), "{bad}");
        }
    }
}
