//! What a well-behaved job sees and gets.

use netmind_host::{Error, RunOptions, Runtime, SandboxConfig, Termination, WasmKind};
use netmind_samples_artifacts as art;

use crate::{run, run_with, runtime, small_limits};

#[test]
fn hello_component_sees_args_env_and_inputs_and_writes_outputs() {
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("a.txt"), b"hello input").unwrap();
    let ran = run_with(runtime(), art::HELLO, &["world"], small_limits(), |o| {
        o.env = vec![("GREETING".into(), "hi".into())];
        o.input_dir = Some(input.path().into());
    });
    assert_eq!(
        ran.report.termination,
        Termination::Exited(0),
        "{}",
        ran.stdout()
    );
    let out = ran.stdout();
    assert!(out.contains("world"), "args reach the job: {out}");
    assert!(out.contains("GREETING=hi"), "env reaches the job: {out}");
    assert!(out.contains("a.txt"), "inputs are listed: {out}");
    assert!(ran.out.path().join("hello.txt").exists());
    assert!(ran.out.path().join("result.json").exists());
    assert!(ran.report.output_hash.is_some());
    assert!(ran.report.output.entries >= 2);
    assert!(ran.report.peak_memory > 0);
    assert!(ran.report.progress.is_some(), "progress lines are parsed");
}

#[test]
fn plain_wasip1_core_modules_run_too() {
    let ran = run(art::HELLO_P1, &["p1"]);
    assert_eq!(
        ran.report.termination,
        Termination::Exited(0),
        "{}",
        ran.stdout()
    );
    assert!(ran.stdout().contains("p1"));
    let job = runtime()
        .load(&std::fs::read(art::HELLO_P1).unwrap())
        .unwrap();
    assert_eq!(job.kind(), WasmKind::Module);
}

#[test]
fn stdin_is_given_when_asked_and_closed_otherwise() {
    let ran = run_with(runtime(), art::TP_ECHO_STDIN, &[], small_limits(), |o| {
        o.stdin = Some(b"from stdin\n".to_vec());
    });
    assert_eq!(ran.report.termination, Termination::Exited(0));
    assert_eq!(ran.report.stdout, b"from stdin\n");
    let ran = run(art::TP_ECHO_STDIN, &[]);
    assert_eq!(ran.report.termination, Termination::Exited(0));
    assert!(ran.report.stdout.is_empty());
}

#[test]
fn samples_compute_real_results() {
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("abc.txt"), b"abc").unwrap();
    let ran = run_with(runtime(), art::SHA256, &[], small_limits(), |o| {
        o.input_dir = Some(input.path().into());
    });
    assert_eq!(ran.report.termination, Termination::Exited(0));
    let sums = std::fs::read_to_string(ran.out.path().join("SHA256SUMS")).unwrap();
    assert!(
        sums.contains("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        "{sums}"
    );

    let text = tempfile::tempdir().unwrap();
    std::fs::write(text.path().join("t.txt"), "the cat and the dog and THE end").unwrap();
    let ran = run_with(runtime(), art::WORDFREQ, &[], small_limits(), |o| {
        o.input_dir = Some(text.path().into());
    });
    assert_eq!(
        ran.report.termination,
        Termination::Exited(0),
        "{}",
        ran.stdout()
    );
    let json = std::fs::read_to_string(ran.out.path().join("wordfreq.json")).unwrap();
    assert!(json.contains("\"the\""), "{json}");
}

#[test]
fn deterministic_mode_gives_identical_output_hashes() {
    let det = Runtime::new(SandboxConfig {
        deterministic: true,
        ..SandboxConfig::default()
    })
    .unwrap();
    let a = run_with(&det, art::TP_DETERMINISM, &[], small_limits(), |_| {});
    let b = run_with(&det, art::TP_DETERMINISM, &[], small_limits(), |_| {});
    assert_eq!(
        a.report.termination,
        Termination::Exited(0),
        "{}",
        a.stdout()
    );
    assert_eq!(a.report.output_hash, b.report.output_hash);
    let text = std::fs::read_to_string(a.out.path().join("det.txt")).unwrap();
    assert!(text.contains("7fc00000"), "f32 NaNs are canonical: {text}");

    let c = run_with(&det, art::TP_DETERMINISM, &[], small_limits(), |o| {
        o.seed = 7
    });
    assert_ne!(
        a.report.output_hash, c.report.output_hash,
        "the seed matters"
    );

    // Without deterministic mode, clocks and random differ between runs.
    let x = run(art::TP_DETERMINISM, &[]);
    let y = run(art::TP_DETERMINISM, &[]);
    assert_ne!(x.report.output_hash, y.report.output_hash);
}

#[test]
fn compiled_components_are_cached_on_disk_across_runtimes() {
    let cache = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        cache_dir: Some(cache.path().into()),
        ..SandboxConfig::default()
    };
    let wasm = std::fs::read(art::HELLO).unwrap();
    let first = Runtime::new(config.clone()).unwrap().load(&wasm).unwrap();
    assert!(!first.from_cache());
    let second = Runtime::new(config.clone()).unwrap().load(&wasm).unwrap();
    assert!(second.from_cache(), "a second runtime must not recompile");

    // A different engine configuration does not reuse the entry.
    let fuel = Runtime::new(SandboxConfig {
        fuel: true,
        ..config.clone()
    })
    .unwrap();
    assert!(!fuel.load(&wasm).unwrap().from_cache());

    // A corrupt entry is discarded and recompiled, not trusted. (Entries are
    // written by rename, never in place: overwriting a mapped one would fault.)
    drop((first, second));
    for e in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(e.unwrap().path(), b"garbage").unwrap();
    }
    let third = Runtime::new(config).unwrap().load(&wasm).unwrap();
    assert!(!third.from_cache());
    let out = tempfile::tempdir().unwrap();
    let report = third
        .run(&RunOptions {
            args: vec!["hello".into()],
            output_dir: out.path().into(),
            limits: small_limits(),
            ..RunOptions::default()
        })
        .unwrap();
    assert_eq!(report.termination, Termination::Exited(0));
}

#[test]
fn bytes_that_are_not_webassembly_are_refused_clearly() {
    let err = runtime().load(b"#!/bin/sh\necho hi\n").unwrap_err();
    assert!(matches!(err, Error::NotWasm(_)), "{err}");
    let mut truncated = std::fs::read(art::HELLO).unwrap();
    truncated.truncate(truncated.len() / 2);
    let err = runtime().load(&truncated).unwrap_err();
    assert!(matches!(err, Error::Compile(_)), "{err}");
}

#[test]
fn imports_the_host_does_not_provide_are_refused_before_running() {
    let err = runtime()
        .load(&std::fs::read(art::TP_UNKNOWN_IMPORT).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedImport(_)), "{err}");
    assert!(err.to_string().contains("netmind:evil/backdoor"), "{err}");
    let err = runtime()
        .load(&std::fs::read(art::TP_P1_UNKNOWN_IMPORT).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedImport(_)), "{err}");
    assert!(
        err.to_string().contains("netmind_evil::open_sesame"),
        "{err}"
    );
}

#[test]
fn output_directory_must_start_empty() {
    let job = runtime().load(&std::fs::read(art::HELLO).unwrap()).unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("stale"), b"x").unwrap();
    let err = job
        .run(&RunOptions {
            output_dir: out.path().into(),
            ..RunOptions::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
}

#[test]
fn limits_above_the_host_maximum_are_refused() {
    let job = runtime().load(&std::fs::read(art::HELLO).unwrap()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut limits = small_limits();
    limits.memory_bytes = 64 << 30;
    let err = job
        .run(&RunOptions {
            output_dir: out.path().into(),
            limits,
            ..RunOptions::default()
        })
        .unwrap_err();
    assert!(matches!(err, Error::LimitTooLarge { .. }), "{err}");
}
