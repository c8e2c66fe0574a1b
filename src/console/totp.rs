//! The console's optional second factor: TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, one
//! step of clock skew either way), as every authenticator app reads it from a QR code. The
//! secret is sealed under the `console` data key (AAD: the user id); a code is accepted once
//! (the step it was made for is remembered); wrong codes count toward the account's lock like
//! wrong passwords.

use rand::RngCore;
use totp_rs::{Algorithm, Secret, TOTP};

use super::users::{self, SignedIn, UserError};
use crate::audit::NewEntry;
use crate::store::{self, Store, StoreError};

/// Data-key family sealing TOTP secrets.
pub const FAMILY: &str = "console";
/// Seconds per code.
const STEP: u64 = 30;

/// A new secret: its bytes and its base32 form (what the user types if they cannot scan).
pub fn new_secret() -> (Vec<u8>, String) {
    let mut raw = vec![0u8; 20];
    rand::thread_rng().fill_bytes(&mut raw);
    let encoded = Secret::Raw(raw.clone()).to_encoded().to_string();
    (raw, encoded)
}

/// The secret of a base32 string (as the enrolment form posts it back).
pub fn decode(encoded: &str) -> Option<Vec<u8>> {
    Secret::Encoded(encoded.trim().to_owned())
        .to_bytes()
        .ok()
        .filter(|b| b.len() >= 16)
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `otpauth://` URL an authenticator app reads.
pub fn otpauth_url(email: &str, encoded: &str) -> String {
    format!(
        "otpauth://totp/kycd:{}?secret={encoded}&issuer=kycd&algorithm=SHA1&digits=6&period=30",
        percent(email)
    )
}

/// The URL as a QR code, SVG drawn on the server.
pub fn qr_svg(url: &str) -> String {
    qrcode::QrCode::new(url.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(180, 180)
                .build()
        })
        // Inline in the page: without the XML declaration.
        .map(|svg| {
            svg.find("<svg")
                .map_or(svg.clone(), |i| svg[i..].to_owned())
        })
        .unwrap_or_default()
}

/// The step `code` was made for, if it is right now (± one step).
fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let totp = TOTP::new_unchecked(Algorithm::SHA1, 6, 0, STEP, secret.to_vec());
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = u64::try_from(now).ok()?;
    let step = now / STEP;
    (step.saturating_sub(1)..=step + 1)
        .find(|s| {
            let want = totp.generate(s * STEP);
            bool::from(subtle::ConstantTimeEq::ct_eq(
                want.as_bytes(),
                code.as_bytes(),
            ))
        })
        .and_then(|s| i64::try_from(s).ok())
}

/// The code for `secret` at `now` (tests and the CLI).
pub fn code_at(secret: &[u8], now: i64) -> String {
    TOTP::new_unchecked(Algorithm::SHA1, 6, 0, STEP, secret.to_vec())
        .generate(u64::try_from(now).unwrap_or_default())
}

fn wrong_code() -> UserError {
    UserError::Invalid {
        field: "code",
        reason: "the code is wrong or was used already".into(),
    }
}

/// Turns the second factor on for the signed-in user, once a code from their app proves the
/// secret was taken; audited.
pub fn enable(store: &Store, who: &SignedIn, secret: &[u8], code: &str) -> Result<(), UserError> {
    let now = store::now();
    let step = matching_step(secret, code, now).ok_or_else(wrong_code)?;
    let sealed = store
        .data_key(FAMILY)?
        .seal(secret, who.user.id.as_bytes())
        .map_err(StoreError::from)?;
    let (tenant, id) = (&who.user.tenant_id, &who.user.id);
    store.write(|tx| {
        store::console::set_totp(tx, who.realm, tenant, id, Some(&sealed))?;
        store::console::take_totp_step(tx, who.realm, id, step)?;
        store::audit::append(
            tx,
            &NewEntry::new(who.actor(), "user.totp_enable")
                .tenant(tenant)
                .target(id),
            now,
        )
        .map(drop)
    })?;
    Ok(())
}

/// Gives an account its second factor without a code (made with the account, its secret shown
/// once to whoever made it); audited.
pub fn provision(
    store: &Store,
    realm: store::console::Realm,
    user: &store::console::UserRow,
    secret: &[u8],
    actor: &str,
) -> Result<(), UserError> {
    let now = store::now();
    let sealed = store
        .data_key(FAMILY)?
        .seal(secret, user.id.as_bytes())
        .map_err(StoreError::from)?;
    store.write(|tx| {
        store::console::set_totp(tx, realm, &user.tenant_id, &user.id, Some(&sealed))?;
        store::audit::append(
            tx,
            &NewEntry::new(actor, "user.totp_enable")
                .tenant(&user.tenant_id)
                .target(&user.id),
            now,
        )
        .map(drop)
    })?;
    Ok(())
}

/// Checks a code of `user` and takes its step; `Ok(false)` when it is wrong or used.
fn take_code(
    store: &Store,
    realm: store::console::Realm,
    user: &store::console::UserRow,
    code: &str,
    now: i64,
) -> Result<bool, UserError> {
    let Some(sealed) = &user.totp_secret else {
        return Ok(false);
    };
    let secret = store
        .data_key(FAMILY)?
        .open(sealed, user.id.as_bytes())
        .map_err(StoreError::from)?;
    let Some(step) = matching_step(&secret, code, now) else {
        return Ok(false);
    };
    Ok(store.write(|tx| store::console::take_totp_step(tx, realm, &user.id, step))?)
}

/// Turns the second factor off (a current code proves the user holds it); audited.
pub fn disable(store: &Store, who: &SignedIn, code: &str) -> Result<(), UserError> {
    if who.realm == store::console::Realm::Operator
        && crate::console::operators::OperatorRole::parse(&who.user.role)
            .is_some_and(|r| r.needs_second_factor())
    {
        return Err(UserError::Invalid {
            field: "code",
            reason: "a superadmin cannot turn the second factor off".into(),
        });
    }
    let now = store::now();
    if !take_code(store, who.realm, &who.user, code, now)? {
        return Err(wrong_code());
    }
    let (tenant, id) = (&who.user.tenant_id, &who.user.id);
    store.write(|tx| {
        store::console::set_totp(tx, who.realm, tenant, id, None)?;
        store::audit::append(
            tx,
            &NewEntry::new(who.actor(), "user.totp_disable")
                .tenant(tenant)
                .target(id),
            now,
        )
        .map(drop)
    })?;
    Ok(())
}

/// Completes a sign-in waiting for its second factor: the session is kept under a new cookie
/// (returned). A wrong code counts toward the lock; once locked, the pending session ends.
pub fn complete_sign_in(store: &Store, who: &SignedIn, code: &str) -> Result<String, UserError> {
    let now = store::now();
    if !who.mfa_pending {
        return Err(wrong_code());
    }
    if !take_code(store, who.realm, &who.user, code, now)? {
        if users::failed(store, who.realm, &who.user, now)? {
            store.write(|tx| store::console::delete_session(tx, who.realm, &who.token_hash))?;
            return Err(UserError::Locked {
                minutes: users::LOCK_SECS / 60,
            });
        }
        return Err(wrong_code());
    }
    let token = users::new_token();
    let new_hash = users::token_hash(&token);
    store.write(|tx| {
        if !store::console::complete_mfa(tx, who.realm, &who.token_hash, &new_hash, now)? {
            return Err(StoreError::NotFound("session"));
        }
        store::console::extend_session(tx, who.realm, &new_hash, now + users::ABSOLUTE_SECS)?;
        users::signed_in(tx, who.realm, &who.user, now)
    })?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vector_and_skew() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits) → the 6-digit code 287082.
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59), "287082");
        assert_eq!(matching_step(secret, "287082", 59), Some(1));
        // One step late is accepted, two are not.
        assert_eq!(matching_step(secret, "287082", 89), Some(1));
        assert_eq!(matching_step(secret, "287082", 125), None);
        assert_eq!(matching_step(secret, "28708", 59), None);
        assert_eq!(matching_step(secret, "abcdef", 59), None);
    }

    #[test]
    fn secrets_round_trip_and_urls_are_escaped() {
        let (raw, encoded) = new_secret();
        assert_eq!(decode(&encoded), Some(raw));
        assert!(decode("not base32!").is_none());
        let url = otpauth_url("a+b@example.com", &encoded);
        assert!(
            url.starts_with("otpauth://totp/kycd:a%2Bb%40example.com?secret="),
            "{url}"
        );
        assert!(qr_svg(&url).contains("<svg"));
    }
}
