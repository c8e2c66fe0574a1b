//! The operator's people: roles and what each may do in `/admin`. Accounts, passwords, lockout,
//! sessions and the second factor are the tenant console's ([`super::users`], [`super::totp`])
//! in the operator realm (their own tables, cookie and path); a superadmin always has a second
//! factor — it is made with the account.

use super::users::{self, UserError};
use crate::store::console::{Realm, UserRow};
use crate::store::Store;

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorRole {
    /// Everything: tenants, plans, keys, users, personal data (with a reason).
    Superadmin,
    /// Looks at everything but money, changes nothing.
    Support,
    /// Plans, prices, invoices and revenue.
    Billing,
}

/// An action of the operator console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpAction {
    /// See tenants, their keys, users and settings.
    ViewTenants,
    /// Create, suspend, reactivate tenants; change their plan, overrides, floors and retention;
    /// manage their keys and console users.
    ManageTenants,
    /// See plans.
    ViewPlans,
    /// Change plans (quotas, prices, tiers, rate limits).
    EditPlans,
    /// See revenue and invoices.
    ViewRevenue,
    /// See the system page.
    ViewSystem,
    /// Search, verify and export the audit log.
    ViewAudit,
    /// Open a verification's images (with a reason; audited).
    ViewPersonalData,
}

impl OperatorRole {
    /// Every role.
    pub const ALL: [OperatorRole; 3] = [
        OperatorRole::Superadmin,
        OperatorRole::Support,
        OperatorRole::Billing,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::Superadmin => "superadmin",
            OperatorRole::Support => "support",
            OperatorRole::Billing => "billing",
        }
    }

    /// The role named `s`.
    pub fn parse(s: &str) -> Option<OperatorRole> {
        OperatorRole::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may do `action`.
    pub fn allows(self, action: OpAction) -> bool {
        use OpAction::*;
        match self {
            OperatorRole::Superadmin => true,
            OperatorRole::Support => {
                matches!(action, ViewTenants | ViewPlans | ViewSystem | ViewAudit)
            }
            OperatorRole::Billing => {
                matches!(action, ViewTenants | ViewPlans | EditPlans | ViewRevenue)
            }
        }
    }

    /// Whether the role must sign in with a second factor.
    pub fn needs_second_factor(self) -> bool {
        self == OperatorRole::Superadmin
    }
}

/// A new operator account; a superadmin's second factor is made with it.
pub struct NewOperator {
    /// The account.
    pub user: UserRow,
    /// The base32 TOTP secret (superadmins), shown once.
    pub totp_secret: Option<String>,
}

/// Creates an operator account (audited by `actor`).
pub fn create_operator(
    store: &Store,
    email: &str,
    role: OperatorRole,
    password: &str,
    actor: &str,
) -> Result<NewOperator, UserError> {
    let user = users::create_user(
        store,
        Realm::Operator,
        "",
        email,
        role.as_str(),
        password,
        actor,
    )?;
    let totp_secret = if role.needs_second_factor() {
        let (raw, encoded) = super::totp::new_secret();
        super::totp::provision(store, Realm::Operator, &user, &raw, actor)?;
        Some(encoded)
    } else {
        None
    };
    Ok(NewOperator { user, totp_secret })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_looks_billing_bills_superadmin_does_everything() {
        assert!(OperatorRole::Support.allows(OpAction::ViewPlans));
        assert!(!OperatorRole::Support.allows(OpAction::EditPlans));
        assert!(!OperatorRole::Support.allows(OpAction::ManageTenants));
        assert!(!OperatorRole::Support.allows(OpAction::ViewRevenue));
        assert!(!OperatorRole::Support.allows(OpAction::ViewPersonalData));
        assert!(OperatorRole::Billing.allows(OpAction::EditPlans));
        assert!(OperatorRole::Billing.allows(OpAction::ViewRevenue));
        assert!(!OperatorRole::Billing.allows(OpAction::ManageTenants));
        assert!(OperatorRole::Superadmin.allows(OpAction::ViewPersonalData));
        for r in OperatorRole::ALL {
            assert_eq!(OperatorRole::parse(r.as_str()), Some(r));
        }
    }
}
