//! The runtime's Vault logins for a cluster, on the real OpenBao of the local stack: the JWT auth
//! method with a token the test signs (the path a projected service-account token takes with the
//! Kubernetes or JWT method), the service reading its secret with the policy its role grants; a
//! token for another audience, or signed by another key, is refused.

use std::collections::HashMap;

use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use taskmesh_mesh::config::{MeshConfig, VaultAuth, VaultConfig};
use taskmesh_mesh::vault::VaultSession;
use taskmesh_testing::Stack;

fn key() -> ed25519_dalek::SigningKey {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    ed25519_dalek::SigningKey::from_bytes(&seed)
}

fn jwt(key: &ed25519_dalek::SigningKey, audience: &str, subject: &str) -> String {
    let der = key.to_pkcs8_der().expect("pkcs8");
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": "https://kubernetes.default.svc",
        "aud": audience,
        "sub": subject,
        "iat": now,
        "nbf": now - 5,
        "exp": now + 600,
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &claims,
        &EncodingKey::from_ed_der(der.as_bytes()),
    )
    .expect("sign")
}

#[tokio::test]
async fn a_service_logs_in_with_a_signed_jwt_and_reads_only_its_secrets() {
    let stack = Stack::load();
    let root = stack.vault();
    let mount = format!("jwt-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let service = format!("svc{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    vaultrs::sys::auth::enable(&root, &mount, "jwt", None)
        .await
        .expect("enable jwt auth");
    let signer = key();
    let public = signer
        .verifying_key()
        .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .expect("pem");
    let raw = |path: String, body: serde_json::Value| {
        let stack = &stack;
        async move {
            let response = reqwest::Client::new()
                .post(format!("{}/v1/{path}", stack.vault_addr))
                .header("X-Vault-Token", &stack.vault_root_token)
                .header("Content-Type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("vault");
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(status.is_success(), "{path}: {status} {text}");
        }
    };
    raw(
        format!("auth/{mount}/config"),
        serde_json::json!({"jwt_validation_pubkeys": [public], "jwt_supported_algs": ["EdDSA"],
                           "bound_issuer": "https://kubernetes.default.svc"}),
    )
    .await;
    let secret_path = format!("taskmesh/{service}");
    raw(
        format!("sys/policies/acl/{service}"),
        serde_json::json!({"policy": format!(
            "path \"secret/data/{secret_path}/*\" {{ capabilities = [\"read\"] }}"
        )}),
    )
    .await;
    raw(
        format!("auth/{mount}/role/{service}"),
        serde_json::json!({
            "role_type": "jwt",
            "bound_audiences": ["vault"],
            "bound_subject": format!("system:serviceaccount:taskmesh:{service}"),
            "user_claim": "sub",
            "token_policies": [service],
            "token_ttl": "10m",
        }),
    )
    .await;
    let mut secret = HashMap::new();
    secret.insert("value", "from-vault");
    vaultrs::kv2::set(&root, "secret", &format!("{secret_path}/probe"), &secret)
        .await
        .expect("write the secret");
    vaultrs::kv2::set(
        &root,
        "secret",
        &format!("taskmesh/other-{service}/probe"),
        &secret,
    )
    .await
    .expect("write another service's secret");

    let dir = std::env::temp_dir().join(format!("vault-jwt-{service}"));
    std::fs::create_dir_all(&dir).expect("dir");
    let token_file = dir.join("token");
    // The runtime's defaults, logging in with the JWT method at the test's mount.
    let config = VaultConfig {
        addr: stack.vault_addr.clone(),
        auth: VaultAuth::Jwt,
        jwt_file: Some(token_file.clone()),
        jwt_mount: mount.clone(),
        secret_path: secret_path.clone(),
        ..MeshConfig::defaults(&service, 0).vault
    };
    let subject = format!("system:serviceaccount:taskmesh:{service}");

    std::fs::write(&token_file, jwt(&signer, "vault", &subject)).expect("token");
    let session = VaultSession::login(&config).await.expect("jwt login");
    let read: HashMap<String, String> = session.read_secret("probe").await.expect("its secret");
    assert_eq!(read["value"], "from-vault");
    // The same login pointed at another service's secrets: its policy does not reach them.
    let other = VaultConfig {
        secret_path: format!("taskmesh/other-{service}"),
        role: Some(service.clone()),
        ..config.clone()
    };
    let session = VaultSession::login(&other).await.expect("jwt login");
    assert!(
        session
            .read_secret::<HashMap<String, String>>("probe")
            .await
            .is_err(),
        "the role's policy reaches only its own secrets"
    );

    for (label, token) in [
        ("another audience", jwt(&signer, "someone-else", &subject)),
        (
            "another subject",
            jwt(&signer, "vault", "system:serviceaccount:taskmesh:intruder"),
        ),
        ("another key", jwt(&key(), "vault", &subject)),
    ] {
        std::fs::write(&token_file, token).expect("token");
        assert!(VaultSession::login(&config).await.is_err(), "{label}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = vaultrs::sys::auth::disable(&root, &mount).await;
}
