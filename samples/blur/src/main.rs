//! The blur sample: applies a Gaussian blur to every PNG image in `/input`.
//!
//! Run with: `netmind run samples/blur --input DIR -- --sigma 2.0`

use std::{io::Cursor, process::ExitCode};

use netmind_sdk::{Error, Result};
use serde::Serialize;
use serde_json::json;

mod blur;

/// What the result records about one image.
#[derive(Debug, Serialize)]
struct ImageInfo {
    name: String,
    width: u32,
    height: u32,
    color: String,
}

/// The blur's standard deviation in pixels when `--sigma` is not given.
const DEFAULT_SIGMA: f32 = 2.0;

fn main() -> ExitCode {
    netmind_sdk::run(|| {
        let sigma = sigma(&netmind_sdk::args())?;
        let images: Vec<_> = netmind_sdk::inputs()?
            .into_iter()
            .filter(|input| input.name.to_ascii_lowercase().ends_with(".png"))
            .collect();
        if images.is_empty() {
            return Err(Error::invalid(
                "no .png files in /input; pass a directory of PNG images with `netmind run --input DIR`",
            ));
        }
        let total = images.len() as u64;
        let mut results = Vec::with_capacity(images.len());
        for (i, input) in images.iter().enumerate() {
            let bytes = netmind_sdk::read_input(&input.name)?;
            let (png, info) = blur_png(&input.name, &bytes, sigma)
                .map_err(|e| Error::invalid(format!("{}: {e}", input.name)))?;
            netmind_sdk::write_output(&input.name, &png)?;
            println!(
                "blurred {} ({}x{}, {})",
                info.name, info.width, info.height, info.color
            );
            netmind_sdk::progress(i as u64 + 1, total, &input.name);
            results.push(info);
        }
        Ok(json!({ "sigma": sigma, "images": results }))
    })
}

/// `--sigma S` (or `--sigma=S`) from the arguments, else [`DEFAULT_SIGMA`].
fn sigma(args: &[String]) -> Result<f32> {
    let mut sigma = DEFAULT_SIGMA;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let value = if arg == "--sigma" {
            iter.next()
                .ok_or_else(|| Error::invalid("--sigma needs a value"))?
        } else if let Some(value) = arg.strip_prefix("--sigma=") {
            value
        } else {
            return Err(Error::invalid(format!(
                "unknown argument `{arg}`; usage: blur [--sigma S]"
            )));
        };
        sigma = value
            .parse()
            .map_err(|_| Error::invalid(format!("--sigma: `{value}` is not a number")))?;
    }
    if !sigma.is_finite() || !(0.0..=100.0).contains(&sigma) {
        return Err(Error::invalid(format!(
            "--sigma must be between 0 and 100, got {sigma}"
        )));
    }
    Ok(sigma)
}

/// Decodes a PNG, blurs it and encodes it again with the same (8-bit) color type.
///
/// Palette and 1/2/4/16-bit images are first expanded to 8 bits per sample.
fn blur_png(
    name: &str,
    bytes: &[u8],
    sigma: f32,
) -> std::result::Result<(Vec<u8>, ImageInfo), String> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("not a PNG image: {e}"))?;
    let size = reader.output_buffer_size().ok_or("image too large")?;
    let mut pixels = vec![0; size];
    let frame = reader
        .next_frame(&mut pixels)
        .map_err(|e| format!("decoding: {e}"))?;
    pixels.truncate(frame.buffer_size());
    let (width, height) = (frame.width as usize, frame.height as usize);
    let channels = frame.color_type.samples();
    if frame.bit_depth != png::BitDepth::Eight || pixels.len() != width * height * channels {
        return Err(format!(
            "unsupported layout: {:?} {:?}",
            frame.color_type, frame.bit_depth
        ));
    }

    let blurred = blur::gaussian_blur(&pixels, width, height, channels, sigma);

    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, frame.width, frame.height);
    encoder.set_color(frame.color_type);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| format!("encoding: {e}"))?;
    writer
        .write_image_data(&blurred)
        .map_err(|e| format!("encoding: {e}"))?;
    writer.finish().map_err(|e| format!("encoding: {e}"))?;
    let info = ImageInfo {
        name: name.to_owned(),
        width: frame.width,
        height: frame.height,
        color: format!("{:?}", frame.color_type),
    };
    Ok((out, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(width: u32, height: u32, color: png::ColorType, pixels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(pixels).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn png_round_trip_keeps_color_type() {
        for (color, channels) in [
            (png::ColorType::Grayscale, 1),
            (png::ColorType::Rgb, 3),
            (png::ColorType::Rgba, 4),
        ] {
            let pixels: Vec<u8> = (0..4 * 3 * channels).map(|i| (i * 7 % 256) as u8).collect();
            let (out, info) = blur_png("t.png", &encode(4, 3, color, &pixels), 1.0).unwrap();
            assert_eq!((info.width, info.height), (4, 3));
            let decoder = png::Decoder::new(Cursor::new(&out));
            let reader = decoder.read_info().unwrap();
            assert_eq!(reader.info().color_type, color);
            assert_eq!((reader.info().width, reader.info().height), (4, 3));
        }
    }

    #[test]
    fn not_a_png() {
        assert!(
            blur_png("t.png", b"hello", 1.0)
                .unwrap_err()
                .starts_with("not a PNG image")
        );
    }

    #[test]
    fn parses_sigma() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(sigma(&args(&[])).unwrap(), DEFAULT_SIGMA);
        assert_eq!(sigma(&args(&["--sigma", "3.5"])).unwrap(), 3.5);
        assert_eq!(sigma(&args(&["--sigma=0"])).unwrap(), 0.0);
        assert!(sigma(&args(&["--sigma", "-1"])).is_err());
        assert!(sigma(&args(&["--sigma"])).is_err());
        assert!(sigma(&args(&["--radius", "2"])).is_err());
    }
}
