//! Market data (last price, volume, candles, depth) and the explainer.

use std::collections::BTreeMap;

use alloy_primitives::Address;
use serde::{Deserialize, Serialize};

use super::explain::{self, Explanation, OfferView, reason_name};
use super::types::{Bid, Deal, Offer, Price, Time};

/// A price level of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// The price.
    pub price: Price,
    /// Free slots (asks) or waiting replicas (bids) at it.
    pub quantity: u64,
}

/// One interval of trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    /// Start of the interval.
    pub start: Time,
    /// First price.
    pub open: Price,
    /// Highest price.
    pub high: Price,
    /// Lowest price.
    pub low: Price,
    /// Last price.
    pub close: Price,
    /// Deals in the interval.
    pub deals: u64,
}

/// What traded in a class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassData {
    /// Price of the last deal.
    pub last_price: Option<Price>,
    /// Deals so far.
    pub deals: u64,
    /// Sum of price × seconds over the deals (NMT base units, at most).
    pub notional: u128,
    /// One candle per second with deals, in order: what longer candles are built from.
    seconds: Vec<Candle>,
}

/// The finest candle interval, in ms.
pub const BASE_INTERVAL: Time = 1000;

impl ClassData {
    pub(crate) fn record(&mut self, d: &Deal) {
        self.last_price = Some(d.price);
        self.deals += 1;
        self.notional = self
            .notional
            .saturating_add(d.price.saturating_mul(u128::from(d.seconds)));
        merge(
            &mut self.seconds,
            d.time - d.time % BASE_INTERVAL,
            &Candle {
                start: 0,
                open: d.price,
                high: d.price,
                low: d.price,
                close: d.price,
                deals: 1,
            },
        );
    }

    /// Candles of `interval` ms (rounded up to whole seconds) covering
    /// `[from, to)`; intervals without deals are left out.
    pub fn candles(&self, interval: Time, from: Time, to: Time) -> Vec<Candle> {
        let interval = interval
            .max(BASE_INTERVAL)
            .checked_next_multiple_of(BASE_INTERVAL)
            .unwrap_or(u64::MAX - u64::MAX % BASE_INTERVAL);
        let mut out: Vec<Candle> = Vec::new();
        for c in self
            .seconds
            .iter()
            .filter(|c| c.start >= from && c.start < to)
        {
            merge(&mut out, c.start - c.start % interval, c);
        }
        out
    }
}

/// Adds candle `c` (later than everything in `out`) to the candle starting at `start`.
fn merge(out: &mut Vec<Candle>, start: Time, c: &Candle) {
    match out.last_mut() {
        Some(last) if last.start == start => {
            last.high = last.high.max(c.high);
            last.low = last.low.min(c.low);
            last.close = c.close;
            last.deals += c.deals;
        }
        _ => out.push(Candle { start, ..*c }),
    }
}

/// Aggregates (price, quantity) pairs, kept in their order, by price.
pub(crate) fn levels(items: impl Iterator<Item = (Price, u32)>) -> Vec<Level> {
    let mut out: Vec<Level> = Vec::new();
    for (price, q) in items {
        match out.last_mut() {
            Some(l) if l.price == price => l.quantity += u64::from(q),
            _ => out.push(Level {
                price,
                quantity: u64::from(q),
            }),
        }
    }
    out
}

/// Explains a waiting bid against the offers of its class (cheapest first).
pub(crate) fn explain<'a>(
    bid: Bid,
    used: &[Address],
    waiting: u32,
    offers: impl Iterator<Item = (&'a Offer, u32)>,
) -> Explanation {
    let view = |o: &Offer, free: u32| OfferView {
        id: o.id,
        host: o.host,
        price: o.price,
        slots: free,
    };
    let mut matching = Vec::new();
    let mut eliminated = Vec::new();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut nearest = Vec::new();
    // Cheapest compatible price per host not yet used by the bid.
    let mut per_host: BTreeMap<Address, Price> = BTreeMap::new();
    for (offer, free) in offers {
        let mut reasons = explain::mismatches(offer, &bid);
        if used.contains(&offer.host) {
            reasons.push(explain::Mismatch::HostAlreadyUsed);
        }
        let priced_out = reasons
            .iter()
            .all(|m| matches!(m, explain::Mismatch::Price { .. }));
        if !used.contains(&offer.host) && priced_out {
            per_host
                .entry(offer.host)
                .and_modify(|p| *p = (*p).min(offer.price))
                .or_insert(offer.price);
        }
        if reasons.is_empty() {
            matching.push(view(offer, free));
            continue;
        }
        for r in &reasons {
            *counts.entry(reason_name(r)).or_default() += 1;
        }
        if priced_out {
            nearest.push(view(offer, free));
        }
        eliminated.push((view(offer, free), reasons));
    }
    nearest.truncate(5);
    let mut prices: Vec<Price> = per_host.into_values().collect();
    prices.sort_unstable();
    let match_price = waiting
        .checked_sub(1)
        .and_then(|i| prices.get(i as usize))
        .copied();
    let mut by_reason: Vec<(String, usize)> = counts
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    by_reason.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Explanation {
        bid: bid.id,
        waiting_replicas: waiting,
        matching,
        eliminated,
        by_reason,
        nearest,
        match_price,
    }
}
