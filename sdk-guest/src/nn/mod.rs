//! Machine-learning inference on the host's backends through wasi-nn (`wasi:nn@0.2.0-rc-2024-10-28`).
//!
//! A job hands a model to the host, gets a [`Graph`], opens a [`Context`] on it and calls
//! [`Context::compute`] with named input [`Tensor`]s; it gets every model output back, named, in the
//! model's order ([`Outputs`]). The host runs the model natively (on its CPU, or its GPU where it has an
//! accelerated backend), outside the job's memory and fuel budget, so this is how a job runs a real model
//! fast. The job's manifest must ask for the encodings it uses:
//!
//! ```toml
//! [resources]
//! wasi-nn = ["onnx"]
//! ```
//!
//! The steps:
//!
//! 1. [`Graph::load`] takes the model's bytes (an ONNX file, [`Encoding::Onnx`]) and a [`Target`]:
//!    [`Target::Cpu`] works on every host, [`Target::Gpu`] only where the host has an accelerated backend
//!    (else [`ErrorCode::UnsupportedOperation`]). [`Graph::load_by_name`] instead picks a model the host's
//!    operator registered, shared and already warm ([`ErrorCode::NotFound`] for an unknown name).
//! 2. [`Graph::context`] opens an execution context; one graph can have several.
//! 3. [`Context::compute`] takes `(name, tensor)` pairs. Names are the model's input names; a name that
//!    is not one of them but is a decimal number `i` means the model's `i`-th input, so `"0"`, `"1"`, ...
//!    feed a model whose input names are unknown.
//!
//! Every failure is an [`Error`] with the host's [`ErrorCode`] and message, displayed as
//! `wasi-nn <code>: <message>`; it converts into [`crate::Error`], so `?` works inside [`crate::run`].
//!
//! # Example
//!
//! Classify one 8×8 image with a model shipped in the bundle's assets:
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! use netmind_sdk::nn::{Encoding, Graph, Target, Tensor};
//!
//! fn main() -> ExitCode {
//!     netmind_sdk::run(|| {
//!         let model = std::fs::read("/assets/digits.onnx")
//!             .map_err(|e| netmind_sdk::Error::io("/assets/digits.onnx", e))?;
//!         let graph = Graph::load(&model, Encoding::Onnx, Target::Cpu)?;
//!         let mut context = graph.context()?;
//!
//!         let pixels = vec![0.0f32; 64]; // one image, 8×8, row-major, in [0, 1]
//!         let input = Tensor::from_f32([1, 64], &pixels)?;
//!         let outputs = context.compute(&[("input", &input)])?;
//!
//!         for (name, tensor) in outputs.iter() {
//!             println!("{name}: {} {:?}", tensor.ty(), tensor.shape());
//!         }
//!         let label = outputs.require("label")?.to_i64()?[0];
//!         Ok(label)
//!     })
//! }
//! ```
//!
//! For a one-off call, [`infer`] does the three steps with ONNX on the CPU. NumPy `.npy` files convert
//! to and from tensors with [`Tensor::from_npy`] and [`Tensor::to_npy`] (see [`crate::npy`]).

use std::fmt;

#[doc(hidden)]
pub mod bindings;
mod error;
mod tensor;

pub use error::{Error, ErrorCode, Result};
pub use tensor::{Element, Tensor, TensorType};

use bindings::wasi::nn::{graph as wit_graph, inference as wit_inference};

/// How a model is serialized, mirroring the WIT enum `wasi:nn/graph.graph-encoding`.
///
/// NetMind hosts load [`Onnx`](Self::Onnx); any other encoding fails with
/// [`ErrorCode::InvalidEncoding`] unless a host says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// OpenVINO IR.
    Openvino,
    /// ONNX (`.onnx`): the model as one protobuf file.
    Onnx,
    /// TensorFlow.
    Tensorflow,
    /// PyTorch.
    Pytorch,
    /// TensorFlow Lite.
    TensorflowLite,
    /// GGML.
    Ggml,
    /// Let the host guess from the bytes.
    Autodetect,
}

impl From<Encoding> for wit_graph::GraphEncoding {
    fn from(encoding: Encoding) -> Self {
        match encoding {
            Encoding::Openvino => Self::Openvino,
            Encoding::Onnx => Self::Onnx,
            Encoding::Tensorflow => Self::Tensorflow,
            Encoding::Pytorch => Self::Pytorch,
            Encoding::TensorflowLite => Self::Tensorflowlite,
            Encoding::Ggml => Self::Ggml,
            Encoding::Autodetect => Self::Autodetect,
        }
    }
}

/// Where the host runs the model, mirroring the WIT enum `wasi:nn/graph.execution-target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Target {
    /// The host's CPU: available on every host.
    #[default]
    Cpu,
    /// The host's GPU: only where it has an accelerated backend, else
    /// [`ErrorCode::UnsupportedOperation`].
    Gpu,
    /// A TPU.
    Tpu,
}

impl Target {
    /// The target's name in the WIT file: `"cpu"`, `"gpu"` or `"tpu"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
            Self::Tpu => "tpu",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Target> for wit_graph::ExecutionTarget {
    fn from(target: Target) -> Self {
        match target {
            Target::Cpu => Self::Cpu,
            Target::Gpu => Self::Gpu,
            Target::Tpu => Self::Tpu,
        }
    }
}

/// A model loaded by the host, ready to run.
pub struct Graph {
    inner: wit_graph::Graph,
}

impl Graph {
    /// Loads a model from its bytes (for [`Encoding::Onnx`], the whole `.onnx` file).
    ///
    /// # Errors
    ///
    /// The host's error: [`ErrorCode::InvalidEncoding`] for an encoding it does not load,
    /// [`ErrorCode::UnsupportedOperation`] for a target it lacks, [`ErrorCode::InvalidArgument`] for bytes
    /// that are not a valid model, ...
    pub fn load(model: &[u8], encoding: Encoding, target: Target) -> Result<Self> {
        let inner = wit_graph::load(&[model], encoding.into(), target.into())?;
        Ok(Self { inner })
    }

    /// Picks a model the host's operator registered under `name`.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::NotFound`] when the host has no model by that name.
    pub fn load_by_name(name: &str) -> Result<Self> {
        let inner = wit_graph::load_by_name(name)?;
        Ok(Self { inner })
    }

    /// Opens an execution context, in which [`Context::compute`] runs the model.
    ///
    /// # Errors
    ///
    /// The host's error, for example when it is out of resources.
    pub fn context(&self) -> Result<Context> {
        let inner = self.inner.init_execution_context()?;
        Ok(Context { inner })
    }
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph").finish_non_exhaustive()
    }
}

/// An execution context of a [`Graph`]: runs the model on inputs.
pub struct Context {
    inner: wit_inference::GraphExecutionContext,
}

impl Context {
    /// Runs the model on `inputs` and returns every output.
    ///
    /// Each input is `(name, tensor)`: `name` is one of the model's input names, or a decimal number `i`
    /// for the model's `i`-th input. The outputs come back named by the model's output names, in the
    /// model's order. The tensors are copied into the host; `inputs` stay the caller's.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::InvalidArgument`] for a missing or unknown input, or a tensor of the wrong type or
    /// shape; [`ErrorCode::RuntimeError`] when the model fails; a dimension over `u32::MAX` is refused
    /// before the call.
    pub fn compute(&mut self, inputs: &[(&str, &Tensor)]) -> Result<Outputs> {
        let named = inputs
            .iter()
            .map(|&(name, tensor)| Ok((name.to_owned(), tensor.to_wit()?)))
            .collect::<Result<Vec<_>>>()?;
        let outputs = self
            .inner
            .compute(named)?
            .into_iter()
            .map(|(name, tensor)| Ok((name, Tensor::from_wit(&tensor)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Outputs { outputs })
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

/// A model's outputs from [`Context::compute`]: `(name, tensor)` pairs in the model's order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outputs {
    outputs: Vec<(String, Tensor)>,
}

impl Outputs {
    /// Outputs from `(name, tensor)` pairs, kept in order (for tests and for code that builds its own).
    pub fn new(outputs: Vec<(String, Tensor)>) -> Self {
        Self { outputs }
    }

    /// The output named `name`, if the model has one.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.outputs
            .iter()
            .find_map(|(n, tensor)| (n == name).then_some(tensor))
    }

    /// The output named `name`.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::InvalidArgument`] naming the outputs the model does have.
    pub fn require(&self, name: &str) -> Result<&Tensor> {
        self.get(name).ok_or_else(|| {
            Error::invalid_argument(format!(
                "the model has no output `{name}`; its outputs are: {}",
                self.names().join(", ")
            ))
        })
    }

    /// The `i`-th output (counting from 0) in the model's order, with its name.
    pub fn get_index(&self, i: usize) -> Option<(&str, &Tensor)> {
        self.outputs
            .get(i)
            .map(|(name, tensor)| (name.as_str(), tensor))
    }

    /// The outputs' names, in the model's order.
    pub fn names(&self) -> Vec<&str> {
        self.outputs.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// The `(name, tensor)` pairs, in the model's order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Tensor)> {
        self.outputs
            .iter()
            .map(|(name, tensor)| (name.as_str(), tensor))
    }

    /// The number of outputs.
    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    /// Whether there are no outputs.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// Removes and returns the output named `name`.
    pub fn take(&mut self, name: &str) -> Option<Tensor> {
        let i = self.outputs.iter().position(|(n, _)| n == name)?;
        Some(self.outputs.remove(i).1)
    }

    /// The `(name, tensor)` pairs, in the model's order.
    pub fn into_vec(self) -> Vec<(String, Tensor)> {
        self.outputs
    }
}

impl IntoIterator for Outputs {
    type Item = (String, Tensor);
    type IntoIter = std::vec::IntoIter<(String, Tensor)>;

    fn into_iter(self) -> Self::IntoIter {
        self.outputs.into_iter()
    }
}

/// Runs an ONNX `model` once on the host's CPU: [`Graph::load`], [`Graph::context`] and
/// [`Context::compute`] in one call.
///
/// To run a model more than once, keep the [`Graph`] and [`Context`] instead: loading is the slow part.
///
/// # Errors
///
/// Those of the three steps.
pub fn infer(model: &[u8], inputs: &[(&str, &Tensor)]) -> Result<Outputs> {
    Graph::load(model, Encoding::Onnx, Target::Cpu)?
        .context()?
        .compute(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs() -> Outputs {
        Outputs::new(vec![
            ("label".into(), Tensor::from_i64([2], &[3, 7]).unwrap()),
            (
                "probabilities".into(),
                Tensor::from_f32([2, 2], &[0.1, 0.9, 0.8, 0.2]).unwrap(),
            ),
        ])
    }

    #[test]
    fn outputs_by_name_and_position() {
        let out = outputs();
        assert_eq!(out.len(), 2);
        assert_eq!(out.get("label").unwrap().to_i64().unwrap(), [3, 7]);
        assert!(out.get("missing").is_none());
        let (name, tensor) = out.get_index(1).unwrap();
        assert_eq!((name, tensor.shape()), ("probabilities", &[2, 2][..]));
        assert!(out.get_index(2).is_none());
        assert_eq!(out.names(), ["label", "probabilities"]);
        let names: Vec<_> = out.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["label", "probabilities"]);
    }

    #[test]
    fn require_lists_the_real_outputs() {
        let err = outputs().require("logits").unwrap_err();
        assert_eq!(
            err.to_string(),
            "wasi-nn invalid-argument: the model has no output `logits`; its outputs are: label, \
             probabilities"
        );
    }

    #[test]
    fn take_and_into_vec_keep_order() {
        let mut out = outputs();
        assert!(out.take("label").is_some());
        assert!(out.take("label").is_none());
        let rest = out.into_vec();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, "probabilities");
        let names: Vec<String> = outputs().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["label", "probabilities"]);
    }

    #[test]
    fn enums_map_to_wit() {
        assert_eq!(
            wit_graph::GraphEncoding::from(Encoding::Onnx),
            wit_graph::GraphEncoding::Onnx
        );
        assert_eq!(
            wit_graph::ExecutionTarget::from(Target::Gpu),
            wit_graph::ExecutionTarget::Gpu
        );
        assert_eq!(Target::default(), Target::Cpu);
        assert_eq!(Target::Gpu.to_string(), "gpu");
    }
}
