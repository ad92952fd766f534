//! The `wasi:nn` WIT interface as seen by a job: resources in the job's
//! table, every byte and every second accounted to the job.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable, WasmList, WasmStr};
use wasmtime::{AsContext, StoreContextMut};

use super::backend::{Model, Session};
use super::job::{LoadedGraph, NnCall};
use super::{Encoding, ErrorCode, NnError, Target, Tensor, TensorType};

mod generated {
    wasmtime::component::bindgen!({
        world: "ml",
        path: "wit/wasi-nn.wit",
        with: {
            "wasi:nn/graph.graph": super::GraphRes,
            "wasi:nn/tensor.tensor": super::TensorRes,
            "wasi:nn/inference.graph-execution-context": super::ContextRes,
            "wasi:nn/errors.error": super::ErrorRes,
        },
        imports: { default: trappable },
        trappable_error_type: {
            "wasi:nn/errors.error" => super::ErrorRes,
        },
    });
}
use generated::wasi::nn::{errors, graph, inference, tensor};

/// A graph a job holds.
#[allow(unreachable_pub, reason = "named by the generated bindings")]
pub struct GraphRes(LoadedGraph);

/// A tensor a job holds. One the job built wrongly is kept with its error,
/// which `compute` reports (a constructor cannot fail in wasi-nn).
#[allow(unreachable_pub, reason = "named by the generated bindings")]
pub struct TensorRes {
    tensor: Tensor,
    invalid: Option<NnError>,
}

/// An execution context; the session is out of it only while it computes.
#[allow(unreachable_pub, reason = "named by the generated bindings")]
pub struct ContextRes {
    model: Arc<dyn Model>,
    session: Option<Box<dyn Session>>,
}

/// An error resource.
#[allow(unreachable_pub, reason = "named by the generated bindings")]
pub struct ErrorRes(NnError);

/// What the wasi-nn host functions work on.
pub(crate) struct NnView<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) call: NnCall<'a>,
}

struct HasNn;

impl HasData for HasNn {
    type Data<'a> = NnView<'a>;
}

/// Adds `wasi:nn` to a component linker.
pub(crate) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> NnView<'_>,
) -> wasmtime::Result<()> {
    graph::add_to_linker::<_, HasNn>(linker, view)?;
    tensor::add_to_linker::<_, HasNn>(linker, view)?;
    inference::add_to_linker::<_, HasNn>(linker, view)?;
    errors::add_to_linker::<_, HasNn>(linker, view)?;
    // The generated glue lifts every `list<list<u8>>` builder and every input
    // name before the host sees them; a job could list the same large buffer
    // millions of times. These two functions lift lazily and check first.
    linker.allow_shadowing(true);
    linker.instance(GRAPH)?.func_wrap(
        "load",
        move |mut store: StoreContextMut<'_, T>, (builders, enc, tgt): LoadParams| {
            let enc = encoding(enc);
            let count = view(store.data_mut())
                .call
                .check_builders(enc, builders.len(), 0);
            if let Err(e) = count {
                return Ok((view(store.data_mut()).fail(e)?,));
            }
            let Some(first) = builders.get(&mut store, 0) else {
                return Err(wasmtime::Error::msg("a one-element list has no element 0"));
            };
            let first = first?;
            let size = view(store.data_mut())
                .call
                .check_builders(enc, 1, first.len());
            if let Err(e) = size {
                return Ok((view(store.data_mut()).fail(e)?,));
            }
            let bytes = first.as_le_slice(store.as_context()).to_vec();
            let mut v = view(store.data_mut());
            let loaded = v.call.load(&[&bytes], enc, target(tgt));
            Ok((v.graph(loaded)?,))
        },
    )?;
    linker.instance(INFERENCE)?.func_wrap(
        "[method]graph-execution-context.compute",
        move |mut store: StoreContextMut<'_, T>, (ctx, inputs): ComputeParams| {
            let mut named = Vec::with_capacity(inputs.len().min(1024));
            let mut too_long = None;
            for i in 0..inputs.len() {
                let Some(item) = inputs.get(&mut store, i) else {
                    break;
                };
                let (name, handle) = item?;
                let name = name.to_str(store.as_context())?;
                if name.len() > MAX_NAME {
                    too_long.get_or_insert(name.len());
                    named.push((String::new(), handle));
                } else {
                    named.push((name.into_owned(), handle));
                }
            }
            let mut v = view(store.data_mut());
            if let Some(len) = too_long {
                for (_, handle) in named {
                    tensor::HostTensor::drop(&mut v, handle)?;
                }
                let e = NnError::invalid(format!(
                    "an input name is {len} bytes; names are at most {MAX_NAME}"
                ));
                return Ok((v.fail(e)?,));
            }
            Ok((inference::HostGraphExecutionContext::compute(
                &mut v, ctx, named,
            )?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

const GRAPH: &str = "wasi:nn/graph@0.2.0-rc-2024-10-28";
const INFERENCE: &str = "wasi:nn/inference@0.2.0-rc-2024-10-28";
/// The longest input name a job may pass.
const MAX_NAME: usize = 1024;

type LoadParams = (
    WasmList<WasmList<u8>>,
    graph::GraphEncoding,
    graph::ExecutionTarget,
);
type ComputeParams = (
    Resource<ContextRes>,
    WasmList<(WasmStr, Resource<TensorRes>)>,
);

type NnResult<T> = wasmtime::Result<Result<T, Resource<ErrorRes>>>;

impl NnView<'_> {
    /// Hands an error to the guest as an `error` resource.
    fn fail<T>(&mut self, err: NnError) -> NnResult<T> {
        tracing::debug!(target: "host::nn", error = %err, "wasi-nn call failed");
        Ok(Err(self.table.push(ErrorRes(err))?))
    }

    fn graph(&mut self, loaded: Result<LoadedGraph, NnError>) -> NnResult<Resource<GraphRes>> {
        match loaded {
            Ok(g) => Ok(Ok(self.table.push(GraphRes(g))?)),
            Err(e) => self.fail(e),
        }
    }
}

fn encoding(e: graph::GraphEncoding) -> Encoding {
    match e {
        graph::GraphEncoding::Openvino => Encoding::Openvino,
        graph::GraphEncoding::Onnx => Encoding::Onnx,
        graph::GraphEncoding::Tensorflow => Encoding::Tensorflow,
        graph::GraphEncoding::Pytorch => Encoding::Pytorch,
        graph::GraphEncoding::Tensorflowlite => Encoding::Tensorflowlite,
        graph::GraphEncoding::Ggml => Encoding::Ggml,
        graph::GraphEncoding::Autodetect => Encoding::Autodetect,
    }
}

fn target(t: graph::ExecutionTarget) -> Target {
    match t {
        graph::ExecutionTarget::Cpu => Target::Cpu,
        graph::ExecutionTarget::Gpu => Target::Gpu,
        graph::ExecutionTarget::Tpu => Target::Tpu,
    }
}

fn tensor_type(t: tensor::TensorType) -> TensorType {
    match t {
        tensor::TensorType::Fp16 => TensorType::F16,
        tensor::TensorType::Fp32 => TensorType::F32,
        tensor::TensorType::Fp64 => TensorType::F64,
        tensor::TensorType::Bf16 => TensorType::Bf16,
        tensor::TensorType::U8 => TensorType::U8,
        tensor::TensorType::I32 => TensorType::I32,
        tensor::TensorType::I64 => TensorType::I64,
    }
}

fn wit_tensor_type(t: TensorType) -> tensor::TensorType {
    match t {
        TensorType::F16 => tensor::TensorType::Fp16,
        TensorType::F32 => tensor::TensorType::Fp32,
        TensorType::F64 => tensor::TensorType::Fp64,
        TensorType::Bf16 => tensor::TensorType::Bf16,
        TensorType::U8 => tensor::TensorType::U8,
        TensorType::I32 => tensor::TensorType::I32,
        TensorType::I64 => tensor::TensorType::I64,
    }
}

impl graph::Host for NnView<'_> {
    fn load(
        &mut self,
        builders: Vec<graph::GraphBuilder>,
        enc: graph::GraphEncoding,
        tgt: graph::ExecutionTarget,
    ) -> NnResult<Resource<GraphRes>> {
        let slices: Vec<&[u8]> = builders.iter().map(Vec::as_slice).collect();
        let loaded = self.call.load(&slices, encoding(enc), target(tgt));
        self.graph(loaded)
    }

    fn load_by_name(&mut self, name: String) -> NnResult<Resource<GraphRes>> {
        let loaded = self.call.load_by_name(&name);
        self.graph(loaded)
    }
}

impl graph::HostGraph for NnView<'_> {
    fn init_execution_context(
        &mut self,
        graph: Resource<GraphRes>,
    ) -> NnResult<Resource<ContextRes>> {
        let model = self.table.get(&graph)?.0.model.clone();
        match self.call.new_context(model.as_ref()) {
            Ok(session) => Ok(Ok(self.table.push(ContextRes {
                model,
                session: Some(session),
            })?)),
            Err(e) => self.fail(e),
        }
    }

    fn drop(&mut self, graph: Resource<GraphRes>) -> wasmtime::Result<()> {
        let g = self.table.delete(graph)?;
        self.call.release_graph(g.0);
        Ok(())
    }
}

impl inference::Host for NnView<'_> {}

impl inference::HostGraphExecutionContext for NnView<'_> {
    fn compute(
        &mut self,
        ctx: Resource<ContextRes>,
        inputs: Vec<inference::NamedTensor>,
    ) -> NnResult<Vec<inference::NamedTensor>> {
        let mut given = Vec::with_capacity(inputs.len());
        let mut held = Vec::with_capacity(inputs.len());
        let mut invalid = None;
        for (name, handle) in inputs {
            let t = self.table.delete(handle)?;
            if t.invalid.is_none() {
                held.push(t.tensor.data.len());
            }
            if let Some(e) = t.invalid {
                invalid.get_or_insert(NnError::new(
                    e.code,
                    format!("input '{name}': {}", e.message),
                ));
            }
            given.push((name, t.tensor));
        }
        let context = self.table.get_mut(&ctx)?;
        let model = context.model.clone();
        let mut session = context
            .session
            .take()
            .ok_or_else(|| wasmtime::Error::msg("execution context in use"))?;
        let result = match invalid {
            Some(e) => Ok(Err(e)),
            None => self.call.infer(model.as_ref(), session.as_mut(), given),
        };
        self.table.get_mut(&ctx)?.session = Some(session);
        // Inputs are the host's until compute returns; then they are gone.
        for bytes in held {
            self.call.release_tensor(bytes);
        }
        match result? {
            Ok(outputs) => {
                let mut handles = Vec::with_capacity(outputs.len());
                for (name, tensor) in outputs {
                    let res = TensorRes {
                        tensor,
                        invalid: None,
                    };
                    handles.push((name, self.table.push(res)?));
                }
                Ok(Ok(handles))
            }
            Err(e) => self.fail(e),
        }
    }

    fn drop(&mut self, ctx: Resource<ContextRes>) -> wasmtime::Result<()> {
        let ContextRes { model, session } = self.table.delete(ctx)?;
        drop(model);
        if let Some(session) = session {
            self.call.release_context(session);
        }
        Ok(())
    }
}

impl tensor::Host for NnView<'_> {}

impl tensor::HostTensor for NnView<'_> {
    fn new(
        &mut self,
        dims: tensor::TensorDimensions,
        ty: tensor::TensorType,
        data: tensor::TensorData,
    ) -> wasmtime::Result<Resource<TensorRes>> {
        let tensor = Tensor {
            dims,
            ty: tensor_type(ty),
            data,
        };
        let res = match self.call.admit(&tensor, None) {
            Ok(()) => TensorRes {
                tensor,
                invalid: None,
            },
            // A job past its memory limit ends as it would had its own memory grown.
            Err(e) if e.code == ErrorCode::TooLarge && e.message.contains("memory limit") => {
                return Err(self.call.out_of_memory(e.message));
            }
            // A tensor that will never be computed on holds nothing, and is not counted.
            Err(e) => TensorRes {
                tensor: Tensor {
                    dims: Vec::new(),
                    data: Vec::new(),
                    ..tensor
                },
                invalid: Some(e),
            },
        };
        Ok(self.table.push(res)?)
    }

    fn dimensions(&mut self, t: Resource<TensorRes>) -> wasmtime::Result<tensor::TensorDimensions> {
        Ok(self.table.get(&t)?.tensor.dims.clone())
    }

    fn ty(&mut self, t: Resource<TensorRes>) -> wasmtime::Result<tensor::TensorType> {
        Ok(wit_tensor_type(self.table.get(&t)?.tensor.ty))
    }

    fn data(&mut self, t: Resource<TensorRes>) -> wasmtime::Result<tensor::TensorData> {
        Ok(self.table.get(&t)?.tensor.data.clone())
    }

    fn drop(&mut self, t: Resource<TensorRes>) -> wasmtime::Result<()> {
        let t = self.table.delete(t)?;
        if t.invalid.is_none() {
            self.call.release_tensor(t.tensor.data.len());
        }
        Ok(())
    }
}

impl errors::Host for NnView<'_> {
    fn convert_error(&mut self, err: ErrorRes) -> wasmtime::Result<ErrorRes> {
        Ok(err)
    }
}

impl errors::HostError for NnView<'_> {
    fn code(&mut self, e: Resource<ErrorRes>) -> wasmtime::Result<errors::ErrorCode> {
        Ok(match self.table.get(&e)?.0.code {
            ErrorCode::InvalidArgument => errors::ErrorCode::InvalidArgument,
            ErrorCode::InvalidEncoding => errors::ErrorCode::InvalidEncoding,
            ErrorCode::Timeout => errors::ErrorCode::Timeout,
            ErrorCode::RuntimeError => errors::ErrorCode::RuntimeError,
            ErrorCode::UnsupportedOperation => errors::ErrorCode::UnsupportedOperation,
            ErrorCode::TooLarge => errors::ErrorCode::TooLarge,
            ErrorCode::NotFound => errors::ErrorCode::NotFound,
            ErrorCode::Security => errors::ErrorCode::Security,
            ErrorCode::Unknown => errors::ErrorCode::Unknown,
        })
    }

    fn data(&mut self, e: Resource<ErrorRes>) -> wasmtime::Result<String> {
        Ok(self.table.get(&e)?.0.message.clone())
    }

    fn drop(&mut self, e: Resource<ErrorRes>) -> wasmtime::Result<()> {
        self.table.delete(e)?;
        Ok(())
    }
}
