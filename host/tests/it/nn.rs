//! wasi-nn through the sandbox, on every backend: real ONNX models (made by
//! `conformance/onnx/make_models.py`), real guests (`samples/onnx-run`,
//! `samples/digits`, `samples/image-classify`, the `nn_probe` test program),
//! outputs compared with ONNX Runtime's own by `conformance/onnx/compare.py`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use netmind_host::nn::{Backend, Encoding, NnHost, NnLimits, OrtBackend, Target, TractBackend};
use netmind_host::{JobLimits, LimitKind, Runtime, SandboxConfig, Termination};
use netmind_samples_artifacts as art;

use crate::{Ran, run_job};

/// Runs `wasm` in `rt`, loaded through the runtime's on-disk cache (so that
/// each runtime's jobs use its own wasi-nn service).
fn run_with(
    rt: &Runtime,
    wasm: &str,
    args: &[&str],
    limits: JobLimits,
    tweak: impl FnOnce(&mut netmind_host::RunOptions),
) -> Ran {
    let job = rt
        .load(&std::fs::read(wasm).expect("artifact"))
        .expect("load");
    run_job(&job, args, limits, tweak)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python(script: &str, args: &[&Path]) -> std::process::Output {
    Command::new("python3")
        .arg(workspace().join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 {script}: {e} (install python3 and scripts/requirements-ml.txt)")
        })
}

/// The conformance cases, generated once per test binary.
fn cases() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("netmind-onnx-cases-")
            .tempdir()
            .unwrap()
            .keep();
        let out = python(
            "conformance/onnx/make_models.py",
            &[&dir, Path::new("--bench")],
        );
        assert!(
            out.status.success(),
            "make_models.py failed (pip install -r scripts/requirements-ml.txt):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// The ONNX Runtime library (`$ORT_DYLIB_PATH` or the installed onnxruntime wheel's).
/// Required when `NETMIND_REQUIRE_ORT` is set (as in CI).
fn ort_path() -> Option<PathBuf> {
    let found = OrtBackend::discover();
    if found.is_none() {
        assert!(
            std::env::var_os("NETMIND_REQUIRE_ORT").is_none(),
            "NETMIND_REQUIRE_ORT is set but no ONNX Runtime library was found"
        );
        eprintln!("ONNX Runtime not found: testing tract only");
    }
    found
}

fn ort_backend() -> Option<Arc<dyn Backend>> {
    static ORT: OnceLock<Option<Arc<OrtBackend>>> = OnceLock::new();
    ORT.get_or_init(|| {
        ort_path().map(|p| Arc::new(OrtBackend::load(Some(&p), 1).expect("ONNX Runtime loads")))
    })
    .clone()
    .map(|b| b as Arc<dyn Backend>)
}

/// Compiled components shared by this file's runtimes, as a host's cache is.
fn cache_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("netmind-nn-cache-")
            .tempdir()
            .unwrap()
            .keep()
    })
}

fn nn_runtime(backend: Arc<dyn Backend>, limits: NnLimits) -> (Runtime, Arc<NnHost>) {
    let host = Arc::new(NnHost::new(vec![backend], limits));
    let rt = Runtime::with_nn(
        SandboxConfig {
            pooled_jobs: 2,
            cache_dir: Some(cache_dir().to_path_buf()),
            ..SandboxConfig::default()
        },
        host.clone(),
    )
    .expect("runtime");
    (rt, host)
}

/// One runtime per backend, default limits.
fn backends() -> &'static [(&'static str, Runtime)] {
    static ALL: OnceLock<Vec<(&'static str, Runtime)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = vec![(
            "tract",
            nn_runtime(Arc::new(TractBackend::default()), NnLimits::default()).0,
        )];
        if let Some(ort) = ort_backend() {
            all.push(("onnxruntime", nn_runtime(ort, NnLimits::default()).0));
        }
        all
    })
}

fn limits() -> JobLimits {
    JobLimits {
        memory_bytes: 256 << 20,
        wall_time: Duration::from_secs(60),
        cpu_time: Duration::from_secs(60),
        ..JobLimits::default()
    }
}

fn run_in(
    rt: &Runtime,
    wasm: &str,
    args: &[&str],
    input: Option<&Path>,
    assets: Option<&Path>,
) -> Ran {
    run_with(rt, wasm, args, limits(), |o| {
        o.input_dir = input.map(Path::to_path_buf);
        o.assets_dir = assets.map(Path::to_path_buf);
    })
}

fn assert_ok(ran: &Ran, what: &str) {
    assert!(
        ran.report.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        ran.report.termination,
        ran.stdout(),
        String::from_utf8_lossy(&ran.report.stderr)
    );
}

#[test]
fn conformance_models_match_onnxruntime_on_every_backend() {
    let cases = cases();
    for (backend, rt) in backends() {
        for case in ["mlp", "cnn", "multi_io", "int64", "mixed"] {
            let dir = cases.join(case);
            let ran = run_in(rt, art::ONNX_RUN, &[], Some(&dir), None);
            assert_ok(&ran, &format!("{case} on {backend}"));
            let cmp = python(
                "conformance/onnx/compare.py",
                &[&dir.join("expected"), ran.out.path()],
            );
            assert!(
                cmp.status.success(),
                "{case} on {backend} differs from ONNX Runtime:\n{}{}",
                String::from_utf8_lossy(&cmp.stdout),
                String::from_utf8_lossy(&cmp.stderr)
            );
            assert_eq!(ran.report.nn.computes, 1, "{case} on {backend}");
            assert_eq!(ran.report.nn.models.len(), 1);
            assert_eq!(&ran.report.nn.models[0].backend, backend);
        }
        // Inputs by position instead of by name.
        let dir = cases.join("multi_io");
        let ran = run_in(rt, art::ONNX_RUN, &["--positional"], Some(&dir), None);
        assert_ok(&ran, &format!("positional multi_io on {backend}"));
        let cmp = python(
            "conformance/onnx/compare.py",
            &[&dir.join("expected"), ran.out.path()],
        );
        assert!(cmp.status.success(), "positional multi_io on {backend}");
    }
}

#[test]
fn digits_sample_reports_the_accuracy_of_its_trained_model() {
    let assets = workspace().join("samples/digits/assets");
    let expected = std::fs::read_to_string(assets.join("expected-accuracy.txt")).unwrap();
    for (backend, rt) in backends() {
        let ran = run_in(rt, art::DIGITS, &[], None, Some(&assets));
        assert_ok(&ran, backend);
        assert!(
            ran.stdout()
                .contains(&format!("accuracy: {}", expected.trim())),
            "{backend}: {}",
            ran.stdout()
        );
    }
}

#[test]
fn image_classifier_labels_pngs() {
    let sample = workspace().join("samples/image-classify");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sample.join("input/expected.json")).unwrap())
            .unwrap();
    for (backend, rt) in backends() {
        let ran = run_in(
            rt,
            art::IMAGE_CLASSIFY,
            &[],
            Some(&sample.join("input")),
            Some(&sample.join("assets")),
        );
        assert_ok(&ran, backend);
        let labels: serde_json::Value =
            serde_json::from_slice(&std::fs::read(ran.out.path().join("labels.json")).unwrap())
                .unwrap();
        let expected = expected.as_object().unwrap();
        assert_eq!(expected.len(), 10);
        for (file, want) in expected {
            assert_eq!(
                labels[file]["label"].as_str().unwrap(),
                [
                    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"
                ][want["predicted"].as_u64().unwrap() as usize],
                "{file} on {backend}"
            );
        }
    }
}

#[test]
fn registered_models_load_once_and_are_shared_by_jobs() {
    let model_path = workspace().join("samples/digits/assets/digits.onnx");
    let model = std::fs::read(&model_path).unwrap();
    let assets = workspace().join("samples/digits/assets");
    let mut all: Vec<Arc<dyn Backend>> = vec![Arc::new(TractBackend::default())];
    all.extend(ort_backend());
    for backend in all {
        let (rt, host) = nn_runtime(backend, NnLimits::default());
        let registered = host
            .register("digits", &model, Encoding::Onnx, Target::Cpu)
            .unwrap();
        assert!(registered.load_us > 0);
        for _ in 0..2 {
            let ran = run_in(
                &rt,
                art::DIGITS,
                &["--model-name", "digits"],
                None,
                Some(&assets),
            );
            assert_ok(&ran, "digits by name");
            let used = &ran.report.nn.models;
            assert_eq!(used.len(), 1);
            assert_eq!(used[0].name.as_deref(), Some("digits"));
            assert_eq!(
                used[0].sha256, registered.sha256,
                "receipt names the model by hash"
            );
            assert_eq!(used[0].load_us, 0, "a registered model is never reloaded");
        }
        assert_eq!(host.registered().len(), 1);
    }
}

/// Runs `nn_probe CASE` against the conformance `mlp` model and returns its one line.
fn probe(rt: &Runtime, args: &[&str]) -> String {
    let ran = run_in(rt, art::TP_NN_PROBE, args, Some(&cases().join("mlp")), None);
    assert_ok(&ran, &format!("nn_probe {args:?}"));
    ran.stdout().trim().to_string()
}

#[test]
fn bad_calls_get_the_right_wasi_nn_error_and_a_message_that_says_what_to_fix() {
    let table: &[(&[&str], &str)] = &[
        (&["ok"], "ok y[4, 8]"),
        (&["positional"], "ok y[4, 8]"),
        (&["garbage"], "error InvalidArgument: "),
        (&["truncated"], "error InvalidArgument: "),
        (
            &["encoding"],
            "error InvalidEncoding: this host has no backend for tensorflow models; it serves: onnx",
        ),
        (
            &["gpu"],
            "error UnsupportedOperation: this host cannot run onnx models on the gpu",
        ),
        (
            &["builders"],
            "error InvalidArgument: an onnx graph is built from exactly one builder",
        ),
        (
            &["by-name", "nope"],
            "error NotFound: no model is registered under the name 'nope'; this host has no registered models",
        ),
        (
            &["shape"],
            "error InvalidArgument: input 'x' f32 [4, 16] cannot take a tensor of dimensions [16, 4]",
        ),
        (
            &["type"],
            "error InvalidArgument: input 'x' f32 [4, 16] takes f32 elements but was given i64",
        ),
        (&["bf16"], "takes f32 elements but was given bf16"),
        (
            &["missing"],
            "error InvalidArgument: input 'x' f32 [4, 16] was not given",
        ),
        (
            &["unknown-name"],
            "error InvalidArgument: the model has no input named 'features'",
        ),
        (&["short-data"], "needs 256 bytes of data but was given 10"),
        (
            &["huge"],
            "error TooLarge: input 'x': a f32 tensor of dimensions [65536, 65536, 16]",
        ),
        (
            &["tensor-count"],
            "error TooLarge: input 'x': a job may hold at most 256 tensors at once",
        ),
        (
            &["deep"],
            "error InvalidArgument: input 'x': a tensor has at most 16 dimensions, not 17",
        ),
        (
            &["long-name"],
            "error InvalidArgument: an input name is 2000 bytes; names are at most 1024",
        ),
        (
            &["many-contexts"],
            "error TooLarge: a job may hold at most 16 execution contexts at once",
        ),
        (
            &["orphans"],
            "error TooLarge: a job may hold at most 8 graphs at once",
        ),
        (
            &["many-graphs"],
            "error TooLarge: a job may hold at most 8 graphs at once",
        ),
    ];
    for (backend, rt) in backends() {
        for (args, want) in table {
            let line = probe(rt, args);
            assert!(
                line.contains(want),
                "{backend} {args:?}:\n  got  {line}\n  want {want}"
            );
        }
    }
}

#[test]
fn wasip1_modules_get_wasi_nn_through_the_same_interface() {
    for (backend, rt) in backends() {
        for (args, want) in [
            (&["ok"][..], "ok y[4, 8]"),
            (
                &["shape"],
                "error InvalidArgument: input 'x' f32 [4, 16] cannot take a tensor",
            ),
        ] {
            let ran = run_in(
                rt,
                art::TP_P1_NN_PROBE,
                args,
                Some(&cases().join("mlp")),
                None,
            );
            assert_ok(&ran, backend);
            assert!(ran.stdout().contains(want), "{backend}: {}", ran.stdout());
        }
    }
}

#[test]
fn models_over_the_size_limit_are_refused() {
    let (rt, _) = nn_runtime(
        Arc::new(TractBackend::default()),
        NnLimits {
            max_model_bytes: 1024,
            ..NnLimits::default()
        },
    );
    let line = probe(&rt, &["ok"]);
    assert!(
        line.contains("error TooLarge: the model is") && line.contains("at most 1.0 KiB"),
        "{line}"
    );
}

#[test]
fn host_memory_held_in_tensors_counts_against_the_job_memory_limit() {
    for (backend, rt) in backends() {
        let ran = run_with(
            rt,
            art::TP_NN_PROBE,
            &["memory"],
            limits_with_memory(64 << 20),
            |o| {
                o.input_dir = Some(cases().join("mlp"));
            },
        );
        assert_eq!(
            ran.report.termination,
            Termination::LimitExceeded(LimitKind::Memory(64 << 20)),
            "{backend}: {}",
            ran.stdout()
        );
        assert!(ran.report.peak_memory <= 64 << 20);
        assert!(ran.stdout().contains("holding 8 MiB"), "{}", ran.stdout());
    }
}

fn limits_with_memory(bytes: u64) -> JobLimits {
    JobLimits {
        memory_bytes: bytes,
        ..limits()
    }
}

#[test]
fn inference_time_is_bounded_per_call_per_job_and_by_the_wall_clock() {
    let bench = cases().join("bench_mlp");
    let mut all: Vec<(&str, Arc<dyn Backend>)> = vec![("tract", Arc::new(TractBackend::default()))];
    if let Some(ort) = ort_backend() {
        all.push(("onnxruntime", ort));
    }
    for (name, backend) in all {
        // Per call.
        let (rt, _) = nn_runtime(
            backend.clone(),
            NnLimits {
                call_timeout: Duration::from_micros(1),
                ..NnLimits::default()
            },
        );
        let ran = run_with(&rt, art::TP_NN_PROBE, &["slow", "1"], limits(), |o| {
            o.input_dir = Some(bench.clone());
        });
        assert_ok(&ran, name);
        assert!(
            ran.stdout()
                .contains("error Timeout: inference ran past this host's limit"),
            "{name}: {}",
            ran.stdout()
        );
        // Per job.
        let (rt, _) = nn_runtime(
            backend.clone(),
            NnLimits {
                job_time: Duration::from_millis(100),
                ..NnLimits::default()
            },
        );
        let ran = run_with(&rt, art::TP_NN_PROBE, &["slow", "100000"], limits(), |o| {
            o.input_dir = Some(bench.clone());
        });
        assert!(
            ran.stdout().contains("error Timeout: "),
            "{name}: {}",
            ran.stdout()
        );
        assert!(ran.report.nn.time < Duration::from_secs(5), "{name}");
        // The job's wall time, while inside inference.
        let (rt, _) = nn_runtime(backend, NnLimits::default());
        let wall = Duration::from_millis(300);
        let ran = run_with(
            &rt,
            art::TP_NN_PROBE,
            &["slow", "100000"],
            JobLimits {
                wall_time: wall,
                ..limits()
            },
            |o| o.input_dir = Some(bench.clone()),
        );
        assert_eq!(
            ran.report.termination,
            Termination::LimitExceeded(LimitKind::WallTime(wall)),
            "{name}"
        );
        assert!(
            ran.report.wall_time < Duration::from_secs(3),
            "{name}: {:?}",
            ran.report.wall_time
        );
    }
}

#[test]
fn a_missing_or_wrong_onnx_runtime_library_is_reported_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let err = OrtBackend::load(Some(&dir.path().join("libonnxruntime.so")), 1).unwrap_err();
    assert!(
        err.contains("does not exist") && err.contains("pip install onnxruntime"),
        "{err}"
    );

    let not_a_library = dir.path().join("libonnxruntime.so.1.22.0");
    std::fs::write(&not_a_library, b"not ELF").unwrap();
    let err = OrtBackend::load(Some(&not_a_library), 1).unwrap_err();
    assert!(
        err.contains("cannot load") && err.contains("as ONNX Runtime"),
        "{err}"
    );

    // A real shared library that is not ONNX Runtime, and one that claims to be an old one.
    for (source, want) in [
        (
            "int not_ort(void) { return 0; }",
            "is not ONNX Runtime (it has no OrtGetApiBase)",
        ),
        (
            "typedef struct { const void* (*get_api)(unsigned); const char* (*version)(void); } base_t;\n\
             static const void* get_api(unsigned v) { (void)v; return 0; }\n\
             static const char* version(void) { return \"1.10.0\"; }\n\
             static const base_t base = { get_api, version };\n\
             const base_t* OrtGetApiBase(void) { return &base; }",
            "ONNX Runtime 1.10.0",
        ),
    ] {
        let c = dir.path().join("fake.c");
        let so = dir.path().join("libfake.so");
        std::fs::write(&c, source).unwrap();
        let built = Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&so)
            .arg(&c)
            .status()
            .expect("cc");
        assert!(built.success());
        let err = OrtBackend::load(Some(&so), 1).unwrap_err();
        assert!(err.contains(want), "{err}");
        if want.contains("1.10.0") {
            assert!(
                err.contains("too old: this host needs 1.22 or newer"),
                "{err}"
            );
        }
    }
}

#[test]
fn wasip1_modules_on_the_witx_abi_get_wasi_nn_under_the_same_limits() {
    let mlp = cases().join("mlp");
    let witx = |rt: &Runtime, args: &[&str], limits: JobLimits| {
        run_with(rt, art::TP_P1_NN_WITX, args, limits, |o| {
            o.input_dir = Some(mlp.clone());
        })
    };
    for (backend, rt) in backends() {
        let ran = witx(rt, &["ok"], limits());
        assert_ok(&ran, backend);
        // Softmax rows: 4 rows of 8 probabilities summing to 1 each.
        assert!(
            ran.stdout().contains("ok ok 128 bytes, sum 4.000"),
            "{backend}: {}",
            ran.stdout()
        );
        assert_eq!(ran.report.nn.models.len(), 1);
        assert_eq!(ran.report.nn.models[0].backend, *backend);
        // The ABI only has codes; the message goes to the job's stderr.
        for (args, code, message) in [
            (
                &["shape"][..],
                "Caller module passed an invalid argument",
                "wasi-nn: invalid-argument: input 'x' f32 [4, 16] cannot take a tensor of dimensions [16, 4]",
            ),
            (
                &["small-buffer"],
                "Too Large",
                "wasi-nn: too-large: output 0 is 128 bytes but the buffer holds 16",
            ),
            (
                &["garbage"],
                "Caller module passed an invalid argument",
                "wasi-nn: invalid-argument: ",
            ),
            (
                &["by-name", "nope"],
                "Not Found",
                "no model is registered under the name 'nope'",
            ),
            (
                &["compute-first"],
                "Caller module passed an invalid argument",
                "wasi-nn: invalid-argument: input 'x' f32 [4, 16] was not given",
            ),
            (
                &["no-output"],
                "Caller module passed an invalid argument",
                "wasi-nn: invalid-argument: there are no outputs yet: call compute first",
            ),
            (
                &["bad-output"],
                "Caller module passed an invalid argument",
                "wasi-nn: invalid-argument: output index 5 is out of range: the model has 1 outputs",
            ),
        ] {
            let ran = witx(rt, args, limits());
            assert_ok(&ran, backend);
            let stderr = String::from_utf8_lossy(&ran.report.stderr);
            assert!(
                ran.stdout().contains(&format!(
                    "{} error Backend Error: WASI-NN Backend Error: {code}",
                    args[0]
                )),
                "{backend} {args:?}: {}",
                ran.stdout()
            );
            assert!(stderr.contains(message), "{backend} {args:?}: {stderr}");
        }
    }
    let rt = &backends()[0].1;
    // Sleeping in poll_oneoff is held to the wall-time limit.
    let wall = Duration::from_millis(300);
    let ran = witx(
        rt,
        &["sleep"],
        JobLimits {
            wall_time: wall,
            ..limits()
        },
    );
    assert_eq!(
        ran.report.termination,
        Termination::LimitExceeded(LimitKind::WallTime(wall))
    );
    assert!(ran.report.wall_time < Duration::from_secs(3));
    // Wasm code is held to the CPU and memory limits as on the component path.
    let cpu = Duration::from_millis(200);
    let ran = witx(
        rt,
        &["spin"],
        JobLimits {
            cpu_time: cpu,
            ..limits()
        },
    );
    assert_eq!(
        ran.report.termination,
        Termination::LimitExceeded(LimitKind::CpuTime(cpu))
    );
    let ran = witx(rt, &["grow"], limits_with_memory(32 << 20));
    assert_eq!(
        ran.report.termination,
        Termination::LimitExceeded(LimitKind::Memory(32 << 20))
    );
    assert!(ran.report.peak_memory <= 32 << 20);
    // Open files are held to the handle limit.
    let ran = witx(
        rt,
        &["open-files"],
        JobLimits {
            handles: 64,
            ..limits()
        },
    );
    assert!(
        ran.report.termination == Termination::LimitExceeded(LimitKind::Handles(64))
            || ran.stdout().contains("open-files error"),
        "{}: {}",
        ran.report.termination,
        ran.stdout()
    );
}
