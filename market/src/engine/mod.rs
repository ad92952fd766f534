//! The matching engine: a continuous double auction per resource class with
//! price-time priority, pure and deterministic.
//!
//! [`Engine::apply`] takes the commands of the market's journal in order, each
//! with the time it was accepted, and returns what happened. The same log
//! always gives the same events and the same book, so a restarted market
//! rebuilds its state by replaying its journal.
//!
//! Rules:
//! - a bid takes the cheapest compatible offers first (ties by arrival), one
//!   slot per replica, each replica on a distinct host, at the **offer's**
//!   price, as long as the ask is at most the bid's maximum;
//! - an offer that arrives serves waiting bids by priority (highest maximum
//!   first, ties by arrival), one slot each, again at its own price;
//! - offer slots fill partially; what is left of either order rests;
//! - no host serves its own bid; allow and deny lists are honoured;
//! - offers lapse at their expiry, bids at their deadline or after waiting
//!   for the queue timeout; makers may cancel what is left.

mod data;
mod explain;
mod ids;
mod timers;
mod types;

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;

use alloy_primitives::Address;
use alloy_primitives::map::HashMap;

pub use data::{BASE_INTERVAL, Candle, ClassData, Level};
pub use explain::{Explanation, Mismatch, OfferView, mismatches};
pub use types::{
    Bid, Capabilities, Command, Deal, DealId, Event, Offer, OrderId, Price, Reject, Requirements,
    Side, Time,
};

use ids::Ids;
use timers::Timers;

/// A class's open orders: offers with free slots, bids with waiting replicas.
pub type BookView = (Vec<(Offer, u32)>, Vec<(Bid, u32)>);

/// Engine settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// How long a bid may wait in the book before it lapses, in ms.
    pub queue_timeout: Time,
    /// Order ids the engine expects to remember at once (it remembers each
    /// until its order's expiry or deadline, to refuse duplicates); space for
    /// them is reserved up front.
    pub expected_orders: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            queue_timeout: 10 * 60 * 1000,
            expected_orders: 0,
        }
    }
}

#[derive(Debug, Clone)]
struct OfferEntry {
    offer: Offer,
    free: u32,
}

/// The hosts of a bid's matched replicas: the first few inline, so that
/// matching a bid does not allocate.
#[derive(Debug, Clone, Default)]
struct Hosts {
    inline: [Address; 4],
    len: usize,
    /// All of them, once there are more than fit inline.
    spilled: Vec<Address>,
}

impl Hosts {
    fn as_slice(&self) -> &[Address] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }

    fn push(&mut self, host: Address) {
        if self.spilled.is_empty() {
            if let Some(free) = self.inline.get_mut(self.len) {
                *free = host;
                self.len += 1;
                return;
            }
            self.spilled.extend_from_slice(&self.inline);
        }
        self.spilled.push(host);
        self.len += 1;
    }
}

#[derive(Debug, Clone)]
struct BidEntry {
    bid: Bid,
    /// Replicas matched so far, and on which hosts.
    hosts: Hosts,
}

impl BidEntry {
    fn waiting(&self) -> u32 {
        self.bid.replicas - self.hosts.len as u32
    }
}

type OfferKey = (Price, u64);
type BidKey = (Reverse<Price>, u64);

/// An open order, where it rests, and what is left of it.
#[derive(Debug, Clone)]
enum Open {
    Offer {
        class: u32,
        key: OfferKey,
        entry: OfferEntry,
    },
    Bid {
        class: u32,
        key: BidKey,
        entry: BidEntry,
    },
}

impl Open {
    fn id(&self) -> &OrderId {
        match self {
            Self::Offer { entry, .. } => &entry.offer.id,
            Self::Bid { entry, .. } => &entry.bid.id,
        }
    }
}

/// Open orders in numbered slots; a closed order's slot is reused.
#[derive(Debug, Default, Clone)]
struct Slots {
    items: Vec<Option<Open>>,
    free: Vec<u32>,
}

impl Slots {
    /// An empty slot, held until it is filled or released.
    fn reserve(&mut self) -> u32 {
        self.free.pop().unwrap_or_else(|| {
            self.items.push(None);
            (self.items.len() - 1) as u32
        })
    }

    /// Empties a held slot (filled or not) for reuse.
    fn release(&mut self, slot: u32) -> Option<Open> {
        self.free.push(slot);
        self.items[slot as usize].take()
    }

    /// The open order `id` if `slot` holds it.
    fn get(&self, slot: u32, id: &OrderId) -> Option<&Open> {
        self.items
            .get(slot as usize)?
            .as_ref()
            .filter(|o| o.id() == id)
    }

    fn offer(&self, slot: u32) -> &OfferEntry {
        match &self.items[slot as usize] {
            Some(Open::Offer { entry, .. }) => entry,
            _ => unreachable!("a book's offer slot holds an offer"),
        }
    }

    fn offer_mut(&mut self, slot: u32) -> &mut OfferEntry {
        match &mut self.items[slot as usize] {
            Some(Open::Offer { entry, .. }) => entry,
            _ => unreachable!("a book's offer slot holds an offer"),
        }
    }

    fn bid(&self, slot: u32) -> &BidEntry {
        match &self.items[slot as usize] {
            Some(Open::Bid { entry, .. }) => entry,
            _ => unreachable!("a book's bid slot holds a bid"),
        }
    }

    fn bid_mut(&mut self, slot: u32) -> &mut BidEntry {
        match &mut self.items[slot as usize] {
            Some(Open::Bid { entry, .. }) => entry,
            _ => unreachable!("a book's bid slot holds a bid"),
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Book {
    /// The class name, shared by the deals made in it.
    name: Arc<str>,
    /// Offers cheapest first, ties by arrival: their slots.
    offers: BTreeMap<OfferKey, u32>,
    /// Bids highest first, ties by arrival: their slots.
    bids: BTreeMap<BidKey, u32>,
    data: ClassData,
}

/// The order books of every class.
///
/// Inside, classes are numbers and open orders live in numbered slots, so
/// that matching, filling and lapsing touch no hash map; only placing an
/// order (is its id new?), cancelling and forgetting look an id up.
#[derive(Debug, Default, Clone)]
pub struct Engine {
    config: EngineConfig,
    /// Class name → index into `books`.
    classes: HashMap<String, u32>,
    books: Vec<Book>,
    /// Every order id remembered (so duplicates are refused), by number.
    ids: Ids,
    /// Number of a remembered id → the slot its order was given; the order
    /// is open while that slot holds it.
    slot_of: Vec<u32>,
    open: Slots,
    /// When resting orders lapse (with their slots), soonest first, ties by
    /// id; entries of orders that closed earlier are skipped when they come up.
    lapses: Timers<(OrderId, u32)>,
    /// When ids may be forgotten: past its expiry or deadline an order would
    /// be refused as expired anyway, so remembering it no longer matters.
    forget: Timers<(OrderId, u32)>,
    seq: u64,
    /// Scratch space for the orders a command fills, kept for its allocation.
    filled_offers: Vec<OfferKey>,
    filled_bids: Vec<BidKey>,
}

impl Engine {
    /// The index of a class's book, made on first use.
    fn class(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.classes.get(name) {
            return i;
        }
        self.books.push(Book {
            name: Arc::from(name),
            ..Book::default()
        });
        let i = (self.books.len() - 1) as u32;
        self.classes.insert(name.to_string(), i);
        i
    }

    fn book_of(&self, name: &str) -> Option<&Book> {
        self.classes.get(name).map(|&i| &self.books[i as usize])
    }

    /// The slot of an open order.
    fn find(&self, id: &OrderId) -> Option<(u32, &Open)> {
        let slot = self.slot_of[self.ids.get(id)? as usize];
        self.open.get(slot, id).map(|o| (slot, o))
    }

    /// An empty market.
    pub fn new(config: EngineConfig) -> Self {
        Self {
            ids: Ids::with_capacity(config.expected_orders),
            config,
            ..Self::default()
        }
    }

    /// Applies one command accepted at `now`; returns what happened, in order.
    pub fn apply(&mut self, cmd: Command, now: Time) -> Vec<Event> {
        let mut events = Vec::new();
        self.apply_into(cmd, now, &mut events);
        events
    }

    /// [`Engine::apply`], appending to `events` (so a caller can reuse one buffer).
    pub fn apply_into(&mut self, cmd: Command, now: Time, events: &mut Vec<Event>) {
        self.expire(now, events);
        match cmd {
            Command::Offer(offer) => self.place_offer(offer, now, events),
            Command::Bid(bid) => self.place_bid(bid, now, events),
            Command::Cancel { id, by } => self.cancel(id, by, events),
            Command::Tick => {}
        }
    }

    /// Remembers a new order's id; returns the slot it may rest in.
    fn admit(
        &mut self,
        id: OrderId,
        lapses: Time,
        empty: Option<Reject>,
        now: Time,
    ) -> Result<u32, Reject> {
        if self.ids.get(&id).is_some() {
            return Err(Reject::Duplicate);
        }
        if lapses <= now {
            return Err(Reject::Expired);
        }
        if let Some(reject) = empty {
            return Err(reject);
        }
        let slot = self.open.reserve();
        let n = self.ids.insert_new(id) as usize;
        if n == self.slot_of.len() {
            self.slot_of.push(slot);
        } else {
            self.slot_of[n] = slot;
        }
        self.forget.push(lapses, (id, n as u32));
        Ok(slot)
    }

    fn place_offer(&mut self, offer: Offer, now: Time, events: &mut Vec<Event>) {
        let empty = (offer.slots == 0).then_some(Reject::NoSlots);
        let slot = match self.admit(offer.id, offer.expiry, empty, now) {
            Ok(slot) => slot,
            Err(reason) => {
                events.push(Event::Rejected {
                    id: offer.id,
                    reason,
                });
                return;
            }
        };
        let class = self.class(&offer.class);
        let book = &mut self.books[class as usize];
        let mut free = offer.slots;
        let mut filled = std::mem::take(&mut self.filled_bids);
        // Waiting bids by priority; each takes at most one slot of this offer.
        for (key, &at) in &book.bids {
            if free == 0 || key.0.0 < offer.price {
                break;
            }
            let entry = self.open.bid_mut(at);
            if !serves(&offer, entry) {
                continue;
            }
            events.push(Event::Deal(deal(
                &book.name,
                &mut book.data,
                entry,
                &offer,
                now,
            )));
            free -= 1;
            if entry.waiting() == 0 {
                filled.push(*key);
            }
        }
        for key in filled.drain(..) {
            if let Some(at) = book.bids.remove(&key)
                && let Some(Open::Bid { entry, .. }) = self.open.release(at)
            {
                events.push(Event::Filled { id: entry.bid.id });
            }
        }
        self.filled_bids = filled;
        if free == 0 {
            self.open.release(slot);
            return;
        }
        self.seq += 1;
        let key = (offer.price, self.seq);
        self.lapses.push(offer.expiry, (offer.id, slot));
        events.push(Event::Rested {
            id: offer.id,
            side: Side::Offer,
        });
        book.offers.insert(key, slot);
        self.open.items[slot as usize] = Some(Open::Offer {
            class,
            key,
            entry: OfferEntry { offer, free },
        });
    }

    fn place_bid(&mut self, bid: Bid, now: Time, events: &mut Vec<Event>) {
        let empty = (bid.replicas == 0).then_some(Reject::NoReplicas);
        let slot = match self.admit(bid.id, bid.deadline, empty, now) {
            Ok(slot) => slot,
            Err(reason) => {
                events.push(Event::Rejected { id: bid.id, reason });
                return;
            }
        };
        let class = self.class(&bid.class);
        let book = &mut self.books[class as usize];
        let lapses = bid
            .deadline
            .min(now.saturating_add(self.config.queue_timeout));
        let mut entry = BidEntry {
            bid,
            hosts: Hosts::default(),
        };
        let mut emptied = std::mem::take(&mut self.filled_offers);
        // The cheapest compatible offers, one slot each, on distinct hosts.
        for (key, &at) in &book.offers {
            if entry.waiting() == 0 || key.0 > entry.bid.max_price {
                break;
            }
            let offer = self.open.offer_mut(at);
            if !serves(&offer.offer, &entry) {
                continue;
            }
            events.push(Event::Deal(deal(
                &book.name,
                &mut book.data,
                &mut entry,
                &offer.offer,
                now,
            )));
            offer.free -= 1;
            if offer.free == 0 {
                emptied.push(*key);
            }
        }
        for key in emptied.drain(..) {
            if let Some(at) = book.offers.remove(&key) {
                self.open.release(at);
            }
        }
        self.filled_offers = emptied;
        if entry.waiting() == 0 {
            events.push(Event::Filled { id: entry.bid.id });
            self.open.release(slot);
            return;
        }
        self.seq += 1;
        let key = (Reverse(entry.bid.max_price), self.seq);
        self.lapses.push(lapses, (entry.bid.id, slot));
        events.push(Event::Rested {
            id: entry.bid.id,
            side: Side::Bid,
        });
        book.bids.insert(key, slot);
        self.open.items[slot as usize] = Some(Open::Bid { class, key, entry });
    }

    fn cancel(&mut self, id: OrderId, by: Address, events: &mut Vec<Event>) {
        let found = self.find(&id).map(|(slot, open)| {
            let maker = match open {
                Open::Offer { entry, .. } => entry.offer.host,
                Open::Bid { entry, .. } => entry.bid.owner,
            };
            (slot, maker)
        });
        match found {
            None => events.push(Event::Rejected {
                id,
                reason: Reject::UnknownOrder,
            }),
            Some((_, maker)) if maker != by => events.push(Event::Rejected {
                id,
                reason: Reject::NotMaker,
            }),
            Some((slot, _)) => {
                self.close(slot);
                events.push(Event::Cancelled { id });
            }
        }
    }

    /// Takes the open order in `slot` out of its book; returns its side.
    fn close(&mut self, slot: u32) -> Option<Side> {
        match self.open.release(slot)? {
            Open::Offer { class, key, .. } => {
                self.books[class as usize].offers.remove(&key);
                Some(Side::Offer)
            }
            Open::Bid { class, key, .. } => {
                self.books[class as usize].bids.remove(&key);
                Some(Side::Bid)
            }
        }
    }

    fn expire(&mut self, now: Time, events: &mut Vec<Event>) {
        while let Some((_, (id, slot))) = self.lapses.pop_due(now) {
            if self.open.get(slot, &id).is_some()
                && let Some(side) = self.close(slot)
            {
                events.push(Event::Expired { id, side });
            }
        }
        // After the lapses above, an order past its own expiry or deadline is closed.
        // (A bid lapses at its deadline or earlier, an offer at its expiry.)
        while let Some((_, (id, n))) = self.forget.pop_due(now) {
            debug_assert!(
                self.open.get(self.slot_of[n as usize], &id).is_none(),
                "an order is closed by its expiry or deadline"
            );
            self.ids.remove(&id, n);
        }
    }

    /// How many order ids the engine remembers (open ones, and closed ones
    /// whose expiry or deadline has not passed yet).
    pub fn remembered(&self) -> usize {
        self.ids.len()
    }

    /// The open orders of a class: offers cheapest first with their free
    /// slots, bids highest first with their waiting replicas.
    pub fn book(&self, class: &str) -> BookView {
        let Some(book) = self.book_of(class) else {
            return (Vec::new(), Vec::new());
        };
        (
            book.offers
                .values()
                .map(|&at| {
                    let o = self.open.offer(at);
                    (o.offer.clone(), o.free)
                })
                .collect(),
            book.bids
                .values()
                .map(|&at| {
                    let b = self.open.bid(at);
                    (b.bid.clone(), b.waiting())
                })
                .collect(),
        )
    }

    /// An open order's side and what is left of it (free slots of an offer,
    /// waiting replicas of a bid); `None` when the order is not open.
    pub fn open_order(&self, id: &OrderId) -> Option<(Side, u32)> {
        Some(match self.find(id)?.1 {
            Open::Offer { entry, .. } => (Side::Offer, entry.free),
            Open::Bid { entry, .. } => (Side::Bid, entry.waiting()),
        })
    }

    /// The classes with a book.
    pub fn classes(&self) -> Vec<&str> {
        let mut c: Vec<&str> = self.classes.keys().map(String::as_str).collect();
        c.sort_unstable();
        c
    }

    /// Market data of a class.
    pub fn data(&self, class: &str) -> Option<&ClassData> {
        self.book_of(class).map(|b| &b.data)
    }

    /// Best ask and best bid of a class.
    pub fn best(&self, class: &str) -> (Option<Price>, Option<Price>) {
        self.book_of(class).map_or((None, None), |b| {
            (
                b.offers.keys().next().map(|k| k.0),
                b.bids.keys().next().map(|k| k.0.0),
            )
        })
    }

    /// Depth of a class: asks cheapest first (price, free slots), bids highest
    /// first (price, waiting replicas), aggregated by price.
    pub fn depth(&self, class: &str) -> (Vec<Level>, Vec<Level>) {
        let Some(book) = self.book_of(class) else {
            return (Vec::new(), Vec::new());
        };
        (
            data::levels(
                book.offers
                    .iter()
                    .map(|(k, &at)| (k.0, self.open.offer(at).free)),
            ),
            data::levels(
                book.bids
                    .iter()
                    .map(|(k, &at)| (k.0.0, self.open.bid(at).waiting())),
            ),
        )
    }

    /// Why an open bid waits and what would make it match; `None` when the
    /// bid is not open.
    pub fn explain(&self, id: &OrderId) -> Option<Explanation> {
        let (
            _,
            Open::Bid {
                class, entry: bid, ..
            },
        ) = self.find(id)?
        else {
            return None;
        };
        let book = &self.books[*class as usize];
        Some(data::explain(
            bid.bid.clone(),
            bid.hosts.as_slice(),
            bid.waiting(),
            book.offers.values().map(|&at| {
                let o = self.open.offer(at);
                (&o.offer, o.free)
            }),
        ))
    }
}

/// Whether an offer can serve one more replica of a bid (price aside).
fn serves(offer: &Offer, entry: &BidEntry) -> bool {
    explain::meets(&offer.caps, &entry.bid.req)
        && explain::admits(&offer.host, &entry.bid.owner, &entry.bid.req)
        && !entry.hosts.as_slice().contains(&offer.host)
}

fn deal(
    class: &Arc<str>,
    data: &mut ClassData,
    entry: &mut BidEntry,
    offer: &Offer,
    now: Time,
) -> Deal {
    let replica = entry.hosts.len as u32;
    entry.hosts.push(offer.host);
    let d = Deal {
        id: Deal::id_for(&entry.bid.id, &offer.id, replica),
        bid: entry.bid.id,
        offer: offer.id,
        owner: entry.bid.owner,
        host: offer.host,
        class: class.clone(),
        price: offer.price,
        seconds: entry.bid.max_seconds,
        replica,
        time: now,
    };
    data.record(&d);
    d
}

#[cfg(test)]
mod tests;
