//! Sandbox benchmarks, each a ratio or a figure against a baseline measured in
//! this same process:
//!
//! 1. a trivial job in a warm host, instantiate to teardown (median, jobs/s);
//! 2. the CPU-bound sample (f32 matmul 512×512) in the sandbox vs the same
//!    Rust code compiled natively, on the same input;
//! 3. cold start of the largest sample component from the on-disk cache in a
//!    fresh runtime (as a second host process would).
//!
//! Run with: `cargo bench -p netmind-host --bench sandbox`

use std::time::{Duration, Instant};

use netmind_host::{JobLimits, RunOptions, Runtime, SandboxConfig, Termination};
use netmind_samples_artifacts as art;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pct(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn limits() -> JobLimits {
    JobLimits {
        memory_bytes: 256 << 20,
        ..JobLimits::default()
    }
}

fn trivial_job() {
    let rt = Runtime::new(SandboxConfig::default()).unwrap();
    let job = rt
        .load(&std::fs::read(art::TP_ECHO_STDIN).unwrap())
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        args: vec!["trivial".into()],
        output_dir: out.path().into(),
        limits: limits(),
        ..RunOptions::default()
    };
    for _ in 0..500 {
        job.run(&opts).unwrap();
    }
    let mut times = Vec::with_capacity(5000);
    for _ in 0..5000 {
        let t = Instant::now();
        let r = job.run(&opts).unwrap();
        times.push(t.elapsed());
        assert_eq!(r.termination, Termination::Exited(0));
    }
    let m = median(times.clone());
    println!(
        "trivial job (warm, pooling={}): median {:.1} µs, p90 {:.1} µs, {:.0} jobs/s on one core",
        rt.pooling(),
        us(m),
        us(pct(&times, 0.9)),
        1.0 / m.as_secs_f64()
    );
}

fn matmul() {
    const N: usize = 512;
    let scratch = tempfile::tempdir().unwrap();
    let rt = Runtime::new(SandboxConfig::default()).unwrap();
    let job = rt.load(&std::fs::read(art::MATMUL).unwrap()).unwrap();
    let (mut native, mut sandbox) = (Vec::new(), Vec::new());
    // Alternate native and sandboxed runs so drift in machine speed hits both.
    for i in 0..21 {
        let t = Instant::now();
        let a = netmind_sample_matmul::matrix(N, 1);
        let b = netmind_sample_matmul::matrix(N, 2);
        let c = netmind_sample_matmul::matmul(&a, &b, N);
        let expected = netmind_sample_matmul::checksum(&c);
        // The job writes its product too.
        let bytes: Vec<u8> = c.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(scratch.path().join("c.f32"), bytes).unwrap();
        let native_time = t.elapsed();

        let out = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            args: vec!["matmul".into(), N.to_string(), "1".into()],
            output_dir: out.path().into(),
            limits: limits(),
            ..RunOptions::default()
        };
        let t = Instant::now();
        let r = job.run(&opts).unwrap();
        let sandbox_time = t.elapsed();
        assert_eq!(r.termination, Termination::Exited(0));
        let stdout = String::from_utf8_lossy(&r.stdout);
        assert!(
            stdout.contains(&format!("checksum {expected}")),
            "same result as native: {stdout}"
        );
        if i > 0 {
            native.push(native_time);
            sandbox.push(sandbox_time);
        }
    }
    let (n, s) = (median(native), median(sandbox));
    println!(
        "matmul f32 {N}x{N} (generate + multiply + write 1 MiB), 20 alternating runs: native {:.1} ms, sandbox {:.1} ms, ratio {:.2}x",
        ms(n),
        ms(s),
        s.as_secs_f64() / n.as_secs_f64()
    );
}

fn cold_start() {
    let (name, path) = [
        ("hello", art::HELLO),
        ("sha256", art::SHA256),
        ("blur", art::BLUR),
        ("matmul", art::MATMUL),
        ("wordfreq", art::WORDFREQ),
    ]
    .into_iter()
    .max_by_key(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
    .unwrap();
    let wasm = std::fs::read(path).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        cache_dir: Some(cache.path().into()),
        ..SandboxConfig::default()
    };
    let t = Instant::now();
    let first = Runtime::new(config.clone()).unwrap().load(&wasm).unwrap();
    let compile = t.elapsed();
    assert!(!first.from_cache());
    drop(first);
    let mut load = Vec::new();
    let mut engine = Vec::new();
    let mut start_to_exit = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let rt = Runtime::new(config.clone()).unwrap();
        engine.push(t.elapsed());
        let job = rt.load(&wasm).unwrap();
        let loaded = job.load_time();
        assert!(job.from_cache());
        let out = tempfile::tempdir().unwrap();
        let r = job
            .run(&RunOptions {
                args: vec![name.into()],
                output_dir: out.path().into(),
                limits: limits(),
                ..RunOptions::default()
            })
            .unwrap();
        start_to_exit.push(t.elapsed());
        load.push(loaded);
        assert!(matches!(r.termination, Termination::Exited(_)));
    }
    println!(
        "cold start of `{name}` ({:.1} MB): compile {:.0} ms; from the disk cache: load {:.2} ms (engine creation {:.2} ms), fresh engine through first run's exit {:.2} ms",
        wasm.len() as f64 / 1e6,
        ms(compile),
        ms(median(load)),
        ms(median(engine)),
        ms(median(start_to_exit))
    );
}

fn main() {
    // `cargo test --benches` passes `--bench`-less args; run only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with `cargo bench -p netmind-host --bench sandbox`");
        return;
    }
    trivial_job();
    matmul();
    cold_start();
}
