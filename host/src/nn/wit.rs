//! The `wasi:nn` WIT interface as seen by a job: resources in the job's
//! table, every byte and every second accounted to the job.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::backend::{Model, Session, bind_inputs};
use super::registry::ModelUse;
use super::{Encoding, ErrorCode, NnError, NnHost, Target, Tensor, TensorType};
use crate::limits::LimitKind;
use crate::run::Guard;

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

/// A graph a job holds, and the host bytes charged to it for the graph.
#[allow(unreachable_pub, reason = "named by the generated bindings")]
pub struct GraphRes {
    model: Arc<dyn Model>,
    charged: u64,
}

/// A tensor a job holds. One the job built wrongly is kept with its error,
/// which `compute` reports (a constructor cannot fail in wasi-nn).
#[allow(unreachable_pub, reason = "named by the generated bindings")]
pub struct TensorRes {
    tensor: Tensor,
    invalid: Option<NnError>,
}

/// An execution context.
#[allow(unreachable_pub, reason = "named by the generated bindings")]
pub struct ContextRes {
    model: Arc<dyn Model>,
    session: Box<dyn Session>,
}

/// An error resource.
#[allow(unreachable_pub, reason = "named by the generated bindings")]
pub struct ErrorRes(NnError);

/// A job's wasi-nn state: the host service and what the job used of it.
pub(crate) struct JobNn {
    host: Arc<NnHost>,
    /// Time spent loading and computing.
    pub(crate) used: Duration,
    /// Models loaded, in order.
    pub(crate) models: Vec<ModelUse>,
    /// `compute` calls made.
    pub(crate) computes: u64,
    tensors: u32,
    graphs: u32,
}

impl JobNn {
    pub(crate) fn new(host: Arc<NnHost>) -> Self {
        Self {
            host,
            used: Duration::ZERO,
            models: Vec::new(),
            computes: 0,
            tensors: 0,
            graphs: 0,
        }
    }
}

/// What the wasi-nn host functions work on.
pub(crate) struct NnView<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) nn: &'a mut JobNn,
    pub(crate) guard: &'a mut Guard,
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
    Ok(())
}

type NnResult<T> = wasmtime::Result<Result<T, Resource<ErrorRes>>>;

impl NnView<'_> {
    /// Hands an error to the guest as an `error` resource.
    fn fail<T>(&mut self, err: NnError) -> NnResult<T> {
        tracing::debug!(target: "host::nn", error = %err, "wasi-nn call failed");
        Ok(Err(self.table.push(ErrorRes(err))?))
    }

    /// Charges host bytes to the job's memory limit, or says why not.
    fn charge(&mut self, bytes: u64, what: &str) -> Result<(), NnError> {
        self.guard.limiter.charge(bytes).map_err(|(limit, in_use)| {
            NnError::new(
                ErrorCode::TooLarge,
                format!(
                    "{what} needs {} of host memory, which would take the job past its memory limit of {} ({} in use)",
                    crate::limits::bytes(bytes),
                    crate::limits::bytes(limit),
                    crate::limits::bytes(in_use)
                ),
            )
        })
    }

    fn refund(&mut self, bytes: u64) {
        self.guard.limiter.refund(bytes);
    }

    /// When inference must stop: the call limit, the job's inference budget,
    /// and the job's wall time, whichever comes first. The flag says whether
    /// the wall time is the binding one (then the job, not the call, ends).
    fn deadline(&self) -> Result<(Instant, bool), NnError> {
        let limits = self.host().limits();
        let left = limits.job_time.saturating_sub(self.nn.used);
        if left.is_zero() {
            return Err(NnError::new(
                ErrorCode::Timeout,
                format!(
                    "the job has used its {} of inference time on this host",
                    humantime::format_duration(limits.job_time)
                ),
            ));
        }
        let now = Instant::now();
        let call = now + limits.call_timeout.min(left);
        let wall = self.guard.started + self.guard.limits.wall_time;
        Ok(if wall < call {
            (wall, true)
        } else {
            (call, false)
        })
    }

    fn host(&self) -> &NnHost {
        &self.nn.host
    }

    /// Ends the job for its wall-time limit.
    fn kill_wall_time(&mut self) -> wasmtime::Error {
        let limit = LimitKind::WallTime(self.guard.limits.wall_time);
        let msg = limit.to_string();
        self.guard.killed = Some(limit);
        wasmtime::Error::msg(msg)
    }

    fn new_graph(&mut self, model: Arc<dyn Model>, charged: u64) -> NnResult<Resource<GraphRes>> {
        self.nn.graphs += 1;
        Ok(Ok(self.table.push(GraphRes { model, charged })?))
    }

    fn check_graph_count(&self) -> Result<(), NnError> {
        let max = self.host().limits().max_graphs;
        if self.nn.graphs >= max {
            return Err(NnError::new(
                ErrorCode::TooLarge,
                format!("a job may hold at most {max} graphs at once; drop one first"),
            ));
        }
        Ok(())
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
        let (enc, tgt) = (encoding(enc), target(tgt));
        if let Err(e) = self.check_graph_count() {
            return self.fail(e);
        }
        let [model] = builders.as_slice() else {
            return self.fail(NnError::invalid(format!(
                "an {enc} graph is built from exactly one builder (the model file's bytes), not {}",
                builders.len()
            )));
        };
        let max = self.host().limits().max_model_bytes;
        if model.len() as u64 > max {
            return self.fail(NnError::new(
                ErrorCode::TooLarge,
                format!(
                    "the model is {}; this host loads models of at most {} from jobs (ask for a registered model with load-by-name instead)",
                    crate::limits::bytes(model.len() as u64),
                    crate::limits::bytes(max)
                ),
            ));
        }
        let backend = match self.host().backend_for(enc, tgt) {
            Ok(b) => b.clone(),
            Err(e) => return self.fail(e),
        };
        // The backend holds about two copies of the weights while it prepares
        // the model, and one after; charge the larger figure up front.
        let charged = 2 * model.len() as u64;
        if let Err(e) = self.charge(charged, "loading this model") {
            return self.fail(e);
        }
        let started = Instant::now();
        let loaded = backend.load(model, tgt);
        self.nn.used += started.elapsed();
        match loaded {
            Ok(m) => {
                let usage = ModelUse::new(None, model, backend.as_ref(), started);
                tracing::debug!(target: "host::nn", sha256 = %usage.sha256, backend = %usage.backend, load_us = usage.load_us, "model loaded");
                self.nn.models.push(usage);
                self.new_graph(m, charged)
            }
            Err(e) => {
                self.refund(charged);
                self.fail(e)
            }
        }
    }

    fn load_by_name(&mut self, name: String) -> NnResult<Resource<GraphRes>> {
        if let Err(e) = self.check_graph_count() {
            return self.fail(e);
        }
        let Some(found) = self.nn.host.registry.get(&name) else {
            let names = self.nn.host.registry.names();
            let have = if names.is_empty() {
                "this host has no registered models".to_string()
            } else {
                format!("registered models: {}", names.join(", "))
            };
            return self.fail(NnError::new(
                ErrorCode::NotFound,
                format!("no model is registered under the name '{name}'; {have}"),
            ));
        };
        let mut usage = found.usage;
        usage.load_us = 0;
        self.nn.models.push(usage);
        self.new_graph(found.model, 0)
    }
}

impl graph::HostGraph for NnView<'_> {
    fn init_execution_context(
        &mut self,
        graph: Resource<GraphRes>,
    ) -> NnResult<Resource<ContextRes>> {
        let model = self.table.get(&graph)?.model.clone();
        match model.session() {
            Ok(session) => Ok(Ok(self.table.push(ContextRes { model, session })?)),
            Err(e) => self.fail(e),
        }
    }

    fn drop(&mut self, graph: Resource<GraphRes>) -> wasmtime::Result<()> {
        let g = self.table.delete(graph)?;
        self.nn.graphs -= 1;
        self.refund(g.charged);
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
        self.nn.computes += 1;
        let mut given = Vec::with_capacity(inputs.len());
        let mut held = 0u64;
        let mut invalid = None;
        for (name, handle) in inputs {
            let t = self.table.delete(handle)?;
            self.nn.tensors -= 1;
            held += t.tensor.data.len() as u64;
            if let Some(e) = t.invalid {
                invalid.get_or_insert(NnError::new(
                    e.code,
                    format!("input '{name}': {}", e.message),
                ));
            }
            given.push((name, t.tensor));
        }
        let result = match invalid {
            Some(e) => Ok(Err(e)),
            None => self.run(&ctx, given),
        };
        self.refund(held);
        match result? {
            Ok(outputs) => Ok(Ok(outputs)),
            Err(e) => self.fail(e),
        }
    }

    fn drop(&mut self, ctx: Resource<ContextRes>) -> wasmtime::Result<()> {
        self.table.delete(ctx)?;
        Ok(())
    }
}

impl NnView<'_> {
    /// Runs a context; the outer error ends the job, the inner one goes to the guest.
    #[allow(
        clippy::type_complexity,
        reason = "trap or guest error, spelled out once"
    )]
    fn run(
        &mut self,
        ctx: &Resource<ContextRes>,
        given: Vec<(String, Tensor)>,
    ) -> wasmtime::Result<Result<Vec<inference::NamedTensor>, NnError>> {
        let (deadline, wall_bound) = match self.deadline() {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        let limits = self.host().limits().clone();
        let context = self.table.get_mut(ctx)?;
        let inputs = match bind_inputs(context.model.inputs(), given) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e)),
        };
        let started = Instant::now();
        let outputs = context.session.run(inputs, deadline);
        let names: Vec<String> = context
            .model
            .outputs()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        self.nn.used += started.elapsed();
        let outputs = match outputs {
            Ok(o) => o,
            Err(e) if e.code == ErrorCode::Timeout && wall_bound => {
                return Err(self.kill_wall_time());
            }
            Err(e) if e.code == ErrorCode::Timeout => {
                return Ok(Err(NnError::new(
                    ErrorCode::Timeout,
                    format!(
                        "inference ran past this host's limit of {} per compute call or {} per job",
                        humantime::format_duration(limits.call_timeout),
                        humantime::format_duration(limits.job_time)
                    ),
                )));
            }
            Err(e) => return Ok(Err(e)),
        };
        let mut handles = Vec::with_capacity(outputs.len());
        for (i, t) in outputs.into_iter().enumerate() {
            let name = names.get(i).cloned().unwrap_or_else(|| i.to_string());
            let res = self
                .admit(&t, Some(&format!("output '{name}'")))
                .map(|()| TensorRes {
                    tensor: t,
                    invalid: None,
                });
            match res {
                Ok(res) => {
                    self.nn.tensors += 1;
                    handles.push((name, self.table.push(res)?));
                }
                Err(e) => {
                    for (_, h) in handles {
                        let t = self.table.delete(h)?;
                        self.nn.tensors -= 1;
                        self.refund(t.tensor.data.len() as u64);
                    }
                    return Ok(Err(e));
                }
            }
        }
        Ok(Ok(handles))
    }

    /// Checks a tensor against the size and count limits and charges its bytes.
    fn admit(&mut self, t: &Tensor, what: Option<&str>) -> Result<(), NnError> {
        let limits = self.host().limits().clone();
        if self.nn.tensors >= limits.max_tensors {
            return Err(NnError::new(
                ErrorCode::TooLarge,
                format!(
                    "a job may hold at most {} tensors at once; drop some first",
                    limits.max_tensors
                ),
            ));
        }
        t.validate(limits.max_tensor_bytes)
            .map_err(|e| match what {
                Some(what) => NnError::new(e.code, format!("{what}: {}", e.message)),
                None => e,
            })?;
        self.charge(t.data.len() as u64, what.unwrap_or("this tensor"))
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
        let invalid = match self.admit(&tensor, None) {
            Ok(()) => None,
            // A job past its memory limit ends as it would had its own memory grown.
            Err(e) if e.code == ErrorCode::TooLarge && e.message.contains("memory limit") => {
                self.guard.limiter.refused =
                    Some(LimitKind::Memory(self.guard.limits.memory_bytes));
                return Err(wasmtime::Error::msg(e.message));
            }
            Err(e) => Some(e),
        };
        // A tensor that will never be computed on holds no data.
        let tensor = if invalid.is_some() {
            Tensor {
                data: Vec::new(),
                ..tensor
            }
        } else {
            tensor
        };
        self.nn.tensors += 1;
        Ok(self.table.push(TensorRes { tensor, invalid })?)
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
        self.nn.tensors -= 1;
        self.refund(t.tensor.data.len() as u64);
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
