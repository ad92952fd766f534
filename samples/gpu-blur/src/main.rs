//! The gpu-blur sample: Gaussian blur of a PNG image on the host's GPU, in two separable passes.
//!
//! Blurs `/input/image.png` (8-bit gray, gray+alpha, RGB or RGBA; palette and 1/2/4/16-bit images are
//! expanded to 8 bits first) with `--sigma S` (default 2.0, radius `ceil(3 S)`, edges clamped) and
//! writes `/output/blurred.png` with the same color type. `--verify` compares the result with the CPU
//! reference inside the job.
//!
//! Run with: `netmind run samples/gpu-blur --input samples/gpu-blur/example -- --sigma 2.0`

use std::{io::Cursor, process::ExitCode};

use netmind_sample_gpu_blur::{
    BLUR_WGSL, Fma, HORIZONTAL, MAX_SIGMA, VERTICAL, blur_reference_with, max_channel_diff, pack,
    params, radius, unpack, weights, workgroups,
};
use netmind_sdk::{
    Error, Result,
    gpu::{self, Buffer, Dispatch, Pipeline},
};
use serde::Serialize;

const USAGE: &str = "usage: gpu-blur [--sigma S] [--verify]";

/// The input and output image.
const INPUT: &str = "image.png";
const OUTPUT: &str = "blurred.png";

/// The job's result, stored in `/output/result.json`.
#[derive(Debug, Serialize)]
struct Report {
    width: u32,
    height: u32,
    /// `Grayscale`, `GrayscaleAlpha`, `Rgb` or `Rgba`.
    color: String,
    sigma: f32,
    radius: usize,
    adapter: String,
    gpu_ms: f64,
    hash_chain: String,
    /// With `--verify`: the largest difference per channel from the CPU reference (0 or 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    max_diff_from_cpu: Option<u8>,
}

/// A decoded image: interleaved 8-bit pixels.
struct Image {
    width: u32,
    height: u32,
    color: png::ColorType,
    pixels: Vec<u8>,
}

fn main() -> ExitCode {
    netmind_sdk::run(|| {
        let (sigma, verify) = parse_args(&netmind_sdk::args())?;
        run(sigma, verify)
    })
}

fn run(sigma: f32, verify: bool) -> Result<Report> {
    if !netmind_sdk::input_path(INPUT).exists() {
        return Err(Error::invalid(format!(
            "no {INPUT} in /input: pass a directory with the PNG to blur, \
             e.g. `netmind run samples/gpu-blur --input samples/gpu-blur/example`"
        )));
    }
    let image = decode(&netmind_sdk::read_input(INPUT)?)
        .map_err(|e| Error::invalid(format!("{INPUT}: {e}")))?;
    let (width, height) = (image.width as usize, image.height as usize);
    let channels = image.color.samples();
    let adapter = gpu::adapter()?;
    println!(
        "blurring {width}×{height} {:?} with sigma {sigma} (radius {}) on {} ({})",
        image.color,
        radius(sigma),
        adapter.name,
        adapter.backend
    );

    netmind_sdk::progress(0, 3, "uploading");
    let (x, y, z) = workgroups(width, height);
    let params_buffer = Buffer::from_slice(&params(width, height, sigma))?;
    let weights_buffer = Buffer::from_slice(&weights(sigma))?;
    let input = Buffer::from_slice(&pack(&image.pixels, channels))?;
    let temp = Buffer::zeroed::<[f32; 4]>(width * height)?;
    let output = Buffer::zeroed::<u32>(width * height)?;
    let horizontal = Pipeline::new(BLUR_WGSL, HORIZONTAL)?;
    let vertical = Pipeline::new(BLUR_WGSL, VERTICAL)?;
    let dispatches = [
        Dispatch::new(&horizontal)
            .bind(0, &params_buffer)
            .bind(1, &weights_buffer)
            .bind(2, &input)
            .bind(3, &temp)
            .workgroups(x, y, z),
        Dispatch::new(&vertical)
            .bind(0, &params_buffer)
            .bind(1, &weights_buffer)
            .bind(4, &temp)
            .bind(5, &output)
            .workgroups(x, y, z),
    ];

    netmind_sdk::progress(1, 3, "blurring");
    let before = gpu::usage();
    gpu::submit(&dispatches)?;
    let after = gpu::usage();
    let gpu_ms = (after.gpu_time_ns - before.gpu_time_ns) as f64 / 1e6;

    netmind_sdk::progress(2, 3, "encoding");
    let blurred = unpack(&output.read_range::<u32>(0, width * height)?, channels);
    // The GPU's fma is fused or not; compare with the CPU's computed either way, keep the closer.
    let max_diff_from_cpu = verify.then(|| {
        Fma::BOTH
            .into_iter()
            .map(|fma| {
                let expected =
                    blur_reference_with(&image.pixels, width, height, channels, sigma, fma);
                max_channel_diff(&blurred, &expected)
            })
            .min()
            .unwrap_or(0)
    });
    if let Some(diff) = max_diff_from_cpu {
        println!("largest difference from the CPU reference: {diff}");
        if diff > 1 {
            return Err(Error::invalid(format!(
                "the GPU's blur differs from the CPU reference by {diff} in a channel (at most 1 is \
                 expected)"
            )));
        }
    }
    let png = encode(&image, &blurred).map_err(|e| Error::invalid(format!("{OUTPUT}: {e}")))?;
    netmind_sdk::write_output(OUTPUT, &png)?;
    netmind_sdk::progress(3, 3, "done");
    println!("wrote {OUTPUT} in {gpu_ms:.3} ms of GPU time");

    Ok(Report {
        width: image.width,
        height: image.height,
        color: format!("{:?}", image.color),
        sigma,
        radius: radius(sigma),
        adapter: adapter.name,
        gpu_ms,
        hash_chain: after.hash_chain_hex(),
        max_diff_from_cpu,
    })
}

/// Decodes a PNG to 8-bit samples (palette and other bit depths expanded).
fn decode(bytes: &[u8]) -> std::result::Result<Image, String> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("not a PNG image: {e}"))?;
    let size = reader
        .output_buffer_size()
        .ok_or("the image is too large")?;
    let mut pixels = vec![0; size];
    let frame = reader
        .next_frame(&mut pixels)
        .map_err(|e| format!("decoding: {e}"))?;
    pixels.truncate(frame.buffer_size());
    let channels = frame.color_type.samples();
    let expected = frame.width as usize * frame.height as usize * channels;
    if frame.bit_depth != png::BitDepth::Eight || pixels.len() != expected {
        return Err(format!(
            "unsupported layout: {:?} {:?}",
            frame.color_type, frame.bit_depth
        ));
    }
    Ok(Image {
        width: frame.width,
        height: frame.height,
        color: frame.color_type,
        pixels,
    })
}

/// Encodes `pixels` as a PNG of `like`'s size and color type.
fn encode(like: &Image, pixels: &[u8]) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, like.width, like.height);
    encoder.set_color(like.color);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(out)
}

/// `--sigma S` (default 2.0) and `--verify`.
fn parse_args(args: &[String]) -> Result<(f32, bool)> {
    let mut sigma = 2.0f32;
    let mut verify = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sigma" => {
                let v = args
                    .next()
                    .ok_or_else(|| Error::invalid(format!("--sigma needs a value; {USAGE}")))?;
                sigma = v
                    .parse()
                    .ok()
                    .filter(|s: &f32| s.is_finite() && (0.0..=MAX_SIGMA).contains(s))
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "--sigma `{v}` is not a number from 0 to {MAX_SIGMA}"
                        ))
                    })?;
            }
            "--verify" => verify = true,
            other => {
                return Err(Error::invalid(format!(
                    "unknown argument `{other}`; {USAGE}"
                )));
            }
        }
    }
    Ok((sigma, verify))
}
