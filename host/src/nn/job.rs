//! What one job does through wasi-nn, whichever ABI it calls it through (the
//! WIT interface or the witx one): loading graphs, running them, and charging
//! every byte and second to the job's limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backend::{Model, Session, bind_inputs};
use super::registry::ModelUse;
use super::{Encoding, ErrorCode, NnError, NnHost, Target, Tensor};
use crate::limits::LimitKind;
use crate::run::Guard;

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
    contexts: u32,
    /// Graphs the job dropped while contexts still used their model: their
    /// charge and graph slot are held until the last context goes.
    orphans: Vec<LoadedGraph>,
}

impl JobNn {
    /// Records a model the job used, once per model and name.
    fn used_model(&mut self, usage: ModelUse) {
        if !self
            .models
            .iter()
            .any(|m| m.sha256 == usage.sha256 && m.name == usage.name)
        {
            self.models.push(usage);
        }
    }

    pub(crate) fn new(host: Arc<NnHost>) -> Self {
        Self {
            host,
            used: Duration::ZERO,
            models: Vec::new(),
            computes: 0,
            tensors: 0,
            graphs: 0,
            contexts: 0,
            orphans: Vec::new(),
        }
    }
}

/// A graph a job holds, and the host bytes charged to it for the graph.
pub(crate) struct LoadedGraph {
    pub(crate) model: Arc<dyn Model>,
    charged: u64,
}

/// A job's wasi-nn state and the limits it is held to, for one call.
pub(crate) struct NnCall<'a> {
    pub(crate) nn: &'a mut JobNn,
    pub(crate) guard: &'a mut Guard,
}

/// The outer error ends the job (a trap); the inner one goes to the guest.
pub(crate) type Outcome<T> = wasmtime::Result<Result<T, NnError>>;

impl NnCall<'_> {
    pub(crate) fn host(&self) -> &NnHost {
        &self.nn.host
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

    /// Checks a tensor against the size and count limits and charges its bytes.
    /// `what` names it in errors (`output 'y'`); `None` for a tensor the job made.
    pub(crate) fn admit(&mut self, t: &Tensor, what: Option<&str>) -> Result<(), NnError> {
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
        self.charge(t.data.len() as u64, what.unwrap_or("this tensor"))?;
        self.nn.tensors += 1;
        Ok(())
    }

    /// Gives back what [`Self::admit`] took for a tensor of `bytes` bytes.
    pub(crate) fn release_tensor(&mut self, bytes: usize) {
        self.nn.tensors = self.nn.tensors.saturating_sub(1);
        self.guard.limiter.refund(bytes as u64);
    }

    /// Ends the job at its memory limit (as when its own memory cannot grow).
    pub(crate) fn out_of_memory(&mut self, message: String) -> wasmtime::Error {
        self.guard.limiter.refused = Some(LimitKind::Memory(self.guard.limits.memory_bytes));
        wasmtime::Error::msg(message)
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
        let call = Instant::now() + limits.call_timeout.min(left);
        let wall = self.guard.started + self.guard.limits.wall_time;
        Ok(if wall < call {
            (wall, true)
        } else {
            (call, false)
        })
    }

    /// Ends the job for its wall-time limit.
    fn kill_wall_time(&mut self) -> wasmtime::Error {
        let limit = LimitKind::WallTime(self.guard.limits.wall_time);
        let msg = limit.to_string();
        self.guard.killed = Some(limit);
        wasmtime::Error::msg(msg)
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

    /// `load`: a graph from the job's own bytes.
    pub(crate) fn load(
        &mut self,
        builders: &[&[u8]],
        enc: Encoding,
        tgt: Target,
    ) -> Result<LoadedGraph, NnError> {
        self.check_graph_count()?;
        self.deadline()?;
        let backend = self.host().backend_for(enc, tgt)?.clone();
        self.check_builders(enc, builders.len(), builders.first().map_or(0, |b| b.len()))?;
        let model = builders[0];
        // The backend holds about two copies of the weights while it prepares
        // the model, and one after; charge the larger figure up front.
        let charged = 2 * model.len() as u64;
        self.charge(charged, "loading this model")?;
        let started = Instant::now();
        let loaded = backend.load(model, tgt);
        self.nn.used += started.elapsed();
        match loaded {
            Ok(m) => {
                let usage = ModelUse::new(None, model, backend.as_ref(), started);
                tracing::debug!(target: "host::nn", sha256 = %usage.sha256, backend = %usage.backend, load_us = usage.load_us, "model loaded");
                self.nn.used_model(usage);
                self.nn.graphs += 1;
                Ok(LoadedGraph { model: m, charged })
            }
            Err(e) => {
                self.guard.limiter.refund(charged);
                Err(e)
            }
        }
    }

    /// Checks the builders of a `load` before any of them is copied: exactly
    /// one (the model file), within the host's model size limit.
    pub(crate) fn check_builders(
        &self,
        enc: Encoding,
        count: usize,
        len: usize,
    ) -> Result<(), NnError> {
        if count != 1 {
            return Err(NnError::invalid(format!(
                "an {enc} graph is built from exactly one builder (the model file's bytes), not {count}"
            )));
        }
        let max = self.host().limits().max_model_bytes;
        if len as u64 > max {
            return Err(NnError::new(
                ErrorCode::TooLarge,
                format!(
                    "the model is {}; this host loads models of at most {} from jobs (ask for a registered model with load-by-name instead)",
                    crate::limits::bytes(len as u64),
                    crate::limits::bytes(max)
                ),
            ));
        }
        Ok(())
    }

    /// `load-by-name`: a model the host operator registered, shared and warm.
    pub(crate) fn load_by_name(&mut self, name: &str) -> Result<LoadedGraph, NnError> {
        self.check_graph_count()?;
        let Some(found) = self.nn.host.registry.get(name) else {
            let names = self.nn.host.registry.names();
            let have = if names.is_empty() {
                "this host has no registered models".to_string()
            } else {
                format!("registered models: {}", names.join(", "))
            };
            return Err(NnError::new(
                ErrorCode::NotFound,
                format!("no model is registered under the name '{name}'; {have}"),
            ));
        };
        let mut usage = found.usage;
        usage.load_us = 0;
        self.nn.used_model(usage);
        self.nn.graphs += 1;
        Ok(LoadedGraph {
            model: found.model,
            charged: 0,
        })
    }

    /// Gives back a graph's bytes and its place in the graph count, once no
    /// execution context uses its model any more.
    pub(crate) fn release_graph(&mut self, g: LoadedGraph) {
        self.nn.orphans.push(g);
        self.sweep_orphans();
    }

    fn sweep_orphans(&mut self) {
        let (free, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.nn.orphans)
            .into_iter()
            .partition(|g| g.charged == 0 || Arc::strong_count(&g.model) == 1);
        self.nn.orphans = held;
        for g in free {
            self.nn.graphs = self.nn.graphs.saturating_sub(1);
            self.guard.limiter.refund(g.charged);
        }
    }

    /// A new execution context of `model`, within the job's context limit.
    pub(crate) fn new_context(&mut self, model: &dyn Model) -> Result<Box<dyn Session>, NnError> {
        let max = self.host().limits().max_contexts;
        if self.nn.contexts >= max {
            return Err(NnError::new(
                ErrorCode::TooLarge,
                format!("a job may hold at most {max} execution contexts at once; drop one first"),
            ));
        }
        let session = model.session()?;
        self.nn.contexts += 1;
        Ok(session)
    }

    /// Gives back an execution context's place (its session is dropped by the caller).
    pub(crate) fn release_context(&mut self, session: Box<dyn Session>) {
        drop(session);
        self.nn.contexts = self.nn.contexts.saturating_sub(1);
        self.sweep_orphans();
    }

    /// Runs `session` of `model` on named inputs and returns the outputs,
    /// named and already admitted (counted and charged).
    pub(crate) fn infer(
        &mut self,
        model: &dyn Model,
        session: &mut dyn Session,
        given: Vec<(String, Tensor)>,
    ) -> Outcome<Vec<(String, Tensor)>> {
        self.nn.computes += 1;
        let (deadline, wall_bound) = match self.deadline() {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        let inputs = match bind_inputs(model.inputs(), given) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e)),
        };
        let started = Instant::now();
        let outputs = session.run(inputs, deadline);
        self.nn.used += started.elapsed();
        let outputs = match outputs {
            Ok(o) => o,
            Err(e) if e.code == ErrorCode::Timeout && wall_bound => {
                return Err(self.kill_wall_time());
            }
            Err(e) if e.code == ErrorCode::Timeout => {
                let limits = self.host().limits();
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
        let mut named: Vec<(String, Tensor)> = Vec::with_capacity(outputs.len());
        for (i, t) in outputs.into_iter().enumerate() {
            let name = model
                .outputs()
                .get(i)
                .map_or_else(|| i.to_string(), |s| s.name.clone());
            if let Err(e) = self.admit(&t, Some(&format!("output '{name}'"))) {
                for (_, t) in &named {
                    self.release_tensor(t.data.len());
                }
                return Ok(Err(e));
            }
            named.push((name, t));
        }
        Ok(Ok(named))
    }
}
