//! Paths of the NetMind guests, built for the host's tests and benchmarks.
//!
//! The build script runs a nested `cargo build --release` of the samples (`samples/*`) and the test
//! programs (`conformance/test-programs`) for `wasm32-wasip2`, plus `hello` and the preview 1 test programs
//! for `wasm32-wasip1`, into `<target dir>/guests`. It copies each sample's component into its bundle
//! directory (`samples/hello/hello.wasm`, ...), so `netmind run samples/hello` works after
//! `cargo build --release`.
//!
//! Each artifact is a `pub const` holding its absolute path:
//!
//! - samples: [`HELLO`], [`SHA256`], [`BLUR`], [`MATMUL`], [`WORDFREQ`], the wasi-nn samples
//!   [`ONNX_RUN`], [`DIGITS`] and [`IMAGE_CLASSIFY`], and the GPU samples [`WGSL_RUN`], [`GPU_MATMUL`],
//!   [`GPU_SCAN`], [`GPU_BLUR`] and [`MANDELBROT`] (components), [`HELLO_P1`] (a core module) and
//!   [`SAMPLES_DIR`];
//! - test programs: `TP_<BIN>` for each `conformance/test-programs/src/bin/<bin>.rs`, all listed in
//!   [`TEST_PROGRAMS`].
//!
//! ```no_run
//! let component = std::fs::read(netmind_samples_artifacts::HELLO).unwrap();
//! assert_eq!(&component[..4], b"\0asm");
//! ```
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 8 bytes of a wasm binary: magic, then version 1 (core module) or a component's layer.
    fn header(path: &str) -> [u8; 8] {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        bytes[..8].try_into().unwrap()
    }

    #[test]
    fn every_artifact_exists_with_the_right_kind() {
        const COMPONENT: [u8; 8] = *b"\0asm\x0d\0\x01\0";
        const MODULE: [u8; 8] = *b"\0asm\x01\0\0\0";
        for path in [
            HELLO,
            SHA256,
            BLUR,
            MATMUL,
            WORDFREQ,
            ONNX_RUN,
            DIGITS,
            IMAGE_CLASSIFY,
            WGSL_RUN,
            GPU_MATMUL,
            GPU_SCAN,
            GPU_BLUR,
            MANDELBROT,
        ] {
            assert_eq!(header(path), COMPONENT, "{path}");
        }
        assert_eq!(header(HELLO_P1), MODULE);
        for (name, path) in TEST_PROGRAMS {
            let expected = if name.starts_with("p1_") {
                MODULE
            } else {
                COMPONENT
            };
            assert_eq!(header(path), expected, "{name}: {path}");
        }
        assert!(
            std::path::Path::new(SAMPLES_DIR)
                .join("hello/netmind.toml")
                .is_file()
        );
    }
}
