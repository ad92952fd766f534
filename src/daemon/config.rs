//! The host daemon's config file (TOML): the settings of `netmind host run`
//! a gamer sets once, and the idle policy. Flags given on the command line
//! win over the file; the file wins over the defaults.
//!
//! ```toml
//! price = 100          # NMT base units per second
//! slots = 2
//! class = ["gpu-8g", "cpu"]   # or one: class = "cpu"; default: the GPU's class and cpu
//! offer-ttl = "60s"
//! grace = "30s"
//!
//! [idle]
//! enabled = true
//! max-cpu = 0.5        # other programs' share of all cores
//! max-gpu = 0.3        # the GPU's load, where the driver reports it
//! input-idle = "5m"    # busy while keyboard or mouse were used lately (off if absent)
//! check-every = "2s"
//! resume-after = "1m"
//! on-busy = "pause"    # or "hand-back"
//! ```

use std::path::Path;
use std::time::Duration;

use alloy_primitives::U256;
use anyhow::{Context, Result};
use serde::Deserialize;

use super::idle::{IdlePolicy, duration};

/// The file's contents; absent keys take the flags' defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct HostConfig {
    pub(crate) price: Option<u64>,
    pub(crate) slots: Option<u32>,
    #[serde(deserialize_with = "one_or_many")]
    pub(crate) class: Option<Vec<String>>,
    #[serde(deserialize_with = "some_duration")]
    pub(crate) offer_ttl: Option<Duration>,
    #[serde(deserialize_with = "some_duration")]
    pub(crate) grace: Option<Duration>,
    pub(crate) idle: IdlePolicy,
}

/// `class = "cpu"` or `class = ["gpu-8g", "cpu"]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct Classes;
    impl<'de> serde::de::Visitor<'de> for Classes {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a class name (\"cpu\") or a list of them ([\"gpu-8g\", \"cpu\"])")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(c) = seq.next_element::<String>()? {
                out.push(c);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Classes).map(Some)
}

fn some_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// The settings in force.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) price: U256,
    pub(crate) slots: u32,
    /// The classes offered in; empty: chosen at start (the GPU's class and
    /// `cpu` on a host with a GPU, else `cpu`).
    pub(crate) classes: Vec<String>,
    pub(crate) offer_ttl: Duration,
    pub(crate) grace: Duration,
    pub(crate) idle: IdlePolicy,
}

impl HostConfig {
    /// Reads `path`; a missing file at the default place is no config.
    pub(crate) fn load(path: &Path, required: bool) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let config: Self = toml::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid host config (see docs/HOSTS.md for its keys)",
                path.display()
            )
        })?;
        config
            .check()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        let i = &self.idle;
        for (name, v) in [("idle.max-cpu", i.max_cpu), ("idle.max-gpu", i.max_gpu)] {
            anyhow::ensure!(
                (0.0..=1.0).contains(&v),
                "{name} = {v} must be a share between 0 and 1 (0.5 is half)"
            );
        }
        anyhow::ensure!(
            i.check_every >= Duration::from_millis(100),
            "idle.check-every must be at least 100ms"
        );
        anyhow::ensure!(self.slots != Some(0), "slots must be at least 1");
        Ok(())
    }

    /// The settings: `flag` where given, else the file's, else `default`.
    pub(crate) fn settings(self, flags: Flags) -> Settings {
        Settings {
            price: flags
                .price
                .or(self.price.map(U256::from))
                .unwrap_or(U256::from(100)),
            slots: flags.slots.or(self.slots).unwrap_or(1),
            classes: Some(flags.classes)
                .filter(|c| !c.is_empty())
                .or(self.class)
                .unwrap_or_default(),
            offer_ttl: flags
                .offer_ttl
                .or(self.offer_ttl)
                .unwrap_or(Duration::from_secs(60)),
            grace: flags
                .grace
                .or(self.grace)
                .unwrap_or(Duration::from_secs(30)),
            idle: IdlePolicy {
                enabled: self.idle.enabled && !flags.no_idle,
                ..self.idle
            },
        }
    }
}

/// What the command line gave.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    pub(crate) price: Option<U256>,
    pub(crate) slots: Option<u32>,
    pub(crate) classes: Vec<String>,
    pub(crate) offer_ttl: Option<Duration>,
    pub(crate) grace: Option<Duration>,
    pub(crate) no_idle: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::idle::OnBusy;

    fn parse(text: &str) -> Result<HostConfig> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("host.toml");
        std::fs::write(&path, text)?;
        HostConfig::load(&path, true)
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let c = parse(
            "price = 250\nslots = 3\noffer-ttl = \"2m\"\n[idle]\nmax-cpu = 0.25\n\
             resume-after = \"5s\"\non-busy = \"hand-back\"\n",
        )
        .unwrap();
        let s = c.settings(Flags {
            slots: Some(1),
            ..Flags::default()
        });
        assert_eq!(s.price, U256::from(250));
        assert_eq!(s.slots, 1, "the flag wins");
        assert!(s.classes.is_empty(), "chosen at start");
        assert_eq!(s.offer_ttl, Duration::from_secs(120));
        assert_eq!(s.grace, Duration::from_secs(30));
        assert_eq!(s.idle.max_cpu, 0.25);
        assert_eq!(s.idle.resume_after, Duration::from_secs(5));
        assert_eq!(s.idle.on_busy, OnBusy::HandBack);
        assert!(s.idle.enabled);
    }

    #[test]
    fn classes_are_one_or_a_list_and_flags_win() {
        let one = parse("class = \"gpu-24g\"\n").unwrap();
        assert_eq!(one.class.as_deref(), Some(&["gpu-24g".to_owned()][..]));
        let many = parse("class = [\"gpu-8g\", \"cpu\"]\n").unwrap();
        let s = many.settings(Flags::default());
        assert_eq!(s.classes, ["gpu-8g", "cpu"]);
        let many = parse("class = [\"gpu-8g\", \"cpu\"]\n").unwrap();
        let s = many.settings(Flags {
            classes: vec!["cpu".into()],
            ..Flags::default()
        });
        assert_eq!(s.classes, ["cpu"], "the flag wins");
        let e = format!("{:#}", parse("class = 5\n").unwrap_err());
        assert!(e.contains("a class name (\"cpu\") or a list"), "{e}");
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let e = format!("{:#}", parse("prices = 1\n").unwrap_err());
        assert!(e.contains("unknown field `prices`"), "{e}");
        let e = format!("{:#}", parse("[idle]\nmax-cpu = 5.0\n").unwrap_err());
        assert!(e.contains("between 0 and 1"), "{e}");
        let e = format!("{:#}", parse("grace = \"soon\"\n").unwrap_err());
        assert!(e.contains("`soon` is not a duration"), "{e}");
        let e = format!("{:#}", parse("[idle]\non-busy = \"panic\"\n").unwrap_err());
        assert!(e.contains("unknown variant `panic`"), "{e}");
        let missing = HostConfig::load(Path::new("/nonexistent/host.toml"), false).unwrap();
        assert!(missing.idle.enabled);
        assert!(HostConfig::load(Path::new("/nonexistent/host.toml"), true).is_err());
    }
}
