//! The default ONNX backend: `tract`, pure Rust, no native libraries.

use std::sync::Arc;
use std::time::Instant;

use tract_onnx::prelude::{
    DatumType, Framework, InferenceModelExt, IntoRunnable, TValue, TVec, TypedModel,
    TypedSimplePlan, TypedSimpleState,
};
use tract_onnx::tract_core::internal::SimpleState;

use super::backend::{Backend, BackendInfo, IoSpec, Model, Session, guarded};
use super::{Encoding, ErrorCode, NnError, Target, Tensor, TensorType};

/// The version of tract this host was built with.
const TRACT_VERSION: &str = "0.23";

/// The message a node evaluation fails with when the deadline has passed.
const DEADLINE: &str = "netmind: inference deadline passed";

/// ONNX on the CPU with `tract`.
pub struct TractBackend {
    onnx: tract_onnx::Onnx,
}

impl std::fmt::Debug for TractBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TractBackend")
    }
}

impl Default for TractBackend {
    fn default() -> Self {
        Self {
            onnx: tract_onnx::onnx(),
        }
    }
}

impl Backend for TractBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "tract".into(),
            version: TRACT_VERSION.into(),
            encodings: vec![Encoding::Onnx],
            targets: vec![Target::Cpu],
        }
    }

    fn load(&self, model: &[u8], target: Target) -> Result<Arc<dyn Model>, NnError> {
        if target != Target::Cpu {
            return Err(NnError::new(
                ErrorCode::UnsupportedOperation,
                format!("tract runs models on the cpu only, not the {target}"),
            ));
        }
        guarded("loading the model", || {
            let inference = self
                .onnx
                .model_for_read(&mut &model[..])
                .map_err(|e| NnError::invalid(format!("not a valid ONNX model: {e:#}")))?;
            let input_names = inference
                .input_outlets()
                .map_err(|e| NnError::invalid(format!("{e:#}")))?
                .iter()
                .map(|o| inference.node(o.node).name.clone())
                .collect::<Vec<_>>();
            let output_names = inference
                .output_outlets()
                .map_err(|e| NnError::invalid(format!("{e:#}")))?
                .iter()
                .map(|o| {
                    inference
                        .outlet_label(*o)
                        .map_or_else(|| inference.node(o.node).name.clone(), ToString::to_string)
                })
                .collect::<Vec<_>>();
            let typed = inference.into_optimized().map_err(|e| {
                NnError::new(
                    ErrorCode::UnsupportedOperation,
                    format!("tract cannot prepare this ONNX model: {e:#}"),
                )
            })?;
            let inputs = specs(&typed, &input_names, true)?;
            let outputs = specs(&typed, &output_names, false)?;
            let plan = typed
                .into_runnable()
                .map_err(|e| NnError::runtime(format!("tract cannot plan this model: {e:#}")))?;
            Ok(Arc::new(TractModel {
                plan,
                inputs,
                outputs,
            }) as Arc<dyn Model>)
        })
    }
}

fn specs(model: &TypedModel, names: &[String], inputs: bool) -> Result<Vec<IoSpec>, NnError> {
    let outlets = if inputs {
        &model.inputs
    } else {
        &model.outputs
    };
    outlets
        .iter()
        .zip(names)
        .map(|(outlet, name)| {
            let fact = model
                .outlet_fact(*outlet)
                .map_err(|e| NnError::runtime(format!("{e:#}")))?;
            Ok(IoSpec {
                name: name.clone(),
                ty: from_datum(fact.datum_type),
                shape: Some(
                    fact.shape
                        .iter()
                        .map(|d| d.to_i64().ok().and_then(|d| u64::try_from(d).ok()))
                        .collect(),
                ),
            })
        })
        .collect()
}

struct TractModel {
    plan: Arc<TypedSimplePlan>,
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
}

impl Model for TractModel {
    fn inputs(&self) -> &[IoSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[IoSpec] {
        &self.outputs
    }

    fn session(&self) -> Result<Box<dyn Session>, NnError> {
        let state = SimpleState::new(&self.plan)
            .map_err(|e| NnError::runtime(format!("tract cannot start a session: {e:#}")))?;
        Ok(Box::new(TractSession { state }))
    }
}

struct TractSession {
    state: TypedSimpleState,
}

impl Session for TractSession {
    fn run(&mut self, inputs: Vec<Tensor>, deadline: Instant) -> Result<Vec<Tensor>, NnError> {
        let inputs: TVec<TValue> = inputs.into_iter().map(to_tract).collect::<Result<_, _>>()?;
        let state = &mut self.state;
        let outputs = guarded("running the model", || {
            state
                .run_plan_with_eval(inputs, |ctx, op_state, node, values| {
                    if Instant::now() >= deadline {
                        return Err(tract_onnx::prelude::TractError::msg(DEADLINE));
                    }
                    tract_onnx::tract_core::plan::eval(ctx, op_state, node, values)
                })
                .map_err(|e| {
                    if Instant::now() >= deadline || format!("{e:#}").contains(DEADLINE) {
                        NnError::new(ErrorCode::Timeout, "inference ran past its deadline")
                    } else {
                        NnError::runtime(format!("tract failed to run the model: {e:#}"))
                    }
                })
        })?;
        outputs.into_iter().map(|v| from_tract(&v)).collect()
    }
}

fn datum(ty: TensorType) -> Result<DatumType, NnError> {
    Ok(match ty {
        TensorType::F16 => DatumType::F16,
        TensorType::F32 => DatumType::F32,
        TensorType::F64 => DatumType::F64,
        TensorType::U8 => DatumType::U8,
        TensorType::I32 => DatumType::I32,
        TensorType::I64 => DatumType::I64,
        TensorType::Bf16 => {
            return Err(NnError::new(
                ErrorCode::UnsupportedOperation,
                "tract has no bf16 tensors; convert the input to f32 or f16",
            ));
        }
    })
}

fn from_datum(dt: DatumType) -> Option<TensorType> {
    Some(match dt {
        DatumType::F16 => TensorType::F16,
        DatumType::F32 => TensorType::F32,
        DatumType::F64 => TensorType::F64,
        DatumType::U8 => TensorType::U8,
        DatumType::I32 => TensorType::I32,
        DatumType::I64 => TensorType::I64,
        _ => return None,
    })
}

fn to_tract(t: Tensor) -> Result<TValue, NnError> {
    let shape = t.shape();
    let mut tensor = tract_onnx::prelude::Tensor::zero_dt(datum(t.ty)?, &shape)
        .map_err(|e| NnError::runtime(format!("{e:#}")))?;
    tensor.as_bytes_mut().copy_from_slice(&t.data);
    Ok(tensor.into())
}

/// An output as a wasi-nn tensor. Element types wasi-nn cannot carry are
/// widened: bool and small unsigned integers to u8 or i32, i8/i16 to i32, u32 to i64.
fn from_tract(value: &TValue) -> Result<Tensor, NnError> {
    let dt = value.datum_type();
    let (ty, wide) = match from_datum(dt) {
        Some(ty) => (ty, None),
        None => {
            let ty = match dt {
                DatumType::Bool => TensorType::U8,
                DatumType::I8 | DatumType::I16 | DatumType::U16 => TensorType::I32,
                DatumType::U32 => TensorType::I64,
                other => {
                    return Err(NnError::new(
                        ErrorCode::UnsupportedOperation,
                        format!("the model outputs {other:?} elements, which wasi-nn cannot carry"),
                    ));
                }
            };
            let cast = value
                .cast_to_dt(datum(ty)?)
                .map_err(|e| NnError::runtime(format!("{e:#}")))?
                .into_owned();
            (ty, Some(cast))
        }
    };
    let tensor = wide.as_ref().unwrap_or(value);
    let dims = tensor
        .shape()
        .iter()
        .map(|d| u32::try_from(*d))
        .collect::<Result<Vec<u32>, _>>()
        .map_err(|_| NnError::new(ErrorCode::TooLarge, "an output dimension exceeds u32"))?;
    Ok(Tensor {
        dims,
        ty,
        data: tensor.as_bytes().to_vec(),
    })
}
