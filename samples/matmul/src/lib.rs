//! Dense f32 matrix multiply, the CPU-bound kernel of the sandbox benchmark.
//!
//! The same code is compiled natively (by the host's benchmark) and to
//! `wasm32-wasip2` (by the sample job), so their speeds compare the sandbox
//! with native execution and nothing else.

/// A deterministic pseudo-random matrix of `n × n` values in `[-1, 1)`.
pub fn matrix(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n * n)
        .map(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            (bits as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

/// Width of the register block: one row of C is computed `LANES` columns at a time.
const LANES: usize = 16;
/// Steps of `k` per inner-loop iteration (more work per loop overhead).
const K_UNROLL: usize = 4;

/// `C = A × B` for row-major `n × n` matrices.
///
/// Register-blocked: for each row of A and each block of `LANES` columns of
/// B, the partial sums stay in an accumulator array (registers, once
/// vectorised natively or with wasm SIMD) across the whole `k` loop, so the
/// inner loop only loads. Sums are accumulated in ascending `k`, exactly as
/// the textbook triple loop does, so results are bit-identical to it.
///
/// # Panics
///
/// If `a` or `b` is not `n × n`.
pub fn matmul(a: &[f32], b: &[f32], n: usize) -> Vec<f32> {
    assert_eq!(a.len(), n * n, "a is not {n}×{n}");
    assert_eq!(b.len(), n * n, "b is not {n}×{n}");
    let mut c = vec![0.0f32; n * n];
    let full_j = n - n % LANES;
    let full_k = n - n % K_UNROLL;
    for (a_row, c_row) in a.chunks_exact(n).zip(c.chunks_exact_mut(n)) {
        for j in (0..full_j).step_by(LANES) {
            let mut acc = [0.0f32; LANES];
            let steps = a_row
                .chunks_exact(K_UNROLL)
                .zip(b.chunks_exact(K_UNROLL * n));
            for (a_k, b_k) in steps {
                for (u, &a_ik) in a_k.iter().enumerate() {
                    let x: &[f32; LANES] =
                        b_k[u * n + j..u * n + j + LANES].try_into().expect("block");
                    for (s, &x) in acc.iter_mut().zip(x) {
                        *s += a_ik * x;
                    }
                }
            }
            for k in full_k..n {
                for (s, &x) in acc.iter_mut().zip(&b[k * n + j..k * n + j + LANES]) {
                    *s += a_row[k] * x;
                }
            }
            c_row[j..j + LANES].copy_from_slice(&acc);
        }
        for (&a_ik, b_row) in a_row.iter().zip(b.chunks_exact(n)) {
            for (c_ij, &b_kj) in c_row[full_j..].iter_mut().zip(&b_row[full_j..]) {
                *c_ij += a_ik * b_kj;
            }
        }
    }
    c
}

/// A checksum of a result that replicas and tests can compare.
pub fn checksum(c: &[f32]) -> f64 {
    c.iter().map(|&x| f64::from(x)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplies() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        assert_eq!(matmul(&a, &b, 2), vec![19.0, 22.0, 43.0, 50.0]);
    }

    #[test]
    fn blocked_and_remainder_columns_match_the_naive_product() {
        for n in [1, 15, 16, 17, 40] {
            let (a, b) = (matrix(n, 1), matrix(n, 2));
            let c = matmul(&a, &b, n);
            for i in 0..n {
                for j in 0..n {
                    let want: f32 = (0..n).fold(0.0, |s, k| s + a[i * n + k] * b[k * n + j]);
                    assert_eq!(c[i * n + j], want, "n={n} ({i},{j})");
                }
            }
        }
    }

    #[test]
    fn identity_is_neutral() {
        let n = 5;
        let a = matrix(n, 3);
        let mut id = vec![0.0; n * n];
        for i in 0..n {
            id[i * n + i] = 1.0;
        }
        assert_eq!(matmul(&a, &id, n), a);
        assert!(a.iter().all(|x| (-1.0..1.0).contains(x)));
    }
}
