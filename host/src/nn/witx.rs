//! The witx ("preview 1") ABI of wasi-nn, `wasi_ephemeral_nn`, as the `wasi-nn`
//! 0.6 guest crate calls it from `wasm32-wasip1` core modules.
//!
//! Same service, limits and accounting as the WIT interface ([`super::job`]);
//! the ABI is stateful (`set_input` by index, `compute`, `get_output` by index)
//! and can only return an error code, so the message that goes with it is
//! written to the job's stderr as `wasi-nn: <code>: <message>`.

use std::collections::HashMap;
use std::sync::Arc;

use wiggle::{GuestError, GuestMemory, GuestPtr};

use super::backend::{Model, Session};
use super::job::{LoadedGraph, NnCall};
use super::{Encoding, ErrorCode, NnError, Target, Tensor, TensorType};

mod generated {
    use super::WitxError;

    wiggle::from_witx!({
        witx: ["wit/wasi-nn.witx"],
        errors: { nn_errno => WitxError },
    });

    impl wiggle::GuestErrorType for types::NnErrno {
        fn success() -> Self {
            Self::Success
        }
    }
}
use generated::types;
pub(crate) use generated::wasi_ephemeral_nn::add_to_linker;

/// Why a witx call failed: an error for the guest, or a bad pointer (a trap).
#[derive(Debug)]
pub(crate) enum WitxError {
    Nn(NnError),
    Guest(GuestError),
    Trap(wasmtime::Error),
}

impl From<NnError> for WitxError {
    fn from(e: NnError) -> Self {
        Self::Nn(e)
    }
}

impl From<GuestError> for WitxError {
    fn from(e: GuestError) -> Self {
        Self::Guest(e)
    }
}

impl From<wasmtime::Error> for WitxError {
    fn from(e: wasmtime::Error) -> Self {
        Self::Trap(e)
    }
}

type Result<T> = std::result::Result<T, WitxError>;

struct WitxContext {
    model: Arc<dyn Model>,
    session: Box<dyn Session>,
    /// Set inputs by index, counted and charged while held.
    inputs: Vec<Option<Tensor>>,
    /// The last compute's outputs, counted and charged until the next one.
    outputs: Option<Vec<Tensor>>,
}

/// A job's witx handles.
#[derive(Default)]
pub(crate) struct WitxState {
    graphs: HashMap<u32, LoadedGraph>,
    contexts: HashMap<u32, WitxContext>,
    next: u32,
}

impl WitxState {
    fn handle(&mut self) -> u32 {
        self.next = self.next.wrapping_add(1);
        self.next
    }
}

/// What the witx functions work on: the shared wasi-nn call state, this ABI's
/// handles, and where error messages go.
pub(crate) trait WitxHost: Send {
    /// The job's wasi-nn state and limits.
    fn call(&mut self) -> NnCall<'_>;
    /// The job's witx handles.
    fn witx(&mut self) -> &mut WitxState;
    /// Tells the job's author what went wrong (the ABI has only a code).
    fn explain(&mut self, message: &str);
}

fn encoding(e: types::GraphEncoding) -> Encoding {
    match e {
        types::GraphEncoding::Openvino => Encoding::Openvino,
        types::GraphEncoding::Onnx => Encoding::Onnx,
        types::GraphEncoding::Tensorflow => Encoding::Tensorflow,
        types::GraphEncoding::Pytorch => Encoding::Pytorch,
        types::GraphEncoding::Tensorflowlite => Encoding::Tensorflowlite,
        types::GraphEncoding::Autodetect => Encoding::Autodetect,
    }
}

fn target(t: types::ExecutionTarget) -> Target {
    match t {
        types::ExecutionTarget::Cpu => Target::Cpu,
        types::ExecutionTarget::Gpu => Target::Gpu,
        types::ExecutionTarget::Tpu => Target::Tpu,
    }
}

fn tensor_type(t: types::TensorType) -> TensorType {
    match t {
        types::TensorType::F16 => TensorType::F16,
        types::TensorType::F32 => TensorType::F32,
        types::TensorType::F64 => TensorType::F64,
        types::TensorType::U8 => TensorType::U8,
        types::TensorType::I32 => TensorType::I32,
        types::TensorType::I64 => TensorType::I64,
    }
}

fn unknown(what: &str, handle: u32) -> WitxError {
    NnError::invalid(format!("no {what} has the handle {handle}")).into()
}

impl<T: WitxHost> types::UserErrorConversion for T {
    fn nn_errno_from_witx_error(&mut self, e: WitxError) -> wasmtime::Result<types::NnErrno> {
        match e {
            WitxError::Nn(e) => {
                self.explain(&format!("wasi-nn: {e}\n"));
                Ok(match e.code {
                    ErrorCode::InvalidArgument => types::NnErrno::InvalidArgument,
                    ErrorCode::InvalidEncoding => types::NnErrno::InvalidEncoding,
                    ErrorCode::UnsupportedOperation => types::NnErrno::UnsupportedOperation,
                    ErrorCode::TooLarge => types::NnErrno::TooLarge,
                    ErrorCode::NotFound => types::NnErrno::NotFound,
                    ErrorCode::Timeout
                    | ErrorCode::RuntimeError
                    | ErrorCode::Security
                    | ErrorCode::Unknown => types::NnErrno::RuntimeError,
                })
            }
            WitxError::Guest(e) => Err(wasmtime::format_err!(
                "wasi-nn: the job passed memory it does not have: {e}"
            )),
            WitxError::Trap(e) => Err(e),
        }
    }
}

impl<T: WitxHost> generated::wasi_ephemeral_nn::WasiEphemeralNn for T {
    fn load(
        &mut self,
        memory: &mut GuestMemory<'_>,
        builders: types::GraphBuilderArray,
        enc: types::GraphEncoding,
        tgt: types::ExecutionTarget,
    ) -> Result<types::Graph> {
        // Nothing is copied before the count and the size are checked.
        let enc = encoding(enc);
        self.call()
            .check_builders(enc, builders.len() as usize, 0)?;
        let first = builders
            .get(0)
            .ok_or_else(|| NnError::invalid("no builder"))?;
        let ptr = memory.read(first)?;
        self.call().check_builders(enc, 1, ptr.len() as usize)?;
        let bytes = memory.to_vec(ptr)?;
        let graph = self.call().load(&[&bytes], enc, target(tgt))?;
        let witx = self.witx();
        let h = witx.handle();
        witx.graphs.insert(h, graph);
        Ok(h.into())
    }

    fn load_by_name(
        &mut self,
        memory: &mut GuestMemory<'_>,
        name: GuestPtr<str>,
    ) -> Result<types::Graph> {
        let name = memory.as_cow_str(name)?.into_owned();
        let graph = self.call().load_by_name(&name)?;
        let witx = self.witx();
        let h = witx.handle();
        witx.graphs.insert(h, graph);
        Ok(h.into())
    }

    fn init_execution_context(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        graph: types::Graph,
    ) -> Result<types::GraphExecutionContext> {
        let g = u32::from(graph);
        let model = self
            .witx()
            .graphs
            .get(&g)
            .ok_or_else(|| unknown("graph", g))?
            .model
            .clone();
        let session = self.call().new_context(model.as_ref())?;
        let witx = self.witx();
        let inputs = vec![None; model.inputs().len()];
        let h = witx.handle();
        witx.contexts.insert(
            h,
            WitxContext {
                model,
                session,
                inputs,
                outputs: None,
            },
        );
        Ok(h.into())
    }

    fn set_input(
        &mut self,
        memory: &mut GuestMemory<'_>,
        ctx: types::GraphExecutionContext,
        index: u32,
        tensor: &types::Tensor,
    ) -> Result<()> {
        let c = u32::from(ctx);
        let (count, spec) = {
            let context = self
                .witx()
                .contexts
                .get(&c)
                .ok_or_else(|| unknown("execution context", c))?;
            let specs = context.model.inputs();
            (
                specs.len(),
                specs.get(index as usize).map(ToString::to_string),
            )
        };
        let Some(spec) = spec else {
            return Err(NnError::invalid(format!(
                "input index {index} is out of range: the model has {count} inputs"
            ))
            .into());
        };
        let t = Tensor {
            dims: memory.to_vec(tensor.dimensions)?,
            ty: tensor_type(tensor.type_),
            data: memory.to_vec(tensor.data)?,
        };
        // The old input goes first, so that replacing one never counts twice.
        let old = self
            .witx()
            .contexts
            .get_mut(&c)
            .and_then(|context| context.inputs[index as usize].take());
        if let Some(old) = old {
            self.call().release_tensor(old.data.len());
        }
        self.call().admit(&t, Some(&format!("input {spec}")))?;
        if let Some(context) = self.witx().contexts.get_mut(&c) {
            context.inputs[index as usize] = Some(t);
        }
        Ok(())
    }

    fn compute(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        ctx: types::GraphExecutionContext,
    ) -> Result<()> {
        let c = u32::from(ctx);
        let mut context = self
            .witx()
            .contexts
            .remove(&c)
            .ok_or_else(|| unknown("execution context", c))?;
        // Inputs were set by position: name them as the model does.
        let given: Vec<(String, Tensor)> = context
            .inputs
            .iter()
            .zip(context.model.inputs())
            .filter_map(|(t, spec)| t.clone().map(|t| (spec.name.clone(), t)))
            .collect();
        let result = self
            .call()
            .infer(context.model.as_ref(), context.session.as_mut(), given);
        let old = match result {
            Ok(Ok(outputs)) => context
                .outputs
                .replace(outputs.into_iter().map(|(_, t)| t).collect()),
            Ok(Err(e)) => {
                self.witx().contexts.insert(c, context);
                return Err(e.into());
            }
            Err(trap) => {
                self.witx().contexts.insert(c, context);
                return Err(trap.into());
            }
        };
        for t in old.into_iter().flatten() {
            self.call().release_tensor(t.data.len());
        }
        self.witx().contexts.insert(c, context);
        Ok(())
    }

    fn get_output(
        &mut self,
        memory: &mut GuestMemory<'_>,
        ctx: types::GraphExecutionContext,
        index: u32,
        out: GuestPtr<u8>,
        max: u32,
    ) -> Result<u32> {
        let c = u32::from(ctx);
        let context = self
            .witx()
            .contexts
            .get(&c)
            .ok_or_else(|| unknown("execution context", c))?;
        let Some(outputs) = &context.outputs else {
            return Err(NnError::invalid("there are no outputs yet: call compute first").into());
        };
        let Some(t) = outputs.get(index as usize) else {
            return Err(NnError::invalid(format!(
                "output index {index} is out of range: the model has {} outputs",
                outputs.len()
            ))
            .into());
        };
        let len = u32::try_from(t.data.len())
            .map_err(|_| NnError::new(ErrorCode::TooLarge, "the output exceeds 4 GiB"))?;
        if len > max {
            return Err(NnError::new(
                ErrorCode::TooLarge,
                format!("output {index} is {len} bytes but the buffer holds {max}"),
            )
            .into());
        }
        let data = t.data.clone();
        memory.copy_from_slice(&data, out.as_array(len))?;
        Ok(len)
    }
}
