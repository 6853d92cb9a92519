//! Values of the identity context: the key emails are unique by, display names as stored, and the
//! opaque secrets (refresh tokens, API keys) with their digests. The input rules (usernames, emails,
//! password lengths, display names) are the contract's (`buf.validate` in identity.proto).

pub mod attempts;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The key emails are unique by.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A display name as stored: surrounding ASCII spaces trimmed, as the contract's not-blank rule
/// counts them (its length and characters are the
/// contract's rules).
pub fn display_name(raw: &str) -> String {
    raw.trim_matches(|c: char| c.is_ascii_whitespace())
        .to_owned()
}

/// A random secret `<prefix><43 base64url characters>` (256 bits).
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The digest a secret is stored and looked up by.
pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "tmr_";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_unique_without_case() {
        assert_eq!(email_key("Ada@Example.ORG"), "ada@example.org");
    }

    #[test]
    fn secrets_are_unique_and_prefixed() {
        let a = new_secret("tmk_");
        let b = new_secret("tmk_");
        assert!(a.starts_with("tmk_") && a.len() == 47);
        assert_ne!(a, b);
        assert_eq!(digest(&a).len(), 32);
    }
}
