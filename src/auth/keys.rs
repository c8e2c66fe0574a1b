//! API key lifecycle: create (the secret is returned once), list, revoke.

use rand::RngCore;
use serde::Serialize;
use serde_json::json;

use crate::audit::NewEntry;
use crate::store::{self, keys::KeyRow, Store, StoreError};

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

/// Creates a key for `tenant_id`; its secret is sealed before it reaches the database.
pub fn create_key(
    store: &Store,
    tenant_id: &str,
    label: Option<&str>,
    facia: bool,
    actor: &str,
) -> Result<CreatedKey, StoreError> {
    use base64::Engine;
    let id = format!("ak_{}", hex::encode(random_token(12)));
    let secret = format!(
        "sk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_token(32))
    );
    let sealed = store
        .data_key(store::keys::SECRET_FAMILY)?
        .seal(secret.as_bytes(), &store::keys::secret_aad(&id))?;
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
                .details(json!({ "facia_hash_id": facia_hash_id.is_some() })),
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
