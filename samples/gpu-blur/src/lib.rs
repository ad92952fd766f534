//! The gpu-blur sample's shader and its CPU reference: separable Gaussian blur of an 8-bit image on the
//! host's GPU.
//!
//! [`BLUR_WGSL`] has two entry points, both `@workgroup_size(16, 16)` over the image ([`workgroups`]):
//! `horizontal` blurs rows of packed pixels ([`pack`]) into an f32 buffer, `vertical` blurs its columns
//! and rounds back to packed 8-bit pixels ([`unpack`]). Bindings: `@binding(0)` uniform [`params`]
//! (`width, height, radius, 0`), `@binding(1)` the [`weights`] (f32, read), `@binding(2)` the packed
//! input (read), `@binding(3)` the f32 intermediate (`width × height × vec4<f32>`, read-write, in
//! `horizontal`), `@binding(4)` the same intermediate (read, in `vertical`), `@binding(5)` the packed
//! output (read-write).
//!
//! [`blur_reference`] does the same arithmetic on the CPU: the same f32 weights, each sum taken in the
//! same order with `f32::mul_add`, the intermediate kept in f32, rounding by `floor(v + 0.5)`, so a GPU
//! that fuses WGSL's `fma` gives the same bytes. [`blur_reference_with`]`(.., `[`Fma::Unfused`]`)`
//! computes what a GPU with an unfused `fma` (lavapipe) does; the two ways differ by at most 1 per
//! channel, rarely. This library is plain Rust, built natively with `--no-default-features`.

/// The WGSL shader (`src/blur.wgsl`).
pub const BLUR_WGSL: &str = include_str!("blur.wgsl");

/// The entry point that blurs rows.
pub const HORIZONTAL: &str = "horizontal";

/// The entry point that blurs columns and rounds.
pub const VERTICAL: &str = "vertical";

/// The largest sigma the job accepts (radius 192).
pub const MAX_SIGMA: f32 = 64.0;

/// The kernel's radius for `sigma`: `ceil(3 sigma)` (0 for sigma 0, which copies the image).
pub fn radius(sigma: f32) -> usize {
    (3.0 * sigma).ceil().max(0.0) as usize
}

/// The kernel's `2 radius + 1` weights: `exp(-d² / 2σ²)` for `d = -radius..=radius`, computed in f64,
/// normalised to sum 1, then rounded to f32. Sigma 0 gives `[1.0]`.
pub fn weights(sigma: f32) -> Vec<f32> {
    let r = radius(sigma) as i64;
    if r == 0 {
        return vec![1.0];
    }
    let two_s2 = 2.0 * f64::from(sigma) * f64::from(sigma);
    let raw: Vec<f64> = (-r..=r).map(|d| (-(d * d) as f64 / two_s2).exp()).collect();
    let sum: f64 = raw.iter().sum();
    raw.iter().map(|w| (w / sum) as f32).collect()
}

/// The shader's uniform for a `width × height` image blurred with `sigma`.
///
/// # Panics
///
/// If a dimension does not fit in a u32.
pub fn params(width: usize, height: usize, sigma: f32) -> [u32; 4] {
    let u = |v: usize| u32::try_from(v).expect("a dimension over u32::MAX");
    [u(width), u(height), u(radius(sigma)), 0]
}

/// The workgroup counts `(x, y, z)` that cover a `width × height` image with 16×16 workgroups.
pub fn workgroups(width: usize, height: usize) -> (u32, u32, u32) {
    let count = |d: usize| u32::try_from(d.div_ceil(16)).unwrap_or(u32::MAX);
    (count(width), count(height), 1)
}

/// Interleaved 8-bit pixels of `channels` (1 to 4) channels, one u32 per pixel: channel `c` in bits
/// `8c..8c+8`, missing channels zero.
///
/// # Panics
///
/// If `channels` is not 1 to 4 or `pixels` is not a whole number of pixels.
pub fn pack(pixels: &[u8], channels: usize) -> Vec<u32> {
    assert!((1..=4).contains(&channels), "{channels} channels");
    assert!(pixels.len().is_multiple_of(channels), "not whole pixels");
    pixels
        .chunks_exact(channels)
        .map(|px| {
            px.iter()
                .enumerate()
                .fold(0u32, |word, (c, &v)| word | (u32::from(v) << (8 * c)))
        })
        .collect()
}

/// The inverse of [`pack`]: the first `channels` bytes of each u32.
///
/// # Panics
///
/// If `channels` is not 1 to 4.
pub fn unpack(packed: &[u32], channels: usize) -> Vec<u8> {
    assert!((1..=4).contains(&channels), "{channels} channels");
    packed
        .iter()
        .flat_map(|word| word.to_le_bytes().into_iter().take(channels))
        .collect()
}

/// How a GPU computes WGSL's `fma(a, b, c)`: WGSL allows either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fma {
    /// One rounding, as `f32::mul_add` (most hardware GPUs).
    Fused,
    /// `a * b` rounded, then `+ c` rounded (lavapipe/llvmpipe, Mesa's software Vulkan).
    Unfused,
}

impl Fma {
    /// Both ways, for comparing with a GPU whose way is not known.
    pub const BOTH: [Self; 2] = [Self::Fused, Self::Unfused];

    /// `a * b + c` this way.
    pub fn apply(self, a: f32, b: f32, c: f32) -> f32 {
        match self {
            Self::Fused => a.mul_add(b, c),
            Self::Unfused => a * b + c,
        }
    }
}

/// The blur on the CPU, with the shader's arithmetic on a GPU whose `fma` is fused: interleaved 8-bit
/// `pixels` of `channels` (1 to 4) channels, `width × height`, row-major; returns the blurred pixels in
/// the same layout.
///
/// # Panics
///
/// If `pixels` is not `width × height × channels` bytes or `channels` is not 1 to 4.
pub fn blur_reference(
    pixels: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    sigma: f32,
) -> Vec<u8> {
    blur_reference_with(pixels, width, height, channels, sigma, Fma::Fused)
}

/// [`blur_reference`] for a GPU whose `fma` is `fma` (lavapipe's is [`Fma::Unfused`]).
///
/// # Panics
///
/// If `pixels` is not `width × height × channels` bytes or `channels` is not 1 to 4.
pub fn blur_reference_with(
    pixels: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    sigma: f32,
    fma: Fma,
) -> Vec<u8> {
    assert!((1..=4).contains(&channels), "{channels} channels");
    assert_eq!(
        pixels.len(),
        width * height * channels,
        "not {width}×{height}×{channels}"
    );
    let w = weights(sigma);
    let r = radius(sigma) as isize;
    let clamp = |i: isize, len: usize| i.clamp(0, len as isize - 1) as usize;

    let mut temp = vec![0.0f32; pixels.len()];
    for y in 0..height {
        for x in 0..width {
            for c in 0..channels {
                let mut acc = 0.0f32;
                for d in -r..=r {
                    let sx = clamp(x as isize + d, width);
                    let v = f32::from(pixels[(y * width + sx) * channels + c]);
                    acc = fma.apply(w[(d + r) as usize], v, acc);
                }
                temp[(y * width + x) * channels + c] = acc;
            }
        }
    }
    let mut out = vec![0u8; pixels.len()];
    for y in 0..height {
        for x in 0..width {
            for c in 0..channels {
                let mut acc = 0.0f32;
                for d in -r..=r {
                    let sy = clamp(y as isize + d, height);
                    acc = fma.apply(
                        w[(d + r) as usize],
                        temp[(sy * width + x) * channels + c],
                        acc,
                    );
                }
                out[(y * width + x) * channels + c] = round(acc);
            }
        }
    }
    out
}

/// The shader's rounding: `floor(v + 0.5)`, clamped to 0..=255.
fn round(v: f32) -> u8 {
    (v + 0.5).floor().clamp(0.0, 255.0) as u8
}

/// The largest difference per channel between two images of the same size.
///
/// # Panics
///
/// If the lengths differ.
pub fn max_channel_diff(x: &[u8], y: &[u8]) -> u8 {
    assert_eq!(x.len(), y.len(), "images of different sizes");
    x.iter()
        .zip(y)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0)
}

/// The sample image (`example/image.png`): 64×48 RGB, 8-bit.
pub const EXAMPLE_PNG: &[u8] = include_bytes!("../example/image.png");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_normalised_and_symmetric() {
        assert_eq!(radius(2.0), 6);
        assert_eq!(radius(0.1), 1);
        assert_eq!(radius(0.0), 0);
        assert_eq!(weights(0.0), [1.0]);
        let w = weights(2.0);
        assert_eq!(w.len(), 13);
        let sum: f32 = w.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6, "{sum}");
        for i in 0..6 {
            assert_eq!(w[i], w[12 - i]);
            assert!(w[i] < w[i + 1]);
        }
    }

    #[test]
    fn constant_images_stay_constant_and_sigma_0_copies() {
        let flat = vec![200u8; 7 * 5 * 3];
        assert_eq!(blur_reference(&flat, 7, 5, 3, 3.0), flat);
        let noise: Vec<u8> = (0..9 * 4 * 4).map(|i| (i * 37 % 256) as u8).collect();
        assert_eq!(blur_reference(&noise, 9, 4, 4, 0.0), noise);
    }

    #[test]
    fn a_dot_spreads_symmetrically() {
        let (w, h) = (9, 9);
        let mut img = vec![0u8; w * h];
        img[4 * w + 4] = 255;
        let out = blur_reference(&img, w, h, 1, 1.0);
        assert!(out[4 * w + 4] < 255 && out[4 * w + 4] > 0);
        assert_eq!(out[4 * w + 3], out[4 * w + 5]);
        assert_eq!(out[3 * w + 4], out[5 * w + 4]);
        assert_eq!(out[3 * w + 3], out[5 * w + 5]);
        assert_eq!(out[0], 0);
    }

    #[test]
    fn packing_round_trips() {
        let px = [1u8, 2, 3, 4, 5, 6];
        assert_eq!(pack(&px, 3), [0x0003_0201, 0x0006_0504]);
        assert_eq!(unpack(&pack(&px, 3), 3), px);
        assert_eq!(unpack(&pack(&px, 2), 2), px);
        assert_eq!(pack(&[9], 1), [9]);
        assert_eq!(workgroups(64, 48), (4, 3, 1));
        assert_eq!(params(64, 48, 2.0), [64, 48, 6, 0]);
    }

    #[test]
    fn the_example_image_is_64x48_rgb() {
        let decoder = png::Decoder::new(std::io::Cursor::new(EXAMPLE_PNG));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (64, 48));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        let pixels = &buf[..info.buffer_size()];
        let blurred = blur_reference(pixels, 64, 48, 3, 2.0);
        assert_ne!(blurred, pixels);
        assert!(max_channel_diff(&blurred, pixels) > 50);
        let unfused = blur_reference_with(pixels, 64, 48, 3, 2.0, Fma::Unfused);
        assert!(max_channel_diff(&blurred, &unfused) <= 1);
    }
}
