use std::collections::HashMap;

use alloy_primitives::{Address, B256};
use proptest::prelude::*;

use super::*;

fn addr(n: u8) -> Address {
    Address::repeat_byte(n)
}

fn id(n: u64) -> OrderId {
    B256::left_padding_from(&n.to_be_bytes())
}

fn gpu(vram_gib: u64) -> Capabilities {
    Capabilities {
        gpu_model: Some("RTX 4090".into()),
        vram: vram_gib << 30,
        encodings: vec!["onnx".into()],
        cores: 8,
        memory: 32 << 30,
        score: 100,
        ..Capabilities::default()
    }
}

fn offer(n: u64, host: u8, price: Price, slots: u32) -> Offer {
    Offer {
        id: id(n),
        host: addr(host),
        class: "gpu".into(),
        caps: gpu(24),
        price,
        slots,
        expiry: 1_000_000,
    }
}

fn bid(n: u64, owner: u8, max: Price, replicas: u32) -> Bid {
    Bid {
        id: id(n),
        owner: addr(owner),
        class: "gpu".into(),
        req: Requirements {
            gpu: true,
            min_vram: 16 << 30,
            ..Requirements::default()
        },
        max_price: max,
        max_seconds: 60,
        replicas,
        deadline: 1_000_000,
    }
}

fn deals(events: &[Event]) -> Vec<&Deal> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Deal(d) => Some(d),
            _ => None,
        })
        .collect()
}

#[test]
fn a_bid_takes_the_cheapest_offers_at_their_price_on_distinct_hosts() {
    let mut e = Engine::default();
    e.apply(Command::Offer(offer(1, 1, 30, 2)), 1);
    e.apply(Command::Offer(offer(2, 2, 10, 2)), 2);
    e.apply(Command::Offer(offer(3, 3, 10, 1)), 3);
    e.apply(Command::Offer(offer(4, 2, 5, 1)), 4);
    let ev = e.apply(Command::Bid(bid(10, 9, 20, 3)), 5);
    let d = deals(&ev);
    // Host 2's cheapest (5), then host 3 at 10 (host 2's other offer is the same host),
    // and the 30 ask is above the maximum: one replica waits.
    assert_eq!(d.len(), 2);
    assert_eq!((d[0].offer, d[0].price, d[0].replica), (id(4), 5, 0));
    assert_eq!((d[1].offer, d[1].price, d[1].replica), (id(3), 10, 1));
    assert_eq!(d[0].id, Deal::id_for(&id(10), &id(4), 0));
    assert!(ev.contains(&Event::Rested {
        id: id(10),
        side: Side::Bid
    }));
    // An offer from a new host arriving at the bid's price fills the last replica.
    let ev = e.apply(Command::Offer(offer(5, 4, 20, 3)), 6);
    let d = deals(&ev);
    assert_eq!((d.len(), d[0].price, d[0].replica), (1, 20, 2));
    assert!(ev.contains(&Event::Filled { id: id(10) }));
    assert!(ev.contains(&Event::Rested {
        id: id(5),
        side: Side::Offer
    }));
    let (asks, _) = e.depth("gpu");
    assert_eq!(
        asks,
        vec![
            Level {
                price: 10,
                quantity: 2
            },
            Level {
                price: 20,
                quantity: 2
            },
            Level {
                price: 30,
                quantity: 2
            }
        ]
    );
    assert_eq!(e.data("gpu").unwrap().last_price, Some(20));
    assert_eq!(e.data("gpu").unwrap().deals, 3);
}

#[test]
fn ties_go_to_the_earlier_order() {
    let mut e = Engine::default();
    e.apply(Command::Offer(offer(1, 1, 10, 1)), 1);
    e.apply(Command::Offer(offer(2, 2, 10, 1)), 2);
    let ev = e.apply(Command::Bid(bid(3, 9, 10, 1)), 3);
    assert_eq!(deals(&ev)[0].offer, id(1));
    // Resting bids: the higher maximum first, then the earlier.
    let mut e = Engine::default();
    e.apply(Command::Bid(bid(1, 7, 10, 1)), 1);
    e.apply(Command::Bid(bid(2, 8, 12, 1)), 2);
    e.apply(Command::Bid(bid(3, 9, 12, 1)), 3);
    let ev = e.apply(Command::Offer(offer(4, 1, 10, 2)), 4);
    let d = deals(&ev);
    assert_eq!(
        d.iter().map(|d| d.bid).collect::<Vec<_>>(),
        vec![id(2), id(3)]
    );
    assert!(d.iter().all(|d| d.price == 10), "the offer's price");
}

#[test]
fn no_self_match_and_allow_deny_lists_hold() {
    let mut e = Engine::default();
    e.apply(Command::Offer(offer(1, 9, 5, 1)), 1);
    e.apply(Command::Offer(offer(2, 2, 6, 1)), 2);
    e.apply(Command::Offer(offer(3, 3, 7, 1)), 3);
    let mut b = bid(10, 9, 100, 1);
    b.req.deny = vec![addr(2)];
    let ev = e.apply(Command::Bid(b), 4);
    assert_eq!(
        deals(&ev)[0].host,
        addr(3),
        "own host and denied host skipped"
    );
    let mut b = bid(11, 8, 100, 1);
    b.req.allow = vec![addr(9)];
    let ev = e.apply(Command::Bid(b), 5);
    assert_eq!(deals(&ev)[0].host, addr(9));
}

#[test]
fn bad_commands_are_rejected_with_the_reason() {
    let mut e = Engine::default();
    e.apply(Command::Offer(offer(1, 1, 50, 1)), 1);
    let reject = |ev: Vec<Event>| match &ev[..] {
        [Event::Rejected { reason, .. }] => reason.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        reject(e.apply(Command::Offer(offer(1, 1, 5, 1)), 2)),
        Reject::Duplicate
    );
    assert_eq!(
        reject(e.apply(Command::Offer(offer(2, 1, 5, 0)), 2)),
        Reject::NoSlots
    );
    assert_eq!(
        reject(e.apply(Command::Bid(bid(3, 9, 5, 0)), 2)),
        Reject::NoReplicas
    );
    let mut late = bid(4, 9, 5, 1);
    late.deadline = 2;
    assert_eq!(reject(e.apply(Command::Bid(late), 2)), Reject::Expired);
    assert_eq!(
        reject(e.apply(
            Command::Cancel {
                id: id(1),
                by: addr(9)
            },
            3
        )),
        Reject::NotMaker
    );
    assert_eq!(
        reject(e.apply(
            Command::Cancel {
                id: id(77),
                by: addr(9)
            },
            3
        )),
        Reject::UnknownOrder
    );
    assert_eq!(
        e.apply(
            Command::Cancel {
                id: id(1),
                by: addr(1)
            },
            4
        ),
        vec![Event::Cancelled { id: id(1) }]
    );
    assert!(e.book("gpu").0.is_empty());
}

#[test]
fn offers_lapse_and_bids_time_out_in_the_queue() {
    let mut e = Engine::new(EngineConfig {
        queue_timeout: 100,
        ..EngineConfig::default()
    });
    let mut o = offer(1, 1, 50, 1);
    o.expiry = 50;
    e.apply(Command::Offer(o), 1);
    e.apply(Command::Bid(bid(2, 9, 10, 1)), 10);
    assert_eq!(
        e.apply(Command::Tick, 50),
        vec![Event::Expired {
            id: id(1),
            side: Side::Offer
        }]
    );
    assert_eq!(
        e.apply(Command::Tick, 110),
        vec![Event::Expired {
            id: id(2),
            side: Side::Bid
        }]
    );
    assert_eq!(e.best("gpu"), (None, None));
}

#[test]
fn ids_are_forgotten_once_their_orders_could_only_be_refused_as_expired() {
    let mut e = Engine::default();
    let mut o = offer(1, 1, 10, 1);
    o.expiry = 100;
    e.apply(Command::Offer(o.clone()), 1);
    let mut b = bid(2, 9, 10, 1);
    b.deadline = 200;
    e.apply(Command::Bid(b.clone()), 2);
    assert_eq!(e.remembered(), 2, "matched, and still remembered");
    // Before its deadline a replayed order is a duplicate...
    let ev = e.apply(Command::Bid(b.clone()), 150);
    assert!(matches!(
        ev[..],
        [Event::Rejected {
            reason: Reject::Duplicate,
            ..
        }]
    ));
    e.apply(Command::Tick, 200);
    assert_eq!(e.remembered(), 0);
    // ...after it, it is refused as expired: the id is not needed any more.
    let ev = e.apply(Command::Bid(b), 201);
    assert!(matches!(
        ev[..],
        [Event::Rejected {
            reason: Reject::Expired,
            ..
        }]
    ));
    let ev = e.apply(Command::Offer(o), 201);
    assert!(matches!(
        ev[..],
        [Event::Rejected {
            reason: Reject::Expired,
            ..
        }]
    ));
}

#[test]
fn explain_says_which_constraints_eliminated_which_offers_and_the_price_that_would_match() {
    let mut e = Engine::default();
    let mut small = offer(1, 1, 5, 1);
    small.caps.vram = 8 << 30;
    e.apply(Command::Offer(small), 1);
    let mut cpu = offer(2, 2, 4, 1);
    cpu.caps = Capabilities {
        cores: 64,
        memory: 256 << 30,
        ..Capabilities::default()
    };
    e.apply(Command::Offer(cpu), 2);
    e.apply(Command::Offer(offer(3, 3, 40, 1)), 3);
    e.apply(Command::Offer(offer(4, 4, 25, 1)), 4);
    e.apply(Command::Bid(bid(10, 9, 20, 2)), 5);
    let x = e.explain(&id(10)).unwrap();
    assert_eq!(x.waiting_replicas, 2);
    assert!(x.matching.is_empty());
    assert_eq!(
        x.nearest.iter().map(|o| o.price).collect::<Vec<_>>(),
        vec![25, 40]
    );
    assert_eq!(
        x.match_price,
        Some(40),
        "two distinct compatible hosts at 25 and 40"
    );
    let reasons: HashMap<OrderId, Vec<Mismatch>> = x
        .eliminated
        .iter()
        .map(|(o, r)| (o.id, r.clone()))
        .collect();
    assert_eq!(
        reasons[&id(1)],
        vec![Mismatch::Vram {
            have: 8 << 30,
            need: 16 << 30
        }]
    );
    assert!(reasons[&id(2)].contains(&Mismatch::NoGpu));
    assert_eq!(reasons[&id(3)], vec![Mismatch::Price { ask: 40, max: 20 }]);
    // Ties in count are listed by name.
    assert_eq!(
        x.by_reason[..2],
        [
            ("not enough GPU memory".to_string(), 2),
            ("price above the bid's maximum".to_string(), 2)
        ]
    );
    assert!(e.explain(&id(3)).is_none(), "offers are not explained");
}

#[test]
fn explain_never_offers_a_host_the_bid_already_uses() {
    let mut e = Engine::default();
    e.apply(Command::Offer(offer(1, 1, 10, 1)), 1);
    e.apply(Command::Offer(offer(2, 1, 30, 1)), 2);
    e.apply(Command::Offer(offer(3, 2, 40, 1)), 3);
    let ev = e.apply(Command::Bid(bid(10, 9, 20, 2)), 4);
    assert_eq!(deals(&ev).len(), 1, "host 1 took one replica");
    let x = e.explain(&id(10)).unwrap();
    assert_eq!(
        x.nearest.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![id(3)]
    );
    assert_eq!(x.match_price, Some(40));
    let (_, reasons) = x.eliminated.iter().find(|(o, _)| o.id == id(2)).unwrap();
    assert!(reasons.contains(&Mismatch::HostAlreadyUsed), "{reasons:?}");
}

#[test]
fn candles_summarise_trades_per_interval() {
    let mut e = Engine::default();
    for (n, (t, price)) in [(1000, 10), (1500, 14), (2100, 9), (2200, 11)]
        .into_iter()
        .enumerate()
    {
        let n = n as u64 * 10;
        e.apply(Command::Offer(offer(n + 1, 1, price, 1)), t);
        e.apply(Command::Bid(bid(n + 2, 9, 100, 1)), t);
    }
    assert_eq!(
        e.data("gpu").unwrap().candles(u64::MAX, 0, 10_000).len(),
        1,
        "no overflow"
    );
    let c = e.data("gpu").unwrap().candles(1000, 0, 10_000);
    assert_eq!(c.len(), 2);
    assert_eq!(
        (
            c[0].start, c[0].open, c[0].high, c[0].low, c[0].close, c[0].deals
        ),
        (1000, 10, 14, 10, 14, 2)
    );
    assert_eq!(
        (c[1].start, c[1].open, c[1].high, c[1].low, c[1].close),
        (2000, 9, 11, 9, 11)
    );
}

/// A random command log over 2 classes, 6 addresses (hosts and owners overlap,
/// so self-matches are possible), small prices and sizes.
fn commands() -> impl Strategy<Value = Vec<(Command, Time)>> {
    let caps = (any::<bool>(), 0u64..4, 1u32..4).prop_map(|(g, v, c)| Capabilities {
        gpu_model: g.then(|| "gpu".to_string()),
        vram: v << 30,
        cores: c,
        ..Capabilities::default()
    });
    let req = (
        any::<bool>(),
        0u64..4,
        1u32..4,
        proptest::option::of(1u8..7),
    )
        .prop_map(|(g, v, c, deny)| Requirements {
            gpu: g,
            min_vram: v << 30,
            cores: c,
            deny: deny.map(addr).into_iter().collect(),
            ..Requirements::default()
        });
    let class = prop_oneof![Just("a".to_string()), Just("b".to_string())];
    let cmd = prop_oneof![
        4 => (1u8..7, class.clone(), caps, 1u128..20, 1u32..4, 1u64..400)
            .prop_map(|(h, class, caps, price, slots, life)| (0u8, h, class, Some(caps), None, price, slots, life)),
        4 => (1u8..7, class, req, 1u128..20, 1u32..4, 1u64..400)
            .prop_map(|(o, class, req, price, n, life)| (1u8, o, class, None, Some(req), price, n, life)),
        1 => (1u8..7, 0u64..40).prop_map(|(who, target)| (2u8, who, String::new(), None, None, u128::from(target), 0, 0)),
        1 => Just((3u8, 0, String::new(), None, None, 0, 0, 0)),
    ];
    proptest::collection::vec((cmd, 0u64..20), 1..120).prop_map(|items| {
        let mut now = 0;
        items
            .into_iter()
            .enumerate()
            .map(
                |(n, ((kind, who, class, caps, req, price, count, life), dt))| {
                    now += dt;
                    let oid = id(n as u64);
                    let cmd = match kind {
                        0 => Command::Offer(Offer {
                            id: oid,
                            host: addr(who),
                            class,
                            caps: caps.unwrap_or_default(),
                            price,
                            slots: count,
                            expiry: now + life,
                        }),
                        1 => Command::Bid(Bid {
                            id: oid,
                            owner: addr(who),
                            class,
                            req: req.unwrap_or_default(),
                            max_price: price,
                            max_seconds: 10,
                            replicas: count,
                            deadline: now + life,
                        }),
                        2 => Command::Cancel {
                            id: id(price as u64),
                            by: addr(who),
                        },
                        _ => Command::Tick,
                    };
                    (cmd, now)
                },
            )
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn matching_invariants_hold(log in commands()) {
        let mut e = Engine::new(EngineConfig {
            queue_timeout: 150,
            ..EngineConfig::default()
        });
        let mut offers: HashMap<OrderId, Offer> = HashMap::new();
        let mut bids: HashMap<OrderId, Bid> = HashMap::new();
        let mut taken: HashMap<OrderId, u32> = HashMap::new();
        let mut hosts_of: HashMap<OrderId, Vec<Address>> = HashMap::new();
        let mut all = Vec::new();
        for (cmd, now) in &log {
            // Price-time priority for a bid: the deals it makes are exactly what a
            // greedy walk of the book (cheapest first, ties by arrival) gives.
            let expected = match cmd {
                Command::Bid(b) => {
                    let mut pre = e.clone();
                    pre.apply(Command::Tick, *now);
                    let (asks, _) = pre.book(&b.class);
                    let mut used: Vec<Address> = Vec::new();
                    let mut want = Vec::new();
                    for (o, _) in asks {
                        if used.len() as u32 == b.replicas || o.price > b.max_price { break; }
                        if mismatches(&o, b).is_empty() && !used.contains(&o.host) {
                            used.push(o.host);
                            want.push(o.id);
                        }
                    }
                    Some(want)
                }
                _ => None,
            };
            match cmd {
                Command::Offer(o) => { offers.entry(o.id).or_insert_with(|| o.clone()); }
                Command::Bid(b) => { bids.entry(b.id).or_insert_with(|| b.clone()); }
                _ => {}
            }
            let events = e.apply(cmd.clone(), *now);
            if let Some(want) = expected
                && !matches!(events.last(), Some(Event::Rejected { .. }))
            {
                let got: Vec<OrderId> = deals(&events).iter().map(|d| d.offer).collect();
                prop_assert_eq!(got, want);
            }
            for d in deals(&events) {
                let (o, b) = (&offers[&d.offer], &bids[&d.bid]);
                prop_assert_eq!(d.price, o.price, "at the offer's price");
                prop_assert!(d.price <= b.max_price, "never above the bid's maximum");
                prop_assert!(d.host != d.owner, "no self-match");
                prop_assert!(mismatches(o, b).is_empty(), "compatible");
                prop_assert!(*now < o.expiry && *now < b.deadline, "only open orders trade");
                let t = taken.entry(o.id).or_default();
                *t += 1;
                prop_assert!(*t <= o.slots, "slots conserved");
                let hosts = hosts_of.entry(b.id).or_default();
                prop_assert!(!hosts.contains(&d.host), "replicas on distinct hosts");
                hosts.push(d.host);
                prop_assert!(hosts.len() as u32 <= b.replicas);
            }
            all.push(events);
        }
        // The engine is a function of its log.
        let mut again = Engine::new(EngineConfig {
            queue_timeout: 150,
            ..EngineConfig::default()
        });
        for ((cmd, now), events) in log.iter().zip(&all) {
            prop_assert_eq!(&again.apply(cmd.clone(), *now), events);
        }
    }
}
