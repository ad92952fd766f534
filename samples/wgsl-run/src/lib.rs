//! The wgsl-run sample's configuration (`run.toml` or `run.json`) and the CPU reference of its example.
//!
//! The job (`src/main.rs`) reads `/input/run.toml` (or `/input/run.json`), checks it with
//! [`RunConfig::parse_toml`] / [`RunConfig::parse_json`] and [`RunConfig::plan`], and runs the plan on
//! the GPU. This part is plain Rust, compiled natively with `--no-default-features`, so the host's tests
//! can use it too.
//!
//! ```toml
//! shader = "shader.wgsl"      # in /input (the default)
//! entry = "main"              # the default entry point of every dispatch (default "main")
//! workgroups = [2, 1, 1]      # the one dispatch when there is no [[dispatch]]: 1 to 3 counts
//! # invocations = [100]       # or: invocations, divided by the entry point's @workgroup_size
//!
//! [[binding]]                 # one per buffer; `group` defaults to 0
//! binding = 0
//! input = "a.npy"             # initial contents: a .npy file in /input (any numeric dtype) ...
//!
//! [[binding]]
//! binding = 1
//! zeros = { dtype = "f32", shape = [100] }    # ... or zeros (dtype f32, i32 or u32) ...
//! output = "out.npy"          # written back to /output after the run, with its source's dtype and shape
//!
//! [[binding]]
//! group = 1
//! binding = 0
//! values = { dtype = "u32", data = [100, 0, 0, 0] }   # ... or literal values
//! uniform = true              # optional: checks that the shader declares it var<uniform> (false: storage)
//!
//! [[dispatch]]                # optional, in order; each binds the [[binding]]s its entry point uses
//! entry = "main"
//! workgroups = [2]
//! ```

use std::{collections::BTreeSet, fmt};

use serde::Deserialize;

/// The example shader (`example/shader.wgsl`): `out[i] = 2 * a[i] + b[i]`.
pub const EXAMPLE_WGSL: &str = include_str!("../example/shader.wgsl");

/// The example configuration (`example/run.toml`).
pub const EXAMPLE_RUN_TOML: &str = include_str!("../example/run.toml");

/// The default shader file, relative to `/input`.
pub const DEFAULT_SHADER: &str = "shader.wgsl";

/// The default entry point.
pub const DEFAULT_ENTRY: &str = "main";

/// `run.toml` or `run.json`: what to run and on which buffers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The WGSL file, relative to `/input` (default [`DEFAULT_SHADER`]).
    #[serde(default)]
    pub shader: Option<String>,
    /// The default entry point of every dispatch (default [`DEFAULT_ENTRY`]).
    #[serde(default)]
    pub entry: Option<String>,
    /// The workgroup counts of the single dispatch run when there are no `[[dispatch]]` entries.
    #[serde(default)]
    pub workgroups: Option<Vec<u32>>,
    /// Or: the invocations of that dispatch, divided (rounding up) by the entry point's workgroup size.
    #[serde(default)]
    pub invocations: Option<Vec<u32>>,
    /// `[[binding]]`: the buffers.
    #[serde(default, rename = "binding", alias = "bindings")]
    pub bindings: Vec<BindingConfig>,
    /// `[[dispatch]]`: the dispatches, in order.
    #[serde(default, rename = "dispatch", alias = "dispatches")]
    pub dispatches: Vec<DispatchConfig>,
}

/// One `[[binding]]`: a buffer, where it is bound and what it starts with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingConfig {
    /// `@group(..)`, default 0.
    #[serde(default)]
    pub group: u32,
    /// `@binding(..)`.
    pub binding: u32,
    /// A `.npy` file in `/input`.
    #[serde(default)]
    pub input: Option<String>,
    /// Zeros of a dtype and shape.
    #[serde(default)]
    pub zeros: Option<ZerosConfig>,
    /// Literal values.
    #[serde(default)]
    pub values: Option<ValuesConfig>,
    /// When given: whether the shader must declare it `var<uniform>` (true) or `var<storage>` (false).
    #[serde(default)]
    pub uniform: Option<bool>,
    /// A `.npy` file to write the buffer to, in `/output`, after the run.
    #[serde(default)]
    pub output: Option<String>,
}

/// `zeros = { dtype = "f32", shape = [1024] }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZerosConfig {
    /// `f32`, `i32` or `u32`.
    pub dtype: String,
    /// The dimensions (row-major); `[]` is one element.
    pub shape: Vec<usize>,
}

/// `values = { dtype = "u32", data = [1, 2, 3] }`: a 1-D array.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuesConfig {
    /// `f32`, `i32` or `u32`.
    pub dtype: String,
    /// The values; integers must be whole and in range for the dtype.
    pub data: Vec<f64>,
}

/// One `[[dispatch]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchConfig {
    /// The entry point (default: the top-level `entry`).
    #[serde(default)]
    pub entry: Option<String>,
    /// Workgroup counts: 1 to 3 numbers.
    #[serde(default)]
    pub workgroups: Option<Vec<u32>>,
    /// Or invocations, divided (rounding up) by the entry point's workgroup size.
    #[serde(default)]
    pub invocations: Option<Vec<u32>>,
}

/// What is wrong with a configuration; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The element types a shader can use, for `zeros` and `values`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarType {
    /// `f32`.
    F32,
    /// `i32`.
    I32,
    /// `u32`.
    U32,
}

impl ScalarType {
    /// The type named `name` (`f32`, `i32`, `u32`, or NumPy's `float32`, `int32`, `uint32`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "f32" | "float32" => Some(Self::F32),
            "i32" | "int32" => Some(Self::I32),
            "u32" | "uint32" => Some(Self::U32),
            _ => None,
        }
    }

    /// `f32`, `i32` or `u32`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::I32 => "i32",
            Self::U32 => "u32",
        }
    }

    fn parse(name: &str, field: &str) -> Result<Self, ConfigError> {
        Self::from_name(name).ok_or_else(|| {
            ConfigError(format!(
                "{field}: unknown dtype `{name}`; use f32, i32 or u32"
            ))
        })
    }

    /// `value` as 4 little-endian bytes of this type.
    fn encode(self, value: f64, field: &str) -> Result<[u8; 4], ConfigError> {
        let whole = |min: f64, max: f64| {
            if value.fract() != 0.0 || !(min..=max).contains(&value) {
                Err(ConfigError(format!(
                    "{field}: {value} is not a {} (a whole number from {min} to {max})",
                    self.name()
                )))
            } else {
                Ok(value)
            }
        };
        Ok(match self {
            Self::F32 => (value as f32).to_le_bytes(),
            Self::I32 => (whole(f64::from(i32::MIN), f64::from(i32::MAX))? as i32).to_le_bytes(),
            Self::U32 => (whole(0.0, f64::from(u32::MAX))? as u32).to_le_bytes(),
        })
    }
}

/// Where a buffer's initial contents come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A `.npy` file in `/input`; the dtype and shape are the file's.
    Npy(String),
    /// Zeros of a dtype and shape.
    Zeros {
        /// The element type.
        dtype: ScalarType,
        /// The dimensions.
        shape: Vec<usize>,
    },
    /// Literal values, as a 1-D array.
    Values {
        /// The element type.
        dtype: ScalarType,
        /// The values as little-endian bytes.
        bytes: Vec<u8>,
    },
}

/// A checked `[[binding]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedBinding {
    /// `@group(..)`.
    pub group: u32,
    /// `@binding(..)`.
    pub binding: u32,
    /// The initial contents.
    pub source: Source,
    /// Whether it must be `var<uniform>` (`Some(true)`) or storage (`Some(false)`).
    pub uniform: Option<bool>,
    /// The output file, if any.
    pub output: Option<String>,
    /// How errors name it: `binding[i] (@group(g) @binding(b))`.
    pub label: String,
}

/// How many workgroups a dispatch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grid {
    /// Workgroup counts.
    Workgroups([u32; 3]),
    /// Invocations, to divide by the workgroup size.
    Invocations([u32; 3]),
}

impl Grid {
    /// The workgroup counts for an entry point of `workgroup_size`.
    pub fn resolve(self, workgroup_size: [u32; 3]) -> [u32; 3] {
        match self {
            Self::Workgroups(counts) => counts,
            Self::Invocations(n) => {
                std::array::from_fn(|i| n[i].div_ceil(workgroup_size[i].max(1)))
            }
        }
    }
}

/// A checked dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDispatch {
    /// The entry point.
    pub entry: String,
    /// The workgroups.
    pub grid: Grid,
}

/// A checked configuration: what the job runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The WGSL file, relative to `/input`.
    pub shader: String,
    /// The buffers, in the configuration's order.
    pub bindings: Vec<PlannedBinding>,
    /// The dispatches, in order.
    pub dispatches: Vec<PlannedDispatch>,
}

impl Plan {
    /// The binding at `@group(group) @binding(binding)`, if the configuration has one.
    pub fn binding(&self, group: u32, binding: u32) -> Option<&PlannedBinding> {
        self.bindings
            .iter()
            .find(|b| (b.group, b.binding) == (group, binding))
    }
}

impl RunConfig {
    /// Parses `run.toml`; unknown fields are errors that name them.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] with TOML's message (line, column, the field).
    pub fn parse_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(e.to_string().trim_end().to_owned()))
    }

    /// Parses `run.json`, the same fields as `run.toml` (`binding` and `dispatch` are arrays of
    /// objects).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] with serde_json's message (line, column, the field).
    pub fn parse_json(text: &str) -> Result<Self, ConfigError> {
        serde_json::from_str(text).map_err(|e| ConfigError(e.to_string()))
    }

    /// Checks the configuration and turns it into a [`Plan`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field: a binding with no or several sources, a duplicate
    /// `(group, binding)` or output name, an unknown dtype, a bad output name, workgroups given twice or
    /// not at all, a count list that is not 1 to 3 numbers.
    pub fn plan(&self) -> Result<Plan, ConfigError> {
        let shader = self.shader.clone().unwrap_or_else(|| DEFAULT_SHADER.into());
        check_input_name(&shader, "shader")?;
        let entry = self.entry.clone().unwrap_or_else(|| DEFAULT_ENTRY.into());
        if entry.is_empty() {
            return Err(ConfigError("entry: the entry point name is empty".into()));
        }

        let mut bindings = Vec::with_capacity(self.bindings.len());
        let mut slots = BTreeSet::new();
        let mut outputs = BTreeSet::new();
        for (i, b) in self.bindings.iter().enumerate() {
            let label = format!("binding[{i}] (@group({}) @binding({}))", b.group, b.binding);
            if !slots.insert((b.group, b.binding)) {
                return Err(ConfigError(format!(
                    "{label}: @group({}) @binding({}) is configured twice",
                    b.group, b.binding
                )));
            }
            let source = match (&b.input, &b.zeros, &b.values) {
                (Some(file), None, None) => {
                    check_input_name(file, &format!("{label}.input"))?;
                    Source::Npy(file.clone())
                }
                (None, Some(z), None) => {
                    let dtype = ScalarType::parse(&z.dtype, &format!("{label}.zeros.dtype"))?;
                    let len = z.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
                    match len {
                        Some(0) => {
                            return Err(ConfigError(format!(
                                "{label}.zeros.shape: {:?} has no elements",
                                z.shape
                            )));
                        }
                        None => {
                            return Err(ConfigError(format!(
                                "{label}.zeros.shape: {:?} is too large",
                                z.shape
                            )));
                        }
                        Some(_) => {}
                    }
                    Source::Zeros {
                        dtype,
                        shape: z.shape.clone(),
                    }
                }
                (None, None, Some(v)) => {
                    let field = format!("{label}.values");
                    let dtype = ScalarType::parse(&v.dtype, &format!("{field}.dtype"))?;
                    if v.data.is_empty() {
                        return Err(ConfigError(format!("{field}.data is empty")));
                    }
                    let mut bytes = Vec::with_capacity(v.data.len() * 4);
                    for (j, &value) in v.data.iter().enumerate() {
                        bytes.extend(dtype.encode(value, &format!("{field}.data[{j}]"))?);
                    }
                    Source::Values { dtype, bytes }
                }
                _ => {
                    return Err(ConfigError(format!(
                        "{label}: give exactly one of `input` (a .npy file), `zeros` or `values`"
                    )));
                }
            };
            if let Some(output) = &b.output {
                check_output_name(output, &format!("{label}.output"))?;
                if !outputs.insert(output.clone()) {
                    return Err(ConfigError(format!(
                        "{label}.output: `{output}` is the output of another binding too"
                    )));
                }
            }
            bindings.push(PlannedBinding {
                group: b.group,
                binding: b.binding,
                source,
                uniform: b.uniform,
                output: b.output.clone(),
                label,
            });
        }

        let dispatches = if self.dispatches.is_empty() {
            let grid = grid(&self.workgroups, &self.invocations, "")?.ok_or_else(|| {
                ConfigError(
                    "workgroups: missing; give `workgroups = [x, y, z]` (or `invocations`), or \
                     [[dispatch]] entries"
                        .into(),
                )
            })?;
            vec![PlannedDispatch { entry, grid }]
        } else {
            if self.workgroups.is_some() || self.invocations.is_some() {
                return Err(ConfigError(
                    "workgroups: with [[dispatch]] entries, give `workgroups` (or `invocations`) in \
                     each of them, not at the top level"
                        .into(),
                ));
            }
            self.dispatches
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let field = format!("dispatch[{i}].");
                    let grid = grid(&d.workgroups, &d.invocations, &field)?.ok_or_else(|| {
                        ConfigError(format!(
                            "{field}workgroups: missing; give `workgroups = [x, y, z]` or \
                             `invocations`"
                        ))
                    })?;
                    let entry = d.entry.clone().unwrap_or_else(|| entry.clone());
                    if entry.is_empty() {
                        return Err(ConfigError(format!("{field}entry: the name is empty")));
                    }
                    Ok(PlannedDispatch { entry, grid })
                })
                .collect::<Result<_, _>>()?
        };
        Ok(Plan {
            shader,
            bindings,
            dispatches,
        })
    }
}

/// The grid of `workgroups` or `invocations` (at most one may be given); `None` when neither is.
fn grid(
    workgroups: &Option<Vec<u32>>,
    invocations: &Option<Vec<u32>>,
    prefix: &str,
) -> Result<Option<Grid>, ConfigError> {
    let dims = |counts: &[u32], name: &str| -> Result<[u32; 3], ConfigError> {
        match *counts {
            [x] => Ok([x, 1, 1]),
            [x, y] => Ok([x, y, 1]),
            [x, y, z] => Ok([x, y, z]),
            _ => Err(ConfigError(format!(
                "{prefix}{name}: {counts:?} must be 1 to 3 numbers (x, y, z)"
            ))),
        }
    };
    match (workgroups, invocations) {
        (Some(_), Some(_)) => Err(ConfigError(format!(
            "{prefix}workgroups: give `workgroups` or `invocations`, not both"
        ))),
        (Some(w), None) => Ok(Some(Grid::Workgroups(dims(w, "workgroups")?))),
        (None, Some(n)) => Ok(Some(Grid::Invocations(dims(n, "invocations")?))),
        (None, None) => Ok(None),
    }
}

/// A relative path inside `/input` that does not climb out of it.
fn check_input_name(name: &str, field: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.starts_with('/') || name.split(['/', '\\']).any(|part| part == "..")
    {
        return Err(ConfigError(format!(
            "{field}: `{name}` must be a path relative to the input directory"
        )));
    }
    Ok(())
}

/// A plain `.npy` file name for `/output`, not `result.json`.
fn check_output_name(name: &str, field: &str) -> Result<(), ConfigError> {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.starts_with('.');
    if !plain || !name.ends_with(".npy") {
        return Err(ConfigError(format!(
            "{field}: `{name}` must be a plain file name ending in .npy (letters, digits, . _ -)"
        )));
    }
    Ok(())
}

/// The example's `a`: `a[i] = i` for 100 elements (`example/a.npy`).
pub fn example_a() -> Vec<f32> {
    (0..100).map(|i| i as f32).collect()
}

/// The example's `b`: `b[i] = i / 2` for 100 elements (`example/b.npy`).
pub fn example_b() -> Vec<f32> {
    (0..100).map(|i| 0.5 * i as f32).collect()
}

/// The CPU reference of [`EXAMPLE_WGSL`]: `2 * a[i] + b[i]`, computed as the shader does (exactly
/// representable here, so the GPU's `out.npy` must match bit for bit).
///
/// # Panics
///
/// If `a` and `b` differ in length.
pub fn example_reference(a: &[f32], b: &[f32]) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "a and b differ in length");
    a.iter().zip(b).map(|(a, b)| 2.0 * a + b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Result<Plan, ConfigError> {
        RunConfig::parse_toml(text)?.plan()
    }

    #[test]
    fn the_example_plans_one_dispatch_of_three_bindings() {
        let plan = plan(EXAMPLE_RUN_TOML).unwrap();
        assert_eq!(plan.shader, "shader.wgsl");
        assert_eq!(
            plan.dispatches,
            [PlannedDispatch {
                entry: "main".into(),
                grid: Grid::Workgroups([2, 1, 1]),
            }]
        );
        assert_eq!(plan.bindings.len(), 3);
        assert_eq!(
            plan.binding(0, 0).unwrap().source,
            Source::Npy("a.npy".into())
        );
        let out = plan.binding(0, 2).unwrap();
        assert_eq!(
            out.source,
            Source::Zeros {
                dtype: ScalarType::F32,
                shape: vec![100],
            }
        );
        assert_eq!(out.output.as_deref(), Some("out.npy"));
        assert!(plan.binding(1, 0).is_none());
    }

    /// The `.npy` data after the header, as f32.
    fn npy_f32(bytes: &[u8]) -> Vec<f32> {
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.contains("'descr': '<f4'"), "{header}");
        bytes[10 + header_len..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn the_example_inputs_and_reference_agree() {
        let a = npy_f32(include_bytes!("../example/a.npy"));
        let b = npy_f32(include_bytes!("../example/b.npy"));
        assert_eq!((a.clone(), b.clone()), (example_a(), example_b()));
        let out = example_reference(&a, &b);
        assert_eq!(out.len(), 100);
        assert_eq!(out[0], 0.0);
        assert_eq!(out[99], 2.0 * 99.0 + 49.5);
        assert!(EXAMPLE_WGSL.contains("fn main"));
    }

    #[test]
    fn values_dispatches_and_invocations() {
        let plan = plan(
            r#"
            entry = "first"
            [[binding]]
            group = 1
            binding = 0
            values = { dtype = "u32", data = [100, 7] }
            uniform = true
            [[dispatch]]
            workgroups = [4, 2]
            [[dispatch]]
            entry = "second"
            invocations = [100]
            "#,
        )
        .unwrap();
        assert_eq!(plan.shader, DEFAULT_SHADER);
        let b = &plan.bindings[0];
        assert_eq!(
            b.source,
            Source::Values {
                dtype: ScalarType::U32,
                bytes: vec![100, 0, 0, 0, 7, 0, 0, 0],
            }
        );
        assert_eq!(b.uniform, Some(true));
        assert_eq!(plan.dispatches[0].entry, "first");
        assert_eq!(plan.dispatches[0].grid, Grid::Workgroups([4, 2, 1]));
        assert_eq!(plan.dispatches[1].entry, "second");
        assert_eq!(plan.dispatches[1].grid.resolve([64, 1, 1]), [2, 1, 1]);
        assert_eq!(Grid::Invocations([0, 1, 1]).resolve([64, 1, 1]), [0, 1, 1]);
    }

    #[test]
    fn json_takes_the_same_fields() {
        let config = RunConfig::parse_json(
            r#"{"workgroups": [1], "binding": [{"binding": 0, "zeros": {"dtype": "i32", "shape": [4]}, "output": "x.npy"}]}"#,
        )
        .unwrap();
        let plan = config.plan().unwrap();
        assert_eq!(plan.bindings[0].output.as_deref(), Some("x.npy"));
        let err = RunConfig::parse_json(r#"{"workgroup": [1]}"#).unwrap_err();
        assert!(err.0.contains("unknown field `workgroup`"), "{err}");
    }

    #[test]
    fn errors_name_the_field() {
        let err = |text: &str| plan(text).unwrap_err().0;
        let unknown = err("workgroups = [1]\n[[binding]]\nbinding = 0\ninptu = \"a.npy\"\n");
        assert!(unknown.contains("unknown field `inptu`"), "{unknown}");
        assert!(unknown.contains("line 4"), "{unknown}");
        assert_eq!(
            err("workgroups = [1]\n[[binding]]\nbinding = 0\n"),
            "binding[0] (@group(0) @binding(0)): give exactly one of `input` (a .npy file), \
             `zeros` or `values`"
        );
        assert_eq!(
            err(
                "workgroups = [1]\n[[binding]]\nbinding = 0\ninput = \"a.npy\"\nzeros = { dtype = \"f32\", shape = [1] }\n"
            ),
            "binding[0] (@group(0) @binding(0)): give exactly one of `input` (a .npy file), \
             `zeros` or `values`"
        );
        assert_eq!(
            err(
                "workgroups = [1]\n[[binding]]\nbinding = 3\nzeros = { dtype = \"f64\", shape = [1] }\n"
            ),
            "binding[0] (@group(0) @binding(3)).zeros.dtype: unknown dtype `f64`; use f32, i32 or u32"
        );
        assert!(
            err("workgroups = [1]\n[[binding]]\nbinding = 0\nzeros = { dtype = \"f32\", shape = [0, 4] }\n")
                .ends_with(".zeros.shape: [0, 4] has no elements")
        );
        assert_eq!(
            err(
                "workgroups = [1]\n[[binding]]\nbinding = 0\nvalues = { dtype = \"u32\", data = [1.5] }\n"
            ),
            "binding[0] (@group(0) @binding(0)).values.data[0]: 1.5 is not a u32 (a whole number from 0 \
             to 4294967295)"
        );
        assert!(
            err("workgroups = [1]\n[[binding]]\nbinding = 0\nvalues = { dtype = \"i32\", data = [-3e9] }\n")
                .contains("is not a i32")
        );
        assert!(
            err("workgroups = [1]\n[[binding]]\nbinding = 0\ninput = \"a.npy\"\n[[binding]]\nbinding = 0\ninput = \"b.npy\"\n")
                .starts_with("binding[1] (@group(0) @binding(0)): @group(0) @binding(0) is configured twice")
        );
        assert!(
            err("workgroups = [1]\n[[binding]]\nbinding = 0\ninput = \"../etc/passwd\"\n")
                .contains(".input: `../etc/passwd` must be a path relative")
        );
        assert!(
            err("workgroups = [1]\n[[binding]]\nbinding = 0\ninput = \"a.npy\"\noutput = \"../x.npy\"\n")
                .contains(".output: `../x.npy` must be a plain file name ending in .npy")
        );
        assert!(
            err("workgroups = [1]\n[[binding]]\nbinding = 0\ninput = \"a.npy\"\noutput = \"result.json\"\n")
                .contains("ending in .npy")
        );
        assert!(
            err("workgroups = [1]\n[[binding]]\nbinding = 0\ninput = \"a.npy\"\noutput = \"o.npy\"\n[[binding]]\nbinding = 1\ninput = \"a.npy\"\noutput = \"o.npy\"\n")
                .contains("binding[1] (@group(0) @binding(1)).output: `o.npy` is the output of another binding too")
        );
        assert!(err("").starts_with("workgroups: missing"));
        assert_eq!(
            err("workgroups = [1, 2, 3, 4]"),
            "workgroups: [1, 2, 3, 4] must be 1 to 3 numbers (x, y, z)"
        );
        assert_eq!(
            err("workgroups = [1]\ninvocations = [1]"),
            "workgroups: give `workgroups` or `invocations`, not both"
        );
        assert!(
            err("workgroups = [1]\n[[dispatch]]\nworkgroups = [1]\n")
                .contains("not at the top level")
        );
        assert_eq!(
            err("[[dispatch]]\nentry = \"x\"\n"),
            "dispatch[0].workgroups: missing; give `workgroups = [x, y, z]` or `invocations`"
        );
        assert!(err("shader = \"/etc/passwd\"\nworkgroups = [1]").starts_with("shader: "));
        let negative = err("workgroups = [-1]");
        assert!(negative.contains("workgroups"), "{negative}");
    }
}
