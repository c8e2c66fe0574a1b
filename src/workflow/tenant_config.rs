//! A tenant's stored workflow and the operator's floors over it: read (held to the floors),
//! changed by the tenant (validated against the floors, 422 naming the field) or by the
//! operator, and audited with a hash and a summary of what changed — never the whole document,
//! so the append-only log cannot be grown by resubmitting large configurations.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::config::{self, FieldError, Floors, WorkflowConfig};
use crate::audit::NewEntry;
use crate::error::{Code, ErrorCode};
use crate::store::{self, Store, StoreError};

/// Why a workflow could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A field is not acceptable.
    #[error("workflow {}: {}", if .0.field.is_empty() { "body" } else { &.0.field }, .0.message)]
    Invalid(FieldError),
    /// The body is not JSON at all.
    #[error("the body is not JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    /// The stored configuration no longer parses (edited outside kycd).
    #[error("the stored workflow of this tenant is unreadable: {0}")]
    Corrupt(String),
    /// The store failed, or the tenant does not exist.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ErrorCode for ConfigError {
    fn code(&self) -> Code {
        match self {
            ConfigError::Invalid(_) => Code::InvalidInput,
            ConfigError::Syntax(_) => Code::InvalidJson,
            ConfigError::Corrupt(_) => Code::Internal,
            ConfigError::Store(e) => e.code(),
        }
    }

    fn details(&self) -> Value {
        match self {
            ConfigError::Invalid(e) => json!({ "field": e.field, "reason": e.message }),
            ConfigError::Syntax(e) => json!({ "line": e.line(), "column": e.column() }),
            _ => json!({}),
        }
    }
}

/// The operator's floors for a tenant.
pub fn floors(store: &Store, tenant_id: &str) -> Result<Floors, ConfigError> {
    let (stored, face) = store.read(|c| store::tenants::workflow_floors(c, tenant_id))?;
    let mut floors = match stored {
        Some(json) => {
            serde_json::from_str(&json).map_err(|e| ConfigError::Corrupt(e.to_string()))?
        }
        None => Floors::default(),
    };
    floors.face_match = face;
    Ok(floors)
}

/// The workflow that runs for a tenant: as stored (or the defaults), held to the floors.
pub fn effective(store: &Store, tenant_id: &str) -> Result<WorkflowConfig, ConfigError> {
    let floors = floors(store, tenant_id)?;
    let stored = store.read(|c| store::jobs::workflow_config(c, tenant_id))?;
    // Read as stored, without today's limits: a workflow saved before a limit existed (more
    // rules than are accepted now) still runs, held to the floors.
    let config = match stored {
        Some(json) => serde_json::from_str::<WorkflowConfig>(&json)
            .map_err(|e| ConfigError::Corrupt(e.to_string()))?,
        None => WorkflowConfig::default(),
    };
    Ok(config.bound_by(&floors))
}

/// The top-level fields that differ between two configurations.
fn changed_fields(before: &WorkflowConfig, after: &WorkflowConfig) -> Vec<String> {
    let (b, a) = (
        serde_json::to_value(before).unwrap_or_default(),
        serde_json::to_value(after).unwrap_or_default(),
    );
    a.as_object()
        .map(|obj| {
            obj.iter()
                .filter(|(k, v)| b.get(k.as_str()) != Some(v))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Validates a tenant's change (a merge patch over the defaults held to the floors) and stores
/// it, audited by `actor` with its hash and the fields that changed.
pub fn update(
    store: &Store,
    tenant_id: &str,
    body: &[u8],
    actor: &str,
) -> Result<WorkflowConfig, ConfigError> {
    // Not JSON at all is 400, like every other body; a JSON value of the wrong shape is 422.
    serde_json::from_slice::<serde::de::IgnoredAny>(body)?;
    let floors = floors(store, tenant_id)?;
    let base = WorkflowConfig::default().bound_by(&floors);
    let config = config::from_json_over(body, &base, &floors).map_err(ConfigError::Invalid)?;
    let before = effective(store, tenant_id).unwrap_or_default();
    let text = serde_json::to_string(&config).map_err(|e| ConfigError::Corrupt(e.to_string()))?;
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    let now = store::now();
    store.write(|tx| {
        if store::tenants::get(tx, tenant_id)?.is_none() {
            return Err(StoreError::NotFound("tenant"));
        }
        store::jobs::set_workflow_config(tx, tenant_id, &text, now)?;
        let entry = NewEntry::new(actor, "workflow.update")
            .tenant(tenant_id)
            .target(tenant_id)
            .details(json!({
                "sha256": hash,
                "changed": changed_fields(&before, &config),
                "steps": config.steps.iter().map(|s| s.name()).collect::<Vec<_>>(),
                "bands": config.bands,
                "thresholds": config.thresholds,
                "rules": config.rules.len(),
                "mandatory_fields": config.mandatory_fields.len(),
            }));
        store::audit::append(tx, &entry, now)?;
        Ok(())
    })?;
    Ok(config)
}

/// Changes a tenant's floors by a JSON merge patch over the current ones (the operator's;
/// audited). The face-match floor is the tenant's face-match threshold, which
/// `/v1/face/match` enforces too.
pub fn update_floors(
    store: &Store,
    tenant_id: &str,
    patch: &Value,
    actor: &str,
) -> Result<Floors, ConfigError> {
    if !patch.is_object() {
        return Err(ConfigError::Invalid(FieldError {
            field: String::new(),
            message: "the floors are a JSON object".into(),
        }));
    }
    let mut merged = serde_json::to_value(floors(store, tenant_id)?).unwrap_or_default();
    crate::tenancy::plans::merge_patch(&mut merged, patch);
    let floors: Floors = serde_path_to_error::deserialize(merged).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::Invalid(FieldError {
            field: if path == "." { String::new() } else { path },
            message: e.inner().to_string(),
        })
    })?;
    floors.validate().map_err(ConfigError::Invalid)?;
    let text = serde_json::to_string(&floors).map_err(|e| ConfigError::Corrupt(e.to_string()))?;
    let now = store::now();
    store.write(|tx| {
        store::tenants::set_workflow_floors(tx, tenant_id, &text, floors.face_match)?;
        let entry = NewEntry::new(actor, "tenant.workflow_floors")
            .tenant(tenant_id)
            .target(tenant_id)
            .details(serde_json::to_value(&floors).unwrap_or_default());
        store::audit::append(tx, &entry, now)?;
        Ok(())
    })?;
    Ok(floors)
}
