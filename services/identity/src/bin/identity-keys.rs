//! `identity-keys`: manages the signing keys in Vault (provisioning and operators; the service
//! itself only reads them).
//!
//! Usage: `identity-keys (ensure | rotate | retire KID | list) --vault-addr URL --token-file FILE
//! [--mount secret] [--path taskmesh/identity/signing-keys]`
//!
//! `ensure` creates the first key when there is none; `rotate` adds a new signing key and keeps the
//! previous ones verifying; `retire` removes a verifying key.

use std::process::exit;

use anyhow::{Context, bail};
use taskmesh_identity::keys;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

const USAGE: &str = "usage: identity-keys (ensure | rotate | retire KID | list) --vault-addr URL \
                     --token-file FILE [--mount secret] [--path taskmesh/identity/signing-keys]";

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("identity-keys: {err:#}");
        exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut command = Vec::new();
    let (mut addr, mut token_file) = (None, None);
    let mut mount = "secret".to_owned();
    let mut path = format!("taskmesh/identity/{}", keys::SECRET_NAME);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--vault-addr" => addr = args.next(),
            "--token-file" => token_file = args.next(),
            "--mount" => mount = args.next().context(USAGE)?,
            "--path" => path = args.next().context(USAGE)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => command.push(arg),
        }
    }
    let (Some(addr), Some(token_file)) = (addr, token_file) else {
        bail!("{USAGE}");
    };
    let token = std::fs::read_to_string(&token_file)
        .with_context(|| format!("reading {token_file}"))?
        .trim()
        .to_owned();
    let vault = VaultClient::new(
        VaultClientSettingsBuilder::default()
            .address(&addr)
            .token(token)
            .build()?,
    )?;
    match command
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["ensure"] => {
            let stored = keys::read(&vault, &mount, &path).await?;
            if stored.keys.is_empty() {
                println!("created {}", keys::rotate(&vault, &mount, &path).await?);
            } else {
                println!("present {}", stored.keys[0].kid);
            }
        }
        ["rotate"] => println!("created {}", keys::rotate(&vault, &mount, &path).await?),
        ["retire", kid] => {
            keys::retire(&vault, &mount, &path, kid).await?;
            println!("retired {kid}");
        }
        ["list"] => {
            for key in keys::read(&vault, &mount, &path).await?.keys {
                println!("{} {:?} {}", key.kid, key.state, key.created);
            }
        }
        _ => bail!("{USAGE}"),
    }
    Ok(())
}
