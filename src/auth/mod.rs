//! Who is calling: API keys and their secrets, signed-request verification with replay
//! protection, and the operator token.
//!
//! Nothing here knows about HTTP: the HTTP layer hands over the header values, the method, the
//! path and the body digest, and gets back a [`Principal`] or an [`AuthError`] with its code.

pub mod admin;
pub mod failures;
pub mod keys;
pub mod permissions;
pub mod replay;
pub mod signing;

use std::sync::Arc;

use serde_json::json;

use crate::config::AuthConfig;
use crate::error::{Code, ErrorCode};
use crate::store::keys::KeyAuthRow;
use crate::store::{self, Store, StoreError};
use crate::tenancy::meter::Payer;
use crate::tenancy::plans::Module;
use permissions::Permission;
use replay::ReplayCache;

/// The authenticated caller of a `/v1` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant the key belongs to.
    pub tenant_id: String,
    /// The key that signed the request.
    pub key_id: String,
    /// A sandbox key: its usage is recorded and counted, not billed.
    pub sandbox: bool,
    /// Modules the key may call; `None` = all.
    pub scopes: Option<Vec<Module>>,
    /// What the key may read or manage besides calling modules.
    pub permissions: Vec<Permission>,
}

/// A key without a permission a route needs.
#[derive(Debug, thiserror::Error)]
#[error("this API key lacks the permission {permission}; it holds {held:?}")]
pub struct ForbiddenScope {
    /// The permission the route needs.
    pub permission: Permission,
    /// What the key holds.
    pub held: Vec<&'static str>,
    /// Set when the key could never hold it (a sandbox key and live configuration).
    pub sandbox: bool,
}

impl ErrorCode for ForbiddenScope {
    fn code(&self) -> Code {
        Code::ForbiddenScope
    }

    fn details(&self) -> serde_json::Value {
        let mut d = json!({ "permission": self.permission.as_str(), "permissions": self.held });
        if self.sandbox {
            d["reason"] = json!("sandbox keys cannot change live configuration");
        }
        d
    }
}

/// A key without the scope for a module.
#[derive(Debug, thiserror::Error)]
#[error("this API key may not call {module}; its scopes are {scopes:?}")]
pub struct ForbiddenModule {
    /// The module.
    pub module: &'static str,
    /// The key's scopes.
    pub scopes: Vec<&'static str>,
}

impl ErrorCode for ForbiddenModule {
    fn code(&self) -> Code {
        Code::ForbiddenModule
    }

    fn details(&self) -> serde_json::Value {
        json!({ "module": self.module, "scopes": self.scopes })
    }
}

impl Principal {
    /// The principal a key row stands for (compatibility routes, which authenticate otherwise).
    pub fn from_key(key: &store::keys::KeyRow) -> Principal {
        Principal {
            tenant_id: key.tenant_id.clone(),
            key_id: key.id.clone(),
            sandbox: key.environment == "sandbox",
            scopes: key
                .scopes
                .as_ref()
                .map(|s| s.iter().filter_map(|m| Module::parse(m)).collect()),
            permissions: key
                .permissions
                .iter()
                .filter_map(|p| Permission::parse(p))
                .collect(),
        }
    }

    /// Refuses (403 `forbidden_scope`) unless the key holds `permission` (or one that implies
    /// it); a sandbox key never holds one that changes live configuration.
    pub fn permit(&self, permission: Permission) -> Result<(), ForbiddenScope> {
        let sandbox_refused = self.sandbox && permission.live_only();
        if !sandbox_refused && permission.granted_by(&self.permissions) {
            return Ok(());
        }
        Err(ForbiddenScope {
            permission,
            held: permissions::names(&self.permissions),
            sandbox: sandbox_refused,
        })
    }

    /// Whether the key may read every job of its tenant, not only its own.
    pub fn reads_all_results(&self) -> bool {
        self.permissions.contains(&Permission::ResultsReadAll)
    }

    /// Refuses (403 `forbidden_module`) unless the key may call every one of `modules`.
    pub fn require(&self, modules: &[Module]) -> Result<(), ForbiddenModule> {
        let Some(scopes) = &self.scopes else {
            return Ok(());
        };
        match modules.iter().find(|m| !scopes.contains(m)) {
            None => Ok(()),
            Some(m) => Err(ForbiddenModule {
                module: m.as_str(),
                scopes: scopes.iter().map(|s| s.as_str()).collect(),
            }),
        }
    }

    /// Who pays for this request's units.
    pub fn payer(&self) -> Payer<'_> {
        Payer {
            tenant_id: &self.tenant_id,
            key_id: Some(&self.key_id),
            sandbox: self.sandbox,
        }
    }
}

/// The signing headers and request parts, as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedParts<'a> {
    /// `X-API-KEY`.
    pub key_id: &'a str,
    /// `X-API-TIMESTAMP`, Unix seconds as text.
    pub timestamp: &'a str,
    /// `X-API-SIGN`.
    pub signature: &'a str,
    /// `X-API-NONCE`, optional.
    pub nonce: Option<&'a str>,
    /// The HTTP method, upper case.
    pub method: &'a str,
    /// Path plus `?query` exactly as sent.
    pub path_with_query: &'a str,
    /// Lowercase hex SHA-256 of the body.
    pub body_digest: &'a str,
}

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A signing header is absent.
    #[error("missing authentication header {0}")]
    MissingAuth(&'static str),
    /// A signing header is malformed.
    #[error("malformed header {header}: {reason}")]
    InvalidHeader {
        /// The header.
        header: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The timestamp is too far from the server's clock.
    #[error("X-API-TIMESTAMP is {skew_secs} s away from server time; at most {max_skew_secs} s is accepted")]
    TimestampOutOfRange {
        /// now − timestamp.
        skew_secs: i64,
        /// The tolerance.
        max_skew_secs: i64,
        /// Server time, so clients can correct their clocks.
        server_time: i64,
    },
    /// No such key.
    #[error("unknown API key")]
    UnknownKey,
    /// The signature does not match.
    #[error("signature does not match the request")]
    InvalidSignature,
    /// The key was revoked.
    #[error("API key has been revoked")]
    KeyRevoked,
    /// The tenant is suspended.
    #[error("tenant is suspended")]
    TenantSuspended,
    /// The same signature was already used.
    #[error("this signed request was already received; sign each request anew (see X-API-NONCE)")]
    Replayed,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The replay journal could not record the request (it is refused: fail closed).
    #[error(transparent)]
    Journal(#[from] replay::JournalError),
}

impl ErrorCode for AuthError {
    fn code(&self) -> Code {
        match self {
            AuthError::MissingAuth(_) => Code::MissingAuth,
            AuthError::InvalidHeader { .. } => Code::InvalidAuthHeader,
            AuthError::TimestampOutOfRange { .. } => Code::TimestampOutOfRange,
            AuthError::UnknownKey => Code::UnknownKey,
            AuthError::InvalidSignature => Code::InvalidSignature,
            AuthError::KeyRevoked => Code::KeyRevoked,
            AuthError::TenantSuspended => Code::TenantSuspended,
            AuthError::Replayed => Code::ReplayedRequest,
            AuthError::Store(e) => e.code(),
            AuthError::Journal(_) => Code::Internal,
        }
    }

    fn details(&self) -> serde_json::Value {
        match self {
            AuthError::MissingAuth(h) => json!({ "header": h }),
            AuthError::InvalidHeader { header, .. } => json!({ "header": header }),
            AuthError::TimestampOutOfRange {
                skew_secs,
                max_skew_secs,
                server_time,
            } => json!({
                "skew_seconds": skew_secs,
                "max_skew_seconds": max_skew_secs,
                "server_time": server_time,
            }),
            _ => json!({}),
        }
    }
}

/// Verifies signed requests against the key table.
pub struct Authenticator {
    /// Refusals counted for the audit log.
    pub failures: failures::FailureTally,
    store: Arc<Store>,
    replay: ReplayCache,
    max_skew_secs: i64,
}

impl Authenticator {
    /// An authenticator over `store` with the configured tolerances; replays are remembered in
    /// memory only (tests, tools).
    pub fn new(store: Arc<Store>, config: &AuthConfig) -> Self {
        Authenticator {
            failures: Default::default(),
            store,
            replay: ReplayCache::new(config.replay_window_secs),
            max_skew_secs: config.max_skew_secs,
        }
    }

    /// The same, remembering accepted signatures in `journal` too, so a request captured before
    /// a restart is refused after it.
    pub fn durable(
        store: Arc<Store>,
        config: &AuthConfig,
        journal: &std::path::Path,
    ) -> Result<Self, replay::JournalError> {
        let journal = replay::Journal::open(journal)?;
        Ok(Authenticator {
            failures: Default::default(),
            store,
            replay: ReplayCache::durable(config.replay_window_secs, journal, store::now())?,
            max_skew_secs: config.max_skew_secs,
        })
    }

    /// The same, sharing the memory of accepted signatures with every node on the store's
    /// database (PostgreSQL), so a request replayed to another node is refused.
    pub fn shared(store: Arc<Store>, config: &AuthConfig) -> Self {
        Authenticator {
            failures: Default::default(),
            replay: ReplayCache::shared(config.replay_window_secs, store.clone()),
            store,
            max_skew_secs: config.max_skew_secs,
        }
    }

    /// Deletes expired replay-journal rows and checkpoints it. Blocking.
    pub fn sweep_replays(&self) -> Result<usize, replay::JournalError> {
        self.replay.sweep()
    }

    fn check_skew(&self, timestamp: &str, now: i64) -> Result<(), AuthError> {
        let ts: i64 = timestamp.parse().map_err(|_| AuthError::InvalidHeader {
            header: "X-API-TIMESTAMP",
            reason: "expected Unix seconds",
        })?;
        let skew = now.saturating_sub(ts);
        if skew.unsigned_abs() > self.max_skew_secs as u64 {
            return Err(AuthError::TimestampOutOfRange {
                skew_secs: skew,
                max_skew_secs: self.max_skew_secs,
                server_time: now,
            });
        }
        Ok(())
    }

    /// Checks one request at time `now`. Blocking: reads the key table.
    ///
    /// Order matters: cheap header checks first; the signature before key state, so a caller
    /// without the secret learns nothing about a key; the replay cache last, so only genuine
    /// requests can occupy it.
    pub fn authenticate(&self, parts: &SignedParts<'_>, now: i64) -> Result<Principal, AuthError> {
        let row = self.precheck(parts.key_id, parts.timestamp, parts.nonce, now)?;
        self.verify(parts, row, now)
    }

    /// Everything that can be judged without the body: header shapes, clock skew and whether the
    /// key exists. Run before a body is read, so an unauthenticated client cannot make the server
    /// buffer megabytes. Blocking: reads the key table.
    pub fn precheck(
        &self,
        key_id: &str,
        timestamp: &str,
        nonce: Option<&str>,
        now: i64,
    ) -> Result<KeyAuthRow, AuthError> {
        self.check_skew(timestamp, now)?;
        if let Some(nonce) = nonce {
            if nonce.is_empty() || nonce.len() > signing::MAX_NONCE_LEN {
                return Err(AuthError::InvalidHeader {
                    header: "X-API-NONCE",
                    reason: "must be 1 to 64 characters",
                });
            }
        }
        self.key_row(key_id)
    }

    /// The key's current state. Blocking: reads the key table.
    pub fn key_row(&self, key_id: &str) -> Result<KeyAuthRow, AuthError> {
        self.store
            .read(|c| store::keys::auth_row(c, key_id))?
            .ok_or(AuthError::UnknownKey)
    }

    /// The signature over the whole request, then key state, the clock once more and the replay
    /// cache. Blocking when the replay cache has a journal (one small append).
    pub fn verify(
        &self,
        parts: &SignedParts<'_>,
        row: KeyAuthRow,
        now: i64,
    ) -> Result<Principal, AuthError> {
        let key = self.store.data_key(store::keys::SECRET_FAMILY)?;
        let aad = store::keys::secret_aad(parts.key_id);
        let secret = key.open(&row.secret_enc, &aad).map_err(StoreError::from)?;
        let canonical = signing::canonical_string(
            parts.timestamp,
            parts.method,
            parts.path_with_query,
            parts.body_digest,
            parts.nonce,
        );
        // During a rotation's overlap the previous secret verifies too.
        let previous_verifies = || match &row.previous {
            Some((sealed, until)) if now < *until => key
                .open(sealed, &aad)
                .is_ok_and(|old| signing::verify(&old, &canonical, parts.signature)),
            _ => false,
        };
        if !signing::verify(&secret, &canonical, parts.signature) && !previous_verifies() {
            return Err(AuthError::InvalidSignature);
        }
        if row.revoked {
            return Err(AuthError::KeyRevoked);
        }
        if row.tenant_suspended {
            return Err(AuthError::TenantSuspended);
        }
        // Judged again now the body is here: a body trickled in over a minute must not stretch
        // the window in which a captured request can be used.
        self.check_skew(parts.timestamp, now)?;
        if !self.replay.first_use(parts.key_id, parts.signature, now)? {
            return Err(AuthError::Replayed);
        }
        let scopes = row.scopes.as_deref().map(|s| {
            serde_json::from_str::<Vec<String>>(s)
                .unwrap_or_default()
                .iter()
                .filter_map(|m| Module::parse(m))
                .collect()
        });
        Ok(Principal {
            tenant_id: row.tenant_id,
            key_id: parts.key_id.to_owned(),
            sandbox: row.sandbox,
            scopes,
            permissions: permissions::from_stored(&row.permissions),
        })
    }

    /// Loads the secrets' data key once, at start-up, so [`Authenticator::verify`] never waits on
    /// the database.
    pub fn warm(&self) -> Result<(), AuthError> {
        self.store.data_key(store::keys::SECRET_FAMILY)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;
    use crate::tenancy;

    fn parts<'a>(key: &'a str, ts: &'a str, sig: &'a str, digest: &'a str) -> SignedParts<'a> {
        SignedParts {
            key_id: key,
            timestamp: ts,
            signature: sig,
            nonce: None,
            method: "GET",
            path_with_query: "/v1/ping",
            body_digest: digest,
        }
    }

    #[test]
    fn verification_order_and_outcomes() {
        let (_dir, store) = test_store();
        let store = Arc::new(store);
        let tenant = tenancy::create_tenant(&store, "Acme", "free", "test").unwrap();
        let created = keys::create_key(&store, &tenant.id, None, false, "test").unwrap();
        let auth = Authenticator::new(store.clone(), &AuthConfig::default());
        let digest = signing::body_digest(b"");
        let now = 1_700_000_000;
        let ts = now.to_string();
        let canonical = signing::canonical_string(&ts, "GET", "/v1/ping", &digest, None);
        let sig = signing::sign(created.secret.as_bytes(), &canonical);

        let p = auth
            .authenticate(&parts(&created.key.id, &ts, &sig, &digest), now)
            .unwrap();
        assert_eq!(p.tenant_id, tenant.id);
        assert!(matches!(
            auth.authenticate(&parts(&created.key.id, &ts, &sig, &digest), now),
            Err(AuthError::Replayed)
        ));
        assert!(matches!(
            auth.authenticate(&parts(&created.key.id, &ts, &sig, &digest), now + 301),
            Err(AuthError::TimestampOutOfRange { .. })
        ));
        assert!(matches!(
            auth.authenticate(&parts("ak_nope", &ts, &sig, &digest), now),
            Err(AuthError::UnknownKey)
        ));
        assert!(matches!(
            auth.authenticate(&parts(&created.key.id, "x", &sig, &digest), now),
            Err(AuthError::InvalidHeader { .. })
        ));
    }
}
