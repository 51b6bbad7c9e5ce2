//! Verified customer identity, as the widgets of commercial help desks do it: the operator's
//! backend signs the customer's id (or email) with `identity.secret` (HMAC-SHA256, hex), the page
//! hands the widget `user_id` / `email` and that `user_hash`, and the server checks it. Only a
//! verified identity links a customer's conversations (past ones in the agent's context, and one
//! history across devices); an email the page merely claims is shown as unverified and links
//! nothing.
//!
//! A signature may carry an expiry (`user_hash_expires`, Unix seconds; the backend then signs
//! `"{id}\n{expires}"` with `"{secret}:expiring"` as the key), so one copied from a page stops
//! working; `identity.require_expiry` refuses signatures without one.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::settings::IdentitySettings;

type HmacSha256 = Hmac<Sha256>;

/// What an identity check can refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The signature does not match the id (or email) it came with.
    #[error(
        "user_hash does not match: it must be the hex HMAC-SHA256 of the user_id (or, without \
         one, of the email) with the server's identity.secret, computed by your backend"
    )]
    BadSignature,
    /// A signature came without anything it could sign.
    #[error("user_hash came without a user_id or email to check it against")]
    NothingSigned,
    /// The signature was right but its expiry has passed.
    #[error(
        "user_hash expired (user_hash_expires {at}, in Unix seconds, is past): your backend \
         signs the customer again with a later expiry each time it renders the page"
    )]
    Expired {
        /// The customer's key the signature was for (`id:…` / `email:…`): a conversation of
        /// theirs that this browser already holds may still be resumed.
        key: String,
        /// The expiry it carried.
        at: i64,
    },
    /// `user_hash_expires` is not whole Unix seconds.
    #[error("user_hash_expires must be the expiry in whole Unix seconds (digits only)")]
    BadExpiry,
    /// `identity.require_expiry` is on and the signature has none.
    #[error(
        "user_hash has no expiry and the server requires one (identity.require_expiry): sign \
         the id and an expiry as the README shows and pass data-user-hash-expires"
    )]
    ExpiryRequired,
}

/// Checks signed identities; cheap to clone.
#[derive(Clone)]
pub struct IdentityVerifier {
    secret: Option<std::sync::Arc<[u8]>>,
    require_expiry: bool,
}

impl IdentityVerifier {
    /// A verifier with the secret of `settings` (without one, every visitor is unverified).
    pub fn new(settings: &IdentitySettings) -> Self {
        let secret = settings
            .secret
            .as_ref()
            .map(|s| s.expose().as_bytes())
            .filter(|s| !s.is_empty())
            .map(std::sync::Arc::from);
        Self {
            secret,
            require_expiry: settings.require_expiry,
        }
    }

    /// Whether a secret is configured.
    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }

    /// The customer's key (`id:<user_id>` or `email:<address>`) when `user_hash` signs it (with
    /// `expires`, Unix seconds, when given: then it must not have passed at `now_secs`), `None`
    /// for a visitor without a signature (or a server without a secret), an error for a
    /// signature that does not match, has expired, or lacks the expiry the server requires.
    pub fn verify(
        &self,
        user_id: Option<&str>,
        email: Option<&str>,
        user_hash: Option<&str>,
        expires: Option<i64>,
        now_secs: i64,
    ) -> Result<Option<String>, IdentityError> {
        let Some(user_hash) = user_hash.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(None);
        };
        let Some(secret) = &self.secret else {
            tracing::warn!("a widget sent user_hash, but identity.secret is not set: unverified");
            return Ok(None);
        };
        let (key, signed) = match (nonempty(user_id), nonempty(email)) {
            (Some(id), _) => (format!("id:{id}"), id.to_owned()),
            (None, Some(email)) => (format!("email:{}", email.to_lowercase()), email.to_owned()),
            (None, None) => return Err(IdentityError::NothingSigned),
        };
        if expires.is_none() && self.require_expiry {
            return Err(IdentityError::ExpiryRequired);
        }
        let signature = hex::decode(user_hash).map_err(|_| IdentityError::BadSignature)?;
        // Constant-time comparison.
        mac(secret, &signed, expires)
            .verify_slice(&signature)
            .map_err(|_| IdentityError::BadSignature)?;
        match expires {
            Some(at) if at <= now_secs => Err(IdentityError::Expired { key, at }),
            _ => Ok(Some(key)),
        }
    }
}

/// The HMAC of `value` with the secret; with an expiry, of `"{value}\n{expires}"` with the secret
/// followed by `:expiring` as the key. The two forms use different keys, so a value signed without
/// an expiry (one a customer chose, line break and all) can never pass for a value with one.
fn mac(secret: &[u8], value: &str, expires: Option<i64>) -> HmacSha256 {
    let mut mac = match expires {
        None => HmacSha256::new_from_slice(secret),
        Some(_) => HmacSha256::new_from_slice(&[secret, EXPIRING].concat()),
    }
    .expect("HMAC takes any key length");
    mac.update(value.trim().as_bytes());
    if let Some(at) = expires {
        mac.update(format!("\n{at}").as_bytes());
    }
    mac
}

/// What follows the secret in the key of signatures with an expiry.
const EXPIRING: &[u8] = b":expiring";

/// How long after its expiry a customer's signature still resumes the open conversation its
/// page holds (a tab left open overnight): beyond it, the page must be loaded again.
pub const EXPIRED_GRACE_SECONDS: i64 = 12 * 3600;

/// `user_hash_expires` as whole Unix seconds (a number, or digits in a string); anything else is
/// refused as an identity, not as a malformed frame, so the widget chats on unverified.
pub fn expiry_seconds(value: Option<&serde_json::Value>) -> Result<Option<i64>, IdentityError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or(IdentityError::BadExpiry),
        Some(serde_json::Value::String(s)) if s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map(Some).map_err(|_| IdentityError::BadExpiry)
        }
        Some(_) => Err(IdentityError::BadExpiry),
    }
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// The `user_hash` of `value` (a user id, or an email) with `secret`: what the operator's backend
/// computes (see the README), here for tests and tools.
pub fn sign(secret: &str, value: &str) -> String {
    hex::encode(mac(secret.as_bytes(), value, None).finalize().into_bytes())
}

/// The `user_hash` of `value` that expires at `expires` (Unix seconds): the HMAC of
/// `"{value}\n{expires}"`.
pub fn sign_until(secret: &str, value: &str, expires: i64) -> String {
    hex::encode(
        mac(secret.as_bytes(), value, Some(expires))
            .finalize()
            .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;

    fn verifier() -> IdentityVerifier {
        IdentityVerifier::new(&IdentitySettings {
            secret: Some(Secret::from("s3cret")),
            require_expiry: false,
        })
    }

    #[test]
    fn a_correct_signature_verifies_and_anything_else_does_not() {
        let v = verifier();
        let by_id = sign("s3cret", "42");
        assert_eq!(
            v.verify(Some("42"), None, Some(&by_id), None, 0),
            Ok(Some("id:42".into()))
        );
        // The id is what is signed when there is one, whatever the email says.
        assert_eq!(
            v.verify(Some("42"), Some("eve@example.com"), Some(&by_id), None, 0),
            Ok(Some("id:42".into()))
        );
        let by_email = sign("s3cret", "Ann@Example.com");
        assert_eq!(
            v.verify(None, Some("Ann@Example.com"), Some(&by_email), None, 0),
            Ok(Some("email:ann@example.com".into()))
        );
        assert_eq!(
            v.verify(Some("43"), None, Some(&by_id), None, 0),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(
            v.verify(Some("42"), None, Some("zz"), None, 0),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(
            v.verify(None, None, Some(&by_id), None, 0),
            Err(IdentityError::NothingSigned)
        );
        assert_eq!(v.verify(Some("42"), Some("a@b.c"), None, None, 0), Ok(None));
    }

    #[test]
    fn a_signature_with_an_expiry_holds_until_then_and_cannot_be_moved() {
        let v = verifier();
        let until = sign_until("s3cret", "42", 1_000);
        assert_eq!(
            v.verify(Some("42"), None, Some(&until), Some(1_000), 999),
            Ok(Some("id:42".into()))
        );
        assert_eq!(
            v.verify(Some("42"), None, Some(&until), Some(1_000), 1_000),
            Err(IdentityError::Expired {
                key: "id:42".into(),
                at: 1_000
            })
        );
        for (expires, why) in [(Some(5_000), "a later expiry"), (None, "no expiry")] {
            assert_eq!(
                v.verify(Some("42"), None, Some(&until), expires, 0),
                Err(IdentityError::BadSignature),
                "{why}"
            );
        }
        // A value signed without an expiry cannot pass for another value with one (a customer
        // who got the backend to sign an id or email with a line break in it).
        let tricky = sign("s3cret", "42\n99999");
        assert_eq!(
            v.verify(Some("42"), None, Some(&tricky), Some(99_999), 0),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(
            until,
            hex::encode(
                HmacSha256::new_from_slice(b"s3cret:expiring")
                    .unwrap()
                    .chain_update(b"42\n1000")
                    .finalize()
                    .into_bytes()
            ),
            "what the README tells backends to compute"
        );
        let strict = IdentityVerifier::new(&IdentitySettings {
            secret: Some(Secret::from("s3cret")),
            require_expiry: true,
        });
        assert_eq!(
            strict.verify(Some("42"), None, Some(&sign("s3cret", "42")), None, 0),
            Err(IdentityError::ExpiryRequired)
        );
        assert_eq!(
            strict.verify(Some("42"), None, Some(&until), Some(1_000), 0),
            Ok(Some("id:42".into()))
        );
    }

    #[test]
    fn an_expiry_is_whole_non_negative_seconds_as_a_number_or_digits() {
        use serde_json::json;
        assert_eq!(expiry_seconds(None), Ok(None));
        assert_eq!(expiry_seconds(Some(&json!(null))), Ok(None));
        assert_eq!(
            expiry_seconds(Some(&json!(1_700_000_000))),
            Ok(Some(1_700_000_000))
        );
        assert_eq!(
            expiry_seconds(Some(&json!("1700000000"))),
            Ok(Some(1_700_000_000))
        );
        for bad in [
            json!(1.5),
            json!(-5),
            json!("+5"),
            json!("1.5"),
            json!(""),
            json!(true),
        ] {
            assert_eq!(
                expiry_seconds(Some(&bad)),
                Err(IdentityError::BadExpiry),
                "{bad}"
            );
        }
    }

    #[test]
    fn without_a_secret_nobody_is_verified() {
        let v = IdentityVerifier::new(&IdentitySettings::default());
        assert!(!v.enabled());
        assert_eq!(
            v.verify(Some("42"), None, Some(&sign("", "42")), None, 0),
            Ok(None)
        );
    }
}
