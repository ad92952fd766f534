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
mod types;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

use alloy_primitives::Address;
use alloy_primitives::map::{B256Map, Entry};

pub use data::{BASE_INTERVAL, Candle, ClassData, Level};
pub use explain::{Explanation, Mismatch, OfferView, mismatches};
pub use types::{
    Bid, Capabilities, Command, Deal, DealId, Event, Offer, OrderId, Price, Reject, Requirements,
    Side, Time,
};

/// A class's open orders: offers with free slots, bids with waiting replicas.
pub type BookView = (Vec<(Offer, u32)>, Vec<(Bid, u32)>);

/// Engine settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// How long a bid may wait in the book before it lapses, in ms.
    pub queue_timeout: Time,
    /// Orders the engine expects to see (it remembers every id to refuse
    /// duplicates); space for them is reserved up front.
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

#[derive(Debug, Clone)]
struct BidEntry {
    bid: Bid,
    /// Replicas matched so far, and on which hosts.
    hosts: Vec<Address>,
}

impl BidEntry {
    fn waiting(&self) -> u32 {
        self.bid.replicas - self.hosts.len() as u32
    }
}

type OfferKey = (Price, u64);
type BidKey = (Reverse<Price>, u64);

#[derive(Debug, Default, Clone)]
struct Book {
    /// The class name, shared by the deals made in it.
    name: Arc<str>,
    // Entries are boxed so that inserting into a B-tree node moves pointers, not orders.
    offers: BTreeMap<OfferKey, Box<OfferEntry>>,
    bids: BTreeMap<BidKey, Box<BidEntry>>,
    data: ClassData,
}

#[derive(Debug, Clone, Copy)]
enum Key {
    Offer(OfferKey),
    Bid(BidKey),
}

/// The order books of every class.
#[derive(Debug, Default, Clone)]
pub struct Engine {
    config: EngineConfig,
    /// Class name → index into `books`.
    classes: HashMap<String, usize>,
    books: Vec<Book>,
    /// Every order ever placed: `Some` (class index and place in the book)
    /// while it is open, `None` after (so duplicates are refused).
    orders: B256Map<Option<(usize, Key)>>,
    /// When orders lapse, soonest first; entries of orders that closed
    /// earlier are skipped when they come up.
    lapses: BinaryHeap<Reverse<(Time, OrderId)>>,
    /// When ids may be forgotten: past its expiry or deadline an order would
    /// be refused as expired anyway, so remembering it no longer matters.
    forget: BinaryHeap<Reverse<(Time, OrderId)>>,
    seq: u64,
}

impl Engine {
    /// The index of a class's book, made on first use.
    fn class(&mut self, name: &str) -> usize {
        if let Some(&i) = self.classes.get(name) {
            return i;
        }
        self.books.push(Book {
            name: Arc::from(name),
            ..Book::default()
        });
        self.classes.insert(name.to_string(), self.books.len() - 1);
        self.books.len() - 1
    }

    fn book_of(&self, name: &str) -> Option<&Book> {
        self.classes.get(name).map(|&i| &self.books[i])
    }

    /// An empty market.
    pub fn new(config: EngineConfig) -> Self {
        let mut orders = B256Map::default();
        orders.reserve(config.expected_orders);
        Self {
            config,
            orders,
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

    fn admit(
        &mut self,
        id: OrderId,
        lapses: Time,
        empty: Option<Reject>,
        now: Time,
    ) -> Result<(), Reject> {
        let Entry::Vacant(slot) = self.orders.entry(id) else {
            return Err(Reject::Duplicate);
        };
        if lapses <= now {
            return Err(Reject::Expired);
        }
        if let Some(reject) = empty {
            return Err(reject);
        }
        slot.insert(None);
        self.forget.push(Reverse((lapses, id)));
        Ok(())
    }

    fn place_offer(&mut self, offer: Offer, now: Time, events: &mut Vec<Event>) {
        let empty = (offer.slots == 0).then_some(Reject::NoSlots);
        if let Err(reason) = self.admit(offer.id, offer.expiry, empty, now) {
            events.push(Event::Rejected {
                id: offer.id,
                reason,
            });
            return;
        }
        let class = self.class(&offer.class);
        let book = &mut self.books[class];
        let mut free = offer.slots;
        let mut filled = Vec::new();
        // Waiting bids by priority; each takes at most one slot of this offer.
        for (key, entry) in &mut book.bids {
            if free == 0 || entry.bid.max_price < offer.price {
                break;
            }
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
        for key in filled {
            if let Some(entry) = book.bids.remove(&key) {
                self.orders.insert(entry.bid.id, None);
                events.push(Event::Filled { id: entry.bid.id });
            }
        }
        if free > 0 {
            self.seq += 1;
            let key = (offer.price, self.seq);
            self.orders.insert(offer.id, Some((class, Key::Offer(key))));
            self.lapses.push(Reverse((offer.expiry, offer.id)));
            events.push(Event::Rested {
                id: offer.id,
                side: Side::Offer,
            });
            book.offers
                .insert(key, Box::new(OfferEntry { offer, free }));
        }
    }

    fn place_bid(&mut self, bid: Bid, now: Time, events: &mut Vec<Event>) {
        let empty = (bid.replicas == 0).then_some(Reject::NoReplicas);
        if let Err(reason) = self.admit(bid.id, bid.deadline, empty, now) {
            events.push(Event::Rejected { id: bid.id, reason });
            return;
        }
        let class = self.class(&bid.class);
        let book = &mut self.books[class];
        let lapses = bid
            .deadline
            .min(now.saturating_add(self.config.queue_timeout));
        let mut entry = BidEntry {
            bid,
            hosts: Vec::new(),
        };
        let mut emptied = Vec::new();
        // The cheapest compatible offers, one slot each, on distinct hosts.
        for (key, offer) in &mut book.offers {
            if entry.waiting() == 0 || offer.offer.price > entry.bid.max_price {
                break;
            }
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
        for key in emptied {
            if let Some(o) = book.offers.remove(&key) {
                self.orders.insert(o.offer.id, None);
            }
        }
        if entry.waiting() == 0 {
            events.push(Event::Filled { id: entry.bid.id });
            return;
        }
        self.seq += 1;
        let key = (Reverse(entry.bid.max_price), self.seq);
        self.orders
            .insert(entry.bid.id, Some((class, Key::Bid(key))));
        self.lapses.push(Reverse((lapses, entry.bid.id)));
        events.push(Event::Rested {
            id: entry.bid.id,
            side: Side::Bid,
        });
        book.bids.insert(key, Box::new(entry));
    }

    fn cancel(&mut self, id: OrderId, by: Address, events: &mut Vec<Event>) {
        let maker = self
            .orders
            .get(&id)
            .copied()
            .flatten()
            .and_then(|(class, key)| {
                let book = &self.books[class];
                match key {
                    Key::Offer(k) => book.offers.get(&k).map(|o| o.offer.host),
                    Key::Bid(k) => book.bids.get(&k).map(|b| b.bid.owner),
                }
            });
        match maker {
            None => events.push(Event::Rejected {
                id,
                reason: Reject::UnknownOrder,
            }),
            Some(maker) if maker != by => events.push(Event::Rejected {
                id,
                reason: Reject::NotMaker,
            }),
            Some(_) => {
                self.remove(id);
                events.push(Event::Cancelled { id });
            }
        }
    }

    /// Takes an open order out of the book; returns its side.
    fn remove(&mut self, id: OrderId) -> Option<Side> {
        let (class, key) = self.orders.get_mut(&id)?.take()?;
        let book = &mut self.books[class];
        match key {
            Key::Offer(k) => {
                book.offers.remove(&k)?;
                Some(Side::Offer)
            }
            Key::Bid(k) => {
                book.bids.remove(&k)?;
                Some(Side::Bid)
            }
        }
    }

    fn expire(&mut self, now: Time, events: &mut Vec<Event>) {
        while let Some(&Reverse((when, id))) = self.lapses.peek() {
            if when > now {
                break;
            }
            self.lapses.pop();
            if let Some(side) = self.remove(id) {
                events.push(Event::Expired { id, side });
            }
        }
        // After the lapses above, an order past its own expiry or deadline is closed.
        while let Some(&Reverse((when, id))) = self.forget.peek() {
            if when > now {
                break;
            }
            self.forget.pop();
            if matches!(self.orders.get(&id), Some(None)) {
                self.orders.remove(&id);
            }
        }
    }

    /// How many order ids the engine remembers (open ones, and closed ones
    /// whose expiry or deadline has not passed yet).
    pub fn remembered(&self) -> usize {
        self.orders.len()
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
                .map(|o| (o.offer.clone(), o.free))
                .collect(),
            book.bids
                .values()
                .map(|b| (b.bid.clone(), b.waiting()))
                .collect(),
        )
    }

    /// An open order's side and what is left of it (free slots of an offer,
    /// waiting replicas of a bid); `None` when the order is not open.
    pub fn open_order(&self, id: &OrderId) -> Option<(Side, u32)> {
        let (class, key) = (*self.orders.get(id)?)?;
        let book = &self.books[class];
        match key {
            Key::Offer(k) => book.offers.get(&k).map(|o| (Side::Offer, o.free)),
            Key::Bid(k) => book.bids.get(&k).map(|b| (Side::Bid, b.waiting())),
        }
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
            data::levels(book.offers.iter().map(|(k, o)| (k.0, o.free))),
            data::levels(book.bids.iter().map(|(k, b)| (k.0.0, b.waiting()))),
        )
    }

    /// Why an open bid waits and what would make it match; `None` when the
    /// bid is not open.
    pub fn explain(&self, id: &OrderId) -> Option<Explanation> {
        let (class, Key::Bid(key)) = (*self.orders.get(id)?)? else {
            return None;
        };
        let entry = self.books[class].bids.get(&key)?;
        let book = &self.books[class];
        Some(data::explain(
            entry.bid.clone(),
            &entry.hosts,
            entry.waiting(),
            book.offers.values().map(|o| (&o.offer, o.free)),
        ))
    }
}

/// Whether an offer can serve one more replica of a bid (price aside).
fn serves(offer: &Offer, entry: &BidEntry) -> bool {
    explain::meets(&offer.caps, &entry.bid.req)
        && explain::admits(&offer.host, &entry.bid.owner, &entry.bid.req)
        && !entry.hosts.contains(&offer.host)
}

fn deal(
    class: &Arc<str>,
    data: &mut ClassData,
    entry: &mut BidEntry,
    offer: &Offer,
    now: Time,
) -> Deal {
    let replica = entry.hosts.len() as u32;
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
