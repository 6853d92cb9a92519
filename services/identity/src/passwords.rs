//! Password hashing with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes), off the async
//! threads. A login for an unknown email still verifies against a fixed hash, so response times do
//! not tell which emails exist.

use argon2::password_hash::SaltString;
use argon2::password_hash::rand_core::OsRng;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use tonic::Status;

/// Hashes `password` into a PHC string.
pub async fn hash(password: String) -> Result<String, Status> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|_| Status::internal("internal error"))?
    .map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        Status::internal("internal error")
    })
}

/// Whether `password` matches `phc`; with `None` it checks against a fixed hash and says no.
pub async fn verify(password: String, phc: Option<String>) -> bool {
    let known = phc.is_some();
    let phc = phc.unwrap_or_else(|| DUMMY.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
        && known
}

/// An argon2id hash of a random string nobody knows, with the default parameters.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3x5oE3V5hN3c0H2lJx8b0y9t5gq1m7Yk2cW8nq4ZrQ8";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse battery".to_owned())
            .await
            .expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".to_owned(), Some(phc.clone())).await);
        assert!(!verify("wrong horse battery".to_owned(), Some(phc)).await);
        assert!(!verify("anything".to_owned(), None).await);
    }

    #[test]
    fn the_stand_in_hash_is_a_real_argon2id_hash_with_the_default_cost() {
        // An unparsable stand-in would answer unknown emails faster than known ones.
        let parsed = PasswordHash::new(DUMMY).expect("parses");
        let params = argon2::Params::try_from(&parsed).expect("argon2 parameters");
        let defaults = argon2::Params::default();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(params.m_cost(), defaults.m_cost());
        assert_eq!(params.t_cost(), defaults.t_cost());
        assert_eq!(params.p_cost(), defaults.p_cost());
        assert_eq!(parsed.hash.map(|h| h.len()), Some(32));
    }
}
