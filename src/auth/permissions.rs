//! What a key may do besides calling modules: read results and media, manage the workflow and
//! webhooks, erase subjects, read the audit trail and usage.
//!
//! A key carries two lists: module scopes (what it may verify, billed) and permissions (what it
//! may read or manage). A new key gets [`Permission::DEFAULTS`] — it verifies and reads the
//! results of its own jobs — and management is granted explicitly. Sandbox keys can never hold
//! the permissions that change live configuration ([`Permission::live_only`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// One permission, named `resource:action` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    /// Read the jobs this key submitted.
    #[serde(rename = "results:read")]
    ResultsRead,
    /// Read every job of the tenant (implies `results:read`).
    #[serde(rename = "results:read_all")]
    ResultsReadAll,
    /// Read stored images (`GET /v1/media/{id}`, a subject's media list).
    #[serde(rename = "media:read")]
    MediaRead,
    /// Store images for a subject.
    #[serde(rename = "media:write")]
    MediaWrite,
    /// Erase a subject (right to erasure).
    #[serde(rename = "subjects:erase")]
    SubjectsErase,
    /// Read the workflow configuration.
    #[serde(rename = "workflow:read")]
    WorkflowRead,
    /// Change the workflow configuration (implies `workflow:read`); live keys only.
    #[serde(rename = "workflow:write")]
    WorkflowWrite,
    /// List webhook endpoints and their delivery logs.
    #[serde(rename = "webhooks:read")]
    WebhooksRead,
    /// Create, delete, test and redeliver webhooks (implies `webhooks:read`); live keys only.
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
    /// Search the tenant's audit trail.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Read the tenant's usage and charges.
    #[serde(rename = "usage:read")]
    UsageRead,
    /// Enrol and delete faces in the tenant's 1:N index.
    #[serde(rename = "faces:write")]
    FacesWrite,
    /// Search the tenant's enrolled faces (1:N) and match against a stored face.
    #[serde(rename = "faces:search")]
    FacesSearch,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 13] = [
        Permission::ResultsRead,
        Permission::ResultsReadAll,
        Permission::MediaRead,
        Permission::MediaWrite,
        Permission::SubjectsErase,
        Permission::WorkflowRead,
        Permission::WorkflowWrite,
        Permission::WebhooksRead,
        Permission::WebhooksWrite,
        Permission::AuditRead,
        Permission::UsageRead,
        Permission::FacesWrite,
        Permission::FacesSearch,
    ];

    /// What a new key holds when none are named: it verifies and reads its own results.
    pub const DEFAULTS: [Permission; 1] = [Permission::ResultsRead];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ResultsRead => "results:read",
            Permission::ResultsReadAll => "results:read_all",
            Permission::MediaRead => "media:read",
            Permission::MediaWrite => "media:write",
            Permission::SubjectsErase => "subjects:erase",
            Permission::WorkflowRead => "workflow:read",
            Permission::WorkflowWrite => "workflow:write",
            Permission::WebhooksRead => "webhooks:read",
            Permission::WebhooksWrite => "webhooks:write",
            Permission::AuditRead => "audit:read",
            Permission::UsageRead => "usage:read",
            Permission::FacesWrite => "faces:write",
            Permission::FacesSearch => "faces:search",
        }
    }

    /// The permission named `s`.
    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Permissions that change what live traffic gets: never held by a sandbox key.
    pub fn live_only(self) -> bool {
        matches!(self, Permission::WorkflowWrite | Permission::WebhooksWrite)
    }

    /// The permission that also grants this one (`workflow:write` grants `workflow:read`).
    fn implied_by(self) -> Option<Permission> {
        match self {
            Permission::ResultsRead => Some(Permission::ResultsReadAll),
            Permission::WorkflowRead => Some(Permission::WorkflowWrite),
            Permission::WebhooksRead => Some(Permission::WebhooksWrite),
            _ => None,
        }
    }

    /// Whether holding `held` grants `self`.
    pub fn granted_by(self, held: &[Permission]) -> bool {
        held.contains(&self) || self.implied_by().is_some_and(|p| held.contains(&p))
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a stored permission list (JSON array of names); unknown names are dropped, so a newer
/// binary's names never widen an older one's grants.
pub fn from_stored(json: &str) -> Vec<Permission> {
    serde_json::from_str::<Vec<String>>(json)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| Permission::parse(p))
        .collect()
}

/// The stored form: sorted, without duplicates.
pub fn to_stored(perms: &[Permission]) -> String {
    serde_json::to_string(&names(perms)).unwrap_or_else(|_| "[]".into())
}

/// Sorted, de-duplicated names.
pub fn names(perms: &[Permission]) -> Vec<&'static str> {
    let mut v: Vec<Permission> = perms.to_vec();
    v.sort();
    v.dedup();
    v.into_iter().map(Permission::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_implications() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()));
        }
        assert!(Permission::WorkflowRead.granted_by(&[Permission::WorkflowWrite]));
        assert!(!Permission::WorkflowWrite.granted_by(&[Permission::WorkflowRead]));
        assert!(Permission::ResultsRead.granted_by(&[Permission::ResultsReadAll]));
        assert!(!Permission::MediaRead.granted_by(&Permission::DEFAULTS));
        assert_eq!(
            from_stored(r#"["usage:read","nope","audit:read"]"#),
            [Permission::UsageRead, Permission::AuditRead]
        );
        assert_eq!(
            to_stored(&[
                Permission::UsageRead,
                Permission::AuditRead,
                Permission::UsageRead
            ]),
            r#"["audit:read","usage:read"]"#
        );
    }
}
