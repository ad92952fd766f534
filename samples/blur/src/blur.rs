//! A separable Gaussian blur on 8-bit interleaved pixels.

/// The normalized 1-D Gaussian kernel for `sigma`: `2 * ceil(3 * sigma) + 1` taps summing to 1.
///
/// `sigma` must be finite and non-negative; 0 gives the identity kernel `[1.0]`.
pub(crate) fn kernel(sigma: f32) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil() as usize;
    if radius == 0 {
        return vec![1.0];
    }
    let two_sigma_sq = 2.0 * sigma * sigma;
    let taps: Vec<f32> = (0..=2 * radius)
        .map(|i| {
            let x = i as f32 - radius as f32;
            (-x * x / two_sigma_sq).exp()
        })
        .collect();
    let sum: f32 = taps.iter().sum();
    taps.into_iter().map(|t| t / sum).collect()
}

/// Blurs an image of `width` x `height` pixels with `channels` interleaved 8-bit samples per pixel
/// (row-major, no padding), clamping at the edges. Every channel, alpha included, is blurred alike.
pub(crate) fn gaussian_blur(
    pixels: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    sigma: f32,
) -> Vec<u8> {
    assert_eq!(pixels.len(), width * height * channels, "pixel buffer size");
    let kernel = kernel(sigma);
    let radius = (kernel.len() / 2) as isize;
    let clamp = |i: isize, len: usize| i.clamp(0, len as isize - 1) as usize;

    // Horizontal pass into f32, then vertical pass back to u8.
    let mut horizontal = vec![0.0f32; pixels.len()];
    for y in 0..height {
        let row = y * width;
        for x in 0..width {
            for c in 0..channels {
                let mut acc = 0.0;
                for (k, weight) in kernel.iter().enumerate() {
                    let sx = clamp(x as isize + k as isize - radius, width);
                    acc += weight * f32::from(pixels[(row + sx) * channels + c]);
                }
                horizontal[(row + x) * channels + c] = acc;
            }
        }
    }
    let mut out = vec![0u8; pixels.len()];
    for y in 0..height {
        for x in 0..width {
            for c in 0..channels {
                let mut acc = 0.0;
                for (k, weight) in kernel.iter().enumerate() {
                    let sy = clamp(y as isize + k as isize - radius, height);
                    acc += weight * horizontal[(sy * width + x) * channels + c];
                }
                out[(y * width + x) * channels + c] = acc.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_is_normalized_and_sized() {
        let k = kernel(1.0);
        assert_eq!(k.len(), 7);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(k[3] > k[2] && k[2] > k[1] && (k[2] - k[4]).abs() < 1e-7);
        assert_eq!(kernel(0.0), [1.0]);
        assert_eq!(kernel(0.5).len(), 5);
    }

    #[test]
    fn flat_image_stays_flat() {
        let pixels = vec![77u8; 5 * 4 * 3];
        assert_eq!(gaussian_blur(&pixels, 5, 4, 3, 2.0), pixels);
    }

    #[test]
    fn zero_sigma_is_identity() {
        let pixels: Vec<u8> = (0..30).collect();
        assert_eq!(gaussian_blur(&pixels, 5, 3, 2, 0.0), pixels);
    }

    #[test]
    fn spreads_a_dot_symmetrically_and_keeps_mass() {
        // 5x5 gray image with one bright pixel in the middle.
        let mut pixels = vec![0u8; 25];
        pixels[12] = 250;
        let out = gaussian_blur(&pixels, 5, 5, 1, 0.6);
        assert!(out[12] < 250 && out[12] > 0);
        // Neighbours get some of it, symmetrically.
        assert!(out[7] > 0);
        assert_eq!(out[7], out[17]);
        assert_eq!(out[11], out[13]);
        assert_eq!(out[7], out[11]);
        // Far corners stay dark with a small sigma.
        assert_eq!(out[0], 0);
        let mass: u32 = out.iter().map(|&p| u32::from(p)).sum();
        assert!(mass.abs_diff(250) <= 6, "mass {mass}");
    }

    #[test]
    fn edges_are_clamped() {
        // A 3x1 RGB strip: the left pixel is white, the rest black. With clamping the left edge sees
        // "more white" beyond the border, so it stays brighter than the middle.
        let pixels = [255, 255, 255, 0, 0, 0, 0, 0, 0];
        let out = gaussian_blur(&pixels, 3, 1, 3, 1.0);
        assert!(out[0] > out[3] && out[3] > out[6]);
        assert_eq!(out[0], out[1]);
    }
}
