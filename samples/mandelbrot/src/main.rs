//! The mandelbrot sample: renders the Mandelbrot set on the host's GPU.
//!
//! The shader writes one escape-time iteration count per pixel; the job colors them and writes
//! `/output/mandelbrot.png` (RGB) and `/output/iterations.npy` (u32, height × width). Arguments:
//! `--width W --height H --max-iter N --center X,Y --scale S` (defaults 512, 384, 256, `-0.5,0`, 3: the
//! whole set; the scale is the image's width in the complex plane). `--verify` compares every count with
//! the CPU reference inside the job (computed both ways WGSL allows `fma`; the closer one counts).
//!
//! Run with: `netmind run samples/mandelbrot -- --width 1024 --height 768`

use std::process::ExitCode;

use netmind_sample_mandelbrot::{
    ENTRY, Fma, MANDELBROT_WGSL, View, colorize, iterations_reference_with, workgroups,
};
use netmind_sdk::{
    Error, Result,
    gpu::{self, Buffer, Dispatch, Pipeline},
    npy::Array,
};
use serde::Serialize;

const USAGE: &str = "usage: mandelbrot [--width W] [--height H] [--max-iter N] [--center X,Y] \
                     [--scale S] [--verify]";

/// What `--verify` found.
#[derive(Debug, Serialize)]
struct Verification {
    /// How the GPU computes `fma`, as the CPU reference that matches it best: `fused` or `unfused`.
    fma: &'static str,
    /// Pixels whose count differs from that reference's.
    mismatched: usize,
    pixels: usize,
}

/// The job's result, stored in `/output/result.json`.
#[derive(Debug, Serialize)]
struct Report {
    width: usize,
    height: usize,
    max_iter: u32,
    center: [f64; 2],
    scale: f64,
    /// Pixels that reached `max_iter` (inside the set).
    inside: usize,
    adapter: String,
    gpu_ms: f64,
    hash_chain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<Verification>,
}

fn main() -> ExitCode {
    netmind_sdk::run(|| {
        let (view, verify) = parse_args(&netmind_sdk::args())?;
        run(&view, verify)
    })
}

fn run(view: &View, verify: bool) -> Result<Report> {
    let adapter = gpu::adapter()?;
    println!(
        "rendering {}×{} ({} iterations, centre {},{}, scale {}) on {} ({})",
        view.width,
        view.height,
        view.max_iter,
        view.center.0,
        view.center.1,
        view.scale,
        adapter.name,
        adapter.backend
    );
    netmind_sdk::progress(0, 3, "rendering");
    let (xs, ys) = view.coordinates();
    let params = Buffer::from_slice(&view.params())?;
    let xs_buffer = Buffer::from_slice(&xs)?;
    let ys_buffer = Buffer::from_slice(&ys)?;
    let counts = Buffer::zeroed::<u32>(view.width * view.height)?;
    let pipeline = Pipeline::new(MANDELBROT_WGSL, ENTRY)?;
    let (x, y, z) = workgroups(view.width, view.height);
    let before = gpu::usage();
    let hash = Dispatch::new(&pipeline)
        .bind(0, &params)
        .bind(1, &xs_buffer)
        .bind(2, &ys_buffer)
        .bind(3, &counts)
        .workgroups(x, y, z)
        .submit()?;
    let after = gpu::usage();
    let gpu_ms = (after.gpu_time_ns - before.gpu_time_ns) as f64 / 1e6;

    netmind_sdk::progress(1, 3, "coloring");
    let iterations: Vec<u32> = counts.read_range(0, view.width * view.height)?;
    Array::from_values([view.height, view.width], &iterations)
        .map_err(|e| Error::invalid(e.to_string()))?
        .write_output("iterations.npy")?;
    let png = encode_png(view, &colorize(&iterations, view.max_iter))
        .map_err(|e| Error::invalid(format!("mandelbrot.png: {e}")))?;
    netmind_sdk::write_output("mandelbrot.png", &png)?;

    netmind_sdk::progress(2, 3, "verifying");
    // The GPU's fma is fused or not; its counts match the CPU's computed the same way.
    let verify = verify.then(|| {
        let (fma, mismatched) = Fma::BOTH
            .into_iter()
            .map(|fma| {
                let expected = iterations_reference_with(view, fma);
                let mismatched = iterations
                    .iter()
                    .zip(&expected)
                    .filter(|(a, b)| a != b)
                    .count();
                (fma, mismatched)
            })
            .min_by_key(|&(_, mismatched)| mismatched)
            .expect("two ways");
        Verification {
            fma: if fma == Fma::Fused {
                "fused"
            } else {
                "unfused"
            },
            mismatched,
            pixels: iterations.len(),
        }
    });
    if let Some(v) = &verify {
        println!(
            "{} of {} pixels differ from the CPU reference ({} fma)",
            v.mismatched, v.pixels, v.fma
        );
    }
    netmind_sdk::progress(3, 3, "done");
    let inside = iterations.iter().filter(|&&i| i >= view.max_iter).count();
    println!(
        "{inside} pixels inside the set; {gpu_ms:.3} ms of GPU time; hash {}",
        gpu::to_hex(&hash)
    );
    Ok(Report {
        width: view.width,
        height: view.height,
        max_iter: view.max_iter,
        center: [view.center.0, view.center.1],
        scale: view.scale,
        inside,
        adapter: adapter.name,
        gpu_ms,
        hash_chain: after.hash_chain_hex(),
        verify,
    })
}

/// The RGB pixels as a PNG.
fn encode_png(view: &View, rgb: &[u8]) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, view.width as u32, view.height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

fn parse_args(args: &[String]) -> Result<(View, bool)> {
    let mut view = View::default();
    let mut verify = false;
    let mut args = args.iter();
    let bad = |name: &str, v: &str, what: &str| {
        Error::invalid(format!("{name} `{v}` is not {what}; {USAGE}"))
    };
    while let Some(arg) = args.next() {
        let name = arg.as_str();
        if name == "--verify" {
            verify = true;
            continue;
        }
        let v = match name {
            "--width" | "--height" | "--max-iter" | "--center" | "--scale" => args
                .next()
                .ok_or_else(|| Error::invalid(format!("{name} needs a value; {USAGE}")))?,
            other => {
                return Err(Error::invalid(format!(
                    "unknown argument `{other}`; {USAGE}"
                )));
            }
        };
        let size = || {
            v.parse::<usize>()
                .ok()
                .filter(|s| (1..=8192).contains(s))
                .ok_or_else(|| bad(name, v, "a size from 1 to 8192"))
        };
        match name {
            "--width" => view.width = size()?,
            "--height" => view.height = size()?,
            "--max-iter" => {
                view.max_iter = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or_else(|| bad(name, v, "a count from 1 to 1000000"))?;
            }
            "--center" => {
                let parsed = v.split_once(',').and_then(|(x, y)| {
                    Some((x.trim().parse::<f64>().ok()?, y.trim().parse::<f64>().ok()?))
                });
                view.center = parsed
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .ok_or_else(|| bad(name, v, "two numbers X,Y (e.g. -0.75,0.1)"))?;
            }
            _ => {
                view.scale = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| bad(name, v, "a positive number"))?;
            }
        }
    }
    Ok((view, verify))
}
