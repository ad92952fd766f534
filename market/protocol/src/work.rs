//! What a host signs about the work it does for a deal: [`Start`] when it
//! begins a replica, [`Log`] for what the job prints, [`Receipt`] when it
//! finishes, [`Release`] when it hands the deal back unfinished, as EIP-712 typed data
//! under the market's [`crate::orders::domain`], like orders.
//!
//! A receipt commits to the output archive's SHA-256 (its blob id), the exit
//! status and the resources used, including the head of the GPU dispatch hash
//! chain, so replicas on distinct hosts can be compared and a contract can
//! check what a host claimed.

use alloy_sol_types::sol;
use serde::{Deserialize, Serialize};

use crate::orders::Order;

sol! {
    /// A host starts the replica of a deal it holds.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    struct Start {
        /// The host (the signer).
        address host;
        /// The deal id.
        bytes32 deal;
        /// When, ms since the Unix epoch.
        uint64 at;
    }

    /// A host hands back a deal it holds without a result (its owner needs
    /// the machine): the market places the replica with another host.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    struct Release {
        /// The host (the signer).
        address host;
        /// The deal id.
        bytes32 deal;
        /// When, ms since the Unix epoch.
        uint64 at;
    }

    /// A piece of what a deal's job printed (stdout and stderr as they came,
    /// progress reports as `progress: done/total message` lines), sent by
    /// its host while the job runs so the owner can follow it.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    struct Log {
        /// The host (the signer).
        address host;
        /// The deal id.
        bytes32 deal;
        /// Bytes of the deal's log sent before this piece: the market
        /// appends `text` at this offset (a resend is ignored, a gap refused).
        uint64 offset;
        /// The text (UTF-8).
        string text;
    }

    /// What a host's run of a deal's replica produced.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    struct Receipt {
        /// The host (the signer).
        address host;
        /// The deal id.
        bytes32 deal;
        /// SHA-256 of the output archive (its blob id).
        bytes32 output;
        /// How the run ended: `exited`, `trapped`, `timeout`, `cpu-time`,
        /// `memory`, `output-limit`, `fuel`, `cancelled`, `host-error`.
        string status;
        /// The job's exit code (0 unless it exited with another).
        int32 exitCode;
        /// Wall time of the run, ms.
        uint64 runtimeMs;
        /// Fuel (wasm instructions) used, 0 when not metered.
        uint64 fuel;
        /// GPU time, ms.
        uint64 gpuTimeMs;
        /// GPU dispatches run.
        uint64 gpuDispatches;
        /// The last hash of the GPU dispatch chain, zero when none ran.
        bytes32 gpuHash;
    }
}

impl Order for Start {
    fn maker(&self) -> alloy_primitives::Address {
        self.host
    }
    const KIND: &'static str = "start";
}

impl Order for Log {
    fn maker(&self) -> alloy_primitives::Address {
        self.host
    }
    const KIND: &'static str = "log";
}

impl Order for Receipt {
    fn maker(&self) -> alloy_primitives::Address {
        self.host
    }
    const KIND: &'static str = "receipt";
}

impl Order for Release {
    fn maker(&self) -> alloy_primitives::Address {
        self.host
    }
    const KIND: &'static str = "release";
}

impl Receipt {
    /// What replicas must agree on: the output, how the run ended and its
    /// exit code (resources used differ from host to host).
    pub fn verdict(&self) -> (alloy_primitives::B256, &str, i32) {
        (self.output, self.status.as_str(), self.exitCode)
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::B256;
    use alloy_signer_local::PrivateKeySigner;

    use super::*;
    use crate::orders::{Signed, domain};

    #[test]
    fn receipts_are_signed_by_their_host_and_bound_to_the_domain() {
        let key = PrivateKeySigner::random();
        let r = Receipt {
            host: key.address(),
            deal: B256::repeat_byte(7),
            output: B256::repeat_byte(9),
            status: "exited".into(),
            exitCode: 0,
            runtimeMs: 12,
            fuel: 0,
            gpuTimeMs: 0,
            gpuDispatches: 0,
            gpuHash: B256::ZERO,
        };
        let signed = Signed::sign(r, &key, &domain(1)).unwrap();
        signed.verify(&domain(1)).unwrap();
        let e = signed.verify(&domain(2)).unwrap_err().to_string();
        assert!(e.contains("signed by"), "{e}");
        let mut forged = signed;
        forged.order.output = B256::repeat_byte(1);
        assert!(forged.verify(&domain(1)).is_err());
    }
}
