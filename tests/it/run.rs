//! `netmind run`: the local sandbox from the command line.

use crate::{netmind, pack, sample, stderr, stdout};

#[test]
fn runs_a_sample_directory_and_prints_a_summary() {
    let (tmp, dir) = sample("hello");
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("note.txt"), "hi").unwrap();
    let out = tmp.path().join("out");
    let o = netmind(&[
        "run",
        dir.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--",
        "world",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("world"),
        "job stdout streams through: {}",
        stdout(&o)
    );
    let err = stderr(&o);
    for want in [
        "status       exited successfully",
        "wall time",
        "cpu time",
        "peak memory",
        "output hash ",
    ] {
        assert!(err.contains(want), "summary lacks {want:?}:\n{err}");
    }
    assert!(out.join("hello.txt").exists());
}

#[test]
fn runs_a_packed_bundle_and_a_bare_wasm_file() {
    let (tmp, dir) = sample("hello");
    let file = tmp.path().join("h.nmb");
    assert!(pack(&dir, &file, &[]).status.success());
    let o = netmind(&["run", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("bundle   "), "{}", stderr(&o));
    let o = netmind(&[
        "run",
        dir.join("hello.wasm").to_str().unwrap(),
        "--",
        "bare",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("bare"));
}

#[test]
fn deterministic_runs_print_the_same_output_hash() {
    let (tmp, dir) = sample("hello");
    let hash = |n: &str| {
        let summary = tmp.path().join(format!("{n}.json"));
        let o = netmind(&[
            "run",
            dir.to_str().unwrap(),
            "--deterministic",
            "--quiet",
            "--output",
            tmp.path().join(n).to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
        v["output_sha256"].as_str().unwrap().to_string()
    };
    assert_eq!(hash("a"), hash("b"));
}

#[test]
fn failures_exit_non_zero_with_one_line_naming_the_cause() {
    let art = netmind_samples_artifacts::TP_INFINITE_LOOP;
    let o = netmind(&["run", art, "--timeout", "300ms", "--quiet"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("error: job stopped: wall-time limit of 300ms exceeded"),
        "{}",
        stderr(&o)
    );

    let o = netmind(&["run", art, "--fuel", "1000000", "--quiet"]);
    assert!(
        stderr(&o).contains("fuel limit of 1000000 exhausted"),
        "{}",
        stderr(&o)
    );

    let o = netmind(&[
        "run",
        netmind_samples_artifacts::TP_MEMORY_BOMB,
        "--memory",
        "32MiB",
        "--quiet",
    ]);
    assert!(
        stderr(&o).contains("memory limit of 32.0 MiB exceeded"),
        "{}",
        stderr(&o)
    );

    let o = netmind(&[
        "run",
        netmind_samples_artifacts::TP_TRAP,
        "--quiet",
        "--",
        "unreachable",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("error: job trapped:"), "{}", stderr(&o));

    let o = netmind(&["run", netmind_samples_artifacts::TP_UNKNOWN_IMPORT]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("netmind:evil/backdoor"),
        "{}",
        stderr(&o)
    );

    let o = netmind(&["run", "Cargo.toml"]);
    assert!(!o.status.success());
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
}

#[test]
fn a_second_process_loads_the_compiled_job_from_the_disk_cache() {
    let (tmp, dir) = sample("hello");
    let cache = tmp.path().join("cache");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_netmind"))
            .args(["run", dir.to_str().unwrap()])
            .env("NETMIND_CACHE_DIR", &cache)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(stderr(&first).contains("compiled"), "{}", stderr(&first));
    let second = run();
    assert!(second.status.success());
    assert!(
        stderr(&second).contains("from cache"),
        "{}",
        stderr(&second)
    );
}

#[test]
fn bundle_assets_are_visible_at_assets() {
    let (tmp, dir) = sample("hello");
    std::fs::create_dir(dir.join("assets")).unwrap();
    std::fs::write(dir.join("assets/model.bin"), b"weights").unwrap();
    // From the directory, and from the packed bundle (assets extracted).
    let file = tmp.path().join("h.nmb");
    assert!(pack(&dir, &file, &[]).status.success());
    for target in [dir, file] {
        let o = netmind(&["run", target.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stdout(&o).contains("assets (1):\n  model.bin"),
            "{}",
            stdout(&o)
        );
    }
}
