//! Secrets a user hands the platform to use later (a job's `Authorization` header): sealed once
//! where they come in, stored and sent along only sealed, opened only where they are used, and
//! shown to readers as [`REDACTED`].
//!
//! A sealed value is `tmsealed:v1:<key id>:<base64url(nonce | ciphertext)>`, XChaCha20-Poly1305
//! under a key read from Vault ([`SealingKeys`], `<secret_path>/job-secrets`), with a random
//! 192-bit nonce and, as associated data, what the value belongs to (the task and the header): a
//! sealed value copied into another task or header does not open. Keys rotate: the current key
//! seals, retired keys still open what they sealed.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// What readers see instead of a secret.
pub const REDACTED: &str = "[redacted]";

const PREFIX: &str = "tmsealed:v1:";
const NONCE: usize = 24;

/// Headers whose values are not secrets and stay readable; every other header of a job is sealed.
const PLAIN_HEADERS: &[&str] = &[
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "content-encoding",
    "content-language",
    "content-type",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-unmodified-since",
    "pragma",
    "user-agent",
];

/// Whether the value of header `name` is kept sealed.
pub fn header_is_secret(name: &str) -> bool {
    !PLAIN_HEADERS.contains(&name.to_ascii_lowercase().as_str())
}

/// Whether `value` is a sealed value.
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(PREFIX)
}

/// The sealing keys as Vault holds them: `key_id` and `key` (32 bytes, base64) seal; `retired`
/// (`id:base64,id:base64`) still open.
#[derive(Clone, Deserialize)]
pub struct SealingKeys {
    /// Names the current key inside sealed values.
    pub key_id: String,
    /// The current key, base64 of 32 bytes.
    pub key: SecretString,
    /// Earlier keys, `id:base64` separated by commas.
    #[serde(default)]
    pub retired: Option<SecretString>,
}

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKeys")
            .field("key_id", &self.key_id)
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// Why a value could not be sealed or opened. Never carries the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// A key in the secret is malformed.
    #[error("sealing key `{0}` is not base64 of 32 bytes")]
    BadKey(String),
    /// The value is not of the sealed form.
    #[error("the value is not a sealed value")]
    Malformed,
    /// It was sealed with a key this process does not have.
    #[error("the value was sealed with key `{0}`, which is not configured")]
    UnknownKey(String),
    /// The key or what it belongs to does not match (or it was altered).
    #[error("the sealed value does not open here (another key, another owner, or altered)")]
    Forged,
}

/// Seals and opens values with the configured keys.
#[derive(Clone)]
pub struct Sealer {
    current: String,
    keys: HashMap<String, XChaCha20Poly1305>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

fn cipher(id: &str, encoded: &str) -> Result<XChaCha20Poly1305, SealError> {
    let bytes = STANDARD
        .decode(encoded.trim())
        .map_err(|_| SealError::BadKey(id.to_owned()))?;
    if bytes.len() != 32 {
        return Err(SealError::BadKey(id.to_owned()));
    }
    Ok(XChaCha20Poly1305::new(Key::from_slice(&bytes)))
}

impl Sealer {
    /// The sealer of `keys`; every key must be base64 of 32 bytes.
    pub fn new(keys: &SealingKeys) -> Result<Self, SealError> {
        let mut all = HashMap::new();
        if let Some(retired) = &keys.retired {
            for entry in retired.expose_secret().split(',').filter(|e| !e.is_empty()) {
                let (id, key) = entry
                    .split_once(':')
                    .ok_or_else(|| SealError::BadKey(entry.chars().take(8).collect()))?;
                all.insert(id.to_owned(), cipher(id, key)?);
            }
        }
        all.insert(
            keys.key_id.clone(),
            cipher(&keys.key_id, keys.key.expose_secret())?,
        );
        Ok(Self {
            current: keys.key_id.clone(),
            keys: all,
        })
    }

    /// A sealer with a fresh random key (tests, and nothing that must open it later).
    pub fn random() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        Self::new(&SealingKeys {
            key_id: "random".to_owned(),
            key: STANDARD.encode(key).into(),
            retired: None,
        })
        .expect("a generated key is valid")
    }

    /// Seals `plaintext` as belonging to `owner` (for example `projects/p/tasks/t#authorization`).
    pub fn seal(&self, owner: &str, plaintext: &str) -> String {
        let cipher = &self.keys[&self.current];
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: owner.as_bytes(),
                },
            )
            .expect("sealing into memory cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", self.current, URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Opens a value sealed as belonging to `owner`.
    pub fn open(&self, owner: &str, sealed: &str) -> Result<String, SealError> {
        let rest = sealed.strip_prefix(PREFIX).ok_or(SealError::Malformed)?;
        let (id, body) = rest.split_once(':').ok_or(SealError::Malformed)?;
        let cipher = self
            .keys
            .get(id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE);
        let opened = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SealError::Forged)?;
        String::from_utf8(opened).map_err(|_| SealError::Forged)
    }

    /// Seals the secret headers of a request belonging to `owner` (a task). A header sent as
    /// [`REDACTED`] keeps its sealed value from `previous` (the request as stored before), so a
    /// client can send back what it read; a secret header sealed already is kept as it is only if
    /// it opens for this owner, else it is sealed as sent.
    pub fn seal_headers(
        &self,
        owner: &str,
        headers: &mut HashMap<String, String>,
        previous: Option<&HashMap<String, String>>,
    ) {
        for (name, value) in headers.iter_mut() {
            if !header_is_secret(name) {
                continue;
            }
            let context = header_owner(owner, name);
            if value == REDACTED
                && let Some(kept) = previous
                    .and_then(|p| p.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)))
                    .map(|(_, v)| v)
                    .filter(|v| is_sealed(v))
            {
                value.clone_from(kept);
                continue;
            }
            if is_sealed(value) && self.open(&context, value).is_ok() {
                continue;
            }
            *value = self.seal(&context, value);
        }
    }

    /// Opens the sealed headers of a request belonging to `owner`; plain values stay as they are.
    pub fn open_headers(
        &self,
        owner: &str,
        headers: &mut HashMap<String, String>,
    ) -> Result<(), (String, SealError)> {
        for (name, value) in headers.iter_mut() {
            if is_sealed(value) {
                *value = self
                    .open(&header_owner(owner, name), value)
                    .map_err(|e| (name.clone(), e))?;
            }
        }
        Ok(())
    }
}

/// What a header's sealed value belongs to: the owner and the header's name in lower case.
fn header_owner(owner: &str, header: &str) -> String {
    format!("{owner}#{}", header.to_ascii_lowercase())
}

/// Replaces the value of every secret header with [`REDACTED`], sealed or not.
pub fn redact_headers(headers: &mut HashMap<String, String>) {
    for (name, value) in headers.iter_mut() {
        if header_is_secret(name) || is_sealed(value) {
            REDACTED.clone_into(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = "projects/p/tasks/t";

    fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_owner_and_key() {
        let sealer = Sealer::random();
        let sealed = sealer.seal(TASK, "Bearer s3cret");
        assert!(is_sealed(&sealed) && !sealed.contains("s3cret"), "{sealed}");
        assert_ne!(
            sealed,
            sealer.seal(TASK, "Bearer s3cret"),
            "a fresh nonce each time"
        );
        assert_eq!(sealer.open(TASK, &sealed).as_deref(), Ok("Bearer s3cret"));
        assert_eq!(
            sealer.open("projects/p/tasks/other", &sealed),
            Err(SealError::Forged)
        );
        assert_eq!(
            Sealer::random().open(TASK, &sealed),
            Err(SealError::Forged),
            "another key with the same id"
        );
        // One character in the middle changed (the last one may carry padding bits only).
        let middle = sealed.len() - 20;
        let flipped = if &sealed[middle..=middle] == "A" {
            "B"
        } else {
            "A"
        };
        let altered = format!("{}{flipped}{}", &sealed[..middle], &sealed[middle + 1..]);
        assert_eq!(sealer.open(TASK, &altered), Err(SealError::Forged));
        assert_eq!(sealer.open(TASK, "Bearer x"), Err(SealError::Malformed));
    }

    #[test]
    fn retired_keys_still_open_and_unknown_ones_are_named() {
        let old = SealingKeys {
            key_id: "k1".to_owned(),
            key: STANDARD.encode([1_u8; 32]).into(),
            retired: None,
        };
        let sealed = Sealer::new(&old).expect("keys").seal(TASK, "v");
        let rotated = SealingKeys {
            key_id: "k2".to_owned(),
            key: STANDARD.encode([2_u8; 32]).into(),
            retired: Some(format!("k1:{}", STANDARD.encode([1_u8; 32])).into()),
        };
        let sealer = Sealer::new(&rotated).expect("keys");
        assert_eq!(sealer.open(TASK, &sealed).as_deref(), Ok("v"));
        assert!(sealer.seal(TASK, "v").starts_with("tmsealed:v1:k2:"));
        let without_k1 = Sealer::new(&SealingKeys {
            retired: None,
            ..rotated
        })
        .expect("keys");
        assert_eq!(
            without_k1.open(TASK, &sealed),
            Err(SealError::UnknownKey("k1".to_owned()))
        );
        let short = SealingKeys {
            key_id: "k3".to_owned(),
            key: STANDARD.encode([3_u8; 16]).into(),
            retired: None,
        };
        assert_eq!(
            Sealer::new(&short).err(),
            Some(SealError::BadKey("k3".to_owned()))
        );
    }

    #[test]
    fn secret_headers_are_sealed_kept_on_redacted_and_redacted_for_readers() {
        let sealer = Sealer::random();
        let mut sent = headers(&[
            ("Authorization", "Bearer s3cret"),
            ("X-Api-Key", "k"),
            ("Content-Type", "application/json"),
        ]);
        sealer.seal_headers(TASK, &mut sent, None);
        assert!(is_sealed(&sent["Authorization"]) && is_sealed(&sent["X-Api-Key"]));
        assert_eq!(sent["Content-Type"], "application/json");

        // A client sends back what it read: the redacted value keeps the stored secret.
        let mut shown = sent.clone();
        redact_headers(&mut shown);
        assert_eq!(shown["Authorization"], REDACTED);
        assert_eq!(shown["Content-Type"], "application/json");
        let mut again = shown.clone();
        again.insert("X-Api-Key".to_owned(), "new".to_owned());
        sealer.seal_headers(TASK, &mut again, Some(&sent));
        assert_eq!(again["Authorization"], sent["Authorization"]);
        let mut opened = again.clone();
        sealer.open_headers(TASK, &mut opened).expect("opens");
        assert_eq!(opened["Authorization"], "Bearer s3cret");
        assert_eq!(opened["X-Api-Key"], "new");

        // A sealed value of another task sent as a header is sealed as text, never opened.
        let mut copied = headers(&[("Authorization", sent["Authorization"].as_str())]);
        sealer.seal_headers("projects/p/tasks/thief", &mut copied, None);
        let mut opened = copied.clone();
        sealer
            .open_headers("projects/p/tasks/thief", &mut opened)
            .expect("opens");
        assert_eq!(opened["Authorization"], sent["Authorization"]);
    }
}
