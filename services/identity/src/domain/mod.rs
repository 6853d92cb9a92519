//! Input rules of the identity context: usernames, emails, passwords, display names; and the
//! opaque secrets (refresh tokens, API keys) with their digests.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Shortest password.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password (argon2 accepts more; this bounds the work per attempt).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A username: 3-32 of `a-z`, `0-9`, `-`, starting with a letter, not ending with `-`.
pub fn username(raw: &str) -> Result<String, String> {
    let ok_len = (3..=32).contains(&raw.len());
    let ok_chars = raw
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends = raw.starts_with(|c: char| c.is_ascii_lowercase()) && !raw.ends_with('-');
    if ok_len && ok_chars && ok_ends {
        Ok(raw.to_owned())
    } else {
        Err("must be 3-32 lower-case letters, digits or hyphens, starting with a letter".to_owned())
    }
}

/// An email address, trimmed; one `@` with text on both sides and a dot in the domain.
pub fn email(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    let valid = trimmed.len() <= 254
        && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control())
        && trimmed.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err("must be an email address".to_owned())
    }
}

/// The key emails are unique by.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A new password's length rules.
pub fn password(raw: &str) -> Result<(), String> {
    let chars = raw.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!("must be at most {MAX_PASSWORD_CHARS} characters"));
    }
    Ok(())
}

/// A display name: trimmed, 1-64 characters, no control characters.
pub fn display_name(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err("is required".to_owned());
    }
    if chars > 64 {
        return Err(format!("must be at most 64 characters, got {chars}"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(trimmed.to_owned())
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
    fn usernames_follow_the_rules() {
        assert!(username("ada").is_ok());
        assert!(username("ada-lovelace-1").is_ok());
        for bad in [
            "ab",
            "Ada",
            "1ada",
            "ada-",
            "ada_l",
            "a".repeat(33).as_str(),
        ] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert_eq!(email(" ada@example.org ").as_deref(), Ok("ada@example.org"));
        for bad in [
            "ada",
            "@example.org",
            "ada@example",
            "ada@@x.org",
            "a da@x.org",
            "ada@.org",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert_eq!(email_key("Ada@Example.ORG"), "ada@example.org");
    }

    #[test]
    fn passwords_have_a_minimum_length() {
        assert!(password("short").is_err());
        assert!(password("long enough pass").is_ok());
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
