//! The gpu-scan sample's shader, its pass plan and its CPU reference: inclusive prefix sum of u32
//! (wrapping addition) on the host's GPU, for any length.
//!
//! [`SCAN_WGSL`] has two entry points, both `@workgroup_size(256)` over blocks of [`BLOCK`] elements:
//!
//! - `scan_blocks` (`@binding(0)` data, read-write; `@binding(1)` block sums, read-write) scans each
//!   block in place and writes its total to the block-sums buffer;
//! - `add_offsets` (`@binding(0)` data, read-write; `@binding(2)` scanned block sums, read) adds the sum
//!   of all earlier blocks to each block.
//!
//! [`passes`] lists the dispatches for `n` elements: the block sums of each level are scanned as the
//! next level until one block is left (whose block sum is the grand total), then the offsets are added
//! back from the top level down. Each level's buffer must hold exactly [`levels`]`(n)[l]` u32 (the
//! shader reads the length from the buffer). [`scan_reference`] is the CPU reference; the result must
//! match it exactly. This library is plain Rust, built natively with `--no-default-features`.

/// The WGSL shader (`src/scan.wgsl`).
pub const SCAN_WGSL: &str = include_str!("scan.wgsl");

/// The entry point that scans blocks and writes their totals.
pub const SCAN_BLOCKS: &str = "scan_blocks";

/// The entry point that adds the scanned block sums back.
pub const ADD_OFFSETS: &str = "add_offsets";

/// Elements per workgroup: 256 invocations × 4.
pub const BLOCK: usize = 1024;

/// The most workgroups in one dimension on common devices, which bounds the length: 65535 blocks.
pub const MAX_LEN: usize = 65535 * BLOCK;

/// The inclusive prefix sum of `x` with wrapping addition: `out[i] = x[0] + ... + x[i]` (mod 2³²).
pub fn scan_reference(x: &[u32]) -> Vec<u32> {
    let mut sum = 0u32;
    x.iter()
        .map(|&v| {
            sum = sum.wrapping_add(v);
            sum
        })
        .collect()
}

/// A deterministic pseudo-random input of `n` u32 covering the whole range (xorshift64*), so sums wrap.
pub fn sequence(n: usize, seed: u64) -> Vec<u32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
        })
        .collect()
}

/// The length of each level's buffer for `n` elements: `[n, ⌈n/1024⌉, ⌈n/1024²⌉, ..., 1]`. Level 0 is
/// the data; the last level, one element, receives the grand total.
///
/// # Panics
///
/// If `n` is 0.
pub fn levels(n: usize) -> Vec<usize> {
    assert!(n > 0, "nothing to scan");
    let mut lens = vec![n];
    loop {
        let last = *lens.last().expect("never empty");
        lens.push(last.div_ceil(BLOCK));
        if last <= BLOCK {
            return lens;
        }
    }
}

/// One dispatch of the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// [`SCAN_BLOCKS`] or [`ADD_OFFSETS`].
    pub entry: &'static str,
    /// The level bound as `data` (`@binding(0)`).
    pub data: usize,
    /// The level bound as block sums (`@binding(1)`, for [`SCAN_BLOCKS`]) or offsets (`@binding(2)`,
    /// for [`ADD_OFFSETS`]): always `data + 1`.
    pub sums: usize,
    /// Workgroups in x: the number of blocks of the data level.
    pub workgroups: u32,
}

/// The dispatches that scan `n` elements, in order, over the buffers of [`levels`]`(n)`.
///
/// # Panics
///
/// If `n` is 0.
pub fn passes(n: usize) -> Vec<Pass> {
    let lens = levels(n);
    let groups = |level: usize| u32::try_from(lens[level + 1]).unwrap_or(u32::MAX);
    // Every level but the last (the total) is scanned, bottom up ...
    let mut passes: Vec<Pass> = (0..lens.len() - 1)
        .map(|level| Pass {
            entry: SCAN_BLOCKS,
            data: level,
            sums: level + 1,
            workgroups: groups(level),
        })
        .collect();
    // ... then each level whose block sums were scanned as a level of their own gets them added back,
    // top down.
    passes.extend((0..lens.len().saturating_sub(2)).rev().map(|level| Pass {
        entry: ADD_OFFSETS,
        data: level,
        sums: level + 1,
        workgroups: groups(level),
    }));
    passes
}

#[cfg(test)]
#[allow(
    clippy::needless_range_loop,
    reason = "the simulations index buffers as the shader does"
)]
mod tests {
    use super::*;

    /// `scan_blocks` step by step on the CPU, with the shader's index arithmetic.
    fn scan_blocks(data: &mut [u32], block_sums: &mut [u32], workgroups: u32) {
        let n = data.len();
        for group in 0..workgroups as usize {
            let mut own = [[0u32; 4]; 256];
            let mut partial = [0u32; 256];
            for local in 0..256 {
                let base = group * BLOCK + local * 4;
                let mut running = 0u32;
                for j in 0..4 {
                    if base + j < n {
                        running = running.wrapping_add(data[base + j]);
                    }
                    own[local][j] = running;
                }
                partial[local] = running;
            }
            let mut offset = 1;
            while offset < 256 {
                let before = partial;
                for local in 0..256 {
                    if local >= offset {
                        partial[local] = before[local].wrapping_add(before[local - offset]);
                    }
                }
                offset *= 2;
            }
            for local in 0..256 {
                let base = group * BLOCK + local * 4;
                let before = if local > 0 { partial[local - 1] } else { 0 };
                for j in 0..4 {
                    if base + j < n {
                        data[base + j] = before.wrapping_add(own[local][j]);
                    }
                }
            }
            block_sums[group] = partial[255];
        }
    }

    /// `add_offsets` on the CPU.
    fn add_offsets(data: &mut [u32], offsets: &[u32], workgroups: u32) {
        let n = data.len();
        for group in 1..workgroups as usize {
            let add = offsets[group - 1];
            for i in group * BLOCK..((group + 1) * BLOCK).min(n) {
                data[i] = data[i].wrapping_add(add);
            }
        }
    }

    /// The whole plan run on the CPU: the buffers of `levels(n)` and the dispatches of `passes(n)`.
    fn simulate(x: &[u32]) -> (Vec<u32>, u32) {
        let mut buffers: Vec<Vec<u32>> = levels(x.len()).iter().map(|&l| vec![0; l]).collect();
        buffers[0].copy_from_slice(x);
        for pass in passes(x.len()) {
            assert_eq!(pass.sums, pass.data + 1);
            assert_eq!(
                pass.workgroups as usize,
                buffers[pass.data].len().div_ceil(BLOCK)
            );
            let (low, high) = buffers.split_at_mut(pass.sums);
            match pass.entry {
                SCAN_BLOCKS => scan_blocks(&mut low[pass.data], &mut high[0], pass.workgroups),
                ADD_OFFSETS => add_offsets(&mut low[pass.data], &high[0], pass.workgroups),
                other => panic!("{other}"),
            }
        }
        let total = buffers.last().unwrap()[0];
        (buffers.swap_remove(0), total)
    }

    #[test]
    fn the_shaders_passes_match_the_reference() {
        for n in [
            1,
            3,
            1023,
            1024,
            1025,
            4096,
            5000,
            BLOCK * BLOCK,
            BLOCK * BLOCK + 3,
        ] {
            let x = sequence(n, n as u64);
            let (got, total) = simulate(&x);
            let expected = scan_reference(&x);
            assert!(got == expected, "n = {n}");
            assert_eq!(total, expected[n - 1], "n = {n}");
        }
    }

    #[test]
    fn levels_and_passes() {
        assert_eq!(levels(1), [1, 1]);
        assert_eq!(levels(1024), [1024, 1]);
        assert_eq!(levels(1025), [1025, 2, 1]);
        assert_eq!(levels(16 << 20), [16 << 20, 16384, 16, 1]);
        let names = |n| {
            passes(n)
                .iter()
                .map(|p| (p.entry, p.data, p.workgroups))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(1000), [(SCAN_BLOCKS, 0, 1)]);
        assert_eq!(
            names(5000),
            [
                (SCAN_BLOCKS, 0, 5),
                (SCAN_BLOCKS, 1, 1),
                (ADD_OFFSETS, 0, 5)
            ]
        );
        assert_eq!(
            names(16 << 20),
            [
                (SCAN_BLOCKS, 0, 16384),
                (SCAN_BLOCKS, 1, 16),
                (SCAN_BLOCKS, 2, 1),
                (ADD_OFFSETS, 1, 16),
                (ADD_OFFSETS, 0, 16384),
            ]
        );
        assert_eq!(passes(MAX_LEN)[0].workgroups, 65535);
    }

    #[test]
    fn reference_wraps() {
        assert_eq!(scan_reference(&[1, 2, 3]), [1, 3, 6]);
        assert_eq!(scan_reference(&[u32::MAX, 2]), [u32::MAX, 1]);
        assert!(scan_reference(&[]).is_empty());
        let x = sequence(1000, 7);
        assert_eq!(x, sequence(1000, 7));
        assert!(x.iter().any(|&v| v > u32::MAX / 2));
    }
}
