//! Bearer tokens: 256 random bits, hex-encoded, stored only as their SHA-256 hash, so a leaked
//! database does not leak live logins or customers' sessions.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A random 256-bit token, hex-encoded (64 characters).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether `token` has the shape of one [`new_token`] makes (64 lowercase hex characters).
pub fn is_well_formed(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The hash a token is stored under.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A value derived from the token for another purpose (`purpose` separates the uses), which does
/// not reveal the token or its stored hash.
pub fn derive(purpose: &str, token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(token.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_and_their_derivations_differ_by_purpose() {
        let t = new_token();
        assert!(is_well_formed(&t));
        assert!(!is_well_formed("abc"));
        assert!(!is_well_formed(&t.to_uppercase()));
        assert_ne!(derive("a", &t), derive("b", &t));
        assert_ne!(hex::encode(derive("a", &t)), hash(&t));
    }
}
