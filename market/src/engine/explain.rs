//! Which offers a bid can take, and, for a bid that waits, why not.

use alloy_primitives::Address;
use serde::{Deserialize, Serialize};

use super::types::{Bid, Capabilities, Offer, OrderId, Price, Requirements};

/// One reason an offer cannot serve a bid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Mismatch {
    /// The ask is above the bid's maximum.
    Price {
        /// The offer's price.
        ask: Price,
        /// The bid's maximum.
        max: Price,
    },
    /// The bid needs a GPU; the host has none.
    NoGpu,
    /// Not enough GPU memory.
    Vram {
        /// The host's.
        have: u64,
        /// The bid's minimum.
        need: u64,
    },
    /// A wasi-nn encoding the host does not serve.
    Encoding {
        /// The encoding.
        missing: String,
    },
    /// A wgpu feature the host's adapter lacks.
    WgpuFeature {
        /// The feature.
        missing: String,
    },
    /// Too few CPU cores.
    Cores {
        /// The host's.
        have: u32,
        /// The bid's minimum.
        need: u32,
    },
    /// Too little memory.
    Memory {
        /// The host's.
        have: u64,
        /// The bid's minimum.
        need: u64,
    },
    /// A benchmark score below the bid's minimum.
    Score {
        /// The host's.
        have: u64,
        /// The bid's minimum.
        need: u64,
    },
    /// The bid allows only other hosts.
    NotAllowed,
    /// The bid denies this host.
    Denied,
    /// The host is the bid's owner (no self-match).
    OwnHost,
    /// The host already runs a replica of this bid (replicas need distinct hosts).
    HostAlreadyUsed,
}

/// Whether a host with `caps` meets `req` (everything but price and identity).
pub(crate) fn meets(caps: &Capabilities, req: &Requirements) -> bool {
    (!req.gpu || caps.gpu_model.is_some())
        && caps.vram >= req.min_vram
        && caps.cores >= req.cores
        && caps.memory >= req.memory
        && caps.score >= req.min_score
        && req.encodings.iter().all(|e| caps.encodings.contains(e))
        && req
            .wgpu_features
            .iter()
            .all(|f| caps.wgpu_features.contains(f))
}

/// Whether `host` may serve a bid of `owner` with `req` (allow/deny lists, no self-match).
pub(crate) fn admits(host: &Address, owner: &Address, req: &Requirements) -> bool {
    host != owner && !req.deny.contains(host) && (req.allow.is_empty() || req.allow.contains(host))
}

/// Every reason `offer` cannot serve `bid`; empty when it can.
pub fn mismatches(offer: &Offer, bid: &Bid) -> Vec<Mismatch> {
    let (caps, req) = (&offer.caps, &bid.req);
    let mut out = Vec::new();
    if offer.price > bid.max_price {
        out.push(Mismatch::Price {
            ask: offer.price,
            max: bid.max_price,
        });
    }
    if req.gpu && caps.gpu_model.is_none() {
        out.push(Mismatch::NoGpu);
    }
    if caps.vram < req.min_vram {
        out.push(Mismatch::Vram {
            have: caps.vram,
            need: req.min_vram,
        });
    }
    for e in req.encodings.iter().filter(|e| !caps.encodings.contains(e)) {
        out.push(Mismatch::Encoding { missing: e.clone() });
    }
    for f in req
        .wgpu_features
        .iter()
        .filter(|f| !caps.wgpu_features.contains(f))
    {
        out.push(Mismatch::WgpuFeature { missing: f.clone() });
    }
    if caps.cores < req.cores {
        out.push(Mismatch::Cores {
            have: caps.cores,
            need: req.cores,
        });
    }
    if caps.memory < req.memory {
        out.push(Mismatch::Memory {
            have: caps.memory,
            need: req.memory,
        });
    }
    if caps.score < req.min_score {
        out.push(Mismatch::Score {
            have: caps.score,
            need: req.min_score,
        });
    }
    if offer.host == bid.owner {
        out.push(Mismatch::OwnHost);
    } else if req.deny.contains(&offer.host) {
        out.push(Mismatch::Denied);
    } else if !req.allow.is_empty() && !req.allow.contains(&offer.host) {
        out.push(Mismatch::NotAllowed);
    }
    out
}

/// An offer as the explainer shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferView {
    /// The offer.
    pub id: OrderId,
    /// Its host.
    pub host: Address,
    /// Its price.
    pub price: Price,
    /// Its free slots.
    pub slots: u32,
}

/// Why a bid waits, and what would make it match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The bid.
    pub bid: OrderId,
    /// Replicas still unmatched.
    pub waiting_replicas: u32,
    /// Offers in the bid's class the bid can take now.
    pub matching: Vec<OfferView>,
    /// Every other offer in the class, with the reasons it does not serve the bid.
    pub eliminated: Vec<(OfferView, Vec<Mismatch>)>,
    /// How many offers each reason eliminated, most common first.
    pub by_reason: Vec<(String, usize)>,
    /// The cheapest offers that meet every requirement but the price, nearest first.
    pub nearest: Vec<OfferView>,
    /// The lowest maximum price at which every waiting replica would match now
    /// on distinct hosts; `None` when too few compatible hosts exist at any price.
    pub match_price: Option<Price>,
}

/// The name of a reason, for [`Explanation::by_reason`].
pub(crate) fn reason_name(m: &Mismatch) -> &'static str {
    match m {
        Mismatch::Price { .. } => "price above the bid's maximum",
        Mismatch::NoGpu => "no GPU",
        Mismatch::Vram { .. } => "not enough GPU memory",
        Mismatch::Encoding { .. } => "missing wasi-nn encoding",
        Mismatch::WgpuFeature { .. } => "missing wgpu feature",
        Mismatch::Cores { .. } => "too few CPU cores",
        Mismatch::Memory { .. } => "too little memory",
        Mismatch::Score { .. } => "benchmark score too low",
        Mismatch::NotAllowed => "host not on the bid's allow list",
        Mismatch::Denied => "host on the bid's deny list",
        Mismatch::OwnHost => "the bid's own host",
        Mismatch::HostAlreadyUsed => "host already runs a replica of the bid",
    }
}
