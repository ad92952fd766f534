//! `netmind run` and `netmind host info` with wasi-nn: a user's own ONNX model through
//! `samples/onnx-run` on both backends, registered models, and ONNX Runtime checks at start-up.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{netmind, stderr, stdout};

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python(script: &str, args: &[&Path]) -> std::process::Output {
    Command::new("python3")
        .arg(workspace().join(script))
        .args(args)
        .output()
        .expect("python3 (pip install -r scripts/requirements-ml.txt)")
}

/// The conformance models, made once.
fn cases() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("netmind-cli-onnx-")
            .tempdir()
            .unwrap()
            .keep();
        let o = python("conformance/onnx/make_models.py", &[&dir]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        dir
    })
}

fn ort_library() -> String {
    let o = python("scripts/onnxruntime-lib.py", &[]);
    assert!(
        o.status.success(),
        "onnxruntime is not installed: {}",
        stderr(&o)
    );
    stdout(&o).trim().to_string()
}

fn onnx_run() -> String {
    workspace().join("samples/onnx-run").display().to_string()
}

#[test]
fn onnx_run_runs_a_users_model_on_both_backends_with_outputs_matching_onnxruntime() {
    let lib = ort_library();
    let sample = onnx_run();
    for case in ["cnn", "multi_io"] {
        let input = cases().join(case);
        for backend in [
            vec!["--nn-backend", "tract"],
            vec!["--nn-backend", "onnxruntime", "--onnxruntime", lib.as_str()],
        ] {
            let out = tempfile::tempdir().unwrap();
            let mut args = vec!["run", sample.as_str(), "--input"];
            args.push(input.to_str().unwrap());
            args.extend(["--output", out.path().to_str().unwrap()]);
            args.extend(backend.iter().copied());
            let o = netmind(&args);
            assert!(o.status.success(), "{case} {backend:?}: {}", stderr(&o));
            let err = stderr(&o);
            assert!(err.contains("wasi-nn      1 inference(s)"), "{err}");
            assert!(
                err.contains(&format!("on {} (loaded in", backend[1])),
                "{backend:?}: {err}"
            );
            let cmp = python(
                "conformance/onnx/compare.py",
                &[&input.join("expected"), out.path()],
            );
            assert!(cmp.status.success(), "{case} {backend:?}: {}", stdout(&cmp));
        }
    }
}

#[test]
fn models_registered_on_the_command_line_are_used_by_name() {
    let digits = workspace().join("samples/digits");
    let model = format!("digits={}", digits.join("assets/digits.onnx").display());
    let o = netmind(&[
        "run",
        digits.to_str().unwrap(),
        "--nn-backend",
        "tract",
        "--model",
        &model,
        "--",
        "--model-name",
        "digits",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("accuracy: 0.97"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("(registered `digits`)"),
        "{}",
        stderr(&o)
    );

    let o = netmind(&["run", digits.to_str().unwrap(), "--model", "nonsense"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not NAME=FILE"), "{}", stderr(&o));
}

#[test]
fn host_info_lists_the_wasi_nn_backends_and_checks_onnx_runtime_at_start_up() {
    let lib = ort_library();
    let model = format!(
        "digits={}",
        workspace()
            .join("samples/digits/assets/digits.onnx")
            .display()
    );
    let o = netmind(&[
        "host",
        "info",
        "--json",
        "--nn-backend",
        "onnxruntime",
        "--onnxruntime",
        &lib,
        "--model",
        &model,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let caps: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let nn = &caps["wasi_nn"];
    assert_eq!(nn["encodings"], serde_json::json!(["onnx"]));
    assert_eq!(nn["backends"][0]["name"], "onnxruntime");
    assert!(
        nn["backends"][0]["version"]
            .as_str()
            .unwrap()
            .starts_with("1.")
    );
    assert_eq!(nn["backends"][0]["targets"], serde_json::json!(["cpu"]));
    assert_eq!(nn["models"][0]["name"], "digits");
    assert_eq!(nn["models"][0]["sha256"].as_str().unwrap().len(), 64);
    assert!(caps["cpu_cores"].as_u64().unwrap() >= 1);

    let o = netmind(&["host", "info", "--nn-backend", "tract"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("wasi-nn      tract 0.23 (onnx on cpu)"),
        "{}",
        stdout(&o)
    );

    // Asked for ONNX Runtime that is not there: a clear error at start-up, exit 2.
    let o = netmind(&[
        "host",
        "info",
        "--nn-backend",
        "onnxruntime",
        "--onnxruntime",
        "/nonexistent/libonnxruntime.so",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/nonexistent/libonnxruntime.so does not exist; install it with `pip install onnxruntime`"),
        "{}",
        stderr(&o)
    );
}
