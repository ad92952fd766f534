//! What an inference backend implements, and the checks every backend shares.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::{Encoding, NnError, Target, Tensor, TensorType};

/// What a backend serves, as listed in the host's capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendInfo {
    /// `tract` or `onnxruntime`.
    pub name: String,
    /// The backend's version, e.g. `0.23.9` or `1.22.0`.
    pub version: String,
    /// The model formats it loads.
    pub encodings: Vec<Encoding>,
    /// Where it runs models.
    pub targets: Vec<Target>,
}

impl Serialize for Encoding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A model input or output as the model declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoSpec {
    /// Its name in the model.
    pub name: String,
    /// Its element type, when the backend can express it.
    pub ty: Option<TensorType>,
    /// Its dimensions; `None` for a dimension the model leaves open (a batch size).
    pub shape: Option<Vec<Option<u64>>>,
}

impl fmt::Display for IoSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.name)?;
        if let Some(ty) = self.ty {
            write!(f, " {ty}")?;
        }
        if let Some(shape) = &self.shape {
            let dims: Vec<String> = shape
                .iter()
                .map(|d| d.map_or_else(|| "?".to_string(), |d| d.to_string()))
                .collect();
            write!(f, " [{}]", dims.join(", "))?;
        }
        Ok(())
    }
}

/// An inference engine that loads models of some encodings.
pub trait Backend: Send + Sync {
    /// What it serves.
    fn info(&self) -> BackendInfo;
    /// Parses and prepares a model. Errors are for the job: malformed bytes are
    /// `invalid-argument`, unsupported operators `unsupported-operation`.
    fn load(&self, model: &[u8], target: Target) -> Result<Arc<dyn Model>, NnError>;
}

/// A loaded model, shareable between jobs.
pub trait Model: Send + Sync {
    /// The inputs, in the model's order.
    fn inputs(&self) -> &[IoSpec];
    /// The outputs, in the model's order.
    fn outputs(&self) -> &[IoSpec];
    /// A fresh execution state.
    fn session(&self) -> Result<Box<dyn Session>, NnError>;
}

/// The execution state of one `graph-execution-context`.
pub trait Session: Send {
    /// Runs the model on `inputs` (one per model input, in order, already
    /// checked against [`Model::inputs`]) and returns one tensor per output, in
    /// order. Stops with a `timeout` error at `deadline`.
    fn run(&mut self, inputs: Vec<Tensor>, deadline: Instant) -> Result<Vec<Tensor>, NnError>;
}

/// Orders named tensors as the model's inputs: by name, or by position when a
/// name is a decimal index that is not an input name. Checks element types and
/// dimensions, and that every input is given exactly once.
pub(crate) fn bind_inputs(
    specs: &[IoSpec],
    given: Vec<(String, Tensor)>,
) -> Result<Vec<Tensor>, NnError> {
    let expected = || {
        let all: Vec<String> = specs.iter().map(ToString::to_string).collect();
        format!("the model's inputs are {}", all.join(", "))
    };
    let mut slots: Vec<Option<Tensor>> = vec![None; specs.len()];
    for (name, tensor) in given {
        let index = match specs.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => match name.parse::<usize>() {
                Ok(i) if i < specs.len() => i,
                Ok(i) => {
                    return Err(NnError::invalid(format!(
                        "input index {i} is out of range: the model has {} inputs",
                        specs.len()
                    )));
                }
                Err(_) => {
                    return Err(NnError::invalid(format!(
                        "the model has no input named '{name}'; {}",
                        expected()
                    )));
                }
            },
        };
        let spec = &specs[index];
        if slots[index].is_some() {
            return Err(NnError::invalid(format!("input {spec} was given twice")));
        }
        if let Some(ty) = spec.ty
            && ty != tensor.ty
        {
            return Err(NnError::invalid(format!(
                "input {spec} takes {ty} elements but was given {}",
                tensor.ty
            )));
        }
        if let Some(shape) = &spec.shape {
            let fits = shape.len() == tensor.dims.len()
                && shape
                    .iter()
                    .zip(&tensor.dims)
                    .all(|(want, got)| want.is_none_or(|w| w == u64::from(*got)));
            if !fits {
                return Err(NnError::invalid(format!(
                    "input {spec} cannot take a tensor of dimensions {:?}",
                    tensor.dims
                )));
            }
        }
        slots[index] = Some(tensor);
    }
    slots
        .into_iter()
        .zip(specs)
        .map(|(slot, spec)| {
            slot.ok_or_else(|| {
                NnError::invalid(format!("input {spec} was not given; {}", expected()))
            })
        })
        .collect()
}

/// Runs `f`, turning a panic inside a backend into a `runtime-error`, so that
/// no model or tensor can take the host down.
pub(crate) fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, NnError>) -> Result<T, NnError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(NnError::runtime(format!(
            "the backend failed while {what}: {msg}"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ErrorCode;

    fn specs() -> Vec<IoSpec> {
        vec![
            IoSpec {
                name: "x".into(),
                ty: Some(TensorType::F32),
                shape: Some(vec![None, Some(2)]),
            },
            IoSpec {
                name: "ids".into(),
                ty: Some(TensorType::I64),
                shape: Some(vec![Some(3)]),
            },
        ]
    }

    #[test]
    fn binds_by_name_and_by_position() {
        let x = Tensor::from_f32(&[5, 2], &[0.0; 10]);
        let ids = Tensor::from_i64(&[3], &[1, 2, 3]);
        let bound = bind_inputs(
            &specs(),
            vec![("ids".into(), ids.clone()), ("x".into(), x.clone())],
        )
        .unwrap();
        assert_eq!(bound, vec![x.clone(), ids.clone()]);
        let bound =
            bind_inputs(&specs(), vec![("1".into(), ids.clone()), ("0".into(), x)]).unwrap();
        assert_eq!(bound[1], ids);
    }

    #[test]
    fn wrong_inputs_say_what_the_model_wants() {
        let x = Tensor::from_f32(&[5, 2], &[0.0; 10]);
        let ids = Tensor::from_i64(&[3], &[1, 2, 3]);
        let cases = [
            (
                vec![("x".to_string(), x.clone())],
                "input 'ids' i64 [3] was not given",
            ),
            (
                vec![("y".into(), x.clone())],
                "no input named 'y'; the model's inputs are 'x' f32 [?, 2], 'ids' i64 [3]",
            ),
            (vec![("7".into(), x.clone())], "index 7 is out of range"),
            (
                vec![("ids".into(), x.clone())],
                "takes i64 elements but was given f32",
            ),
            (
                vec![("x".into(), Tensor::from_f32(&[2, 5], &[0.0; 10]))],
                "cannot take a tensor of dimensions [2, 5]",
            ),
            (
                vec![
                    ("x".into(), x.clone()),
                    ("0".into(), x),
                    ("ids".into(), ids),
                ],
                "given twice",
            ),
        ];
        for (given, want) in cases {
            let err = bind_inputs(&specs(), given).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidArgument);
            assert!(err.message.contains(want), "{err} lacks {want}");
        }
    }

    #[test]
    fn panics_become_runtime_errors() {
        let err = guarded("testing", || -> Result<(), NnError> { panic!("boom") }).unwrap_err();
        assert_eq!(err.code, ErrorCode::RuntimeError);
        assert!(err.message.contains("while testing: boom"));
    }
}
