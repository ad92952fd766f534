//! The idle policy: a host is a gamer's machine first. When other programs
//! load its CPU (or its GPU, while no job of ours runs) past the configured
//! share, or (with `input-idle`) when its owner typed or moved the mouse
//! lately, the daemon stops offering and pauses what it runs, or hands it
//! back to the market; when the machine has been idle for `resume-after`,
//! it offers again and resumes.
//!
//! "Other programs" is everything but this daemon and its children (the
//! GPU workers of its jobs): measured from `/proc/stat` minus this process
//! tree's CPU time in `/proc/<pid>/stat`, as a share of all cores.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// A duration written as humans do (`2s`, `1m 30s`).
pub(crate) fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration ({e}); write e.g. `2s` or `1m`"
        ))
    })
}

/// What to do with running jobs when the owner uses the machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum OnBusy {
    /// Stop offering and pause running jobs in place (they use no CPU
    /// while paused; their wall time stops too); resume them later.
    #[default]
    Pause,
    /// Stop offering and hand running jobs back to the market at once, so
    /// another host runs them.
    HandBack,
}

/// The `[idle]` section of the host's config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct IdlePolicy {
    /// Whether the policy applies at all.
    pub(crate) enabled: bool,
    /// Other programs' CPU load (0–1 of all cores) above which the machine is busy.
    pub(crate) max_cpu: f64,
    /// Other programs' GPU load (0–1, where the driver reports it) above
    /// which the machine is busy; checked only while no job of ours runs.
    pub(crate) max_gpu: f64,
    /// The machine is busy while its owner gave input (keyboard, mouse)
    /// less than this long ago (`super::input`); off when absent.
    #[serde(deserialize_with = "some_duration")]
    pub(crate) input_idle: Option<Duration>,
    /// How often to measure.
    #[serde(deserialize_with = "duration")]
    pub(crate) check_every: Duration,
    /// How long the machine must stay idle before offering again.
    #[serde(deserialize_with = "duration")]
    pub(crate) resume_after: Duration,
    /// What happens to running jobs.
    pub(crate) on_busy: OnBusy,
}

impl Default for IdlePolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            max_cpu: 0.5,
            max_gpu: 0.3,
            input_idle: None,
            check_every: Duration::from_secs(2),
            resume_after: Duration::from_secs(60),
            on_busy: OnBusy::Pause,
        }
    }
}

/// One measurement of the machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub(crate) struct Load {
    /// Other programs' CPU load, 0–1 of all cores.
    pub(crate) cpu: f64,
    /// GPU load, 0–1, when the driver reports it.
    pub(crate) gpu: Option<f64>,
    /// Time since the owner's last input, when measured and known.
    #[serde(serialize_with = "seconds")]
    pub(crate) input: Option<Duration>,
}

fn seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&d.map(|d| d.as_secs()), s)
}

fn some_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// Whether the daemon works or yields to the owner.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub(crate) enum Mode {
    /// Offering and running.
    Working,
    /// The owner uses the machine.
    Yielding {
        /// Why, in words.
        reason: String,
    },
}

/// The policy's state between measurements.
#[derive(Debug)]
pub(crate) struct Idle {
    policy: IdlePolicy,
    mode: Mode,
    /// Since when the machine has been idle while yielding.
    calm_since: Option<Instant>,
}

impl Idle {
    pub(crate) fn new(policy: IdlePolicy) -> Self {
        Self {
            policy,
            mode: Mode::Working,
            calm_since: None,
        }
    }

    pub(crate) fn policy(&self) -> &IdlePolicy {
        &self.policy
    }

    pub(crate) fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Takes a measurement at `now` (`ours_running`: a job of ours runs, so
    /// the GPU's load may be ours); returns the mode when it changed.
    pub(crate) fn observe(
        &mut self,
        load: Load,
        ours_running: bool,
        now: Instant,
    ) -> Option<&Mode> {
        if !self.policy.enabled {
            return None;
        }
        let busy = if load.cpu > self.policy.max_cpu {
            Some(format!(
                "other programs use {:.0}% of the CPU (more than {:.0}%)",
                load.cpu * 100.0,
                self.policy.max_cpu * 100.0
            ))
        } else {
            match (load.gpu, load.input.zip(self.policy.input_idle)) {
                (Some(g), _) if !ours_running && g > self.policy.max_gpu => Some(format!(
                    "the GPU is {:.0}% busy (more than {:.0}%)",
                    g * 100.0,
                    self.policy.max_gpu * 100.0
                )),
                (_, Some((ago, need))) if ago < need => Some(format!(
                    "keyboard or mouse input {} ago (less than input-idle, {})",
                    humantime::format_duration(Duration::from_secs(ago.as_secs())),
                    humantime::format_duration(need)
                )),
                _ => None,
            }
        };
        match (&self.mode, busy) {
            (Mode::Working, Some(reason)) => {
                self.mode = Mode::Yielding { reason };
                self.calm_since = None;
                Some(&self.mode)
            }
            (Mode::Yielding { .. }, Some(reason)) => {
                self.calm_since = None;
                self.mode = Mode::Yielding { reason };
                None
            }
            (Mode::Yielding { .. }, None) => {
                let since = *self.calm_since.get_or_insert(now);
                if now.duration_since(since) >= self.policy.resume_after {
                    self.mode = Mode::Working;
                    self.calm_since = None;
                    Some(&self.mode)
                } else {
                    None
                }
            }
            (Mode::Working, None) => None,
        }
    }
}

/// Reads the machine's load from `/proc` (and the GPU's from sysfs), as
/// the difference between two readings.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    last: Option<(u64, u64)>,
    elapsed: Option<Instant>,
    /// Whether to measure input idle time too.
    input: bool,
}

impl Meter {
    /// A meter; `input`: also measure the time since the owner's last input.
    pub(crate) fn new(input: bool) -> Self {
        Self {
            input,
            ..Self::default()
        }
    }

    /// Other programs' CPU share since the last call (0 on the first), and
    /// the GPU's load where the driver reports it.
    pub(crate) fn measure(&mut self) -> Load {
        let now = (total_busy_ticks(), own_tree_ticks());
        let cpu = match (self.last, now) {
            (Some((b0, o0)), (Some(b1), o1)) => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
                let elapsed = self.elapsed.replace(Instant::now()).map(|t| t.elapsed());
                let secs = elapsed.map_or(0.0, |e| e.as_secs_f64());
                if secs <= 0.0 {
                    0.0
                } else {
                    let other = b1.saturating_sub(b0).saturating_sub(o1.saturating_sub(o0));
                    (other as f64 / ticks_per_second() / secs / cores).clamp(0.0, 1.0)
                }
            }
            _ => {
                self.elapsed = Some(Instant::now());
                0.0
            }
        };
        self.last = now.0.map(|b| (b, now.1));
        Load {
            cpu,
            gpu: gpu_busy(),
            input: self.input.then(super::input::since_last_input).flatten(),
        }
    }
}

fn ticks_per_second() -> f64 {
    100.0 // USER_HZ on Linux
}

/// Busy CPU ticks of the whole machine (`/proc/stat`, all but idle and iowait).
fn total_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    busy_of(stat.lines().next()?)
}

/// The busy ticks of `/proc/stat`'s `cpu` line.
fn busy_of(line: &str) -> Option<u64> {
    let fields: Vec<u64> = line
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    Some(total.saturating_sub(idle))
}

/// CPU ticks of this process and its descendants (user + system).
fn own_tree_ticks() -> u64 {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut parent = HashMap::new();
    let mut ticks = HashMap::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some((ppid, t)) = std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
        {
            parent.insert(pid, ppid);
            ticks.insert(pid, t);
        }
    }
    let mut ours = HashSet::from([me]);
    // Descendants: a few passes reach any depth a daemon makes.
    for _ in 0..4 {
        for (pid, ppid) in &parent {
            if ours.contains(ppid) {
                ours.insert(*pid);
            }
        }
    }
    ours.iter().filter_map(|p| ticks.get(p)).sum()
}

/// `(ppid, utime + stime)` from a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<(u32, u64)> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // After the command: state(0) ppid(1) ... utime(11) stime(12).
    Some((
        f.get(1)?.parse().ok()?,
        f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
    ))
}

/// The busiest GPU's load where the kernel driver reports it
/// (`/sys/class/drm/card*/device/gpu_busy_percent`: amdgpu, i915/xe).
fn gpu_busy() -> Option<f64> {
    let dir = std::fs::read_dir("/sys/class/drm").ok()?;
    dir.flatten()
        .filter_map(|e| {
            std::fs::read_to_string(e.path().join("device/gpu_busy_percent"))
                .ok()?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|p| p / 100.0)
        .reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> IdlePolicy {
        IdlePolicy {
            resume_after: Duration::from_secs(10),
            ..IdlePolicy::default()
        }
    }

    fn load(cpu: f64, gpu: Option<f64>) -> Load {
        Load {
            cpu,
            gpu,
            input: None,
        }
    }

    #[test]
    fn recent_input_yields_when_input_idle_is_set() {
        let t = Instant::now();
        let input = |secs| Load {
            input: Some(Duration::from_secs(secs)),
            ..load(0.0, None)
        };
        let mut off = Idle::new(policy());
        assert_eq!(off.observe(input(0), false, t), None, "not asked for");
        let mut idle = Idle::new(IdlePolicy {
            input_idle: Some(Duration::from_secs(300)),
            ..policy()
        });
        assert_eq!(idle.observe(input(301), false, t), None);
        let Some(Mode::Yielding { reason }) = idle.observe(input(12), false, t).cloned() else {
            panic!("input 12 s ago: {:?}", idle.mode())
        };
        assert!(
            reason.contains("input 12s ago (less than input-idle, 5m)"),
            "{reason}"
        );
        // Unknown input (no terminals, no logind) never makes it busy.
        let later = t + Duration::from_secs(20);
        assert_eq!(idle.observe(load(0.0, None), false, later), None);
        let later = later + Duration::from_secs(10);
        assert_eq!(
            idle.observe(load(0.0, None), false, later),
            Some(&Mode::Working)
        );
    }

    #[test]
    fn the_owner_using_the_cpu_yields_and_ten_calm_seconds_resume() {
        let t = Instant::now();
        let mut idle = Idle::new(policy());
        assert_eq!(idle.observe(load(0.2, None), false, t), None);
        let Some(Mode::Yielding { reason }) = idle.observe(load(0.8, None), false, t).cloned()
        else {
            panic!("busy: {:?}", idle.mode())
        };
        assert!(reason.contains("80% of the CPU"), "{reason}");
        // Calm, but not for long enough; then busy again restarts the wait.
        assert_eq!(
            idle.observe(load(0.1, None), false, t + Duration::from_secs(1)),
            None
        );
        assert_eq!(
            idle.observe(load(0.9, None), false, t + Duration::from_secs(5)),
            None
        );
        assert_eq!(
            idle.observe(load(0.1, None), false, t + Duration::from_secs(6)),
            None
        );
        assert_eq!(
            idle.observe(load(0.1, None), false, t + Duration::from_secs(15)),
            None
        );
        assert_eq!(
            idle.observe(load(0.1, None), false, t + Duration::from_secs(16)),
            Some(&Mode::Working)
        );
    }

    #[test]
    fn gpu_load_counts_only_while_no_job_of_ours_runs() {
        let t = Instant::now();
        let mut idle = Idle::new(policy());
        assert_eq!(idle.observe(load(0.0, Some(0.9)), true, t), None, "ours");
        assert!(matches!(
            idle.observe(load(0.0, Some(0.9)), false, t),
            Some(Mode::Yielding { reason }) if reason.contains("GPU is 90% busy")
        ));
    }

    #[test]
    fn a_disabled_policy_never_yields() {
        let mut idle = Idle::new(IdlePolicy {
            enabled: false,
            ..policy()
        });
        assert_eq!(
            idle.observe(load(1.0, Some(1.0)), false, Instant::now()),
            None
        );
        assert_eq!(idle.mode(), &Mode::Working);
    }

    #[test]
    fn proc_readings_parse() {
        assert_eq!(busy_of("cpu  100 5 50 1000 20 1 2 3 0 0"), Some(161));
        assert_eq!(busy_of("intr 1 2 3"), None);
        let stat = "1234 (a (weird) name) S 77 1 1 0 -1 4194560 1 0 0 0 40 2 0 0 20 0 1 0";
        assert_eq!(parse_stat(stat), Some((77, 42)));
        let mut m = Meter::default();
        let first = m.measure();
        assert_eq!(first.cpu, 0.0, "no baseline yet");
        std::thread::sleep(Duration::from_millis(50));
        let second = m.measure();
        assert!((0.0..=1.0).contains(&second.cpu), "{second:?}");
    }
}
