//! The matmul sample: multiplies two `n × n` f32 matrices and writes the product.
//!
//! `matmul [N] [SEED]` (default 256, 1) generates A and B deterministically from
//! the seed; if `/input/a.f32` and `/input/b.f32` exist (raw little-endian f32,
//! `N × N` row-major), it multiplies those instead. Writes `/output/c.f32` and
//! returns `{n, checksum}`.
//!
//! Run with: `netmind run samples/matmul -- 512`

use std::process::ExitCode;

use netmind_sample_matmul::{checksum, matmul, matrix};
use netmind_sdk::Error;

#[derive(serde::Serialize)]
struct Product {
    n: usize,
    checksum: f64,
}

fn read_matrix(name: &str, n: usize) -> netmind_sdk::Result<Vec<f32>> {
    let bytes = netmind_sdk::read_input(name)?;
    if bytes.len() != n * n * 4 {
        return Err(Error::Invalid(format!(
            "{name} has {} bytes; a {n}×{n} f32 matrix needs {}",
            bytes.len(),
            n * n * 4
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn main() -> ExitCode {
    netmind_sdk::run(|| {
        let args = netmind_sdk::args();
        let parse = |i: usize, default: u64| -> netmind_sdk::Result<u64> {
            args.get(i).map_or(Ok(default), |s| {
                s.parse().map_err(|_| {
                    Error::Invalid(format!("argument {} `{s}` is not a number", i + 1))
                })
            })
        };
        let n = parse(0, 256)? as usize;
        let seed = parse(1, 1)?;
        if n == 0 || n > 8192 {
            return Err(Error::Invalid(format!("N must be 1..=8192, got {n}")));
        }
        let from_inputs = netmind_sdk::input_path("a.f32").exists();
        let (a, b) = if from_inputs {
            (read_matrix("a.f32", n)?, read_matrix("b.f32", n)?)
        } else {
            (matrix(n, seed), matrix(n, seed.wrapping_add(1)))
        };
        netmind_sdk::progress(0, 1, "multiplying");
        let c = matmul(&a, &b, n);
        netmind_sdk::progress(1, 1, "done");
        let bytes: Vec<u8> = c.iter().flat_map(|x| x.to_le_bytes()).collect();
        netmind_sdk::write_output("c.f32", &bytes)?;
        let product = Product {
            n,
            checksum: checksum(&c),
        };
        println!("{n}×{n} checksum {}", product.checksum);
        Ok(product)
    })
}
