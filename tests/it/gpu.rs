//! `netmind host gpu` and GPU jobs through `netmind run`: a user's shader with `samples/wgsl-run`,
//! the early refusal of GPU jobs where no GPU can be used, and the GPU part of the summary.

use std::process::Command;

use crate::{netmind, stderr, stdout};

fn samples() -> std::path::PathBuf {
    std::path::Path::new(netmind_samples_artifacts::SAMPLES_DIR).to_path_buf()
}

/// `netmind` with no Vulkan driver and no GL: a host without any adapter.
fn netmind_without_gpu(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netmind"))
        .args(args)
        .env("VK_DRIVER_FILES", "/nonexistent.json")
        .env("VK_ICD_FILENAMES", "/nonexistent.json")
        .env("WGPU_BACKEND", "vulkan")
        .output()
        .expect("spawn netmind")
}

#[test]
fn host_gpu_lists_adapters_with_limits_and_a_measured_benchmark() {
    let o = netmind(&["host", "gpu", "--json", "--bench-n", "128"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let first = &list[0];
    assert!(
        first["name"].as_str().is_some_and(|n| !n.is_empty()),
        "{list}"
    );
    assert!(first["limits"].as_array().is_some_and(|l| !l.is_empty()));
    let bench = &first["benchmark"];
    assert!(
        bench["matmul_gflops"].as_f64().is_some_and(|g| g > 0.0),
        "{first}"
    );
    assert!(
        bench["bandwidth_gbps"].as_f64().is_some_and(|g| g > 0.0),
        "{first}"
    );

    let text = netmind(&["host", "gpu", "--no-bench"]);
    assert!(stdout(&text).contains("[0] "), "{}", stdout(&text));
    assert!(stdout(&text).contains("max_compute_invocations_per_workgroup"));

    let none = netmind_without_gpu(&["host", "gpu", "--no-bench"]);
    assert!(none.status.success(), "{}", stderr(&none));
    assert!(
        stdout(&none).contains("no GPU adapter"),
        "{}",
        stdout(&none)
    );
    let bad = netmind(&["host", "gpu", "--bench-n", "100"]);
    assert!(stderr(&bad).contains("multiple of 64"), "{}", stderr(&bad));
}

#[test]
fn wgsl_run_runs_a_users_shader_and_reports_gpu_use() {
    let out = tempfile::tempdir().unwrap();
    let summary = out.path().join("summary.json");
    let sample = samples().join("wgsl-run");
    let o = netmind(&[
        "run",
        sample.to_str().unwrap(),
        "--input",
        sample.join("example").to_str().unwrap(),
        "--output",
        out.path().join("out").to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("gpu          "), "{err}");
    assert!(err.contains("gpu hashes   "), "{err}");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert!(
        s["gpu"]["dispatches"].as_u64().is_some_and(|d| d >= 1),
        "{s}"
    );
    assert_eq!(
        s["gpu"]["hash_chain"].as_str().map(str::len),
        Some(64),
        "{s}"
    );
    assert!(
        s["gpu"]["peak_bytes"].as_u64().is_some_and(|b| b > 0),
        "{s}"
    );
}

#[test]
fn gpu_jobs_are_refused_early_where_no_gpu_can_be_used() {
    let sample = samples().join("wgsl-run");
    let input = sample.join("example");
    let args = [
        "run",
        sample.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ];
    let mut off = args.to_vec();
    off.extend(["--gpu", "off"]);
    let o = netmind(&off);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("needs a GPU"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--gpu off"), "{}", stderr(&o));

    let o = netmind_without_gpu(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no GPU adapter"), "{}", stderr(&o));
    assert!(stderr(&o).contains("mesa-vulkan-drivers"), "{}", stderr(&o));
}

/// A user's own shader (two entry points, a uniform, atomics, f32 and u32 buffers) through
/// `wgsl-run`, checked against NumPy (`conformance/gpu/wgsl_run.py`).
#[test]
fn wgsl_run_matches_numpy_on_a_users_job() {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/gpu/wgsl_run.py");
    let job = tempfile::tempdir().unwrap();
    let made = Command::new("python3")
        .arg(&script)
        .args(["make", job.path().to_str().unwrap()])
        .output()
        .expect("python3 with numpy (pip install -r scripts/requirements-test.txt)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let out = tempfile::tempdir().unwrap();
    let o = netmind(&[
        "run",
        samples().join("wgsl-run").to_str().unwrap(),
        "--input",
        job.path().to_str().unwrap(),
        "--output",
        out.path().join("out").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("2 dispatches"), "{}", stderr(&o));
    let cmp = Command::new("python3")
        .arg(&script)
        .args([
            "compare",
            job.path().join("expected").to_str().unwrap(),
            out.path().join("out").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        cmp.status.success(),
        "{}",
        String::from_utf8_lossy(&cmp.stdout)
    );
}

/// A replicated GPU job must give every host the same bytes: in
/// deterministic mode the job is not told the GPU's timing, so two runs'
/// outputs are identical (they are compared by hash), while a normal run
/// still reports the time the GPU worked.
#[test]
fn deterministic_gpu_runs_give_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let sample = samples().join("gpu-scan");
    let run = |name: &str, deterministic: bool| {
        let out = dir.path().join(name);
        let mut args = vec![
            "run",
            sample.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "-q",
            "--",
            "--n",
            "70000",
        ];
        if deterministic {
            args.insert(4, "--deterministic");
        }
        let o = netmind(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
        (std::fs::read(out.join("result.json")).unwrap(), report)
    };
    let (a, report) = run("a", true);
    let (b, _) = run("b", true);
    assert_eq!(report["value"]["gpu_ms"], 0.0, "{report}");
    assert_eq!(a, b, "deterministic runs differ");
    let (_, timed) = run("timed", false);
    assert!(
        timed["value"]["gpu_ms"].as_f64().is_some_and(|t| t > 0.0),
        "{timed}"
    );
}
