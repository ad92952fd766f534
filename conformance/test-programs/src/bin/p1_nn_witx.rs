//! A `wasm32-wasip1` core module that calls wasi-nn through its witx ABI (`wasi_ephemeral_nn`) with
//! the `wasi-nn` 0.6 crate, as existing preview-1 ML guests do. Prints one line:
//! `<case> ok <detail>` or `<case> error <error>`.
//!
//! Usage: `p1_nn_witx CASE [ARG]`, with `/input/model.onnx` the conformance `mlp` model (input
//! f32 [4, 16], output f32 [4, 8]).

#[cfg(all(target_arch = "wasm32", target_env = "p1"))]
mod probe {
    use wasi_nn::{ExecutionTarget, Graph, GraphBuilder, GraphEncoding, TensorType};

    fn model() -> Vec<u8> {
        std::fs::read("/input/model.onnx").expect("/input/model.onnx")
    }

    fn load(bytes: &[u8]) -> Result<Graph, wasi_nn::Error> {
        GraphBuilder::new(GraphEncoding::Onnx, ExecutionTarget::CPU).build_from_bytes([bytes])
    }

    fn infer(g: &Graph, dims: &[usize], out_len: usize) -> Result<String, wasi_nn::Error> {
        let n: usize = dims.iter().product();
        let x: Vec<f32> = (0..n).map(|i| i as f32 / 10.0).collect();
        let mut ctx = g.init_execution_context()?;
        ctx.set_input(0, TensorType::F32, dims, &x)?;
        ctx.compute()?;
        let mut y = vec![0f32; out_len];
        let bytes = ctx.get_output(0, &mut y)?;
        let sum: f32 = y.iter().sum();
        Ok(format!("{bytes} bytes, sum {sum:.3}"))
    }

    pub(crate) fn run(case: &str, arg: Option<&str>) -> Result<String, String> {
        let e = |e: wasi_nn::Error| e.to_string();
        match case {
            "ok" => infer(&load(&model()).map_err(e)?, &[4, 16], 32).map_err(e),
            "shape" => infer(&load(&model()).map_err(e)?, &[16, 4], 32).map_err(e),
            "small-buffer" => infer(&load(&model()).map_err(e)?, &[4, 16], 4).map_err(e),
            "compute-first" => {
                let g = load(&model()).map_err(e)?;
                let mut ctx = g.init_execution_context().map_err(e)?;
                ctx.compute().map(|()| "computed".into()).map_err(e)
            }
            "no-output" | "bad-output" => {
                let g = load(&model()).map_err(e)?;
                let mut ctx = g.init_execution_context().map_err(e)?;
                if case == "bad-output" {
                    let x = vec![0f32; 64];
                    ctx.set_input(0, TensorType::F32, &[4, 16], &x).map_err(e)?;
                    ctx.compute().map_err(e)?;
                }
                let mut y = vec![0f32; 32];
                ctx.get_output(5, &mut y)
                    .map(|n| format!("{n} bytes"))
                    .map_err(e)
            }
            "garbage" => load(b"not a model").map(|_| "loaded".into()).map_err(e),
            "by-name" => {
                let g = GraphBuilder::new(GraphEncoding::Onnx, ExecutionTarget::CPU)
                    .build_from_cache(arg.unwrap_or("nope"))
                    .map_err(e)?;
                infer(&g, &[4, 16], 32).map_err(e)
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok("woke up".into())
            }
            "spin" => loop {
                std::hint::black_box(0u64);
            },
            "grow" => {
                let mut held: Vec<Vec<u8>> = Vec::new();
                loop {
                    held.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&held);
                }
            }
            "open-files" => {
                let mut held = Vec::new();
                for _ in 0..100_000 {
                    held.push(std::fs::File::open("/input/model.onnx").map_err(|e| e.to_string())?);
                }
                Ok(format!("holding {} files", held.len()))
            }
            other => Err(format!("unknown case {other}")),
        }
    }
}

fn main() {
    #[cfg(all(target_arch = "wasm32", target_env = "p1"))]
    {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let case = args.first().map_or("ok", String::as_str);
        match probe::run(case, args.get(1).map(String::as_str)) {
            Ok(detail) => println!("{case} ok {detail}"),
            Err(err) => println!("{case} error {err}"),
        }
    }
    #[cfg(not(all(target_arch = "wasm32", target_env = "p1")))]
    println!("wasm32-wasip1 only");
}
