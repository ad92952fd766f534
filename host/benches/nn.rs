//! wasi-nn benchmarks, each a ratio against a baseline measured in this same process:
//!
//! 1. inference through the sandbox (a job that runs N computes on a registered model,
//!    tensors copied in and out through wasi-nn) vs the same backend called natively
//!    on the same model and input, for tract and for ONNX Runtime;
//! 2. tract against ONNX Runtime, native, side by side;
//! 3. the first inference of a new job on a registered (warm) model vs on a model the
//!    job loads from its own bytes (cold).
//!
//! Models: the `bench_mlp` (784-512-512-10, batch 64) and `bench_cnn` ([8,3,32,32], three
//! conv layers) cases of `conformance/onnx/make_models.py --bench`.
//!
//! Run with: `cargo bench -p netmind-host --bench nn` (ONNX Runtime from `$ORT_DYLIB_PATH`
//! or the installed `onnxruntime` wheel; without it only tract is measured).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netmind_host::nn::{
    Backend, Encoding, NnHost, NnLimits, OrtBackend, Target, Tensor, TractBackend,
};
use netmind_host::{JobLimits, RunOptions, Runtime, SandboxConfig};
use netmind_samples_artifacts as art;

const ROUNDS: usize = 7;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The input the `nn_probe` guest builds: element i is i/10.
fn input(dims: &[u32]) -> Tensor {
    let n: u32 = dims.iter().product();
    let values: Vec<f32> = (0..n).map(|i| i as f32 / 10.0).collect();
    Tensor::from_f32(dims, &values)
}

struct Case {
    name: &'static str,
    dir: PathBuf,
    dims: Vec<u32>,
    /// Computes per measurement.
    n: u32,
}

impl Case {
    fn dims_arg(&self) -> String {
        self.dims
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

struct Sandboxed {
    rt: Runtime,
    job: netmind_host::Job,
}

impl Sandboxed {
    fn new(backend: Arc<dyn Backend>, model: &[u8]) -> Self {
        let host = NnHost::new(vec![backend], NnLimits::default());
        host.register("bench", model, Encoding::Onnx, Target::Cpu)
            .unwrap();
        let rt = Runtime::with_nn(SandboxConfig::default(), Arc::new(host)).unwrap();
        let job = rt.load(&std::fs::read(art::TP_NN_PROBE).unwrap()).unwrap();
        Self { rt, job }
    }

    fn run(&self, args: &[&str], input_dir: &Path) -> Duration {
        let out = tempfile::tempdir().unwrap();
        let r = self
            .job
            .run(&RunOptions {
                args: std::iter::once("nn_probe")
                    .chain(args.iter().copied())
                    .map(String::from)
                    .collect(),
                input_dir: Some(input_dir.to_path_buf()),
                output_dir: out.path().into(),
                limits: JobLimits {
                    memory_bytes: 1 << 30,
                    wall_time: Duration::from_secs(600),
                    cpu_time: Duration::from_secs(600),
                    ..JobLimits::default()
                },
                ..RunOptions::default()
            })
            .unwrap();
        let stdout = String::from_utf8_lossy(&r.stdout);
        assert!(
            r.success() && stdout.contains(" ok "),
            "{}: {stdout}",
            r.termination
        );
        let _ = &self.rt;
        r.wall_time
    }
}

/// Per-inference time natively and through the sandbox, alternating rounds.
fn sandbox_vs_native(label: &str, backend: &Arc<dyn Backend>, case: &Case) -> f64 {
    let model = std::fs::read(case.dir.join("model.onnx")).unwrap();
    let native_model = backend.load(&model, Target::Cpu).unwrap();
    let mut session = native_model.session().unwrap();
    let x = input(&case.dims);
    let far = Instant::now() + Duration::from_secs(3600);
    let sandboxed = Sandboxed::new(backend.clone(), &model);
    let n = case.n.to_string();
    let args = ["bench", "bench", n.as_str(), &case.dims_arg()];
    // Warm both up.
    session.run(vec![x.clone()], far).unwrap();
    sandboxed.run(&args, &case.dir);
    let (mut native, mut sandbox, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..case.n {
            std::hint::black_box(session.run(vec![x.clone()], far).unwrap());
        }
        let nat = ms(t.elapsed()) / f64::from(case.n);
        let sb = ms(sandboxed.run(&args, &case.dir)) / f64::from(case.n);
        native.push(nat);
        sandbox.push(sb);
        ratios.push(sb / nat);
    }
    let (nat, sb, ratio) = (median(native), median(sandbox), median(ratios));
    println!(
        "{label:<12} {:<10} native {nat:8.3} ms  sandbox {sb:8.3} ms  ratio {ratio:.3}",
        case.name
    );
    nat
}

/// First inference of a new job: registered model vs loading the job's own bytes.
fn warm_vs_cold(label: &str, backend: &Arc<dyn Backend>, case: &Case) {
    let model = std::fs::read(case.dir.join("model.onnx")).unwrap();
    let sandboxed = Sandboxed::new(backend.clone(), &model);
    let dims = case.dims_arg();
    let warm_args = ["bench", "bench", "1", dims.as_str()];
    let cold_args = ["bench-bytes", "1", dims.as_str()];
    sandboxed.run(&warm_args, &case.dir);
    sandboxed.run(&cold_args, &case.dir);
    let (mut warm, mut cold) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        warm.push(ms(sandboxed.run(&warm_args, &case.dir)));
        cold.push(ms(sandboxed.run(&cold_args, &case.dir)));
    }
    let (w, c) = (median(warm), median(cold));
    println!(
        "{label:<12} {:<10} first inference in a new job: registered {w:8.3} ms, loaded from bytes {c:8.3} ms ({:.1}x)",
        case.name,
        c / w
    );
}

fn ort() -> Option<Arc<dyn Backend>> {
    let path = OrtBackend::discover()?;
    match OrtBackend::load(Some(&path), 1) {
        Ok(b) => Some(Arc::new(b)),
        Err(e) => {
            eprintln!("ONNX Runtime unavailable: {e}");
            None
        }
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new("python3")
        .arg(workspace().join("conformance/onnx/make_models.py"))
        .arg(dir.path())
        .arg("--bench")
        .output()
        .expect("python3");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let cases = [
        Case {
            name: "bench_mlp",
            dir: dir.path().join("bench_mlp"),
            dims: vec![64, 784],
            n: 50,
        },
        Case {
            name: "bench_cnn",
            dir: dir.path().join("bench_cnn"),
            dims: vec![8, 3, 32, 32],
            n: 20,
        },
    ];
    let mut backends: Vec<(&str, Arc<dyn Backend>)> =
        vec![("tract", Arc::new(TractBackend::default()))];
    if let Some(o) = ort() {
        backends.push(("onnxruntime", o));
    }
    println!(
        "-- inference through the sandbox vs the same backend called natively (per inference, median of {ROUNDS})"
    );
    let mut native = Vec::new();
    for (label, b) in &backends {
        for case in &cases {
            native.push((*label, case.name, sandbox_vs_native(label, b, case)));
        }
    }
    if backends.len() > 1 {
        println!("-- tract vs ONNX Runtime, native, one thread");
        for case in &cases {
            let t = native
                .iter()
                .find(|(l, c, _)| *l == "tract" && *c == case.name)
                .map(|x| x.2);
            let o = native
                .iter()
                .find(|(l, c, _)| *l == "onnxruntime" && *c == case.name)
                .map(|x| x.2);
            if let (Some(t), Some(o)) = (t, o) {
                println!(
                    "{:<10} tract {t:8.3} ms  onnxruntime {o:8.3} ms  tract/onnxruntime {:.2}",
                    case.name,
                    t / o
                );
            }
        }
    }
    println!("-- warm (registered) vs cold (loaded from the job's bytes) model");
    for (label, b) in &backends {
        for case in &cases {
            warm_vs_cold(label, b, case);
        }
    }
}
