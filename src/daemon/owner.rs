//! The machine's owner comes first: the task that applies the idle policy
//! (stop offering; pause running jobs in place or hand them back to the
//! market), and the status file `netmind host status` reads.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy_primitives::B256;
use anyhow::{Context, Result};
use clap::Args;
use netmind_protocol::orders::Signed;
use netmind_protocol::work::Release;
use serde_json::{Value, json};

use super::Daemon;
use super::idle::{Idle, IdlePolicy, Load, Meter, Mode, OnBusy};
use crate::offer::ms_from_now;

/// The status file under the daemon's data directory.
pub(crate) const STATUS_FILE: &str = "status.json";

/// Measures the machine every `check-every` and yields to its owner when
/// they use it; writes the status file each time.
pub(crate) async fn keep_idle_policy(d: Arc<Daemon>, policy: IdlePolicy) {
    let every = policy.check_every;
    let mut meter = Meter::new(policy.enabled && policy.input_idle.is_some());
    let mut idle = Idle::new(policy);
    loop {
        let load = match tokio::task::spawn_blocking(move || (meter.measure(), meter)).await {
            Ok((load, m)) => {
                meter = m;
                load
            }
            Err(_) => return,
        };
        let ours = !d
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        let on_busy = idle.policy().on_busy;
        if let Some(mode) = idle.observe(load, ours, Instant::now()).cloned() {
            apply(&d, &mode, on_busy).await;
        }
        write_status(&d, idle.mode(), Some(load));
        tokio::time::sleep(every).await;
    }
}

/// Starts yielding (withdraw the offer; pause or hand back what runs) or
/// working again (offer; resume).
async fn apply(d: &Arc<Daemon>, mode: &Mode, on_busy: OnBusy) {
    match mode {
        Mode::Yielding { reason } => {
            eprintln!("the owner is using this machine ({reason}): no new work");
            d.yielding.store(true, Ordering::Relaxed);
            super::offers::withdraw(d, None).await;
            match on_busy {
                OnBusy::Pause => {
                    d.paused.store(true, Ordering::Relaxed);
                }
                OnBusy::HandBack => {
                    d.handing_back.store(true, Ordering::Relaxed);
                    for stop in d.running.lock().unwrap_or_else(|e| e.into_inner()).values() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
        Mode::Working => {
            eprintln!("the machine is idle again: offering and resuming");
            d.paused.store(false, Ordering::Relaxed);
            d.handing_back.store(false, Ordering::Relaxed);
            d.yielding.store(false, Ordering::Relaxed);
            d.freed.notify_one();
        }
    }
}

/// Hands `deal` back to the market (a signed release): another host runs it.
pub(crate) async fn hand_back(d: &Daemon, deal: B256) {
    let release = Release {
        host: d.signer.address(),
        deal,
        at: ms_from_now(Duration::ZERO),
    };
    let answer = match Signed::sign(release, &d.signer, &d.domain) {
        Ok(signed) => d
            .client
            .post(&format!("/v1/deals/{deal}/release"), &signed)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match answer {
        Ok(_) => eprintln!("deal {deal}: handed back to the market"),
        Err(e) => eprintln!("deal {deal}: cannot hand it back ({e}); its lease will lapse"),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Writes what the daemon is doing to `DATA/status.json` (atomically).
pub(crate) fn write_status(d: &Daemon, mode: &Mode, load: Option<Load>) {
    let running: Vec<String> = d
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .map(ToString::to_string)
        .collect();
    let status = json!({
        "pid": std::process::id(),
        "host": d.signer.address(),
        "market": d.client.base(),
        "updated": now_ms(),
        "mode": mode,
        "paused": d.paused.load(Ordering::Relaxed),
        "load": load,
        "slots": d.settings.slots,
        "free": d.slots.available_permits(),
        "running": running,
        "offers": d.standing().ids(),
        "price": d.settings.price.to_string(),
        "classes": d.settings.classes,
    });
    let path = d.data.join(STATUS_FILE);
    let tmp = d.data.join(format!("{STATUS_FILE}.tmp"));
    let written =
        std::fs::write(&tmp, status.to_string()).and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::warn!(%e, "cannot write {}", path.display());
    }
}

/// `netmind host status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The daemon's data directory (its `--data`).
    #[arg(long, default_value_os_t = super::default_data())]
    data: PathBuf,
    /// Print the status file's JSON.
    #[arg(long)]
    json: bool,
}

/// Shows what the daemon using `--data` is doing and why.
pub(crate) fn status(args: &StatusArgs) -> Result<ExitCode> {
    let path = args.data.join(STATUS_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no host daemon has run with data directory {} (no {STATUS_FILE}); start one with \
             `netmind host run`, or name its directory with --data",
            args.data.display()
        )
    })?;
    let s: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a status file", path.display()))?;
    let alive = s["pid"]
        .as_u64()
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
    let age = now_ms().saturating_sub(s["updated"].as_u64().unwrap_or(0));
    let fresh = alive && age < 30_000;
    if args.json {
        let mut s = s;
        s["alive"] = json!(fresh);
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(if fresh {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(3)
        });
    }
    if !fresh {
        println!(
            "not running: the daemon with data directory {} last wrote its status {} s ago",
            args.data.display(),
            age / 1000
        );
        return Ok(ExitCode::from(3));
    }
    let state = match s["mode"]["state"].as_str() {
        Some("yielding") => format!(
            "yielding to the owner: {}{}",
            s["mode"]["reason"].as_str().unwrap_or("busy"),
            if s["paused"] == true {
                " (running jobs paused)"
            } else {
                ""
            }
        ),
        _ => "working".to_owned(),
    };
    println!(
        "host     {} (pid {})",
        s["host"].as_str().unwrap_or("?"),
        s["pid"]
    );
    println!("market   {}", s["market"].as_str().unwrap_or("?"));
    println!("state    {state}");
    if let Some(cpu) = s["load"]["cpu"].as_f64() {
        let gpu = s["load"]["gpu"]
            .as_f64()
            .map_or("not reported".to_owned(), |g| format!("{:.0}%", g * 100.0));
        println!("load     other programs {:.0}% CPU; GPU {gpu}", cpu * 100.0);
    }
    if let Some(ago) = s["load"]["input"].as_u64() {
        println!("input    the owner's last keyboard or mouse input {ago} s ago");
    }
    println!(
        "slots    {} free of {} in {} at {}/s",
        s["free"],
        s["slots"],
        s["classes"]
            .as_array()
            .map(|c| c
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_else(|| "?".into()),
        s["price"].as_str().unwrap_or("?")
    );
    let offers = s["offers"].as_array().cloned().unwrap_or_default();
    if offers.is_empty() {
        println!("offer    none standing");
    }
    for o in offers {
        println!("offer    {}", o.as_str().unwrap_or("?"));
    }
    let running = s["running"].as_array().cloned().unwrap_or_default();
    if running.is_empty() {
        println!("running  nothing");
    }
    for r in running {
        println!("running  deal {}", r.as_str().unwrap_or("?"));
    }
    Ok(ExitCode::SUCCESS)
}
