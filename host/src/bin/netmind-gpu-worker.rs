//! The GPU worker process the sandbox starts for each job that uses the GPU (see
//! `netmind_host::gpu`). It speaks only the sandbox's framed protocol on stdin/stdout; it is not
//! meant to be run by hand.

use std::process::ExitCode;

fn main() -> ExitCode {
    netmind_host::gpu::worker::main()
}
