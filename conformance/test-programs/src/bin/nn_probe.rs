//! Calls wasi-nn the wrong way on purpose, through the raw WIT bindings, and prints what the host
//! answers as one line: `<case> ok <detail>` or `<case> error <code>: <message>`.
//!
//! Usage: `nn_probe CASE [ARGS]`, with `/input/model.onnx` the conformance `mlp` model (input `x`
//! f32 [4, 16], output `y` f32 [4, 8]) for the cases that need a real model.

#[cfg(target_arch = "wasm32")]
#[allow(unreachable_pub, missing_docs, reason = "generated bindings")]
mod bindings {
    wit_bindgen::generate!({
        path: "../../host/wit/wasi-nn.wit",
        world: "wasi:nn/ml",
    });
}

#[cfg(target_arch = "wasm32")]
mod probe {
    use super::bindings::wasi::nn::errors::Error;
    use super::bindings::wasi::nn::graph::{self, ExecutionTarget, Graph, GraphEncoding};
    use super::bindings::wasi::nn::tensor::{Tensor, TensorType};

    fn model() -> Vec<u8> {
        std::fs::read("/input/model.onnx").expect("/input/model.onnx")
    }

    fn describe(e: &Error) -> String {
        let code = format!("{:?}", e.code());
        format!(
            "error {}: {}",
            code.trim_start_matches("ErrorCode::"),
            e.data()
        )
    }

    fn load(bytes: &[u8]) -> Result<Graph, Error> {
        graph::load(&[bytes.to_vec()], GraphEncoding::Onnx, ExecutionTarget::Cpu)
    }

    fn x(dims: &[u32]) -> Tensor {
        let n: u32 = dims.iter().product();
        let data: Vec<u8> = (0..n)
            .flat_map(|i| (i as f32 / 10.0).to_le_bytes())
            .collect();
        Tensor::new(dims, TensorType::Fp32, &data)
    }

    fn compute(inputs: Vec<(String, Tensor)>) -> Result<String, Error> {
        let g = load(&model())?;
        let ctx = g.init_execution_context()?;
        let outputs = ctx.compute(inputs)?;
        Ok(outputs
            .iter()
            .map(|(name, t)| format!("{name}{:?}", t.dimensions()))
            .collect::<Vec<_>>()
            .join(","))
    }

    /// `bench NAME N DIMS` / `bench-bytes N DIMS`: N computes of an f32 input of DIMS
    /// (`64,784`) on the registered model NAME, or on `/input/model.onnx` loaded from bytes.
    fn bench(g: &Graph, n: &str, dims: &str) -> Result<String, Error> {
        let n: u32 = n.parse().expect("N");
        let dims: Vec<u32> = dims.split(',').map(|d| d.parse().expect("DIMS")).collect();
        let ctx = g.init_execution_context()?;
        // The input is made once, as a real job has its data ready; each compute
        // pays what crossing the sandbox costs: copying it in, and the outputs out.
        let count: u32 = dims.iter().product();
        let data: Vec<u8> = (0..count)
            .flat_map(|i| (i as f32 / 10.0).to_le_bytes())
            .collect();
        for _ in 0..n {
            let out = ctx.compute(vec![(
                "0".into(),
                Tensor::new(&dims, TensorType::Fp32, &data),
            )])?;
            for (_, t) in &out {
                std::hint::black_box(t.data());
            }
        }
        Ok(format!("{n} computes"))
    }

    pub(crate) fn run(case: &str, rest: &[String]) -> Result<String, Error> {
        let arg = rest.first().map(String::as_str);
        match case {
            "bench" => bench(&graph::load_by_name(&rest[0])?, &rest[1], &rest[2]),
            "bench-bytes" => bench(&load(&model())?, &rest[0], &rest[1]),
            "ok" => compute(vec![("x".into(), x(&[4, 16]))]),
            "positional" => compute(vec![("0".into(), x(&[4, 16]))]),
            "garbage" => load(b"this is not an onnx model").map(|_| "loaded".into()),
            "truncated" => {
                let m = model();
                load(&m[..m.len() / 2]).map(|_| "loaded".into())
            }
            "encoding" => graph::load(&[model()], GraphEncoding::Tensorflow, ExecutionTarget::Cpu)
                .map(|_| "loaded".into()),
            "gpu" => graph::load(&[model()], GraphEncoding::Onnx, ExecutionTarget::Gpu)
                .map(|_| "loaded".into()),
            "builders" => graph::load(
                &[model(), model()],
                GraphEncoding::Onnx,
                ExecutionTarget::Cpu,
            )
            .map(|_| "loaded".into()),
            "by-name" => {
                let g = graph::load_by_name(arg.unwrap_or("nope"))?;
                let ctx = g.init_execution_context()?;
                let out = ctx.compute(vec![("x".into(), x(&[4, 16]))])?;
                Ok(format!("{} outputs", out.len()))
            }
            "shape" => compute(vec![("x".into(), x(&[16, 4]))]),
            "type" => compute(vec![(
                "x".into(),
                Tensor::new(&[4, 16], TensorType::I64, &[0u8; 4 * 16 * 8]),
            )]),
            "missing" => compute(vec![]),
            "unknown-name" => compute(vec![("features".into(), x(&[4, 16]))]),
            "short-data" => compute(vec![(
                "x".into(),
                Tensor::new(&[4, 16], TensorType::Fp32, &[0u8; 10]),
            )]),
            "huge" => compute(vec![(
                "x".into(),
                Tensor::new(&[65536, 65536, 16], TensorType::Fp32, &[0u8; 16]),
            )]),
            "bf16" => compute(vec![(
                "x".into(),
                Tensor::new(&[4, 16], TensorType::Bf16, &[0u8; 4 * 16 * 2]),
            )]),
            "tensor-count" => {
                let held: Vec<Tensor> = (0..300).map(|_| x(&[1])).collect();
                let r = compute(vec![("x".into(), x(&[4, 16]))]);
                drop(held);
                r
            }
            "memory" => {
                // 8 MiB tensors until the host refuses; the host ends the job at its memory limit.
                let data = vec![0u8; 8 << 20];
                let mut held = Vec::new();
                for i in 0..1000 {
                    held.push(Tensor::new(&[2 << 20], TensorType::Fp32, &data));
                    println!("holding {} MiB of tensors", (i + 1) * 8);
                }
                Ok(format!("held {} tensors", held.len()))
            }
            "deep" => compute(vec![("x".into(), x(&[1; 17]))]),
            "long-name" => compute(vec![("x".repeat(2000), x(&[4, 16]))]),
            "many-contexts" => {
                let g = load(&model())?;
                let held: Vec<_> = (0..100)
                    .map(|_| g.init_execution_context())
                    .collect::<Result<_, _>>()?;
                Ok(format!("{} contexts", held.len()))
            }
            "orphans" => {
                // Graphs dropped while their contexts live keep their place.
                let m = model();
                let mut contexts = Vec::new();
                for _ in 0..20 {
                    let g = load(&m)?;
                    contexts.push(g.init_execution_context()?);
                }
                Ok(format!("{} contexts", contexts.len()))
            }
            "many-graphs" => {
                let m = model();
                let mut held = Vec::new();
                for _ in 0..100 {
                    held.push(load(&m)?);
                }
                Ok("loaded 100 graphs".into())
            }
            "slow" => {
                // The bench model on a big batch, many times: meets the host's inference time limits.
                let n: u32 = arg.and_then(|a| a.parse().ok()).unwrap_or(1000);
                let g = load(&model())?;
                let ctx = g.init_execution_context()?;
                for _ in 0..n {
                    ctx.compute(vec![("x".into(), x(&[64, 784]))])?;
                }
                Ok(format!("{n} computes"))
            }
            other => panic!("unknown case {other}"),
        }
    }

    pub(crate) fn report(case: &str, r: Result<String, Error>) {
        match r {
            Ok(detail) => println!("{case} ok {detail}"),
            Err(e) => println!("{case} {}", describe(&e)),
        }
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let case = args.first().map_or("ok", String::as_str);
        probe::report(case, probe::run(case, args.get(1..).unwrap_or_default()));
    }
    #[cfg(not(target_arch = "wasm32"))]
    println!("wasm only");
}
