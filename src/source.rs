//! Where a job comes from: a bundle file, a bundle directory or a bare .wasm.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use netmind_protocol::bundle::{Bundle, BundleId, BundleLimits};
use netmind_protocol::manifest::{MANIFEST_FILE, Manifest};
use netmind_protocol::signing::{BundleSignature, signature_path};

/// A job ready to hand to the sandbox.
#[derive(Debug)]
pub(crate) struct JobSource {
    pub(crate) name: String,
    pub(crate) manifest: Option<Manifest>,
    pub(crate) wasm: Vec<u8>,
    /// Host directory holding the bundle's assets, if it has any.
    pub(crate) assets_dir: Option<PathBuf>,
    pub(crate) bundle_id: Option<BundleId>,
    pub(crate) signer: Option<String>,
    /// Keeps extracted assets alive for the run.
    _assets_tmp: Option<tempfile::TempDir>,
}

/// Reads `path` as a directory with `netmind.toml`, a `.wasm` file, or a packed bundle.
pub(crate) fn load(path: &Path, limits: &BundleLimits) -> Result<JobSource> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
    if meta.is_dir() {
        if !path.join(MANIFEST_FILE).exists() {
            bail!(
                "{} has no {MANIFEST_FILE}; a bundle directory needs one (see samples/hello/{MANIFEST_FILE})",
                path.display()
            );
        }
        let bundle = Bundle::from_dir(path, limits)?;
        let assets = path.join("assets");
        return Ok(JobSource {
            name: bundle.manifest.job.name.clone(),
            assets_dir: (!bundle.assets.is_empty()).then_some(assets),
            manifest: Some(bundle.manifest),
            wasm: bundle.component,
            bundle_id: None,
            signer: None,
            _assets_tmp: None,
        });
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(b"\0asm") {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("job")
            .to_string();
        return Ok(JobSource {
            name,
            manifest: None,
            wasm: bytes,
            assets_dir: None,
            bundle_id: None,
            signer: None,
            _assets_tmp: None,
        });
    }
    let id = BundleId::of(&bytes);
    let bundle = Bundle::unpack(&bytes, limits)
        .with_context(|| format!("{} is not a valid bundle", path.display()))?;
    let signer = check_signature(path, &id)?;
    let (assets_dir, tmp) = if bundle.assets.is_empty() {
        (None, None)
    } else {
        let tmp = tempfile::Builder::new()
            .prefix("netmind-assets-")
            .tempdir()?;
        for (rel, data) in &bundle.assets {
            let dest = tmp.path().join(rel);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&dest, data)?;
        }
        (Some(tmp.path().to_path_buf()), Some(tmp))
    };
    Ok(JobSource {
        name: bundle.manifest.job.name.clone(),
        manifest: Some(bundle.manifest),
        wasm: bundle.component,
        assets_dir,
        bundle_id: Some(id),
        signer,
        _assets_tmp: tmp,
    })
}

/// Verifies `<bundle>.sig` when present; returns the signer's address.
pub(crate) fn check_signature(bundle_path: &Path, id: &BundleId) -> Result<Option<String>> {
    let sig_path = signature_path(bundle_path);
    if !sig_path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&sig_path)
        .with_context(|| format!("cannot read {}", sig_path.display()))?;
    let sig = BundleSignature::from_json(&text)
        .with_context(|| format!("{} is not a bundle signature", sig_path.display()))?;
    let signer = sig
        .verify(id)
        .with_context(|| format!("signature {} rejected", sig_path.display()))?;
    Ok(Some(signer.to_string()))
}
