//! Image preprocessing for the image-classify sample: PNG decoding, grayscale, area-average downsampling.
//!
//! The job turns each PNG into the model's input, an 8×8 grayscale image with values in `[0, 1]`:
//!
//! 1. [`decode_png`] decodes any PNG (1 to 16 bits, gray, gray+alpha, RGB, RGBA or palette; palette and
//!    low bit depths are expanded and 16-bit samples cut to 8 bits) into a [`GrayImage`], converting
//!    color with [`luma`] and ignoring alpha;
//! 2. [`downsample`] averages it to 8×8, each output pixel the exact area average of the input pixels it
//!    covers (sizes need not be multiples of 8);
//! 3. [`features`] divides by 255.
//!
//! The code has no wasm-specific parts, so it is unit tested natively.

use std::{fmt, io::Cursor};

/// The largest width and height accepted, in pixels.
pub const MAX_SIDE: u32 = 4096;

/// The side of the model's input images.
pub const SIDE: usize = 8;

/// A grayscale image: `width × height` luma values in `[0, 255]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct GrayImage {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Luma of each pixel, row-major.
    pub pixels: Vec<f32>,
}

/// Why an image could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageError {
    /// The bytes are not a PNG image (or its header is broken).
    NotPng(String),
    /// The image is wider or taller than [`MAX_SIDE`].
    TooLarge {
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },
    /// The image data is corrupt.
    Decode(String),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPng(why) => write!(f, "not a PNG image: {why}"),
            Self::TooLarge { width, height } => write!(
                f,
                "image is {width}x{height}; the largest accepted is {MAX_SIDE}x{MAX_SIDE}"
            ),
            Self::Decode(why) => write!(f, "corrupt PNG data: {why}"),
        }
    }
}

impl std::error::Error for ImageError {}

/// The luma of an RGB pixel: `0.299 R + 0.587 G + 0.114 B` (ITU-R BT.601), exactly `v` when
/// `R = G = B = v`.
pub fn luma(r: u8, g: u8, b: u8) -> f32 {
    if r == g && g == b {
        return f32::from(r);
    }
    (0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b)) as f32
}

/// Decodes a PNG into a grayscale image; RGB is converted with [`luma`] and alpha is ignored.
///
/// # Errors
///
/// [`ImageError::NotPng`] for bytes that are not a PNG, [`ImageError::TooLarge`] for images over
/// [`MAX_SIDE`] pixels on a side (checked before the pixels are decoded), [`ImageError::Decode`] for
/// corrupt data.
pub fn decode_png(bytes: &[u8]) -> Result<GrayImage, ImageError> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| ImageError::NotPng(e.to_string()))?;
    let (width, height) = reader.info().size();
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ImageError::TooLarge { width, height });
    }
    let size = reader
        .output_buffer_size()
        .ok_or(ImageError::TooLarge { width, height })?;
    let mut buffer = vec![0; size];
    let frame = reader
        .next_frame(&mut buffer)
        .map_err(|e| ImageError::Decode(e.to_string()))?;
    let (width, height) = (frame.width as usize, frame.height as usize);
    let channels = frame.color_type.samples();
    if frame.bit_depth != png::BitDepth::Eight {
        return Err(ImageError::Decode(format!(
            "unexpected {:?} {:?} output after expansion",
            frame.color_type, frame.bit_depth
        )));
    }
    let row_bytes = width * channels;
    let mut pixels = Vec::with_capacity(width * height);
    for row in buffer.chunks_exact(frame.line_size).take(height) {
        let row = &row[..row_bytes];
        match frame.color_type {
            png::ColorType::Grayscale | png::ColorType::GrayscaleAlpha => {
                pixels.extend(row.chunks_exact(channels).map(|p| f32::from(p[0])));
            }
            png::ColorType::Rgb | png::ColorType::Rgba => {
                pixels.extend(row.chunks_exact(channels).map(|p| luma(p[0], p[1], p[2])));
            }
            png::ColorType::Indexed => {
                return Err(ImageError::Decode("palette was not expanded".into()));
            }
        }
    }
    if pixels.len() != width * height {
        return Err(ImageError::Decode("image data is too short".into()));
    }
    Ok(GrayImage {
        width,
        height,
        pixels,
    })
}

/// For each of `out` output cells along an axis of `len` input pixels, the input pixels it overlaps and
/// by how much, in units of `1 / out` pixel (so every weight is an integer and each cell's weights sum
/// to `len`).
fn axis_weights(len: usize, out: usize) -> Vec<Vec<(usize, usize)>> {
    (0..out)
        .map(|cell| {
            // The cell spans [cell * len, (cell + 1) * len) and pixel p spans [p * out, (p + 1) * out).
            let (lo, hi) = (cell * len, (cell + 1) * len);
            (lo / out..hi.div_ceil(out))
                .map(|p| (p, hi.min((p + 1) * out) - lo.max(p * out)))
                .filter(|&(_, w)| w > 0)
                .collect()
        })
        .collect()
}

/// Averages `image` down (or up) to `out_width × out_height`: each output pixel is the mean of the input
/// over exactly the area it covers, partial pixels weighted by their overlap.
///
/// When the sizes are multiples of the output's, every output pixel is the plain mean of a block, and a
/// block of equal values gives that value exactly.
///
/// # Panics
///
/// If the image or the output size is empty, or `pixels` is not `width × height`.
pub fn downsample(image: &GrayImage, out_width: usize, out_height: usize) -> Vec<f32> {
    assert!(image.width > 0 && image.height > 0, "empty image");
    assert!(out_width > 0 && out_height > 0, "empty output");
    assert_eq!(
        image.pixels.len(),
        image.width * image.height,
        "pixel count"
    );
    let xs = axis_weights(image.width, out_width);
    let ys = axis_weights(image.height, out_height);
    let area = (image.width * image.height) as f64;
    let mut out = Vec::with_capacity(out_width * out_height);
    for row_cells in &ys {
        for col_cells in &xs {
            let mut sum = 0.0f64;
            for &(y, wy) in row_cells {
                let row = &image.pixels[y * image.width..(y + 1) * image.width];
                for &(x, wx) in col_cells {
                    sum += (wy * wx) as f64 * f64::from(row[x]);
                }
            }
            out.push((sum / area) as f32);
        }
    }
    out
}

/// The model's input for `image`: [`downsample`]d to [`SIDE`]×[`SIDE`] and divided by 255, row-major.
pub fn features(image: &GrayImage) -> Vec<f32> {
    downsample(image, SIDE, SIDE)
        .into_iter()
        .map(|v| v / 255.0)
        .collect()
}

/// The `k` largest of `values` as `(index, value)`, largest first (lower index first on ties).
pub fn top_k(values: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut ranked: Vec<(usize, f32)> = values.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(k);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(
        width: u32,
        height: u32,
        color: png::ColorType,
        depth: png::BitDepth,
        data: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(depth);
        if color == png::ColorType::Indexed {
            encoder.set_palette(vec![0, 0, 0, 255, 255, 255, 10, 20, 30]);
        }
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(data).unwrap();
        writer.finish().unwrap();
        out
    }

    /// An 8×8 test pattern of distinct values.
    fn pattern() -> Vec<u8> {
        (0..64).map(|i| (i * 37 % 256) as u8).collect()
    }

    #[test]
    fn nearest_upscaled_image_downsamples_back_exactly() {
        let small = pattern();
        let big: Vec<u8> = (0..32 * 32)
            .map(|i| small[(i / 32 / 4) * 8 + (i % 32) / 4])
            .collect();
        let png = encode(
            32,
            32,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &big,
        );
        let image = decode_png(&png).unwrap();
        assert_eq!((image.width, image.height), (32, 32));
        let expected: Vec<f32> = small.iter().map(|&v| f32::from(v) / 255.0).collect();
        assert_eq!(features(&image), expected);
    }

    #[test]
    fn identity_and_non_multiple_sizes() {
        let image = GrayImage {
            width: 8,
            height: 8,
            pixels: pattern().into_iter().map(f32::from).collect(),
        };
        assert_eq!(downsample(&image, 8, 8), image.pixels);
        // 12 pixels into 8 cells: each cell covers 1.5 pixels.
        let row = GrayImage {
            width: 12,
            height: 1,
            pixels: (0..12).map(|i| i as f32 * 2.0).collect(),
        };
        let out = downsample(&row, 8, 1);
        // Cell 0 covers pixel 0 fully and half of pixel 1: (0 + 0.5 * 2) / 1.5.
        assert!((out[0] - 2.0 / 3.0).abs() < 1e-6, "{out:?}");
        let mean_in = row.pixels.iter().sum::<f32>() / 12.0;
        let mean_out = out.iter().sum::<f32>() / 8.0;
        assert!((mean_in - mean_out).abs() < 1e-5);
        let flat = GrayImage {
            width: 13,
            height: 7,
            pixels: vec![200.0; 91],
        };
        assert!(
            downsample(&flat, 8, 8)
                .iter()
                .all(|&v| (v - 200.0).abs() < 1e-4)
        );
    }

    #[test]
    fn weights_cover_each_cell() {
        for (len, out) in [(32, 8), (12, 8), (5, 8), (4096, 8), (13, 8)] {
            let weights = axis_weights(len, out);
            assert_eq!(weights.len(), out);
            for cell in &weights {
                assert_eq!(
                    cell.iter().map(|&(_, w)| w).sum::<usize>(),
                    len,
                    "{len}/{out}"
                );
                assert!(cell.iter().all(|&(p, _)| p < len));
            }
        }
    }

    #[test]
    fn rgb_to_gray() {
        assert!((luma(255, 0, 0) - 76.245).abs() < 1e-4);
        assert!((luma(0, 255, 0) - 149.685).abs() < 1e-4);
        assert!((luma(0, 0, 100) - 11.4).abs() < 1e-4);
        assert_eq!(luma(77, 77, 77), 77.0);
        let rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9];
        let png = encode(2, 2, png::ColorType::Rgb, png::BitDepth::Eight, &rgb);
        let image = decode_png(&png).unwrap();
        assert_eq!(
            image.pixels,
            [luma(255, 0, 0), luma(0, 255, 0), luma(0, 0, 255), 9.0]
        );
    }

    #[test]
    fn decodes_every_color_type_and_depth() {
        use png::{BitDepth::*, ColorType::*};
        // Each: a 2×1 image whose pixels are gray 255 then gray 0 (or the palette's white, black).
        let cases: [(png::ColorType, png::BitDepth, Vec<u8>); 6] = [
            (GrayscaleAlpha, Eight, vec![255, 0, 0, 255]),
            (Rgba, Eight, vec![255, 255, 255, 7, 0, 0, 0, 7]),
            (Grayscale, Sixteen, vec![255, 255, 0, 0]),
            (
                Rgb,
                Sixteen,
                vec![255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0],
            ),
            (Grayscale, One, vec![0b1000_0000]),
            (Indexed, Eight, vec![1, 0]),
        ];
        for (color, depth, data) in cases {
            let image = decode_png(&encode(2, 1, color, depth, &data)).unwrap();
            assert_eq!(image.pixels, [255.0, 0.0], "{color:?} {depth:?}");
        }
    }

    #[test]
    fn rejects_non_png_and_huge_images() {
        let err = decode_png(b"GIF89a...").unwrap_err();
        assert!(err.to_string().starts_with("not a PNG image"), "{err}");
        let wide = encode(
            MAX_SIDE + 1,
            1,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &vec![0; MAX_SIDE as usize + 1],
        );
        assert_eq!(
            decode_png(&wide).unwrap_err().to_string(),
            "image is 4097x1; the largest accepted is 4096x4096"
        );
        let mut truncated = encode(
            8,
            8,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &[0; 64],
        );
        truncated.truncate(truncated.len() - 20);
        assert!(decode_png(&truncated).is_err());
    }

    #[test]
    fn top_k_is_sorted_and_stable() {
        assert_eq!(
            top_k(&[0.1, 0.5, 0.2, 0.5], 3),
            [(1, 0.5), (3, 0.5), (2, 0.2)]
        );
        assert_eq!(top_k(&[1.0], 3), [(0, 1.0)]);
    }
}
