//! `netmind bundle`: pack, inspect and verify job bundles.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bytesize::ByteSize;
use clap::Subcommand;
use netmind_host::{Runtime, SandboxConfig};
use netmind_protocol::bundle::{Bundle, BundleId, BundleLimits};
use netmind_protocol::signing::{sign_bundle, signature_path};

use crate::{source, wallet};

#[derive(Debug, Subcommand)]
pub(crate) enum BundleCommand {
    /// Pack a bundle directory into a deterministic archive named by its SHA-256.
    Pack {
        /// Directory with `netmind.toml`, the entry component and optional `assets/`.
        dir: PathBuf,
        /// Archive to write (default: `<name>-<version>.nmb`).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Sign the bundle id with this keystore; writes `<archive>.sig`.
        #[arg(long)]
        key: Option<PathBuf>,
        /// File whose first line is the keystore password (else `NETMIND_KEY_PASSWORD` or a prompt).
        #[arg(long, requires = "key")]
        password_file: Option<PathBuf>,
    },
    /// Print a bundle's manifest, id, sizes, component imports and signer.
    Inspect {
        /// Bundle archive or directory.
        bundle: PathBuf,
    },
    /// Check a bundle: archive, manifest, component (compiles and links) and signature.
    Verify {
        /// Bundle archive.
        bundle: PathBuf,
        /// Require a valid signature by this address.
        #[arg(long)]
        signer: Option<String>,
    },
}

pub(crate) fn bundle(cmd: BundleCommand) -> Result<ExitCode> {
    let limits = BundleLimits::default();
    match cmd {
        BundleCommand::Pack {
            dir,
            output,
            key,
            password_file,
        } => {
            let bundle = Bundle::from_dir(&dir, &limits)?;
            let bytes = bundle.pack();
            let id = BundleId::of(&bytes);
            let m = &bundle.manifest.job;
            let out =
                output.unwrap_or_else(|| PathBuf::from(format!("{}-{}.nmb", m.name, m.version)));
            std::fs::write(&out, &bytes)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("{id}");
            eprintln!(
                "packed {} {} into {} ({}, {} unpacked)",
                m.name,
                m.version,
                out.display(),
                ByteSize(bytes.len() as u64).display().iec(),
                ByteSize(bundle.unpacked_size()).display().iec()
            );
            if let Some(key) = key {
                let signer = wallet::open(&key, password_file.as_deref())?;
                let sig = sign_bundle(&id, &signer)?;
                let sig_path = signature_path(&out);
                std::fs::write(&sig_path, sig.to_json())
                    .with_context(|| format!("cannot write {}", sig_path.display()))?;
                eprintln!("signed by {} into {}", sig.signer, sig_path.display());
            }
        }
        BundleCommand::Inspect { bundle } => inspect(&bundle, &limits)?,
        BundleCommand::Verify { bundle, signer } => {
            let job = source::load(&bundle, &limits)?;
            let runtime = Runtime::new(SandboxConfig {
                pooled_jobs: 0,
                ..SandboxConfig::default()
            })?;
            runtime
                .load(&job.wasm)
                .context("the component cannot run in the NetMind sandbox")?;
            match (&signer, &job.signer) {
                (Some(want), Some(got)) if !want.eq_ignore_ascii_case(got) => {
                    bail!("bundle is signed by {got}, not by {want}")
                }
                (Some(want), None) => bail!(
                    "bundle is not signed (no {}); expected a signature by {want}",
                    signature_path(&bundle).display()
                ),
                _ => {}
            }
            println!(
                "ok {}{}",
                job.bundle_id.map(|i| i.to_string()).unwrap_or_default(),
                job.signer
                    .map(|s| format!(" signed by {s}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(path: &Path, limits: &BundleLimits) -> Result<()> {
    let (bundle, archive) = if path.is_dir() {
        let b = Bundle::from_dir(path, limits)?;
        let bytes = b.pack();
        (b, bytes)
    } else {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let b = Bundle::unpack(&bytes, limits)
            .with_context(|| format!("{} is not a valid bundle", path.display()))?;
        (b, bytes)
    };
    let id = BundleId::of(&archive);
    let b = |n: u64| ByteSize(n).display().iec().to_string();
    println!("id          {id}");
    println!("archive     {}", b(archive.len() as u64));
    println!("unpacked    {}", b(bundle.unpacked_size()));
    println!(
        "component   {} ({})",
        bundle.manifest.job.entry,
        b(bundle.component.len() as u64)
    );
    if !path.is_dir() {
        match source::check_signature(path, &id) {
            Ok(Some(s)) => println!("signer      {s} (verified)"),
            Ok(None) => println!("signer      unsigned"),
            Err(e) => println!("signer      INVALID: {e:#}"),
        }
    }
    for (name, data) in &bundle.assets {
        println!("asset       {name} ({})", b(data.len() as u64));
    }
    let runtime = Runtime::new(SandboxConfig {
        pooled_jobs: 0,
        ..SandboxConfig::default()
    })?;
    let (kind, imports) = netmind_host::list_imports(&runtime, &bundle.component)?;
    println!("kind        {kind:?}");
    for i in imports {
        println!("import      {i}");
    }
    println!("\n{}", bundle.manifest.to_toml());
    Ok(())
}
