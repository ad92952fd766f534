//! `netmind wallet`: encrypted Ethereum keystores (the identity of every party).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alloy_signer_local::PrivateKeySigner;
use anyhow::{Context, Result, bail};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Create a new key and write it as an encrypted keystore file.
    ///
    /// The password comes from `NETMIND_KEY_PASSWORD`, `--password-file`, or a prompt.
    New {
        /// Keystore file to create.
        keystore: PathBuf,
        /// File whose first line is the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Print the address of a keystore.
    Address {
        /// Keystore file.
        keystore: PathBuf,
        /// File whose first line is the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

pub(crate) fn wallet(cmd: WalletCommand) -> Result<ExitCode> {
    match cmd {
        WalletCommand::New {
            keystore,
            password_file,
        } => {
            if keystore.exists() {
                bail!(
                    "{} already exists; refusing to overwrite a key",
                    keystore.display()
                );
            }
            let password = password(password_file.as_deref(), true)?;
            let dir = keystore
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let name = keystore
                .file_name()
                .and_then(|n| n.to_str())
                .context("keystore path needs a file name")?;
            let key = PrivateKeySigner::random();
            let (signer, _) = PrivateKeySigner::encrypt_keystore(
                dir,
                &mut rand08::thread_rng(),
                key.to_bytes(),
                password,
                Some(name),
            )
            .context("cannot write keystore")?;
            println!("{}", signer.address());
            eprintln!("keystore written to {}", keystore.display());
        }
        WalletCommand::Address {
            keystore,
            password_file,
        } => println!("{}", open(&keystore, password_file.as_deref())?.address()),
    }
    Ok(ExitCode::SUCCESS)
}

/// Decrypts a keystore.
pub(crate) fn open(keystore: &Path, password_file: Option<&Path>) -> Result<PrivateKeySigner> {
    if !keystore.exists() {
        bail!(
            "keystore {} not found; create one with `netmind wallet new {}`",
            keystore.display(),
            keystore.display()
        );
    }
    let password = password(password_file, false)?;
    PrivateKeySigner::decrypt_keystore(keystore, password).with_context(|| {
        format!(
            "cannot decrypt keystore {} (wrong password or not a keystore file)",
            keystore.display()
        )
    })
}

fn password(file: Option<&Path>, confirm: bool) -> Result<String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read password file {}", file.display()))?;
        return Ok(text.lines().next().unwrap_or_default().to_string());
    }
    if let Ok(p) = std::env::var("NETMIND_KEY_PASSWORD") {
        return Ok(p);
    }
    let p = rpassword::prompt_password("keystore password: ")
        .context("no password: set NETMIND_KEY_PASSWORD or pass --password-file")?;
    if confirm && rpassword::prompt_password("again: ")? != p {
        bail!("passwords do not match");
    }
    Ok(p)
}
