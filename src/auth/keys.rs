//! API key lifecycle: create (the secret is returned once), scopes and environment, rotation
//! with an overlap window, revoke.

use rand::RngCore;
use serde::Serialize;
use serde_json::json;

use super::permissions::{self, Permission};
use crate::audit::NewEntry;
use crate::store::{self, keys::KeyRow, Store, StoreError};
use crate::tenancy::plans::Module;
use crate::tenancy::{subscription, TenancyError};

/// A newly created key with its secret: the only time the secret is shown.
#[derive(Debug, Serialize)]
pub struct CreatedKey {
    /// The stored key.
    #[serde(flatten)]
    pub key: KeyRow,
    /// The HMAC secret, shown once.
    pub secret: String,
    /// The Facia-compatible `hash_id`, shown once, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facia_hash_id: Option<String>,
}

/// SHA-256 of a Facia `hash_id`, the form in which it is stored and looked up.
pub fn facia_hash(hash_id: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(hash_id.as_bytes()).into()
}

/// The tenant (and key) a Facia `hash_id` authenticates, if any.
pub fn facia_principal(
    store: &Store,
    hash_id: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let hash = facia_hash(hash_id);
    store.read(|c| store::keys::by_facia_hash(c, &hash))
}

fn random_token(bytes: usize) -> Vec<u8> {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf
}

/// What a new key may do.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// Free-form label.
    pub label: Option<String>,
    /// Also issue a Facia-compatible `hash_id`.
    #[serde(default)]
    pub facia_hash_id: bool,
    /// Modules the key may call; absent = all.
    pub scopes: Option<Vec<Module>>,
    /// What it may read or manage; absent = [`Permission::DEFAULTS`] (its own results).
    pub permissions: Option<Vec<Permission>>,
    /// `sandbox` or `live`; absent = `sandbox` on a sandbox-only plan (Free), else `live`.
    pub environment: Option<String>,
}

/// Refuses permissions a key of `environment` may not hold (422 naming the first).
fn check_permissions(perms: &[Permission], environment: &str) -> Result<(), TenancyError> {
    if environment == "sandbox" {
        if let Some((i, p)) = perms.iter().enumerate().find(|(_, p)| p.live_only()) {
            return Err(invalid(
                &format!("permissions[{i}]"),
                &format!("a sandbox key cannot hold {p}: it changes live configuration"),
            ));
        }
    }
    Ok(())
}

fn module_names(scopes: &[Module]) -> Vec<String> {
    let mut names: Vec<String> = scopes.iter().map(|m| m.as_str().to_owned()).collect();
    names.sort();
    names.dedup();
    names
}

fn new_secret() -> String {
    use base64::Engine;
    format!(
        "sk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_token(32))
    )
}

fn invalid(field: &str, reason: &str) -> TenancyError {
    TenancyError::InvalidField {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Creates a key for `tenant_id` with every module and the plan's environment.
pub fn create_key(
    store: &Store,
    tenant_id: &str,
    label: Option<&str>,
    facia: bool,
    actor: &str,
) -> Result<CreatedKey, TenancyError> {
    let spec = KeySpec {
        label: label.map(str::to_owned),
        facia_hash_id: facia,
        ..KeySpec::default()
    };
    create_key_with(store, tenant_id, &spec, actor)
}

/// Creates a key for `tenant_id`; its secret is sealed before it reaches the database. Keys
/// of a tenant on a sandbox-only plan (Free) are sandbox keys.
pub fn create_key_with(
    store: &Store,
    tenant_id: &str,
    spec: &KeySpec,
    actor: &str,
) -> Result<CreatedKey, TenancyError> {
    let label = spec.label.as_deref();
    if label.is_some_and(|l| l.chars().count() > 200) {
        return Err(invalid("label", "at most 200 characters"));
    }
    if spec.scopes.as_ref().is_some_and(Vec::is_empty) {
        return Err(invalid("scopes", "at least one module, or absent for all"));
    }
    let plan = store.read(|c| subscription::effective_plan(c, tenant_id))?;
    let environment = match spec.environment.as_deref() {
        None if plan.sandbox_only => "sandbox",
        None => "live",
        Some("live") if plan.sandbox_only => {
            return Err(invalid(
                "environment",
                "the tenant's plan has sandbox keys only",
            ))
        }
        Some(e @ ("sandbox" | "live")) => e,
        Some(_) => return Err(invalid("environment", "sandbox or live")),
    };
    let scopes = spec.scopes.as_deref().map(module_names);
    let perms = spec
        .permissions
        .clone()
        .unwrap_or_else(|| Permission::DEFAULTS.to_vec());
    check_permissions(&perms, environment)?;
    let permission_names: Vec<String> = permissions::names(&perms)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let facia = spec.facia_hash_id;
    let id = format!("ak_{}", hex::encode(random_token(12)));
    let secret = new_secret();
    let sealed = store
        .data_key(store::keys::SECRET_FAMILY)?
        .seal(secret.as_bytes(), &store::keys::secret_aad(&id))
        .map_err(StoreError::from)?;
    // 32 hex digits, like the hash ids Facia's own portal hands out.
    let facia_hash_id = facia.then(|| hex::encode(random_token(16)));
    let now = store::now();
    let key = KeyRow {
        id,
        tenant_id: tenant_id.to_owned(),
        label: label.map(str::to_owned),
        status: "active".into(),
        created_at: now,
        revoked_at: None,
        scopes: scopes.clone(),
        permissions: permission_names.clone(),
        environment: environment.to_owned(),
        rotated_at: None,
        previous_secret_valid_until: None,
        last_used_at: None,
    };
    store.write(|tx| {
        if store::tenants::get(tx, tenant_id)?.is_none() {
            return Err(StoreError::NotFound("tenant"));
        }
        store::keys::insert(tx, &key, &sealed)?;
        if let Some(h) = &facia_hash_id {
            store::keys::set_facia_hash(tx, &key.id, &facia_hash(h))?;
        }
        store::audit::append(
            tx,
            &NewEntry::new(actor, "key.create")
                .tenant(tenant_id)
                .target(&key.id)
                .details(json!({
                    "facia_hash_id": facia_hash_id.is_some(),
                    "scopes": scopes,
                    "permissions": permission_names,
                    "environment": environment,
                })),
            now,
        )?;
        Ok(())
    })?;
    Ok(CreatedKey {
        key,
        secret,
        facia_hash_id,
    })
}

/// What an existing key may do, as changed by the operator: `None` leaves a list as it is;
/// `scopes: Some(None)` allows every module.
#[derive(Debug, Clone, Default)]
pub struct GrantChange {
    /// Module scopes.
    pub scopes: Option<Option<Vec<Module>>>,
    /// Permissions.
    pub permissions: Option<Vec<Permission>>,
}

/// Changes a key's module scopes and permissions (audited with both lists, before and after).
pub fn set_grants(
    store: &Store,
    key_id: &str,
    change: &GrantChange,
    actor: &str,
) -> Result<KeyRow, TenancyError> {
    if let Some(Some(s)) = &change.scopes {
        if s.is_empty() {
            return Err(invalid("scopes", "at least one module, or null for all"));
        }
    }
    let current = store
        .read(|c| store::keys::get(c, key_id))?
        .ok_or(StoreError::NotFound("key"))?;
    let perms: Vec<Permission> = match &change.permissions {
        Some(p) => p.clone(),
        None => current
            .permissions
            .iter()
            .filter_map(|p| Permission::parse(p))
            .collect(),
    };
    // A key that later becomes a sandbox key (its tenant moved to Free) keeps its list, but
    // `Principal::permit` never grants a sandbox key a live-only permission.
    check_permissions(&perms, &current.environment)?;
    let scopes = match &change.scopes {
        Some(s) => s.as_deref().map(module_names),
        None => current.scopes.clone(),
    };
    let scopes_json = scopes
        .as_ref()
        .map(|s| serde_json::to_string(s).unwrap_or_default());
    let now = store::now();
    let row = store.write(|tx| {
        let before = store::keys::get(tx, key_id)?.ok_or(StoreError::NotFound("key"))?;
        let row = store::keys::set_grants(
            tx,
            key_id,
            scopes_json.as_deref(),
            &permissions::to_stored(&perms),
        )?;
        store::audit::append(
            tx,
            &NewEntry::new(actor, "key.grants")
                .tenant(&row.tenant_id)
                .target(key_id)
                .details(json!({
                    "scopes": { "before": before.scopes, "after": row.scopes },
                    "permissions": { "before": before.permissions, "after": row.permissions },
                })),
            now,
        )?;
        Ok(row)
    })?;
    Ok(row)
}

/// A rotated key with its new secret: the only time it is shown.
#[derive(Debug, Serialize)]
pub struct RotatedKey {
    /// The key after rotation.
    #[serde(flatten)]
    pub key: KeyRow,
    /// The new HMAC secret, shown once.
    pub secret: String,
}

/// Longest overlap a rotation may give the old secret (30 days).
pub const MAX_OVERLAP_SECS: i64 = 30 * 86_400;

/// Gives a key a new secret; the old one keeps verifying for `overlap_secs` (0 = not at all).
pub fn rotate_key(
    store: &Store,
    key_id: &str,
    overlap_secs: i64,
    actor: &str,
) -> Result<RotatedKey, TenancyError> {
    if !(0..=MAX_OVERLAP_SECS).contains(&overlap_secs) {
        return Err(invalid("overlap_seconds", "0 to 2 592 000 (30 days)"));
    }
    let secret = new_secret();
    let sealed = store
        .data_key(store::keys::SECRET_FAMILY)?
        .seal(secret.as_bytes(), &store::keys::secret_aad(key_id))
        .map_err(StoreError::from)?;
    let now = store::now();
    let until = (overlap_secs > 0).then_some(now + overlap_secs);
    let key = store.write(|tx| {
        let row = store::keys::rotate(tx, key_id, &sealed, until, now)?;
        store::audit::append(
            tx,
            &NewEntry::new(actor, "key.rotate")
                .tenant(&row.tenant_id)
                .target(key_id)
                .details(json!({ "overlap_seconds": overlap_secs })),
            now,
        )?;
        Ok(row)
    })?;
    Ok(RotatedKey { key, secret })
}

/// Lists keys, of one tenant or all; secrets are never included.
pub fn list_keys(store: &Store, tenant_id: Option<&str>) -> Result<Vec<KeyRow>, StoreError> {
    store.read(|c| store::keys::list(c, tenant_id))
}

/// Revokes a key at once; requests signed with it fail from then on.
pub fn revoke_key(store: &Store, key_id: &str, actor: &str) -> Result<KeyRow, StoreError> {
    let now = store::now();
    store.write(|tx| {
        let row = store::keys::revoke(tx, key_id, now)?;
        store::audit::append(
            tx,
            &NewEntry::new(actor, "key.revoke")
                .tenant(&row.tenant_id)
                .target(key_id)
                .details(json!({})),
            now,
        )?;
        Ok(row)
    })
}
