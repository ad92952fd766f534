//! Serde helpers for sizes (`"512MiB"`, `"64 MiB"`, `1048576`) and durations (`"30s"`, `"2m"`).
//!
//! Both serialize losslessly, so `to_toml` then `from_toml` gives back the same values.

use std::{fmt, time::Duration};

use bytesize::ByteSize;
use serde::{Deserializer, Serializer, de};

const EXPECT_SIZE: &str = "a size such as \"512 MiB\", \"64MiB\", \"2 GiB\" or a number of bytes";
const EXPECT_DURATION: &str = "a duration such as \"30s\", \"2m\" or \"1h 30m\"";

/// Parses a size: an integer number of bytes, or a number with a unit (`KiB`, `MiB`, `GiB`, `MB`, ...).
pub(crate) fn parse_size(text: &str) -> Result<ByteSize, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("empty size, expected {EXPECT_SIZE}"));
    }
    trimmed
        .parse::<ByteSize>()
        .map_err(|_| format!("invalid size `{text}`, expected {EXPECT_SIZE}"))
}

/// Writes a size exactly: `"256 MiB"` when it is a whole number of KiB/MiB/GiB, else an integer.
fn size_repr(size: ByteSize) -> Result<String, u64> {
    let n = size.as_u64();
    for (unit, factor) in [
        ("GiB", bytesize::GIB),
        ("MiB", bytesize::MIB),
        ("KiB", bytesize::KIB),
    ] {
        if n != 0 && n.is_multiple_of(factor) {
            return Ok(format!("{} {unit}", n / factor));
        }
    }
    Err(n)
}

struct SizeVisitor;

impl de::Visitor<'_> for SizeVisitor {
    type Value = ByteSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECT_SIZE)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
        Ok(ByteSize(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
        u64::try_from(v)
            .map(ByteSize)
            .map_err(|_| E::custom(format!("size {v} is negative, expected {EXPECT_SIZE}")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
        parse_size(v).map_err(E::custom)
    }
}

/// `#[serde(with = "units::size")]` for [`ByteSize`].
pub(crate) mod size {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &ByteSize, s: S) -> Result<S::Ok, S::Error> {
        match size_repr(*v) {
            Ok(text) => s.serialize_str(&text),
            Err(n) => match i64::try_from(n) {
                Ok(n) => s.serialize_i64(n),
                Err(_) => s.serialize_str(&n.to_string()),
            },
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        d.deserialize_any(SizeVisitor)
    }
}

/// `#[serde(with = "units::opt_size")]` for `Option<ByteSize>`.
pub(crate) mod opt_size {
    use super::*;

    #[expect(
        clippy::ref_option,
        reason = "serde's `with` hands us `&Option<T>`, not `Option<&T>`"
    )]
    pub(crate) fn serialize<S: Serializer>(v: &Option<ByteSize>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::size::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<ByteSize>, D::Error> {
        super::size::deserialize(d).map(Some)
    }
}

struct DurationVisitor;

impl de::Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECT_DURATION)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        humantime::parse_duration(v.trim()).map_err(|e| {
            E::custom(format!(
                "invalid duration `{v}` ({e}), expected {EXPECT_DURATION}"
            ))
        })
    }
}

/// `#[serde(with = "units::duration")]` for [`Duration`], written as humantime strings.
pub(crate) mod duration {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*v).to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_str(DurationVisitor)
    }
}
