//! Console users and their sessions: argon2id passwords, lockout after repeated failures,
//! sessions whose cookie is known to the database only by its SHA-256, idle and absolute expiry.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::audit::NewEntry;
use crate::store::console::{Realm, SessionRow, UserRow};
use crate::store::{self, Store, StoreError};

/// Wrong passwords in a row that lock an account.
pub const LOCK_AFTER: i64 = 5;
/// How long a locked account stays locked, seconds.
pub const LOCK_SECS: i64 = 15 * 60;
/// A session ends after this long without a request, seconds.
pub const IDLE_SECS: i64 = 30 * 60;
/// A session ends this long after sign-in whatever happens, seconds.
pub const ABSOLUTE_SECS: i64 = 12 * 3600;
/// How long a signed-in password waits for its second factor, seconds.
pub const MFA_SECS: i64 = 5 * 60;
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, users included.
    Owner,
    /// Everything but users.
    Admin,
    /// Verifications, their images and the review queue.
    Reviewer,
    /// Verifications (without images) and usage, read only.
    Viewer,
}

/// An action a screen offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See verifications and the review queue.
    ViewVerifications,
    /// See a verification's images (audited).
    ViewImages,
    /// Approve or reject a verification in review.
    Review,
    /// Create, rotate and revoke API keys.
    ManageKeys,
    /// Manage webhooks.
    ManageWebhooks,
    /// Change the workflow.
    EditWorkflow,
    /// See usage and invoices.
    ViewBilling,
    /// Read the audit log.
    ViewAudit,
    /// Invite, disable and change users.
    ManageUsers,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Reviewer, Role::Viewer];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Reviewer => "reviewer",
            Role::Viewer => "viewer",
        }
    }

    /// The role named `s`.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may do `action`.
    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Owner => true,
            Role::Admin => action != ManageUsers,
            Role::Reviewer => matches!(action, ViewVerifications | ViewImages | Review),
            Role::Viewer => matches!(action, ViewVerifications | ViewBilling),
        }
    }
}

/// Why a sign-in or a user change failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Unknown email or wrong password (never which).
    #[error("wrong email or password")]
    BadCredentials,
    /// Too many wrong passwords.
    #[error("too many wrong passwords: try again in {minutes} minutes")]
    Locked {
        /// Minutes left.
        minutes: i64,
    },
    /// The account was disabled.
    #[error("this account is disabled")]
    Disabled,
    /// A value is not acceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// Which.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A signed-in user, as every console handler sees them.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The user.
    pub user: UserRow,
    /// Their role.
    pub role: Role,
    /// The session's CSRF token.
    pub csrf: String,
    /// The session's cookie hash.
    pub token_hash: Vec<u8>,
    /// The password was right but the second factor is still to come: no page but the code
    /// form opens.
    pub mfa_pending: bool,
    /// A tenant's console or the operator's.
    pub realm: Realm,
}

impl SignedIn {
    /// How the audit log names this person.
    pub fn actor(&self) -> String {
        actor_of(self.realm, &self.user.email)
    }
}

/// How the audit log names a person of `realm`: `user:<email>` or `operator:<email>`.
pub fn actor_of(realm: Realm, email: &str) -> String {
    match realm {
        Realm::Tenant => format!("user:{email}"),
        Realm::Operator => format!("operator:{email}"),
    }
}

/// A new session cookie value.
pub fn new_token() -> String {
    random_hex(32)
}

fn random_hex(n: usize) -> String {
    let mut raw = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

/// The stored form of a cookie.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn hash_password(password: &str) -> Result<String, UserError> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| UserError::Invalid {
        field: "password",
        reason: e.to_string(),
    })?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Invalid {
            field: "password",
            reason: e.to_string(),
        })
}

fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash no password matches, verified against when the email is unknown so that the answer
/// takes as long as for a known one.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_hex(16)).unwrap_or_default())
}

/// A new random password (shown once).
pub fn generate_password() -> String {
    random_hex(12)
}

/// Creates a console user of `tenant_id`; audited.
pub fn create_user(
    store: &Store,
    realm: Realm,
    tenant_id: &str,
    email: &str,
    role: &str,
    password: &str,
    actor: &str,
) -> Result<UserRow, UserError> {
    let email = email.trim().to_lowercase();
    if email.len() > 254 || !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
        return Err(UserError::Invalid {
            field: "email",
            reason: "an email address".into(),
        });
    }
    if password.chars().count() < MIN_PASSWORD {
        return Err(UserError::Invalid {
            field: "password",
            reason: format!("at least {MIN_PASSWORD} characters"),
        });
    }
    let now = store::now();
    let row = UserRow {
        id: match realm {
            Realm::Tenant => format!("usr_{}", random_hex(12)),
            Realm::Operator => format!("opr_{}", random_hex(12)),
        },
        tenant_id: tenant_id.to_owned(),
        email: email.clone(),
        role: role.to_owned(),
        password_hash: hash_password(password)?,
        status: "active".into(),
        failed_logins: 0,
        locked_until: None,
        created_at: now,
        last_login_at: None,
        totp_secret: None,
        totp_last_step: None,
    };
    store.write(|tx| {
        if realm == Realm::Tenant && store::tenants::get(tx, tenant_id)?.is_none() {
            return Err(StoreError::NotFound("tenant"));
        }
        if store::console::user_by_email(tx, realm, &email)?.is_some() {
            return Err(StoreError::Conflict(format!(
                "{email} has an account already"
            )));
        }
        store::console::insert_user(tx, realm, &row)?;
        store::audit::append(
            tx,
            &NewEntry::new(actor, "user.create")
                .tenant(tenant_id)
                .target(&row.id)
                .details(serde_json::json!({ "role": role })),
            now,
        )
        .map(drop)
    })?;
    Ok(row)
}

/// Signs in: on success a new session (its cookie value returned once, stored only hashed).
pub fn sign_in(
    store: &Store,
    realm: Realm,
    email: &str,
    password: &str,
) -> Result<(String, SignedIn), UserError> {
    let email = email.trim().to_lowercase();
    let now = store::now();
    let Some(user) = store.read(|c| store::console::user_by_email(c, realm, &email))? else {
        password_matches(password, decoy_hash());
        return Err(UserError::BadCredentials);
    };
    if let Some(until) = user.locked_until.filter(|u| *u > now) {
        return Err(UserError::Locked {
            minutes: (until - now + 59) / 60,
        });
    }
    if user.status != "active" {
        return Err(UserError::Disabled);
    }
    if !password_matches(password, &user.password_hash) {
        if failed(store, realm, &user, now)? {
            return Err(UserError::Locked {
                minutes: LOCK_SECS / 60,
            });
        }
        return Err(UserError::BadCredentials);
    }
    // With a second factor the session opens only the code form, for a few minutes; the
    // failures are cleared and the sign-in audited once the code is right.
    let pending = user.totp_secret.is_some();
    let token = new_token();
    let session = SessionRow {
        token_hash: token_hash(&token),
        user_id: user.id.clone(),
        csrf: random_hex(16),
        created_at: now,
        last_seen: now,
        expires_at: now + if pending { MFA_SECS } else { ABSOLUTE_SECS },
        mfa_pending: pending,
    };
    store.write(|tx| {
        store::console::delete_stale_sessions(tx, realm, now, now - IDLE_SECS)?;
        store::console::insert_session(tx, realm, &session)?;
        if !pending {
            signed_in(tx, realm, &user, now)?;
        }
        Ok(())
    })?;
    let role = Role::parse(&user.role).unwrap_or(Role::Viewer);
    Ok((
        token,
        SignedIn {
            user,
            role,
            csrf: session.csrf,
            token_hash: session.token_hash,
            mfa_pending: pending,
            realm,
        },
    ))
}

/// Records a complete sign-in: failures cleared, last sign-in set, audited.
pub(super) fn signed_in(
    tx: &store::Tx<'_>,
    realm: Realm,
    user: &UserRow,
    now: i64,
) -> Result<(), StoreError> {
    store::console::login_succeeded(tx, realm, &user.id, now)?;
    store::audit::append(
        tx,
        &NewEntry::new(actor_of(realm, &user.email), "user.login")
            .tenant(&user.tenant_id)
            .target(&user.id),
        now,
    )
    .map(drop)
}

/// Counts a wrong password or code against the account (audited when it locks); whether the
/// account is now locked.
pub(super) fn failed(
    store: &Store,
    realm: Realm,
    user: &UserRow,
    now: i64,
) -> Result<bool, StoreError> {
    let failures = store.write(|tx| {
        let n = store::console::login_failed(tx, realm, &user.id, now, LOCK_AFTER, LOCK_SECS)?;
        if n == LOCK_AFTER {
            store::audit::append(
                tx,
                &NewEntry::new(actor_of(realm, &user.email), "user.locked")
                    .tenant(&user.tenant_id)
                    .target(&user.id),
                now,
            )?;
        }
        Ok(n)
    })?;
    Ok(failures >= LOCK_AFTER)
}

/// The signed-in user of a cookie, if its session is alive (touching it at most once a minute).
pub fn session(store: &Store, realm: Realm, token: &str) -> Result<Option<SignedIn>, StoreError> {
    let hash = token_hash(token);
    let now = store::now();
    let Some((s, user)) = store.read(|c| store::console::session(c, realm, &hash))? else {
        return Ok(None);
    };
    if s.expires_at <= now || s.last_seen + IDLE_SECS < now || user.status != "active" {
        store.write(|tx| store::console::delete_session(tx, realm, &hash))?;
        return Ok(None);
    }
    if now - s.last_seen >= 60 {
        store.write(|tx| store::console::touch_session(tx, realm, &hash, now))?;
    }
    let role = Role::parse(&user.role).unwrap_or(Role::Viewer);
    Ok(Some(SignedIn {
        user,
        role,
        csrf: s.csrf,
        token_hash: hash,
        mfa_pending: s.mfa_pending,
        realm,
    }))
}

/// Ends a session on the server.
pub fn sign_out(store: &Store, who: &SignedIn) -> Result<(), StoreError> {
    let now = store::now();
    store.write(|tx| {
        store::console::delete_session(tx, who.realm, &who.token_hash)?;
        store::audit::append(
            tx,
            &NewEntry::new(who.actor(), "user.logout")
                .tenant(&who.user.tenant_id)
                .target(&who.user.id),
            now,
        )
        .map(drop)
    })
}

/// What an owner changes about another user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Sign-in refused, sessions ended.
    Disable,
    /// Sign-in allowed again.
    Enable,
    /// A new temporary password (returned), sessions ended, lock cleared.
    ResetPassword,
    /// The second factor removed (a lost phone); the user sets it up again.
    RemoveSecondFactor,
}

/// An owner's change to a user of their tenant; a new password when one was made. Owners cannot
/// disable themselves (a tenant must keep someone who can sign in).
pub fn change_user(
    store: &Store,
    by: &SignedIn,
    user_id: &str,
    change: Change,
) -> Result<Option<String>, UserError> {
    change_user_in(
        store,
        by.realm,
        &by.user.tenant_id,
        &by.user.id,
        &by.actor(),
        user_id,
        change,
    )
}

/// A change to user `user_id` of `tenant` in `realm`, made by the account `by_id` (an owner of
/// the tenant, or an operator — `""`) and audited as `actor`.
pub fn change_user_in(
    store: &Store,
    realm: Realm,
    tenant: &str,
    by_id: &str,
    actor: &str,
    user_id: &str,
    change: Change,
) -> Result<Option<String>, UserError> {
    if change == Change::Disable && user_id == by_id {
        return Err(UserError::Invalid {
            field: "user",
            reason: "you cannot disable yourself".into(),
        });
    }
    let password = (change == Change::ResetPassword).then(generate_password);
    let hash = password.as_deref().map(hash_password).transpose()?;
    let now = store::now();
    store.write(|tx| {
        let found = match change {
            Change::Disable => {
                store::console::set_user_status(tx, realm, tenant, user_id, "disabled")?
            }
            Change::Enable => {
                store::console::set_user_status(tx, realm, tenant, user_id, "active")?
            }
            Change::ResetPassword => store::console::set_password(
                tx,
                realm,
                tenant,
                user_id,
                hash.as_deref().unwrap_or_default(),
            )?,
            Change::RemoveSecondFactor => {
                store::console::set_totp(tx, realm, tenant, user_id, None)?
            }
        };
        if !found {
            return Err(StoreError::NotFound("user"));
        }
        let action = match change {
            Change::Disable => "user.disable",
            Change::Enable => "user.enable",
            Change::ResetPassword => "user.reset_password",
            Change::RemoveSecondFactor => "user.totp_remove",
        };
        store::audit::append(
            tx,
            &NewEntry::new(actor, action).tenant(tenant).target(user_id),
            now,
        )
        .map(drop)
    })?;
    Ok(password)
}

/// A user changes their own password (the current one proves it is them); every session of theirs
/// ends, this one included.
pub fn change_own_password(
    store: &Store,
    who: &SignedIn,
    current: &str,
    new: &str,
) -> Result<(), UserError> {
    if !password_matches(current, &who.user.password_hash) {
        return Err(UserError::BadCredentials);
    }
    if new.chars().count() < MIN_PASSWORD {
        return Err(UserError::Invalid {
            field: "password",
            reason: format!("at least {MIN_PASSWORD} characters"),
        });
    }
    let hash = hash_password(new)?;
    let now = store::now();
    let (tenant, id) = (&who.user.tenant_id, &who.user.id);
    store.write(|tx| {
        store::console::set_password(tx, who.realm, tenant, id, &hash)?;
        store::audit::append(
            tx,
            &NewEntry::new(who.actor(), "user.change_password")
                .tenant(tenant)
                .target(id),
            now,
        )
        .map(drop)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_the_console_says() {
        assert!(Role::Owner.allows(Action::ManageUsers));
        assert!(!Role::Admin.allows(Action::ManageUsers));
        assert!(Role::Admin.allows(Action::ManageKeys));
        assert!(!Role::Reviewer.allows(Action::ManageKeys));
        assert!(Role::Reviewer.allows(Action::Review));
        assert!(!Role::Viewer.allows(Action::Review));
        assert!(!Role::Viewer.allows(Action::ViewImages));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn passwords_are_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(password_matches("correct horse battery", &h));
        assert!(!password_matches("correct horse batterx", &h));
        assert!(!password_matches("x", "not a hash"));
    }
}
