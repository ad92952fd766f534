use alloy_primitives::{Address, B256};
use netmind_protocol::work::{Receipt, Start};

use super::*;
use crate::engine::{Bid, Capabilities, Engine, Offer, Requirements};

fn id(n: u64) -> B256 {
    B256::left_padding_from(&n.to_be_bytes())
}

fn host(n: u8) -> Address {
    Address::repeat_byte(n)
}

const OWNER: Address = Address::repeat_byte(0xee);

/// Host `h`'s offer of one slot (id `h`) in class `cpu`.
fn cpu_offer(h: u8) -> Command {
    Command::Offer(Offer {
        id: id(u64::from(h)),
        host: host(h),
        class: "cpu".into(),
        caps: Capabilities {
            cores: 4,
            ..Capabilities::default()
        },
        price: 10,
        slots: 1,
        expiry: u64::MAX,
    })
}

/// A market with `hosts` offers (one slot each) and a bid for `replicas`,
/// fed through a real engine into `Jobs`.
fn market(hosts: u8, replicas: u32) -> (Jobs, Vec<(B256, Address)>) {
    let mut engine = Engine::default();
    let mut jobs = Jobs::default();
    let mut at = 1_000;
    let mut feed = |jobs: &mut Jobs, command: Command, signed: Option<String>| {
        at += 1;
        let events = engine.apply(command.clone(), at);
        jobs.apply_entry(&Entry {
            command,
            at,
            events,
            signed,
        });
    };
    for h in 1..=hosts {
        feed(&mut jobs, cpu_offer(h), None);
    }
    let bid = Command::Bid(Bid {
        id: id(100),
        owner: OWNER,
        class: "cpu".into(),
        req: Requirements::default(),
        max_price: 20,
        max_seconds: 60,
        replicas,
        deadline: u64::MAX,
    });
    let signed = format!(
        r#"{{"order":{{"bundle":"{}","input":"{}","owner":"{OWNER}"}},"signature":{{}}}}"#,
        B256::repeat_byte(0xb0),
        B256::repeat_byte(0x10)
    );
    feed(&mut jobs, bid, Some(signed));
    let deals = jobs
        .job(&id(100))
        .unwrap()
        .deals
        .iter()
        .map(|d| (d.id, d.host))
        .collect();
    (jobs, deals)
}

fn receipt(deal: B256, host: Address, output: u8) -> Receipt {
    Receipt {
        host,
        deal,
        output: B256::repeat_byte(output),
        status: "exited".into(),
        exitCode: 0,
        runtimeMs: 5,
        fuel: 0,
        gpuTimeMs: 0,
        gpuDispatches: 0,
        gpuHash: B256::ZERO,
    }
}

#[test]
fn a_job_goes_from_queued_to_done_and_keeps_its_bundle_and_input() {
    let (mut jobs, deals) = market(1, 1);
    let job = jobs.job(&id(100)).unwrap();
    assert_eq!(job.state, JobState::Matched);
    assert_eq!(
        (job.bundle, job.input),
        (B256::repeat_byte(0xb0), B256::repeat_byte(0x10))
    );
    let (deal, h) = deals[0];
    let start = Start {
        host: h,
        deal,
        at: 0,
    };
    assert_eq!(jobs.start(&start, 2_000).unwrap().state, JobState::Running);
    let done = jobs.receipt(&receipt(deal, h, 7), 3_000).unwrap();
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.result.as_ref().unwrap().output, B256::repeat_byte(7));
    assert_eq!(done.deals[0].state, DealState::Accepted);
    // Nothing more is accepted for a decided deal.
    assert!(matches!(
        jobs.receipt(&receipt(deal, h, 7), 3_001),
        Err(WorkError::Closed { .. })
    ));
}

#[test]
fn the_majority_of_three_replicas_wins_and_the_minority_is_rejected() {
    let (mut jobs, deals) = market(3, 3);
    assert_eq!(deals.len(), 3);
    let hosts: std::collections::HashSet<_> = deals.iter().map(|d| d.1).collect();
    assert_eq!(hosts.len(), 3, "replicas on distinct hosts");
    let j = jobs
        .receipt(&receipt(deals[0].0, deals[0].1, 1), 10)
        .unwrap();
    assert_eq!(j.state, JobState::Verifying);
    let j = jobs
        .receipt(&receipt(deals[1].0, deals[1].1, 2), 11)
        .unwrap();
    assert_eq!(
        j.state,
        JobState::Verifying,
        "1 against 1 is no majority of 3"
    );
    let j = jobs
        .receipt(&receipt(deals[2].0, deals[2].1, 2), 12)
        .unwrap();
    assert_eq!(j.state, JobState::Done);
    let r = j.result.as_ref().unwrap();
    assert_eq!(r.output, B256::repeat_byte(2));
    assert_eq!(r.hosts, vec![deals[1].1, deals[2].1]);
    assert_eq!(j.deals[0].state, DealState::Rejected);
}

/// Feeds the deal that bid `retry` got from `host` (as the engine would).
fn extra_deal(jobs: &mut Jobs, retry: &Bid, host: Address, n: u8, at: Time) -> B256 {
    let deal = crate::engine::Deal {
        id: B256::repeat_byte(0x70 + n),
        bid: retry.id,
        offer: id(200 + u64::from(n)),
        owner: OWNER,
        host,
        class: "cpu".into(),
        price: 10,
        seconds: 60,
        replica: 0,
        time: at,
    };
    jobs.apply_entry(&Entry {
        command: Command::Bid(retry.clone()),
        at,
        events: vec![Event::Deal(deal.clone())],
        signed: None,
    });
    deal.id
}

#[test]
fn two_replicas_that_disagree_go_to_a_third_host_whose_majority_wins() {
    let (mut jobs, deals) = market(2, 2);
    jobs.receipt(&receipt(deals[0].0, deals[0].1, 1), 10)
        .unwrap();
    let j = jobs
        .receipt(&receipt(deals[1].0, deals[1].1, 2), 11)
        .unwrap();
    assert_eq!(
        j.state,
        JobState::Verifying,
        "no majority yet: one more host"
    );
    assert!(j.result.is_none(), "nothing is released without a majority");
    let due = jobs.due_extras(12);
    assert_eq!(due.len(), 1);
    let retry = due[0].retry.clone();
    assert_eq!(retry.replicas, 1);
    assert!(
        retry.req.deny.contains(&deals[0].1) && retry.req.deny.contains(&deals[1].1),
        "the extra replica goes to a host the job has not used"
    );
    jobs.add_replica(id(100), retry.id, 12).unwrap();
    assert!(jobs.due_extras(13).is_empty(), "one extra at a time");
    assert!(
        jobs.add_replica(id(100), retry.id, 13).is_err(),
        "a second record of the same extra changes nothing"
    );
    let third = extra_deal(&mut jobs, &retry, host(9), 0, 14);
    let j = jobs.receipt(&receipt(third, host(9), 2), 20).unwrap();
    assert_eq!(j.state, JobState::Done);
    assert_eq!(j.extra_replicas, 1);
    let r = j.result.as_ref().unwrap();
    assert_eq!(r.output, B256::repeat_byte(2));
    assert_eq!(r.hosts, vec![deals[1].1, host(9)]);
    assert_eq!(j.deals[0].state, DealState::Rejected);
}

#[test]
fn replicas_that_never_agree_fail_the_job_after_twice_as_many_plus_one() {
    let (mut jobs, deals) = market(2, 2);
    jobs.receipt(&receipt(deals[0].0, deals[0].1, 1), 10)
        .unwrap();
    jobs.receipt(&receipt(deals[1].0, deals[1].1, 2), 11)
        .unwrap();
    // Three more hosts, each with yet another answer: 5 = 2 × 2 + 1 reports.
    for n in 0..3u8 {
        let due = jobs.due_extras(20);
        assert_eq!(due.len(), 1, "extra {n}");
        let retry = due[0].retry.clone();
        jobs.add_replica(id(100), retry.id, 20).unwrap();
        let h = host(20 + n);
        let deal = extra_deal(&mut jobs, &retry, h, n, 21);
        jobs.receipt(&receipt(deal, h, 3 + n), 30).unwrap();
    }
    let j = jobs.job(&id(100)).unwrap();
    assert_eq!(j.state, JobState::Failed);
    assert_eq!(j.extra_replicas, 3);
    assert!(
        j.reason.as_ref().unwrap().contains("no majority"),
        "{:?}",
        j.reason
    );
    assert!(j.result.is_none());
    assert!(jobs.due_extras(40).is_empty());
}

#[test]
fn a_host_cannot_report_for_a_deal_it_does_not_hold_or_one_that_does_not_exist() {
    let (mut jobs, deals) = market(2, 1);
    let (deal, holder) = deals[0];
    let other = if holder == host(1) { host(2) } else { host(1) };
    let e = jobs.receipt(&receipt(deal, other, 1), 10).unwrap_err();
    assert_eq!(
        e,
        WorkError::NotYours {
            deal,
            holder,
            host: other
        }
    );
    assert!(e.to_string().contains("is held by host"));
    let e = jobs
        .check_start(&Start {
            host: holder,
            deal: id(9),
            at: 0,
        })
        .unwrap_err();
    assert_eq!(e, WorkError::UnknownDeal(id(9)));
    // Refusals change nothing.
    assert_eq!(jobs.job(&id(100)).unwrap().state, JobState::Matched);
}

#[test]
fn hosts_show_their_offers_and_what_they_run() {
    let (mut jobs, deals) = market(2, 1);
    let hosts = jobs.hosts(5_000);
    assert_eq!(hosts.len(), 2);
    let busy = hosts.iter().find(|h| h.address == deals[0].1).unwrap();
    assert_eq!((busy.status, busy.running, busy.slots_free), ("busy", 1, 0));
    let idle = hosts.iter().find(|h| h.address != deals[0].1).unwrap();
    assert_eq!(
        (idle.status, idle.slots_free, idle.price.as_str()),
        ("idle", 1, "10")
    );
    jobs.receipt(&receipt(deals[0].0, deals[0].1, 1), 6_000)
        .unwrap();
    let hosts = jobs.hosts(6_000);
    let done = hosts.iter().find(|h| h.address == deals[0].1).unwrap();
    assert_eq!((done.status, done.running), ("offline", 0));
    assert_eq!(jobs.list(Some(OWNER), Some("done"), 10).len(), 1);
    assert!(jobs.list(Some(host(1)), None, 10).is_empty());
    assert_eq!(jobs.take_changed(), vec![id(100)]);
}

#[test]
fn a_deal_not_started_in_time_lapses_and_its_replica_is_placed_again_elsewhere() {
    let (mut jobs, deals) = market(3, 2);
    let (dead, dead_host) = deals[0];
    let assigned = jobs.job(&id(100)).unwrap().deals[0].assigned;
    // The other host starts at once; the first never does.
    jobs.start(
        &Start {
            host: deals[1].1,
            deal: deals[1].0,
            at: 0,
        },
        assigned + 1,
    )
    .unwrap();
    assert!(
        jobs.due_leases(assigned + 29_999, 30_000, 30_000)
            .is_empty()
    );
    let due = jobs.due_leases(assigned + 30_000, 30_000, 30_000);
    assert_eq!(due.len(), 1, "only the deal never started");
    let lapse = &due[0];
    assert_eq!(
        (lapse.deal, lapse.host, lapse.retry.replicas),
        (dead, dead_host, 1)
    );
    assert!(
        lapse.retry.req.deny.contains(&dead_host) && lapse.retry.req.deny.contains(&deals[1].1)
    );
    jobs.lapse(lapse.job, dead, lapse.retry.id, assigned + 30_000)
        .unwrap();
    assert_eq!(
        jobs.job(&id(100)).unwrap().deals[0].state,
        DealState::Lapsed
    );
    // The lapsed host's late receipt is refused: it is not paid for work that was given away.
    assert!(matches!(
        jobs.receipt(&receipt(dead, dead_host, 1), assigned + 31_000),
        Err(WorkError::Closed { .. })
    ));
    // The replica placed again matches the third host and joins the job.
    let third = (1..=3)
        .map(host)
        .find(|h| *h != dead_host && *h != deals[1].1)
        .unwrap();
    let feed_deal = crate::engine::Deal {
        id: B256::repeat_byte(0x77),
        bid: lapse.retry.id,
        offer: id(99),
        owner: OWNER,
        host: third,
        class: "cpu".into(),
        price: 10,
        seconds: 60,
        replica: 0,
        time: assigned + 30_001,
    };
    jobs.apply_entry(&Entry {
        command: Command::Bid(lapse.retry.clone()),
        at: assigned + 30_001,
        events: vec![Event::Deal(feed_deal.clone())],
        signed: None,
    });
    assert!(
        jobs.job(&lapse.retry.id).is_some_and(|j| j.id == id(100)),
        "the retry resolves to its job"
    );
    jobs.receipt(&receipt(deals[1].0, deals[1].1, 5), assigned + 40_000)
        .unwrap();
    let j = jobs
        .receipt(&receipt(feed_deal.id, third, 5), assigned + 41_000)
        .unwrap();
    assert_eq!(j.state, JobState::Done);
    assert_eq!(j.result.as_ref().unwrap().hosts.len(), 2);
}

/// The deals whose lease ran out, found the slow way: every deal of every
/// live job (what `due_leases` did before it had an index).
fn due_by_scan(jobs: &Jobs, now: Time, start_within: Time, grace: Time) -> Vec<(B256, B256)> {
    let mut out = Vec::new();
    for job in jobs.live_jobs().filter(|j| j.bid.is_some()) {
        for d in &job.deals {
            let due = match d.state {
                DealState::Assigned => d.assigned.saturating_add(start_within),
                DealState::Running => d
                    .started
                    .unwrap_or(d.assigned)
                    .saturating_add(job.max_seconds.saturating_mul(1000))
                    .saturating_add(grace),
                _ => continue,
            };
            if now >= due {
                out.push((job.id, d.id));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_lease_index_finds_exactly_the_deals_a_full_scan_finds() {
    const START: Time = 5_000;
    const GRACE: Time = 2_000;
    let mut engine = Engine::default();
    let mut jobs = Jobs::default();
    let mut now: Time = 1_000;
    let mut feed = |jobs: &mut Jobs, command: Command, at: Time| {
        let events = engine.apply(command.clone(), at);
        jobs.apply_entry(&Entry {
            command,
            at,
            events,
            signed: None,
        });
    };
    // 40 jobs of 2 replicas on 80 hosts, placed over time.
    for h in 1..=80u8 {
        feed(&mut jobs, cpu_offer(h), now);
    }
    let mut deals = Vec::new();
    for k in 0..40u64 {
        now += 137;
        let bid = Bid {
            id: id(1_000 + k),
            owner: OWNER,
            class: "cpu".into(),
            req: Requirements::default(),
            max_price: 20,
            max_seconds: 1 + k % 4,
            replicas: 2,
            deadline: u64::MAX,
        };
        feed(&mut jobs, Command::Bid(bid), now);
        for d in &jobs.job(&id(1_000 + k)).unwrap().deals {
            deals.push((d.id, d.host));
        }
    }
    assert_eq!(deals.len(), 80);
    // Hosts start, report (agreeing or not) and go silent at random; due
    // leases lapse now and then; after each step both ways agree.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let (mut lapsed, mut checked) = (0, 0);
    for _ in 0..600 {
        now += next(400);
        let (deal, h) = deals[next(deals.len() as u64) as usize];
        match next(4) {
            0 => {
                let _ = jobs.start(
                    &Start {
                        host: h,
                        deal,
                        at: 0,
                    },
                    now,
                );
            }
            1 => {
                let output = 1 + next(2) as u8;
                let _ = jobs.receipt(&receipt(deal, h, output), now);
            }
            _ => {}
        }
        let expected = due_by_scan(&jobs, now, START, GRACE);
        let mut found: Vec<_> = jobs
            .due_leases(now, START, GRACE)
            .iter()
            .map(|l| (l.job, l.deal))
            .collect();
        found.sort();
        assert_eq!(found, expected, "at {now}");
        checked += found.len();
        if next(3) == 0 {
            for l in jobs.due_leases(now, START, GRACE) {
                jobs.lapse(l.job, l.deal, l.retry.id, now).unwrap();
                lapsed += 1;
            }
        }
    }
    assert!(
        lapsed > 10 && checked > 100,
        "{lapsed} lapsed, {checked} seen due"
    );
    // Far in the future every open lease is due; once lapsed, the index
    // holds nothing: entries of deals that moved on were dropped.
    now += 1_000_000;
    for l in jobs.due_leases(now, START, GRACE) {
        jobs.lapse(l.job, l.deal, l.retry.id, now).unwrap();
    }
    assert!(jobs.due_leases(now, START, GRACE).is_empty());
    assert_eq!(jobs.leases.len(), 0);
}

#[test]
fn a_started_deal_that_never_reports_lapses_after_its_seconds_and_the_grace() {
    // A job of one replica (max_seconds 60), started 10 ms after it was assigned.
    let started = || {
        let (mut jobs, deals) = market(2, 1);
        let (deal, host) = deals[0];
        let assigned = jobs.job(&id(100)).unwrap().deals[0].assigned;
        let start = Start { host, deal, at: 0 };
        jobs.start(&start, assigned + 10).unwrap();
        (jobs, deal, host, assigned)
    };
    let (mut jobs, deal, h, assigned) = started();
    // The report is due by start + 60 s + the grace.
    let due = assigned + 10 + 60_000 + 30_000;
    assert!(jobs.due_leases(due - 1, 30_000, 30_000).is_empty());
    let lapses = jobs.due_leases(due, 30_000, 30_000);
    assert_eq!(lapses.len(), 1);
    assert_eq!((lapses[0].deal, lapses[0].host), (deal, h));
    // Reported in time instead: nothing is due, ever.
    let (mut jobs, deal, h, assigned) = started();
    jobs.receipt(&receipt(deal, h, 1), assigned + 20).unwrap();
    assert!(jobs.due_leases(u64::MAX, 30_000, 30_000).is_empty());
}
