//! The gpu-matmul sample's shader and its CPU reference: tiled f32 matrix multiply on the host's GPU.
//!
//! [`MATMUL_WGSL`] computes `C = A × B` for row-major f32 matrices of any size (`A` is `m × k`, `B` is
//! `k × n`): each workgroup of 16×16 invocations computes a 64×64 tile of `C` through workgroup memory,
//! each invocation a 4×4 register block. Its bindings: `@binding(0)` a uniform [`Dims`] (`m, k, n, 0`
//! as u32), `@binding(1)` A, `@binding(2)` B, `@binding(3)` C (read-write); dispatch
//! [`workgroups`]`(m, n)`.
//!
//! [`matmul_reference`] is the same arithmetic on the CPU: every element summed in ascending `k` with
//! `f32::mul_add` from 0, which is bit for bit what a GPU that fuses WGSL's `fma` computes. WGSL also
//! allows an unfused `fma` (lavapipe's): [`matmul_reference_with`]`(.., `[`Fma::Unfused`]`)` matches
//! that, and the two ways differ by rounding, within [`tolerance`]. This library is plain Rust, built
//! natively with `--no-default-features`, so the host's tests can compare.

/// The WGSL shader (`src/matmul.wgsl`), entry point [`ENTRY`].
pub const MATMUL_WGSL: &str = include_str!("matmul.wgsl");

/// The shader's entry point.
pub const ENTRY: &str = "main";

/// Rows and columns of `C` per workgroup.
pub const TILE: usize = 64;

/// Depth of one step through `k` in workgroup memory.
pub const TILE_K: usize = 16;

/// The shader's uniform: the dimensions, padded to 16 bytes.
pub type Dims = [u32; 4];

/// The uniform for `m × k` times `k × n`.
///
/// # Panics
///
/// If a dimension does not fit in a u32.
pub fn dims(m: usize, k: usize, n: usize) -> Dims {
    let u = |d: usize| u32::try_from(d).expect("a dimension over u32::MAX");
    [u(m), u(k), u(n), 0]
}

/// The workgroup counts `(x, y, z)` that cover an `m × n` result: one workgroup per 64×64 tile, x along
/// the columns.
pub fn workgroups(m: usize, n: usize) -> (u32, u32, u32) {
    let count = |d: usize| u32::try_from(d.div_ceil(TILE)).unwrap_or(u32::MAX);
    (count(n), count(m), 1)
}

/// A deterministic pseudo-random `rows × cols` matrix of values in `[-1, 1)` (xorshift64*).
pub fn matrix(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..rows * cols)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            (bits as f32 / (1u64 << 23) as f32) - 1.0
        })
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

/// `C = A × B` on the CPU, row-major: `a` is `m × k`, `b` is `k × n`, the result `m × n`. Each element is
/// summed in ascending `k` with `f32::mul_add`, starting from 0, as the shader does on a GPU whose `fma`
/// is fused.
///
/// # Panics
///
/// If `a` or `b` does not have the size its dimensions call for.
pub fn matmul_reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    matmul_reference_with(a, b, m, k, n, Fma::Fused)
}

/// [`matmul_reference`] for a GPU whose `fma` is `fma`; a GPU's result is bit for bit one of
/// [`Fma::BOTH`] (lavapipe's is [`Fma::Unfused`]).
///
/// # Panics
///
/// If `a` or `b` does not have the size its dimensions call for.
pub fn matmul_reference_with(
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
    fma: Fma,
) -> Vec<f32> {
    assert_eq!(a.len(), m * k, "a is not {m}×{k}");
    assert_eq!(b.len(), k * n, "b is not {k}×{n}");
    let mut c = vec![0.0f32; m * n];
    if k == 0 {
        return c;
    }
    for (a_row, c_row) in a.chunks_exact(k).zip(c.chunks_exact_mut(n.max(1))) {
        for (&a_ik, b_row) in a_row.iter().zip(b.chunks_exact(n.max(1))) {
            for (c_ij, &b_kj) in c_row.iter_mut().zip(b_row) {
                *c_ij = fma.apply(a_ik, b_kj, *c_ij);
            }
        }
    }
    c
}

/// One element of [`matmul_reference_with`]: row `i`, column `j` of `A × B`, summed the same way.
///
/// # Panics
///
/// If `i` or `j` is out of range, or `a` or `b` is too short.
pub fn reference_element(
    a: &[f32],
    b: &[f32],
    k: usize,
    n: usize,
    i: usize,
    j: usize,
    fma: Fma,
) -> f32 {
    assert!(j < n, "column {j} of {n}");
    (0..k).fold(0.0f32, |acc, kk| {
        fma.apply(a[i * k + kk], b[kk * n + j], acc)
    })
}

/// The largest absolute difference between two results of the same length; infinite when an element of
/// either is NaN.
///
/// # Panics
///
/// If the lengths differ.
pub fn max_abs_diff(x: &[f32], y: &[f32]) -> f32 {
    assert_eq!(x.len(), y.len(), "results of different lengths");
    x.iter()
        .zip(y)
        .map(|(x, y)| {
            let diff = (x - y).abs();
            if diff.is_nan() { f32::INFINITY } else { diff }
        })
        .fold(0.0, f32::max)
}

/// A generous bound on `max_abs_diff(gpu, reference)` for inputs in `[-1, 1)` (such as [`matrix`]'s)
/// when the GPU does not fuse `fma`: `k × 2⁻²⁰`. A fused GPU matches exactly.
pub fn tolerance(k: usize) -> f32 {
    k.max(1) as f32 / (1u32 << 20) as f32
}

/// The sum of every element, in f64: a short fingerprint of a result.
pub fn checksum(c: &[f32]) -> f64 {
    c.iter().map(|&x| f64::from(x)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shader's algorithm, step by step on the CPU: the same tiles, loads, barriers and index
    /// arithmetic as `matmul.wgsl`, so a mistake in them shows up here. Unwritten elements stay NaN.
    fn simulate_shader(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        const THREADS: usize = 16;
        const BLOCK: usize = 4;
        let mut c = vec![f32::NAN; m * n];
        let (gx, gy, _) = workgroups(m, n);
        for group_y in 0..gy as usize {
            for group_x in 0..gx as usize {
                let (row0, col0) = (group_y * TILE, group_x * TILE);
                let mut acc = vec![[0.0f32; 16]; 256];
                for step in 0..k.div_ceil(TILE_K) {
                    let k0 = step * TILE_K;
                    let mut tile_a = [f32::NAN; 1024];
                    let mut tile_b = [f32::NAN; 1024];
                    for index in 0..256 {
                        for i in 0..4 {
                            let e = index + i * 256;
                            let (ra, ka) = (row0 + e / TILE_K, k0 + e % TILE_K);
                            tile_a[e] = if ra < m && ka < k {
                                a[ra * k + ka]
                            } else {
                                0.0
                            };
                            let (kb, cb) = (k0 + e / TILE, col0 + e % TILE);
                            tile_b[e] = if kb < k && cb < n {
                                b[kb * n + cb]
                            } else {
                                0.0
                            };
                        }
                    }
                    // workgroupBarrier()
                    for (index, acc) in acc.iter_mut().enumerate() {
                        let (lx, ly) = (index % THREADS, index / THREADS);
                        for kk in 0..TILE_K {
                            let av: [f32; 4] =
                                std::array::from_fn(|i| tile_a[(ly + i * THREADS) * TILE_K + kk]);
                            let bv: [f32; 4] =
                                std::array::from_fn(|j| tile_b[kk * TILE + lx + j * THREADS]);
                            for i in 0..BLOCK {
                                for j in 0..BLOCK {
                                    acc[i * BLOCK + j] = av[i].mul_add(bv[j], acc[i * BLOCK + j]);
                                }
                            }
                        }
                    }
                }
                for (index, acc) in acc.iter().enumerate() {
                    let (lx, ly) = (index % THREADS, index / THREADS);
                    for i in 0..BLOCK {
                        for j in 0..BLOCK {
                            let (r, col) = (row0 + ly + i * THREADS, col0 + lx + j * THREADS);
                            if r < m && col < n {
                                assert!(c[r * n + col].is_nan(), "({r}, {col}) written twice");
                                c[r * n + col] = acc[i * BLOCK + j];
                            }
                        }
                    }
                }
            }
        }
        c
    }

    #[test]
    fn the_shaders_tiling_matches_the_reference_bit_for_bit() {
        for (m, k, n) in [
            (1, 1, 1),
            (64, 16, 64),
            (70, 33, 95),
            (3, 100, 130),
            (129, 17, 2),
        ] {
            let (a, b) = (matrix(m, k, 1), matrix(k, n, 2));
            let expected = matmul_reference(&a, &b, m, k, n);
            let got = simulate_shader(&a, &b, m, k, n);
            let same = expected
                .iter()
                .zip(&got)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{m}×{k}×{n}");
        }
    }

    #[test]
    fn reference_matches_the_textbook_product() {
        // [[1, 2], [3, 4]] × [[5, 6], [7, 8]] = [[19, 22], [43, 50]]
        let c = matmul_reference(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], 2, 2, 2);
        assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
        // 1×3 × 3×2
        let c = matmul_reference(&[1.0, 0.0, -1.0], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 1, 3, 2);
        assert_eq!(c, [-4.0, -4.0]);
        let (a, b) = (matrix(5, 7, 3), matrix(7, 9, 4));
        let c = matmul_reference(&a, &b, 5, 7, 9);
        for fma in Fma::BOTH {
            let c = matmul_reference_with(&a, &b, 5, 7, 9, fma);
            for i in 0..5 {
                for j in 0..9 {
                    assert_eq!(c[i * 9 + j], reference_element(&a, &b, 7, 9, i, j, fma));
                }
            }
        }
        let unfused = matmul_reference_with(&a, &b, 5, 7, 9, Fma::Unfused);
        assert!(max_abs_diff(&c, &unfused) <= tolerance(7));
        assert_eq!(matmul_reference(&[], &[], 2, 0, 3), [0.0; 6]);
    }

    #[test]
    fn helpers() {
        assert_eq!(workgroups(512, 512), (8, 8, 1));
        assert_eq!(workgroups(65, 1), (1, 2, 1));
        assert_eq!(dims(2, 3, 4), [2, 3, 4, 0]);
        let x = matrix(4, 4, 9);
        assert_eq!(x, matrix(4, 4, 9));
        assert_ne!(x, matrix(4, 4, 10));
        assert!(x.iter().all(|v| (-1.0..1.0).contains(v)));
        assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.5, 1.0]), 1.0);
        assert_eq!(max_abs_diff(&[1.0, f32::NAN], &[1.0, 0.0]), f32::INFINITY);
        assert_eq!(checksum(&[1.0, 2.5]), 3.5);
        assert!(tolerance(512) < 1e-3);
        assert!(MATMUL_WGSL.contains("@workgroup_size(16, 16, 1)"));
    }
}
