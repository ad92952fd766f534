//! Hostile guests: each test fails if the protection it checks is removed.

use std::io::ErrorKind;
use std::time::Duration;

use netmind_host::{JobLimits, LimitKind, Runtime, SandboxConfig, Termination};
use netmind_samples_artifacts as art;

use crate::{dir_is_empty, run, run_with, runtime, small_limits};

fn assert_limit(ran: &crate::Ran, want: LimitKind) {
    assert_eq!(
        ran.report.termination,
        Termination::LimitExceeded(want),
        "stdout: {}",
        ran.stdout()
    );
}

/// After any attack, the same runtime still runs a normal job.
fn host_still_healthy() {
    let ran = run(art::HELLO, &["still alive"]);
    assert_eq!(ran.report.termination, Termination::Exited(0));
}

#[test]
fn a_trap_is_reported_with_its_wasm_backtrace() {
    let ran = run(art::TP_TRAP, &["unreachable"]);
    match &ran.report.termination {
        Termination::Trapped { message, backtrace } => {
            assert!(message.contains("unreachable"), "{message}");
            let bt = backtrace.as_deref().expect("a backtrace");
            assert!(
                bt.contains("trap"),
                "frames name the guest's functions: {bt}"
            );
        }
        other => panic!("expected a trap, got {other}"),
    }
    host_still_healthy();
}

/// Runs `wasm MODE` with a 300 ms wall-time limit and checks it is stopped on time.
fn stopped_at_the_wall_clock_limit(wasm: &str, mode: &str) {
    let limits = JobLimits {
        wall_time: Duration::from_millis(300),
        ..small_limits()
    };
    let ran = run_with(runtime(), wasm, &[mode], limits, |_| {});
    assert_limit(&ran, LimitKind::WallTime(Duration::from_millis(300)));
    assert!(
        ran.report.wall_time < Duration::from_secs(2),
        "{mode}: {:?}",
        ran.report.wall_time
    );
}

#[test]
fn an_infinite_loop_hits_the_wall_clock_limit() {
    stopped_at_the_wall_clock_limit(art::TP_INFINITE_LOOP, "spin");
    host_still_healthy();
}

#[test]
fn a_job_sleeping_in_the_host_still_hits_the_wall_clock_limit() {
    stopped_at_the_wall_clock_limit(art::TP_INFINITE_LOOP, "sleep");
}

#[test]
fn preview1_modules_are_held_to_the_same_limits() {
    stopped_at_the_wall_clock_limit(art::TP_P1_INFINITE_LOOP, "spin");
    stopped_at_the_wall_clock_limit(art::TP_P1_INFINITE_LOOP, "sleep");
}

/// Runs `wasm MODE` and sets its cancel flag after 200 ms: it must stop
/// within a moment as `Cancelled`, long before its 30 s wall-time limit.
fn stopped_when_cancelled(wasm: &str, mode: &str) {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let setter = {
        let flag = flag.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    };
    let limits = JobLimits {
        wall_time: Duration::from_secs(30),
        cpu_time: Duration::from_secs(30),
        ..small_limits()
    };
    let ran = run_with(runtime(), wasm, &[mode], limits, |o| o.cancel = Some(flag));
    setter.join().unwrap();
    assert_eq!(ran.report.termination, Termination::Cancelled, "{mode}");
    assert!(
        ran.report.wall_time < Duration::from_secs(2),
        "{mode}: {:?}",
        ran.report.wall_time
    );
}

#[test]
fn a_cancelled_job_stops_at_once_whether_it_spins_or_sleeps() {
    stopped_when_cancelled(art::TP_INFINITE_LOOP, "spin");
    stopped_when_cancelled(art::TP_INFINITE_LOOP, "sleep");
    stopped_when_cancelled(art::TP_P1_INFINITE_LOOP, "spin");
    stopped_when_cancelled(art::TP_P1_INFINITE_LOOP, "sleep");
    host_still_healthy();
}

#[test]
fn a_paused_job_uses_no_cpu_and_its_pause_does_not_count_as_wall_time() {
    let pause = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let pause = pause.clone();
        std::thread::spawn(move || {
            // Runs 100 ms, pauses 1.5 s, then runs on until its 600 ms of wall time.
            std::thread::sleep(Duration::from_millis(100));
            pause.store(true, std::sync::atomic::Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(1500));
            pause.store(false, std::sync::atomic::Ordering::Relaxed);
        })
    };
    let limits = JobLimits {
        wall_time: Duration::from_millis(600),
        cpu_time: Duration::from_secs(30),
        ..small_limits()
    };
    let started = std::time::Instant::now();
    let ran = run_with(runtime(), art::TP_INFINITE_LOOP, &["spin"], limits, |o| {
        o.pause = Some(pause)
    });
    let elapsed = started.elapsed();
    flipper.join().unwrap();
    assert_limit(&ran, LimitKind::WallTime(Duration::from_millis(600)));
    assert!(
        elapsed >= Duration::from_millis(2000),
        "the pause held the job: {elapsed:?}"
    );
    assert!(
        ran.report.cpu_time < Duration::from_millis(1200),
        "no CPU while paused: {:?}",
        ran.report.cpu_time
    );
}

#[test]
fn an_infinite_loop_hits_the_cpu_time_limit() {
    let limits = JobLimits {
        cpu_time: Duration::from_millis(200),
        ..small_limits()
    };
    let ran = run_with(runtime(), art::TP_INFINITE_LOOP, &[], limits, |_| {});
    assert_limit(&ran, LimitKind::CpuTime(Duration::from_millis(200)));
    assert!(ran.report.cpu_time >= Duration::from_millis(200));
}

#[test]
fn an_infinite_loop_runs_out_of_fuel_exactly() {
    let fueled = Runtime::new(SandboxConfig {
        fuel: true,
        ..SandboxConfig::default()
    })
    .unwrap();
    let limits = JobLimits {
        fuel: Some(5_000_000),
        ..small_limits()
    };
    let ran = run_with(&fueled, art::TP_INFINITE_LOOP, &[], limits, |_| {});
    assert_limit(&ran, LimitKind::Fuel(5_000_000));
    assert_eq!(ran.report.fuel_consumed, Some(5_000_000));
}

#[test]
fn a_memory_bomb_stops_at_the_memory_limit() {
    let ran = run(art::TP_MEMORY_BOMB, &[]);
    assert_limit(&ran, LimitKind::Memory(64 << 20));
    assert!(
        ran.report.peak_memory <= 64 << 20,
        "{}",
        ran.report.peak_memory
    );
    assert!(ran.report.peak_memory > 32 << 20, "it did get most of it");
    host_still_healthy();
}

#[test]
fn unbounded_recursion_overflows_the_wasm_stack_not_the_host() {
    let ran = run(art::TP_RECURSION, &[]);
    assert_limit(&ran, LimitKind::Stack(1 << 20));
    // Rust also keeps big frames on a shadow stack in linear memory; overflowing
    // it is an out-of-bounds access, confined to the guest's own memory.
    let ran = run(art::TP_RECURSION, &["shadow"]);
    match &ran.report.termination {
        Termination::Trapped { message, .. } => {
            assert!(message.contains("out of bounds"), "{message}")
        }
        other => panic!("expected a trap, got {other}"),
    }
    host_still_healthy();
}

#[test]
fn a_stdout_flood_is_capped() {
    let limits = JobLimits {
        stdio_bytes: 64 << 10,
        ..small_limits()
    };
    let ran = run_with(runtime(), art::TP_STDOUT_FLOOD, &[], limits, |_| {});
    assert_limit(&ran, LimitKind::Stdout(64 << 10));
    assert!(ran.report.stdout.len() <= 64 << 10);
}

#[test]
fn one_huge_output_file_is_stopped_and_discarded() {
    let limits = JobLimits {
        output_bytes: 4 << 20,
        ..small_limits()
    };
    let ran = run_with(runtime(), art::TP_OUTPUT_BIG_FILE, &[], limits, |_| {});
    assert_limit(&ran, LimitKind::OutputBytes(4 << 20));
    assert!(ran.report.output_hash.is_none());
    assert!(
        dir_is_empty(ran.out.path()),
        "the partial output is removed"
    );
}

#[test]
fn a_million_small_files_are_stopped_and_discarded() {
    let limits = JobLimits {
        output_files: 200,
        ..small_limits()
    };
    let ran = run_with(runtime(), art::TP_OUTPUT_MANY_FILES, &[], limits, |_| {});
    assert_limit(&ran, LimitKind::OutputFiles(200));
    assert!(
        dir_is_empty(ran.out.path()),
        "the partial output is removed"
    );
    host_still_healthy();
}

#[test]
fn the_host_filesystem_is_unreachable() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-HOST-DATA").unwrap();
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("ok.txt"), "fine").unwrap();
    std::os::unix::fs::symlink(&secret, input.path().join("link")).unwrap();
    std::os::unix::fs::symlink("/etc", input.path().join("dirlink")).unwrap();
    let ran = run_with(runtime(), art::TP_ESCAPE_FS, &[], small_limits(), |o| {
        o.input_dir = Some(input.path().into());
    });
    let out = ran.stdout();
    assert!(!out.contains("LEAK"), "{out}");
    assert!(!out.contains("TOP-SECRET"), "{out}");
    assert!(
        !out.contains("root:"),
        "/etc/passwd must not be read: {out}"
    );
    assert!(
        out.matches("denied").count() >= 8,
        "every attempt ran and was denied: {out}"
    );
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "TOP-SECRET-HOST-DATA"
    );
    assert!(!input.path().join("x").exists(), "/input is read-only");
}

#[test]
fn sockets_are_denied() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let ran = run(art::TP_SOCKETS, &[&addr]);
    let out = ran.stdout();
    assert!(!out.contains("LEAK"), "{out}");
    assert!(out.matches("denied").count() >= 3, "{out}");
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the guest reached the host's listener: {other:?}"),
    }
}

#[test]
fn the_host_environment_is_invisible() {
    // The test process has PATH and HOME (and cargo's CARGO_* variables); none
    // may reach the guest, which sees only what the run gives it.
    assert!(std::env::var_os("PATH").is_some() && std::env::var_os("CARGO").is_some());
    let key = "CARGO";
    let ran = run_with(runtime(), art::TP_ENV_LEAK, &[key], small_limits(), |o| {
        o.env = vec![("ONLY_THIS".into(), "1".into())];
    });
    let out = ran.stdout();
    assert!(!out.contains("LEAK"), "{out}");
    assert!(out.contains("env ONLY_THIS=1"), "{out}");
    assert!(!out.contains("PATH="), "{out}");
    assert!(!out.contains("HOME="), "{out}");
    assert!(!out.contains("env CARGO="), "{out}");
    assert!(out.contains("denied: env CARGO"), "{out}");
}

#[test]
fn a_job_never_sees_memory_an_earlier_job_left_behind() {
    // The pooling allocator reuses slots and keeps pages resident; a reused
    // slot must still come back zeroed.
    let rt = Runtime::new(SandboxConfig::default()).unwrap();
    for _ in 0..3 {
        for mode in ["write", "read"] {
            let ran = run_with(&rt, art::TP_MEMORY_RESIDUE, &[mode], small_limits(), |_| {});
            let out = ran.stdout();
            assert_eq!(ran.report.termination, Termination::Exited(0), "{out}");
            if mode == "read" {
                assert!(out.starts_with("clean"), "{out}");
            }
        }
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn a_handle_bomb_stops_at_the_handle_limit_and_leaks_no_descriptor() {
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("f"), b"x").unwrap();
    let limits = JobLimits {
        handles: 256,
        ..small_limits()
    };
    let before = open_fds();
    let ran = run_with(runtime(), art::TP_HANDLE_BOMB, &[], limits, |o| {
        o.input_dir = Some(input.path().into());
    });
    assert!(!ran.stdout().contains("LEAK"), "{}", ran.stdout());
    assert_eq!(
        ran.report.termination,
        Termination::LimitExceeded(LimitKind::Handles(256)),
        "{}",
        ran.stdout()
    );
    // Other tests run in parallel threads and open files too; allow slack,
    // but nowhere near the 256 the job held.
    assert!(
        open_fds() < before + 64,
        "descriptors leaked: {before} -> {}",
        open_fds()
    );
    host_still_healthy();
}
