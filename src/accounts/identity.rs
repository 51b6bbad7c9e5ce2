//! Verified customer identity, as the widgets of commercial help desks do it: the operator's
//! backend signs the customer's id (or email) with `identity.secret` (HMAC-SHA256, hex), the page
//! hands the widget `user_id` / `email` and that `user_hash`, and the server checks it. Only a
//! verified identity links a customer's conversations (past ones in the agent's context, and one
//! history across devices); an email the page merely claims is shown as unverified and links
//! nothing.

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
}

/// Checks signed identities; cheap to clone.
#[derive(Clone)]
pub struct IdentityVerifier {
    secret: Option<std::sync::Arc<[u8]>>,
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
        Self { secret }
    }

    /// Whether a secret is configured.
    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }

    /// The customer's key (`id:<user_id>` or `email:<address>`) when `user_hash` signs it,
    /// `None` for a visitor without a signature (or a server without a secret), an error for a
    /// signature that does not match.
    pub fn verify(
        &self,
        user_id: Option<&str>,
        email: Option<&str>,
        user_hash: Option<&str>,
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
        let signature = hex::decode(user_hash).map_err(|_| IdentityError::BadSignature)?;
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(signed.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&signature)
            .map_err(|_| IdentityError::BadSignature)?;
        Ok(Some(key))
    }
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// The `user_hash` of `value` (a user id, or an email) with `secret`: what the operator's backend
/// computes (see the README), here for tests and tools.
pub fn sign(secret: &str, value: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(value.trim().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;

    fn verifier() -> IdentityVerifier {
        IdentityVerifier::new(&IdentitySettings {
            secret: Some(Secret::from("s3cret")),
        })
    }

    #[test]
    fn a_correct_signature_verifies_and_anything_else_does_not() {
        let v = verifier();
        let by_id = sign("s3cret", "42");
        assert_eq!(
            v.verify(Some("42"), None, Some(&by_id)),
            Ok(Some("id:42".into()))
        );
        // The id is what is signed when there is one, whatever the email says.
        assert_eq!(
            v.verify(Some("42"), Some("eve@example.com"), Some(&by_id)),
            Ok(Some("id:42".into()))
        );
        let by_email = sign("s3cret", "Ann@Example.com");
        assert_eq!(
            v.verify(None, Some("Ann@Example.com"), Some(&by_email)),
            Ok(Some("email:ann@example.com".into()))
        );
        assert_eq!(
            v.verify(Some("43"), None, Some(&by_id)),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(
            v.verify(Some("42"), None, Some("zz")),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(
            v.verify(None, None, Some(&by_id)),
            Err(IdentityError::NothingSigned)
        );
        assert_eq!(v.verify(Some("42"), Some("a@b.c"), None), Ok(None));
    }

    #[test]
    fn without_a_secret_nobody_is_verified() {
        let v = IdentityVerifier::new(&IdentitySettings::default());
        assert!(!v.enabled());
        assert_eq!(v.verify(Some("42"), None, Some(&sign("", "42"))), Ok(None));
    }
}
