//! `netmind bundle pack|inspect|verify` and `netmind wallet`.

use crate::{keystore, netmind, pack, sample, stderr, stdout};

#[test]
fn pack_is_deterministic_and_prints_the_sha256_id() {
    let (tmp, dir) = sample("hello");
    let a = tmp.path().join("a.nmb");
    let b = tmp.path().join("b.nmb");
    let oa = pack(&dir, &a, &[]);
    assert!(oa.status.success(), "{}", stderr(&oa));
    let ob = pack(&dir, &b, &[]);
    assert!(ob.status.success());
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(bytes, std::fs::read(&b).unwrap(), "same input, same bytes");
    let id = stdout(&oa).trim().to_string();
    assert_eq!(id, netmind_protocol::BundleId::of(&bytes).to_string());
    assert_eq!(id, stdout(&ob).trim());
}

#[test]
fn inspect_shows_manifest_id_sizes_and_imports() {
    let (tmp, dir) = sample("hello");
    let file = tmp.path().join("h.nmb");
    assert!(pack(&dir, &file, &[]).status.success());
    let o = netmind(&["bundle", "inspect", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for want in [
        "id ",
        "archive",
        "component",
        "import      wasi:cli/",
        "[job]",
        "name = \"hello\"",
        "unsigned",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn signed_bundles_verify_and_forgeries_are_rejected() {
    let (tmp, dir) = sample("hello");
    let (ks, pw, address) = keystore(tmp.path());
    let file = tmp.path().join("h.nmb");
    let o = pack(
        &dir,
        &file,
        &[
            "--key",
            ks.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = netmind(&[
        "bundle",
        "verify",
        file.to_str().unwrap(),
        "--signer",
        &address,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&address), "{}", stdout(&o));
    let o = netmind(&["bundle", "inspect", file.to_str().unwrap()]);
    assert!(stdout(&o).contains(&format!("{address} (verified)")));

    // Someone else's key: the signature is valid, but not by the expected signer.
    let other = tempfile::tempdir().unwrap();
    let (_, _, other_addr) = keystore(other.path());
    let o = netmind(&[
        "bundle",
        "verify",
        file.to_str().unwrap(),
        "--signer",
        &other_addr,
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not by"), "{}", stderr(&o));

    // A forged claim: rewrite the signer field to another address.
    let sig_path = tmp.path().join("h.nmb.sig");
    let sig = std::fs::read_to_string(&sig_path).unwrap();
    let lower = address.to_lowercase();
    let forged = sig
        .replace(&address, &other_addr)
        .replace(&lower, &other_addr.to_lowercase());
    assert_ne!(sig, forged);
    std::fs::write(&sig_path, forged).unwrap();
    let o = netmind(&["bundle", "verify", file.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("forged"), "{}", stderr(&o));

    // Running a bundle whose signature does not check out is refused too.
    let o = netmind(&["run", file.to_str().unwrap()]);
    assert!(!o.status.success());
}

#[test]
fn a_tampered_bundle_no_longer_matches_its_signature() {
    let (tmp, dir) = sample("hello");
    let (ks, pw, _) = keystore(tmp.path());
    let file = tmp.path().join("h.nmb");
    assert!(
        pack(
            &dir,
            &file,
            &[
                "--key",
                ks.to_str().unwrap(),
                "--password-file",
                pw.to_str().unwrap()
            ],
        )
        .status
        .success()
    );
    // Repack a changed manifest under the old signature.
    let manifest = dir.join("netmind.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("version = \"0.1.0\"", "version = \"6.6.6\""),
    )
    .unwrap();
    let sig = std::fs::read(tmp.path().join("h.nmb.sig")).unwrap();
    assert!(pack(&dir, &file, &[]).status.success());
    std::fs::write(tmp.path().join("h.nmb.sig"), sig).unwrap();
    let o = netmind(&["bundle", "verify", file.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("signature"), "{}", stderr(&o));
}

#[test]
fn bad_bundles_get_one_clear_error() {
    let (tmp, dir) = sample("hello");
    let file = tmp.path().join("h.nmb");
    assert!(pack(&dir, &file, &[]).status.success());
    let bytes = std::fs::read(&file).unwrap();

    let cut = tmp.path().join("cut.nmb");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = netmind(&["bundle", "verify", cut.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("truncated or corrupt"),
        "{}",
        stderr(&o)
    );

    let junk = tmp.path().join("junk.nmb");
    std::fs::write(&junk, b"this is not a bundle at all").unwrap();
    let o = netmind(&["bundle", "inspect", junk.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));

    // Unknown manifest fields are errors that name the field.
    let manifest = dir.join("netmind.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}\n[extra]\nmemroy = 1\n")).unwrap();
    let o = pack(&dir, &file, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("extra"), "{}", stderr(&o));

    // A missing entry component says how to build it.
    std::fs::write(&manifest, text).unwrap();
    std::fs::remove_file(dir.join("hello.wasm")).unwrap();
    let o = netmind(&["bundle", "pack", dir.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("hello.wasm"), "{}", stderr(&o));
}

#[test]
fn help_explains_every_command() {
    let o = netmind(&["--help"]);
    assert!(o.status.success());
    for cmd in ["run", "bundle", "wallet"] {
        assert!(stdout(&o).contains(cmd));
    }
    let o = netmind(&["run", "--help"]);
    for flag in [
        "--input",
        "--output",
        "--memory",
        "--timeout",
        "--fuel",
        "--deterministic",
    ] {
        assert!(stdout(&o).contains(flag), "run --help lacks {flag}");
    }
}
