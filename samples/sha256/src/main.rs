//! The sha256 sample: hashes every input file and writes `/output/SHA256SUMS` (`sha256sum` format).
//!
//! Run with: `netmind run samples/sha256 --input DIR`

use std::process::ExitCode;

use serde::Serialize;

/// One hashed file, as reported in the result.
#[derive(Debug, Serialize)]
struct Hashed {
    name: String,
    sha256: String,
    bytes: u64,
}

fn main() -> ExitCode {
    netmind_sdk::run(|| {
        let inputs = netmind_sdk::inputs()?;
        let total = inputs.len() as u64;
        let mut files = Vec::with_capacity(inputs.len());
        let mut hashed = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.into_iter().enumerate() {
            let data = netmind_sdk::read_input(&input.name)?;
            let sha256 = hex::encode(netmind_sample_sha256::digest(&data));
            hashed.push(Hashed {
                name: input.name.clone(),
                sha256,
                bytes: data.len() as u64,
            });
            netmind_sdk::progress(i as u64 + 1, total, &input.name);
            files.push((input.name, data));
        }
        let sums = netmind_sample_sha256::sha256sums(&files);
        print!("{sums}");
        netmind_sdk::write_output("SHA256SUMS", sums.as_bytes())?;
        Ok(hashed)
    })
}
