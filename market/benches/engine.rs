//! Engine throughput: 1,000 resting offers across 20 classes, then a stream of
//! orders (a bid for every offer that replenishes the book), one core.
//!
//! Run with: `cargo bench -p netmind-market --bench engine`

use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256};
use netmind_market::engine::{
    Bid, Capabilities, Command, Engine, EngineConfig, Event, Offer, Requirements,
};

const CLASSES: u64 = 20;
const RESTING: u64 = 1_000;
const ORDERS: u64 = 1_000_000;
/// How long an order lives, in commands (the bench's clock ticks once per command):
/// orders that never match lapse, so the book stays about a thousand offers deep.
const LIFE: u64 = 60_000;

fn id(n: u64) -> B256 {
    B256::left_padding_from(&n.to_be_bytes())
}

fn offer(n: u64) -> Command {
    Command::Offer(Offer {
        id: id(n),
        host: Address::repeat_byte((n % 250) as u8 + 1),
        class: format!("class-{}", (n / 2) % CLASSES),
        caps: Capabilities {
            gpu_model: Some("gpu".into()),
            vram: 24 << 30,
            cores: 8,
            memory: 32 << 30,
            score: 100 + n % 50,
            ..Capabilities::default()
        },
        price: 100 + u128::from(n % 97),
        slots: 2,
        expiry: n + LIFE,
    })
}

fn bid(n: u64) -> Command {
    Command::Bid(Bid {
        id: id(n),
        owner: Address::repeat_byte(255),
        class: format!("class-{}", (n / 2) % CLASSES),
        req: Requirements {
            gpu: true,
            min_vram: 16 << 30,
            min_score: n % 40,
            ..Requirements::default()
        },
        max_price: 150 + u128::from(n % 60),
        max_seconds: 60,
        replicas: 1 + (n % 3) as u32,
        deadline: n + LIFE,
    })
}

fn main() {
    let mut e = Engine::new(EngineConfig {
        queue_timeout: u64::MAX / 2,
        // What the engine remembers at once: ids are forgotten after their
        // orders' lifetime, so about LIFE of them (not every order of the run).
        expected_orders: (RESTING + LIFE) as usize,
    });
    for n in 0..RESTING {
        e.apply(offer(n), n);
    }
    // Build the commands first, so that only the engine is timed.
    let cmds: Vec<Command> = (RESTING..RESTING + ORDERS)
        .map(|n| {
            if n.is_multiple_of(2) {
                offer(n)
            } else {
                bid(n)
            }
        })
        .collect();
    let mut lat = Vec::with_capacity(cmds.len());
    let mut deals = 0u64;
    let started = Instant::now();
    // Every 16th order is timed on its own for the latency figures; timing
    // each one would cost more than some orders take.
    let mut ev = Vec::new();
    for (i, cmd) in cmds.into_iter().enumerate() {
        ev.clear();
        if i % 16 == 0 {
            let t = Instant::now();
            e.apply_into(cmd, RESTING + i as u64, &mut ev);
            lat.push(t.elapsed());
        } else {
            e.apply_into(cmd, RESTING + i as u64, &mut ev);
        }
        deals += ev.iter().filter(|e| matches!(e, Event::Deal(_))).count() as u64;
    }
    let total = started.elapsed();
    let (mut offers, mut bids) = (0, 0);
    for class in e.classes() {
        let (o, b) = e.book(class);
        offers += o.len();
        bids += b.len();
    }
    println!("book at the end: {offers} offers and {bids} bids resting");
    lat.sort();
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    println!(
        "engine: {ORDERS} orders in {:.3} s: {:.0} orders/s, {:.0} deals/s; per order p50 {:?}, p99 {:?}, max {:?}",
        total.as_secs_f64(),
        ORDERS as f64 / total.as_secs_f64(),
        deals as f64 / total.as_secs_f64(),
        p(0.5),
        p(0.99),
        lat.last().copied().unwrap_or(Duration::ZERO)
    );
}
