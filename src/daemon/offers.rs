//! The host's offers: one per class for its free slots, kept standing.
//!
//! Offers are short-lived (`offer-ttl`) and renewed (withdrawn and posted
//! again) at half their TTL, so a host that goes away stops being matched
//! within one TTL. Between renewals they are kept in step with the free
//! slots without a round trip per job: the daemon counts the deals taken
//! from each standing offer (the trades on its event stream, and the deals
//! an offer made as it was placed), and when slots free up it posts one more
//! offer for just those slots, leaving the others standing. Only a class
//! that offers more than is free (a slot taken through another class's
//! offer, or the owner needs the machine) has its offers withdrawn and
//! posted again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{B256, U256};
use netmind_protocol::orders::{Cancel, Offer, Signed};
use serde_json::Value;
use tokio::time::Instant;

use super::{Daemon, caps};
use crate::offer::{ms_from_now, nonce};

/// The offers this host has standing, and the deals taken from them.
#[derive(Debug, Default)]
pub(crate) struct Standing {
    offers: HashMap<B256, StandingOffer>,
    /// Deals seen for an offer before its placement was answered.
    early: HashMap<B256, HashSet<B256>>,
}

#[derive(Debug)]
struct StandingOffer {
    class: String,
    slots: u32,
    taken: HashSet<B256>,
}

impl Standing {
    /// Records an offer as placed, with the deals it made at once.
    pub(crate) fn placed(
        &mut self,
        id: B256,
        class: &str,
        slots: u32,
        deals: impl IntoIterator<Item = B256>,
    ) {
        let mut taken: HashSet<B256> = self.early.remove(&id).unwrap_or_default();
        taken.extend(deals);
        if (taken.len() as u32) < slots {
            self.offers.insert(
                id,
                StandingOffer {
                    class: class.to_owned(),
                    slots,
                    taken,
                },
            );
        }
    }

    /// A deal was taken from `offer` (counted once however often it is heard of).
    pub(crate) fn took(&mut self, offer: B256, deal: B256) {
        match self.offers.get_mut(&offer) {
            Some(o) => {
                o.taken.insert(deal);
                if o.taken.len() as u32 >= o.slots {
                    self.offers.remove(&offer);
                }
            }
            // Heard of before the placement was answered; bounded by the
            // renewals, which clear it.
            None if self.early.len() < 4096 => {
                self.early.entry(offer).or_default().insert(deal);
            }
            None => {}
        }
    }

    /// Slots open in `class` as far as this host knows.
    pub(crate) fn open(&self, class: &str) -> u32 {
        self.offers
            .values()
            .filter(|o| o.class == class)
            .map(|o| o.slots.saturating_sub(o.taken.len() as u32))
            .sum()
    }

    /// Forgets the offers of `class` (every class with `None`); returns their ids.
    fn take(&mut self, class: Option<&str>) -> Vec<B256> {
        let ids: Vec<B256> = self
            .offers
            .iter()
            .filter(|(_, o)| class.is_none_or(|c| o.class == c))
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            self.offers.remove(id);
        }
        if class.is_none() {
            self.early.clear();
        }
        ids
    }

    /// The ids of the offers standing.
    pub(crate) fn ids(&self) -> Vec<B256> {
        let mut ids: Vec<B256> = self.offers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }
}

/// What every offer of this host says about it.
pub(super) struct Terms {
    pub(super) price: U256,
    pub(super) slots: u32,
    pub(super) gpu: caps::GpuCaps,
    pub(super) ttl: Duration,
}

/// Keeps an offer in each class for the free slots (see the module docs):
/// renewed at half the TTL, topped up or replaced whenever a slot is taken
/// or freed.
pub(super) async fn keep_offering(d: Arc<Daemon>, terms: Terms) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let memory = crate::host::total_memory().unwrap_or(4 << 30);
    let encodings: Vec<String> =
        d.nn.encodings()
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect();
    let mut renew_at = Instant::now();
    loop {
        if Instant::now() >= renew_at {
            withdraw(&d, None).await;
            renew_at = Instant::now() + terms.ttl / 2;
        }
        let free = d.free_slots();
        let want = if d.yielding.load(std::sync::atomic::Ordering::Relaxed) {
            0
        } else {
            free
        };
        for class in &d.settings.classes {
            let mut open = d.standing().open(class);
            if open > want {
                withdraw(&d, Some(class)).await;
                open = 0;
            }
            if want <= open {
                continue;
            }
            let offer = Offer {
                host: d.signer.address(),
                class: class.clone(),
                gpuModel: terms.gpu.model.clone(),
                vram: terms.gpu.vram,
                wgpuFeatures: terms.gpu.features.clone(),
                encodings: encodings.clone(),
                cores: (cores / terms.slots).max(1),
                memoryBytes: memory / u64::from(terms.slots.max(1)),
                score: terms.gpu.score,
                price: terms.price,
                slots: want - open,
                // Every offer lapses by the next renewal's end at the latest.
                expiry: ms_from_now(terms.ttl),
                nonce: nonce(),
            };
            let slots = offer.slots;
            match Signed::sign(offer, &d.signer, &d.domain) {
                Ok(signed) => match d.client.post_offer(&signed).await {
                    Ok(placed) => record(&d, &placed, class, slots),
                    Err(e) => tracing::warn!(%e, "cannot post the offer; retrying"),
                },
                Err(e) => tracing::error!(%e, "cannot sign the offer"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep_until(renew_at) => {}
            () = d.freed.notified() => {}
        }
    }
}

/// Records a placed offer (the market's answer to `POST /v1/offers`).
fn record(d: &Daemon, placed: &Value, class: &str, slots: u32) {
    let Some(id) = placed["id"].as_str().and_then(|s| s.parse().ok()) else {
        return;
    };
    let deals = placed["deals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|deal| deal["id"].as_str()?.parse().ok());
    d.standing().placed(id, class, slots, deals);
}

/// Cancels the standing offers of `class` (every class with `None`);
/// filled or lapsed ones are fine.
pub(super) async fn withdraw(d: &Daemon, class: Option<&str>) {
    let standing = d.standing().take(class);
    for order in standing {
        let cancel = Cancel {
            maker: d.signer.address(),
            order,
            expiry: ms_from_now(Duration::from_secs(60)),
        };
        if let Ok(signed) = Signed::sign(cancel, &d.signer, &d.domain) {
            let _ = d.client.cancel(&signed).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> B256 {
        B256::repeat_byte(n)
    }

    #[test]
    fn standing_slots_count_each_deal_once_whenever_it_is_heard_of() {
        let mut s = Standing::default();
        // A deal heard of on the stream before the placement was answered.
        s.took(id(1), id(10));
        s.placed(id(1), "cpu", 4, [id(10), id(11)]);
        assert_eq!(s.open("cpu"), 2);
        s.took(id(1), id(11));
        s.took(id(1), id(12));
        assert_eq!(s.open("cpu"), 1);
        s.placed(id(2), "cpu", 2, []);
        s.placed(id(3), "gpu-8g", 1, []);
        assert_eq!((s.open("cpu"), s.open("gpu-8g")), (3, 1));
        // Filled offers are forgotten.
        s.took(id(1), id(13));
        assert_eq!(s.ids(), vec![id(2), id(3)]);
        // An offer filled as it was placed never stands.
        s.placed(id(4), "cpu", 1, [id(14)]);
        assert_eq!(s.open("cpu"), 2);
        assert_eq!(s.take(Some("cpu")), vec![id(2)]);
        assert_eq!((s.open("cpu"), s.open("gpu-8g")), (0, 1));
        assert_eq!(s.take(None), vec![id(3)]);
        assert!(s.early.is_empty());
    }
}
