//! The mandelbrot sample's shader, view and CPU reference: escape-time iteration counts of the
//! Mandelbrot set on the host's GPU.
//!
//! [`MANDELBROT_WGSL`] (entry point `main`, `@workgroup_size(16, 16)`, dispatch [`workgroups`]) writes
//! one u32 iteration count per pixel. Bindings: `@binding(0)` the uniform [`View::params`]
//! (`width, height, max_iter, 0`), `@binding(1)` the pixel columns' real parts and `@binding(2)` the
//! rows' imaginary parts ([`View::coordinates`], f32, read), `@binding(3)` the counts (`height × width`
//! u32, row-major, read-write).
//!
//! The coordinates are computed on the CPU (in f64, then rounded to f32) and every step of the iteration
//! is an explicit `fma`, so no compiler can contract the arithmetic its own way. WGSL lets a GPU compute
//! `fma` fused (one rounding) or not: [`iterations_reference`] (the same loop with `f32::mul_add`)
//! gets exactly the counts of a GPU that fuses it, [`iterations_reference_with`]`(view,
//! `[`Fma::Unfused`]`)` those of one that does not, such as lavapipe. With the other way, about 0.2% of
//! the pixels (near the set's boundary, where the iteration is chaotic) get other counts. This library is
//! plain Rust, built natively with `--no-default-features`.

/// The WGSL shader (`src/mandelbrot.wgsl`), entry point [`ENTRY`].
pub const MANDELBROT_WGSL: &str = include_str!("mandelbrot.wgsl");

/// The shader's entry point.
pub const ENTRY: &str = "main";

/// What to render: the image size, the iteration limit and the part of the complex plane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    /// Pixels across.
    pub width: usize,
    /// Pixels down.
    pub height: usize,
    /// Iterations before a point counts as inside the set.
    pub max_iter: u32,
    /// The point at the image's centre: (real, imaginary).
    pub center: (f64, f64),
    /// The width of the image in the complex plane (the height follows from the aspect ratio).
    pub scale: f64,
}

impl Default for View {
    /// 512×384, 256 iterations, centred on -0.5 + 0i, 3 units wide: the whole set.
    fn default() -> Self {
        Self {
            width: 512,
            height: 384,
            max_iter: 256,
            center: (-0.5, 0.0),
            scale: 3.0,
        }
    }
}

impl View {
    /// The real part of each column's centre and the imaginary part of each row's centre (imaginary
    /// axis up: row 0 is the top), computed in f64 and rounded to f32.
    pub fn coordinates(&self) -> (Vec<f32>, Vec<f32>) {
        let step = self.scale / self.width as f64;
        let xs = (0..self.width)
            .map(|x| (self.center.0 + (x as f64 + 0.5 - self.width as f64 / 2.0) * step) as f32)
            .collect();
        let ys = (0..self.height)
            .map(|y| (self.center.1 - (y as f64 + 0.5 - self.height as f64 / 2.0) * step) as f32)
            .collect();
        (xs, ys)
    }

    /// The shader's uniform.
    ///
    /// # Panics
    ///
    /// If the width or height does not fit in a u32.
    pub fn params(&self) -> [u32; 4] {
        let u = |v: usize| u32::try_from(v).expect("a dimension over u32::MAX");
        [u(self.width), u(self.height), self.max_iter, 0]
    }
}

/// The workgroup counts `(x, y, z)` that cover a `width × height` image with 16×16 workgroups.
pub fn workgroups(width: usize, height: usize) -> (u32, u32, u32) {
    let count = |d: usize| u32::try_from(d.div_ceil(16)).unwrap_or(u32::MAX);
    (count(width), count(height), 1)
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

/// The iteration count of the point `(cx, cy)`, as the shader computes it on a GPU whose `fma` is
/// `fma`.
pub fn iterate(cx: f32, cy: f32, max_iter: u32, fma: Fma) -> u32 {
    let (mut x, mut y) = (0.0f32, 0.0f32);
    let mut i = 0;
    while i < max_iter {
        if fma.apply(x, x, y * y) > 4.0 {
            break;
        }
        let nx = fma.apply(x, x, fma.apply(-y, y, cx));
        y = fma.apply(2.0 * x, y, cy);
        x = nx;
        i += 1;
    }
    i
}

/// Every pixel's iteration count on the CPU, as a GPU whose `fma` is fused computes them: `height ×
/// width` u32, row-major, as the shader writes them.
pub fn iterations_reference(view: &View) -> Vec<u32> {
    iterations_reference_with(view, Fma::Fused)
}

/// [`iterations_reference`] for a GPU whose `fma` is `fma`. A GPU's counts match one of
/// [`Fma::BOTH`] exactly: lavapipe's match [`Fma::Unfused`].
pub fn iterations_reference_with(view: &View, fma: Fma) -> Vec<u32> {
    let (xs, ys) = view.coordinates();
    ys.iter()
        .flat_map(|&cy| {
            xs.iter()
                .map(move |&cx| iterate(cx, cy, view.max_iter, fma))
        })
        .collect()
}

/// RGB pixels (8-bit, row-major) for iteration counts: points inside the set (`max_iter`) are black,
/// the others take a smooth blue-orange palette by `count / max_iter`.
pub fn colorize(iterations: &[u32], max_iter: u32) -> Vec<u8> {
    let max = max_iter.max(1) as f32;
    iterations
        .iter()
        .flat_map(|&i| {
            if i >= max_iter {
                return [0, 0, 0];
            }
            // The square root spreads the many low counts over more of the palette.
            let t = (i as f32 / max).sqrt();
            let s = 1.0 - t;
            let channel = |v: f32| (v.clamp(0.0, 1.0) * 255.0) as u8;
            [
                channel(9.0 * s * t * t * t),
                channel(15.0 * s * s * t * t),
                channel(8.5 * s * s * s * t),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_points() {
        for fma in Fma::BOTH {
            assert_eq!(iterate(0.0, 0.0, 100, fma), 100, "0 is in the set");
            assert_eq!(iterate(-1.0, 0.0, 100, fma), 100, "-1 cycles");
            assert_eq!(iterate(2.0, 2.0, 100, fma), 1, "escapes after one step");
            assert_eq!(iterate(0.5, 0.5, 100, fma), 5);
            assert_eq!(iterate(10.0, 0.0, 0, fma), 0);
        }
    }

    #[test]
    fn the_two_ways_differ_only_near_the_boundary() {
        let view = View::default();
        let fused = iterations_reference(&view);
        let unfused = iterations_reference_with(&view, Fma::Unfused);
        let differ = fused.iter().zip(&unfused).filter(|(a, b)| a != b).count();
        assert!(differ > 0 && differ < fused.len() / 100, "{differ}");
        assert_eq!(Fma::Unfused.apply(3.0, 4.0, 5.0), 17.0);
    }

    #[test]
    fn the_default_view_covers_the_set() {
        let view = View::default();
        let (xs, ys) = view.coordinates();
        assert_eq!((xs.len(), ys.len()), (512, 384));
        assert!(xs[0] < -1.99 && xs[511] > 0.99, "{} {}", xs[0], xs[511]);
        assert!(ys[0] > 1.12 && ys[383] < -1.12, "{} {}", ys[0], ys[383]);
        // Symmetric about the real axis: row y and row 383 - y mirror each other.
        assert_eq!(ys[0], -ys[383]);
        let counts = iterations_reference(&view);
        assert_eq!(counts.len(), 512 * 384);
        for y in 0..384 {
            for x in 0..512 {
                assert_eq!(counts[y * 512 + x], counts[(383 - y) * 512 + x]);
            }
        }
        let inside = counts.iter().filter(|&&c| c == 256).count();
        // The set's area is about 1.506; the view is 3 × 2.25.
        let fraction = inside as f64 / counts.len() as f64;
        assert!((0.2..0.25).contains(&fraction), "{fraction}");
        assert_eq!(view.params(), [512, 384, 256, 0]);
        assert_eq!(workgroups(512, 384), (32, 24, 1));
    }

    #[test]
    fn colors() {
        let rgb = colorize(&[0, 128, 256], 256);
        assert_eq!(rgb.len(), 9);
        assert_eq!(&rgb[..3], [0, 0, 0]);
        assert_eq!(&rgb[6..], [0, 0, 0]);
        assert!(rgb[3..6].iter().any(|&c| c > 0));
    }
}
