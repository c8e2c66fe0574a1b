//! Tenants: the organisations that call the API, their plans ([`plans`], [`subscription`]),
//! metered usage and quotas ([`meter`]), invoices ([`invoice`]) and request rate limits
//! ([`ratelimit`]).
//!
//! Every change is written together with its audit entry in one transaction.

pub mod invoice;
pub mod meter;
pub mod plans;
pub mod ratelimit;
pub mod subscription;

use crate::vision::liveness::LivenessThresholds;
use rand::RngCore;
use serde_json::json;

use crate::audit::NewEntry;
use crate::store::{self, tenants::TenantRow, Store, StoreError};

/// Plans a tenant can be on.
pub const PLANS: &[&str] = &plans::PLAN_IDS;

/// Why a tenant change was refused.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// The input is not acceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A field (named at run time, such as `overrides.tiers[1]`) is not acceptable.
    #[error("{field}: {reason}")]
    InvalidField {
        /// The offending field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The store failed or the tenant does not exist.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::error::ErrorCode for TenancyError {
    fn code(&self) -> crate::error::Code {
        match self {
            TenancyError::Invalid { .. } | TenancyError::InvalidField { .. } => {
                crate::error::Code::InvalidInput
            }
            TenancyError::Store(e) => e.code(),
        }
    }

    fn details(&self) -> serde_json::Value {
        match self {
            TenancyError::Invalid { field, .. } => json!({ "field": field }),
            TenancyError::InvalidField { field, .. } => json!({ "field": field }),
            TenancyError::Store(_) => json!({}),
        }
    }
}

/// Creates an active tenant.
pub fn create_tenant(
    store: &Store,
    name: &str,
    plan: &str,
    actor: &str,
) -> Result<TenantRow, TenancyError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(TenancyError::Invalid {
            field: "name",
            reason: "must be 1 to 200 characters".into(),
        });
    }
    if !PLANS.contains(&plan) {
        return Err(TenancyError::Invalid {
            field: "plan",
            reason: format!("must be one of {}", PLANS.join(", ")),
        });
    }
    let mut raw = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let now = store::now();
    let row = TenantRow {
        id: format!("ten_{}", hex::encode(raw)),
        name: name.to_owned(),
        plan: plan.to_owned(),
        status: "active".into(),
        created_at: now,
    };
    store.write(|tx| {
        store::tenants::insert(tx, &row)?;
        store::audit::append(
            tx,
            &NewEntry::new(actor, "tenant.create")
                .tenant(&row.id)
                .target(&row.id)
                .details(json!({ "plan": plan })),
            now,
        )?;
        Ok(())
    })?;
    Ok(row)
}

/// Every tenant.
pub fn list_tenants(store: &Store) -> Result<Vec<TenantRow>, TenancyError> {
    Ok(store.read(store::tenants::list)?)
}

/// One tenant.
pub fn get_tenant(store: &Store, id: &str) -> Result<TenantRow, TenancyError> {
    Ok(store
        .read(|c| store::tenants::get(c, id))?
        .ok_or(StoreError::NotFound("tenant"))?)
}

/// Suspends (`active = false`) or reactivates a tenant; suspended tenants' requests are refused.
pub fn set_active(
    store: &Store,
    id: &str,
    active: bool,
    actor: &str,
) -> Result<TenantRow, TenancyError> {
    let now = store::now();
    let (status, action) = if active {
        ("active", "tenant.activate")
    } else {
        ("suspended", "tenant.suspend")
    };
    store.write(|tx| {
        store::tenants::set_status(tx, id, status, now)?;
        store::audit::append(tx, &NewEntry::new(actor, action).tenant(id).target(id), now)?;
        Ok(())
    })?;
    get_tenant(store, id)
}

/// A tenant's media policy: how long images are kept and which kinds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MediaPolicy {
    /// Days media is kept, 0 (store nothing) to 3650.
    pub media_retention_days: i64,
    /// Kinds kept: `selfie`, `document_front`, `document_back`, `face_crop`, `frame`.
    pub media_kinds: Vec<crate::media::MediaKind>,
}

/// Sets a tenant's media policy (audited).
pub fn set_media_policy(
    store: &Store,
    id: &str,
    policy: &MediaPolicy,
    actor: &str,
) -> Result<MediaPolicy, TenancyError> {
    if !(0..=3650).contains(&policy.media_retention_days) {
        return Err(TenancyError::Invalid {
            field: "media_retention_days",
            reason: "must be between 0 and 3650".into(),
        });
    }
    let mut kinds: Vec<&str> = policy.media_kinds.iter().map(|k| k.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let now = store::now();
    store.write(|tx| {
        store::media::set_policy(tx, id, policy.media_retention_days, &kinds.join(","))?;
        store::audit::append(
            tx,
            &NewEntry::new(actor, "tenant.media_policy")
                .tenant(id)
                .target(id)
                .details(json!({ "media_retention_days": policy.media_retention_days, "media_kinds": kinds })),
            now,
        )?;
        Ok(())
    })?;
    get_media_policy(store, id)
}

/// A tenant's media policy.
pub fn get_media_policy(store: &Store, id: &str) -> Result<MediaPolicy, TenancyError> {
    let (days, kinds) = store.read(|c| store::media::policy(c, id))?;
    Ok(MediaPolicy {
        media_retention_days: days,
        media_kinds: crate::media::MediaKind::ALL
            .into_iter()
            .filter(|k| kinds.split(',').any(|s| s == k.as_str()))
            .collect(),
    })
}

/// Sets a tenant's face-match threshold on calibrated similarity (audited).
pub fn set_face_match_threshold(
    store: &Store,
    id: &str,
    threshold: f32,
    actor: &str,
) -> Result<f32, TenancyError> {
    if !(0.5..=0.99).contains(&threshold) {
        // Below 0.5 the decision is looser than the model's own operating point.
        return Err(TenancyError::Invalid {
            field: "face_match_threshold",
            reason: "must be between 0.5 and 0.99".into(),
        });
    }
    let now = store::now();
    store.write(|tx| {
        store::tenants::set_face_match_threshold(tx, id, threshold)?;
        store::audit::append(
            tx,
            &NewEntry::new(actor, "tenant.face_match_threshold")
                .tenant(id)
                .target(id)
                .details(json!({ "face_match_threshold": threshold })),
            now,
        )?;
        Ok(())
    })?;
    Ok(threshold)
}

/// A tenant's liveness thresholds (the defaults until set).
pub fn liveness_thresholds(store: &Store, id: &str) -> Result<LivenessThresholds, TenancyError> {
    let stored = store.read(|c| store::tenants::liveness_thresholds(c, id))?;
    // Only ever written after validation, so a parse failure means tampering: use the defaults
    // rather than fail every liveness call, and say so in the log.
    Ok(stored
        .and_then(|json| {
            serde_json::from_str(&json)
                .map_err(|e| tracing::warn!(tenant = id, "stored liveness thresholds: {e}"))
                .ok()
        })
        .unwrap_or_default())
}

/// Sets a tenant's liveness thresholds (audited).
pub fn set_liveness_thresholds(
    store: &Store,
    id: &str,
    t: &LivenessThresholds,
    actor: &str,
) -> Result<LivenessThresholds, TenancyError> {
    t.validate().map_err(|reason| TenancyError::Invalid {
        field: "liveness_thresholds",
        reason,
    })?;
    let json = serde_json::to_value(t).map_err(|e| TenancyError::Invalid {
        field: "liveness_thresholds",
        reason: e.to_string(),
    })?;
    let now = store::now();
    store.write(|tx| {
        store::tenants::set_liveness_thresholds(tx, id, &json.to_string())?;
        store::audit::append(
            tx,
            &NewEntry::new(actor, "tenant.liveness_thresholds")
                .tenant(id)
                .target(id)
                .details(json.clone()),
            now,
        )?;
        Ok(())
    })?;
    Ok(*t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    #[test]
    fn create_validate_suspend() {
        let (_dir, store) = test_store();
        assert!(matches!(
            create_tenant(&store, " ", "free", "t"),
            Err(TenancyError::Invalid { field: "name", .. })
        ));
        assert!(matches!(
            create_tenant(&store, "A", "gold", "t"),
            Err(TenancyError::Invalid { field: "plan", .. })
        ));
        let t = create_tenant(&store, "Acme", "pro", "t").unwrap();
        assert!(t.id.starts_with("ten_"));
        let s = set_active(&store, &t.id, false, "t").unwrap();
        assert_eq!(s.status, "suspended");
        assert!(set_active(&store, "ten_missing", false, "t").is_err());
        assert_eq!(list_tenants(&store).unwrap().len(), 1);
        let audit = store.read(|c| store::audit::list(c, None, 10)).unwrap();
        let actions: Vec<_> = audit.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(actions, ["tenant.create", "tenant.suspend"]);
    }
}
