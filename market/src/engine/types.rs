//! What the engine trades: offers (hosts' asks), bids (job orders), deals, and
//! the commands and events of its log.

use std::sync::Arc;

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A price: NMT base units per second of a slot.
pub type Price = u128;

/// A time: milliseconds since the Unix epoch, as carried by each command.
pub type Time = u64;

/// An order's id: the hash of the signed order.
pub type OrderId = B256;

/// A deal's id: `sha256(bid id ‖ offer id ‖ replica index)`, so the same match
/// always has the same id, whoever computes it.
pub type DealId = B256;

/// What a host offers in one slot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// GPU model, `None` for a CPU-only host.
    pub gpu_model: Option<String>,
    /// GPU memory in bytes.
    pub vram: u64,
    /// wgpu features the adapter has.
    pub wgpu_features: Vec<String>,
    /// wasi-nn encodings the host serves, e.g. `onnx`.
    pub encodings: Vec<String>,
    /// CPU cores per slot.
    pub cores: u32,
    /// Memory per slot in bytes.
    pub memory: u64,
    /// The host's measured benchmark score.
    pub score: u64,
}

/// What a job needs of a host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    /// Needs a GPU.
    pub gpu: bool,
    /// Minimum GPU memory in bytes.
    pub min_vram: u64,
    /// wasi-nn encodings it uses.
    pub encodings: Vec<String>,
    /// wgpu features it uses.
    pub wgpu_features: Vec<String>,
    /// Minimum CPU cores.
    pub cores: u32,
    /// Minimum memory in bytes.
    pub memory: u64,
    /// Minimum benchmark score.
    pub min_score: u64,
    /// Only these hosts, when not empty.
    pub allow: Vec<Address>,
    /// Never these hosts.
    pub deny: Vec<Address>,
}

/// A host's ask: `slots` identical slots at `price` per second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The order id.
    pub id: OrderId,
    /// The host's address.
    pub host: Address,
    /// The resource class it trades in, e.g. `gpu-24g`.
    pub class: String,
    /// What one slot offers.
    pub caps: Capabilities,
    /// Asking price per second.
    pub price: Price,
    /// Jobs it takes at once.
    pub slots: u32,
    /// When it lapses.
    pub expiry: Time,
}

/// A job owner's bid: `replicas` slots on distinct hosts at most `max_price` per second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bid {
    /// The order id.
    pub id: OrderId,
    /// The owner's address.
    pub owner: Address,
    /// The resource class it trades in.
    pub class: String,
    /// What each host must have.
    pub req: Requirements,
    /// The most it pays per second.
    pub max_price: Price,
    /// The longest the job may run, in seconds.
    pub max_seconds: u64,
    /// Hosts that run it (distinct), for replicated verification.
    pub replicas: u32,
    /// When it lapses, matched or not.
    pub deadline: Time,
}

/// One entry of the engine's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A host posts an offer.
    Offer(Offer),
    /// An owner posts a bid.
    Bid(Bid),
    /// The maker of an order withdraws what is left of it.
    Cancel {
        /// The order.
        id: OrderId,
        /// Who asks; must be the order's maker.
        by: Address,
    },
    /// Time passes (expiries and queue timeouts are applied).
    Tick,
}

/// A match: one slot of an offer for one replica of a bid, at the offer's price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deal {
    /// `sha256(bid ‖ offer ‖ replica)`.
    pub id: DealId,
    /// The bid.
    pub bid: OrderId,
    /// The offer.
    pub offer: OrderId,
    /// The job owner.
    pub owner: Address,
    /// The host.
    pub host: Address,
    /// The class.
    pub class: Arc<str>,
    /// Price per second (the offer's).
    pub price: Price,
    /// The bid's maximum run time.
    pub seconds: u64,
    /// Which replica of the bid (0-based).
    pub replica: u32,
    /// When it was made.
    pub time: Time,
}

impl Deal {
    /// The deterministic id of a match.
    pub fn id_for(bid: &OrderId, offer: &OrderId, replica: u32) -> DealId {
        let mut h = Sha256::new();
        h.update(bid);
        h.update(offer);
        h.update(replica.to_be_bytes());
        B256::from(<[u8; 32]>::from(h.finalize()))
    }
}

/// Which side of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// Offers (asks).
    Offer,
    /// Bids.
    Bid,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Reject {
    /// An order with this id was seen before.
    #[error("an order with this id was already placed")]
    Duplicate,
    /// The order lapsed before it arrived.
    #[error("the order's expiry or deadline has already passed")]
    Expired,
    /// An offer with no slots.
    #[error("an offer must have at least one slot")]
    NoSlots,
    /// A bid for no replicas.
    #[error("a bid must ask for at least one replica")]
    NoReplicas,
    /// A cancel for an order the book does not hold.
    #[error("no open order has this id")]
    UnknownOrder,
    /// A cancel by someone other than the maker.
    #[error("only the order's maker may cancel it")]
    NotMaker,
}

/// What the engine did with a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The order's remainder rests in the book.
    Rested {
        /// The order.
        id: OrderId,
        /// Its side.
        side: Side,
    },
    /// A match.
    Deal(Deal),
    /// Every replica of the bid is matched.
    Filled {
        /// The bid.
        id: OrderId,
    },
    /// Withdrawn by its maker.
    Cancelled {
        /// The order.
        id: OrderId,
    },
    /// Lapsed: an offer past its expiry, a bid past its deadline or its queue timeout.
    Expired {
        /// The order.
        id: OrderId,
        /// Its side.
        side: Side,
    },
    /// Refused.
    Rejected {
        /// The order (or the cancel's target).
        id: OrderId,
        /// Why.
        reason: Reject,
    },
}
