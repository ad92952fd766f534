//! What this host's GPU can offer: the adapter's name, its wgpu features,
//! the GPU memory a job may hold, and a measured benchmark score.
//!
//! Measured once at start by a child `netmind host gpu --json` (the same
//! probe and benchmark as that command), so that a driver that misbehaves
//! while probing takes down the child, not the daemon.

use std::time::Duration;

use serde_json::Value;

/// The GPU part of an offer.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct GpuCaps {
    /// The adapter's name (empty: no GPU offered).
    pub(crate) model: String,
    /// GPU memory a job may hold, bytes.
    pub(crate) vram: u64,
    /// wgpu feature names.
    pub(crate) features: Vec<String>,
    /// The benchmark score: f32 matmul MFLOPS (GFLOPS × 1000), 0 when unmeasured.
    pub(crate) score: u64,
}

/// How long probing and benchmarking may take.
const PROBE_TIME: Duration = Duration::from_secs(60);

/// Probes the adapter `choice` names (an index or part of its name; the
/// first, the best, by default); no GPU when `enabled` is false, when none
/// is found, or when the probe fails (said on stderr).
pub(crate) async fn detect(enabled: bool, choice: Option<&str>, vram: u64) -> GpuCaps {
    if !enabled {
        return GpuCaps::default();
    }
    let Ok(exe) = std::env::current_exe() else {
        return GpuCaps::default();
    };
    let run = tokio::process::Command::new(exe)
        .args(["host", "gpu", "--json", "--bench-n", "256"])
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(PROBE_TIME, run).await {
        Ok(Ok(out)) if out.status.success() => out,
        Ok(Ok(out)) => {
            eprintln!(
                "warning: the GPU probe failed ({}); offering no GPU: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return GpuCaps::default();
        }
        Ok(Err(e)) => {
            eprintln!("warning: cannot run the GPU probe: {e}; offering no GPU");
            return GpuCaps::default();
        }
        Err(_) => {
            eprintln!("warning: the GPU probe took over {PROBE_TIME:?}; offering no GPU");
            return GpuCaps::default();
        }
    };
    let reports: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    pick(&reports, choice, vram)
}

/// The report `choice` names, as offer capabilities.
fn pick(reports: &[Value], choice: Option<&str>, vram: u64) -> GpuCaps {
    let found = match choice {
        None => reports.first(),
        Some(c) => match c.parse::<u64>() {
            Ok(i) => reports.iter().find(|r| r["index"].as_u64() == Some(i)),
            Err(_) => {
                let c = c.to_lowercase();
                reports.iter().find(|r| {
                    r["name"]
                        .as_str()
                        .is_some_and(|n| n.to_lowercase().contains(&c))
                })
            }
        },
    };
    let Some(r) = found else {
        return GpuCaps::default();
    };
    GpuCaps {
        model: r["name"].as_str().unwrap_or_default().to_owned(),
        vram,
        features: r["features"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect(),
        score: r["benchmark"]["matmul_gflops"]
            .as_f64()
            .map_or(0, |g| (g * 1000.0).round() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reports() -> Vec<Value> {
        serde_json::from_str(
            r#"[{"index":0,"name":"NVIDIA H200","features":["TIMESTAMP_QUERY"],
                  "benchmark":{"matmul_n":256,"matmul_gflops":1234.5678}},
                 {"index":1,"name":"llvmpipe (LLVM 19)","features":[]}]"#,
        )
        .unwrap()
    }

    #[test]
    fn the_named_or_first_adapter_is_offered_with_its_score() {
        let first = pick(&reports(), None, 1 << 30);
        assert_eq!(first.model, "NVIDIA H200");
        assert_eq!(first.score, 1_234_568);
        assert_eq!(first.features, ["TIMESTAMP_QUERY"]);
        assert_eq!(first.vram, 1 << 30);
        let soft = pick(&reports(), Some("LLVMPIPE"), 1 << 30);
        assert_eq!((soft.model.as_str(), soft.score), ("llvmpipe (LLVM 19)", 0));
        assert_eq!(pick(&reports(), Some("1"), 0).model, "llvmpipe (LLVM 19)");
        assert_eq!(pick(&reports(), Some("7"), 0), GpuCaps::default());
        assert_eq!(pick(&[], None, 0), GpuCaps::default());
    }
}
