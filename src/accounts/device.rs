//! Device tokens, so that someone guessing an agent's password cannot keep the agent out (OWASP's
//! "device cookies"): every sign-in gives the browser a token that says "this account signed in
//! here", and a sign-in that brings a valid one is throttled on its own (per device), not by the
//! account's throttle that the guesses use up. A browser that never signed in, or whose token is
//! forged, expired or another account's, is throttled per account as before.
//!
//! The token is signed with the account's password hash (HMAC-SHA256): nothing new is stored, every
//! node can check it, and changing the password ends every device token of the account. Only the
//! server knows the hash, so a token cannot be made without having signed in.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How long a device stays known after its last sign-in.
pub const DEVICE_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

/// What a device token starts with (the format's version).
const PREFIX: &str = "d1";

/// A new device token for the account `account_id` whose password hash is `password_hash`, valid
/// until `expires_at_ms`: `d1.<random id>.<expiry>.<signature>`.
pub fn issue(account_id: &str, password_hash: &str, expires_at_ms: i64) -> String {
    let mut id = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut id);
    let id = hex::encode(id);
    let signature = hex::encode(
        mac(account_id, password_hash, &id, expires_at_ms)
            .finalize()
            .into_bytes(),
    );
    format!("{PREFIX}.{id}.{expires_at_ms}.{signature}")
}

/// The device's id when `token` was issued by [`issue`] for this account with its current
/// password hash and has not expired at `now_ms`; `None` for anything else (absent, malformed,
/// forged, another account's, made before a password change, expired).
pub fn check<'t>(
    token: &'t str,
    account_id: &str,
    password_hash: &str,
    now_ms: i64,
) -> Option<&'t str> {
    let mut parts = token.trim().split('.');
    let (Some(PREFIX), Some(id), Some(expires), Some(signature), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let expires_at_ms: i64 = expires.parse().ok()?;
    // One spelling per token: no sign, no leading zeros.
    if expires_at_ms <= now_ms || id.len() != 32 || expires != expires_at_ms.to_string() {
        return None;
    }
    let signature = hex::decode(signature).ok()?;
    // Constant-time comparison.
    mac(account_id, password_hash, id, expires_at_ms)
        .verify_slice(&signature)
        .ok()?;
    Some(id)
}

fn mac(account_id: &str, password_hash: &str, id: &str, expires_at_ms: i64) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(password_hash.as_bytes()).expect("HMAC takes any key length");
    for part in [
        "frontdesk device",
        account_id,
        id,
        &expires_at_ms.to_string(),
    ] {
        mac.update(part.as_bytes());
        mac.update(&[0]);
    }
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_token_holds_for_its_account_and_password_until_it_expires() {
        let token = issue("a1", "$argon2id$hash-1", 1_000);
        let id = check(&token, "a1", "$argon2id$hash-1", 999).expect("valid");
        assert_eq!(id.len(), 32);
        assert!(token.contains(id));
        assert_eq!(
            check(&token, "a1", "$argon2id$hash-1", 1_000),
            None,
            "expired"
        );
        assert_eq!(
            check(&token, "a2", "$argon2id$hash-1", 0),
            None,
            "another account"
        );
        assert_eq!(
            check(&token, "a1", "$argon2id$hash-2", 0),
            None,
            "password changed"
        );
        assert_ne!(
            token,
            issue("a1", "$argon2id$hash-1", 1_000),
            "each device its own id"
        );
    }

    #[test]
    fn a_forged_or_malformed_device_token_is_not_valid() {
        let token = issue("a1", "h", 5_000);
        let later = token.replace(".5000.", ".9999999999999.");
        assert_eq!(check(&later, "a1", "h", 0), None, "expiry moved");
        let parts: Vec<&str> = token.split('.').collect();
        let other_id = format!("d1.{}.5000.{}", "0".repeat(32), parts[3]);
        assert_eq!(check(&other_id, "a1", "h", 0), None, "id changed");
        for bad in [
            "",
            "d1",
            "d1...",
            "x.y.z.w",
            &format!("{token}.x"),
            "d1.ab.5000.zz",
        ] {
            assert_eq!(check(bad, "a1", "h", 0), None, "{bad:?}");
        }
    }
}
