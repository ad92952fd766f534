//! Several authorities in one process: blocks sealed by one node imported by
//! another through [`Node::import`] (seal verified), finality votes, the peer
//! API, and bad input (a non-authority's block, a recently-signed sealer, a bad
//! seal, votes from a non-authority or another chain, a block conflicting with
//! the finalized one, garbage peer messages), each refused with nothing changed.
//! The multi-process network (3 authorities + a follower, kill and restart) is
//! tested by the `netmind` CLI's `chain_network` test.

use std::sync::Arc;

use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use netmind_chain::Error;
use netmind_chain::clique::{CliqueError, seal};
use netmind_chain::finality::{FinalityError, SignedVote, Vote};
use netmind_chain::import::{ImportError, RlpBlock};
use netmind_chain::node::{Imported, Node};
use netmind_chain::pool::PoolConfig;
use netmind_chain::spec::{ChainSpec, signers_extra};
use serde_json::json;

use crate::util::post;

/// A 3-authority chain (period 1) and one datadir per authority.
pub(crate) struct Three {
    pub(crate) keys: Vec<PrivateKeySigner>,
    pub(crate) nodes: Vec<Node>,
    _dirs: Vec<tempfile::TempDir>,
}

pub(crate) fn spec(keys: &[PrivateKeySigner]) -> ChainSpec {
    let mut genesis = ChainSpec::dev(1).genesis;
    let signers: Vec<Address> = keys.iter().map(|k| k.address()).collect();
    genesis.extra_data = signers_extra(&signers);
    ChainSpec::from_genesis(genesis).unwrap()
}

pub(crate) fn three() -> Three {
    let mut keys: Vec<PrivateKeySigner> = (0..3).map(|_| PrivateKeySigner::random()).collect();
    keys.sort_by_key(|k| k.address());
    let spec = spec(&keys);
    let mut dirs = Vec::new();
    let mut nodes = Vec::new();
    for k in &keys {
        let d = tempfile::tempdir().unwrap();
        netmind_chain::node::init(d.path(), &spec).unwrap();
        nodes.push(Node::open(d.path(), k.clone(), PoolConfig::default()).unwrap());
        dirs.push(d);
    }
    Three {
        keys,
        nodes,
        _dirs: dirs,
    }
}

pub(crate) fn rlp(node: &Node, number: u64) -> RlpBlock {
    let raw = node.rlp_block(number).unwrap().unwrap();
    netmind_chain::import::decode_block(&raw).unwrap()
}

fn refused(node: &Node, block: RlpBlock) -> ImportError {
    let before = node.head();
    let root = node.reader().unwrap().state_root().unwrap();
    let err = node.import(block).unwrap_err();
    assert_eq!(node.head().1, before.1, "head moved after: {err}");
    assert_eq!(node.reader().unwrap().state_root().unwrap(), root);
    match err {
        Error::Import(e) => e,
        other => panic!("not an import error: {other}"),
    }
}

pub(crate) fn vote(node: &Node, number: u64, key: &PrivateKeySigner) -> SignedVote {
    let reader = node.reader().unwrap();
    let hash = reader.canonical_hash(number).unwrap().unwrap();
    SignedVote::sign(
        Vote {
            chain_id: node.spec.chain_id,
            number,
            hash,
        },
        key,
    )
    .unwrap()
}

#[test]
fn authorities_seal_in_turn_import_each_other_and_finalise_with_three_votes() {
    let t = three();
    // Block n is in turn for signer n % 3 (sorted).
    let mut ts = t.nodes[0].head().0.timestamp;
    for n in 1..=6u64 {
        ts += 1;
        let sealer = (n % 3) as usize;
        let b = t.nodes[sealer].seal_next(ts).unwrap();
        assert_eq!(b.header.difficulty, netmind_chain::clique::DIFF_IN_TURN);
        for (i, node) in t.nodes.iter().enumerate() {
            if i != sealer {
                assert_eq!(
                    node.import(rlp(&t.nodes[sealer], n)).unwrap(),
                    Imported::Head(n, b.hash)
                );
            }
        }
        // Each node counts the seal and its own vote; the others' votes
        // (as gossiped) make three.
        for node in &t.nodes {
            for k in &t.keys {
                node.receive_vote(&vote(node, n, k)).unwrap();
            }
            assert_eq!(node.finalized(), (n, b.hash));
        }
    }
    // A known block is not imported twice.
    assert_eq!(
        t.nodes[0].import(rlp(&t.nodes[1], 4)).unwrap(),
        Imported::Known
    );
    // Out of turn: signer 2 seals block 7 (in turn: 1) with difficulty 1.
    let b = t.nodes[2].seal_next(ts + 1).unwrap();
    assert_eq!(b.header.difficulty, netmind_chain::clique::DIFF_NO_TURN);
    assert_eq!(
        t.nodes[0].import(rlp(&t.nodes[2], 7)).unwrap(),
        Imported::Head(7, b.hash)
    );
    // The seal (2) and node 0's own vote: 2 of 3 do not finalise.
    assert_eq!(t.nodes[0].finalized().0, 6);
}

/// Two of three authorities vote the third out (EIP-225): every node's
/// `signers()` (what `clique_getSigners` answers) drops it, its finality
/// votes stop counting, and two signatures of the two left finalise.
#[test]
fn voting_an_authority_out_changes_the_signers_and_the_finality_quorum() {
    let t = three();
    let (a, b, c) = (t.keys[0].clone(), t.keys[1].clone(), t.keys[2].clone());
    let mut ts = t.nodes[0].head().0.timestamp;
    let mut seal = |n: u64, sealer: usize| {
        ts += 1;
        let block = t.nodes[sealer].seal_next(ts).unwrap();
        for (i, node) in t.nodes.iter().enumerate() {
            if i != sealer {
                node.import(rlp(&t.nodes[sealer], n)).unwrap();
            }
        }
        block
    };
    t.nodes[1].propose(c.address(), false);
    let first = seal(1, 1);
    assert_eq!(
        first.header.beneficiary,
        c.address(),
        "the vote rides the block"
    );
    seal(2, 2);
    for node in &t.nodes {
        assert_eq!(
            node.signers().len(),
            3,
            "one vote of three is not a majority"
        );
    }
    t.nodes[0].propose(c.address(), false);
    let third = seal(3, 0);
    let mut left = vec![a.address(), b.address()];
    left.sort();
    for node in &t.nodes {
        assert_eq!(node.signers(), left, "the second vote drops it");
        assert_eq!(
            node.receive_vote(&vote(node, 3, &c)),
            Err(FinalityError::NotAuthority(c.address()))
        );
        node.receive_vote(&vote(node, 3, &a)).unwrap();
        node.receive_vote(&vote(node, 3, &b)).unwrap();
        assert_eq!(node.finalized(), (3, third.hash), "two of two");
    }
    // A restarted node reads the same authorities from its chain.
    let Three {
        keys,
        mut nodes,
        _dirs: dirs,
    } = t;
    drop(nodes.remove(0));
    let again = Node::open(dirs[0].path(), keys[0].clone(), PoolConfig::default()).unwrap();
    assert_eq!(again.signers(), left);
}

/// Sealing and importing advance a cached signer snapshot one block at a
/// time; it answers what a rebuild from the last checkpoint does, across
/// checkpoints (epoch 4 here) and with a vote in between.
#[test]
fn the_cached_signer_snapshot_matches_a_rebuild_across_checkpoints() {
    let mut keys: Vec<PrivateKeySigner> = (0..3).map(|_| PrivateKeySigner::random()).collect();
    keys.sort_by_key(|k| k.address());
    let mut genesis = spec(&keys).genesis;
    genesis.config.clique.as_mut().unwrap().epoch = Some(4);
    let spec = ChainSpec::from_genesis(genesis).unwrap();
    assert_eq!(spec.epoch, 4);
    let dirs: Vec<_> = keys.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes: Vec<Node> = keys
        .iter()
        .zip(&dirs)
        .map(|(k, d)| {
            netmind_chain::node::init(d.path(), &spec).unwrap();
            Node::open(d.path(), k.clone(), PoolConfig::default()).unwrap()
        })
        .collect();
    let mut ts = nodes[0].head().0.timestamp;
    for n in 1..=10u64 {
        ts += 1;
        let sealer = (n % 3) as usize;
        if n == 6 {
            nodes[sealer].propose(Address::repeat_byte(9), true);
        }
        nodes[sealer].seal_next(ts).unwrap();
        for (i, node) in nodes.iter().enumerate() {
            if i != sealer {
                node.import(rlp(&nodes[sealer], n)).unwrap();
            }
        }
    }
    let reader = nodes[0].reader().unwrap();
    for n in 0..=10u64 {
        let header = reader
            .header(reader.canonical_hash(n).unwrap().unwrap())
            .unwrap()
            .unwrap();
        let cached = netmind_chain::import::snapshot_at(&spec, &reader, &header).unwrap();
        let rebuilt = netmind_chain::import::rebuild_snapshot(&spec, &reader, &header).unwrap();
        assert_eq!(cached.sorted_signers(), rebuilt.sorted_signers(), "at {n}");
        for k in &keys {
            assert_eq!(
                cached.may_seal(n + 1, k.address()),
                rebuilt.may_seal(n + 1, k.address()),
                "at {n}"
            );
        }
        let checkpoint = n.is_multiple_of(4);
        assert_eq!(
            header.extra_data.len() == 32 + 3 * 20 + 65,
            checkpoint,
            "blocks 0, 4 and 8 carry the signer list"
        );
    }
}

#[test]
fn bad_blocks_and_votes_are_refused_and_change_nothing() {
    let t = three();
    let ts = t.nodes[0].head().0.timestamp + 1;
    let b1 = t.nodes[1].seal_next(ts).unwrap();
    let good = rlp(&t.nodes[1], 1);

    // Sealed by a stranger.
    let stranger = PrivateKeySigner::random();
    let mut b = good.clone();
    seal(&mut b.header, &stranger).unwrap();
    assert!(matches!(
        refused(&t.nodes[0], b),
        ImportError::Seal(CliqueError::UnauthorizedSigner(a)) if a == stranger.address()
    ));
    // A seal that is not a signature / does not match the header.
    let mut b = good.clone();
    let mut extra = b.header.extra_data.to_vec();
    let n = extra.len();
    extra[n - 65..].fill(0);
    b.header.extra_data = extra.into();
    assert!(matches!(
        refused(&t.nodes[0], b),
        ImportError::Seal(CliqueError::InvalidSeal(_))
    ));
    let mut b = good.clone();
    b.header.gas_limit -= 1;
    assert!(
        matches!(
            refused(&t.nodes[0], b),
            ImportError::Seal(_) | ImportError::Mismatch { .. }
        ),
        "a header changed after sealing"
    );
    // Wrong difficulty (signer 1 is in turn for block 1).
    let mut b = good.clone();
    b.header.difficulty = netmind_chain::clique::DIFF_NO_TURN;
    seal(&mut b.header, &t.keys[1]).unwrap();
    assert!(matches!(
        refused(&t.nodes[0], b),
        ImportError::Mismatch { .. }
    ));
    assert_eq!(t.nodes[0].import(good).unwrap(), Imported::Head(1, b1.hash));

    // Signer 1 signed block 1: it may not seal block 2 (limit 2 of 3), and a
    // block 2 re-sealed by it is refused.
    let err = t.nodes[1].seal_next(ts + 1).unwrap_err();
    assert!(
        err.to_string().contains("signed recently"),
        "sealing refused: {err}"
    );
    t.nodes[2].import(rlp(&t.nodes[1], 1)).unwrap();
    let b2 = t.nodes[2].seal_next(ts + 1).unwrap();
    let mut b = rlp(&t.nodes[2], 2);
    seal(&mut b.header, &t.keys[1]).unwrap();
    assert!(matches!(
        refused(&t.nodes[0], b),
        ImportError::Seal(CliqueError::RecentlySigned(_))
    ));
    // An unknown parent.
    let mut b = rlp(&t.nodes[2], 2);
    b.header.parent_hash = B256::repeat_byte(9);
    seal(&mut b.header, &t.keys[2]).unwrap();
    assert!(matches!(
        refused(&t.nodes[0], b),
        ImportError::UnknownParent(_)
    ));

    // Votes: a stranger's, another chain's, a bad signature, equivocation.
    let node = &t.nodes[0];
    let v = vote(node, 1, &stranger);
    assert_eq!(
        node.receive_vote(&v),
        Err(FinalityError::NotAuthority(stranger.address()))
    );
    let mut other = vote(node, 1, &t.keys[2]).vote;
    other.chain_id += 1;
    let v = SignedVote::sign(other, &t.keys[2]).unwrap();
    assert!(matches!(
        node.receive_vote(&v),
        Err(FinalityError::WrongChain { .. })
    ));
    let mut v = vote(node, 1, &t.keys[2]);
    v.vote.number = 5; // signature no longer matches: recovers someone else
    assert!(node.receive_vote(&v).is_err());
    assert_eq!(node.finalized().0, 0, "refused votes changed nothing");
    // The third signature (seal of 1, own vote of 0, vote of 2) finalises.
    node.receive_vote(&vote(node, 1, &t.keys[2])).unwrap();
    assert_eq!(node.finalized(), (1, b1.hash));
    let real = Vote {
        chain_id: node.spec.chain_id,
        number: 2,
        hash: b2.hash,
    };
    node.receive_vote(&SignedVote::sign(real, &t.keys[2]).unwrap())
        .unwrap();
    let mut twin = real;
    twin.hash = B256::repeat_byte(1);
    assert!(matches!(
        node.receive_vote(&SignedVote::sign(twin, &t.keys[2]).unwrap()),
        Err(FinalityError::Equivocation { .. })
    ));

    // A block conflicting with the finalized one is refused: an out-of-turn
    // block 1 by signer 2 on a fresh chain.
    let fresh = {
        let d = tempfile::tempdir().unwrap();
        netmind_chain::node::init(d.path(), &node.spec).unwrap();
        let n = Node::open(d.path(), t.keys[2].clone(), PoolConfig::default()).unwrap();
        n.seal_next(ts).unwrap();
        rlp(&n, 1)
    };
    assert!(matches!(
        refused(node, fresh),
        ImportError::ConflictsWithFinalized { number: 1, .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_api_serves_blocks_and_refuses_garbage() {
    let keys: Vec<PrivateKeySigner> = (0..3).map(|_| PrivateKeySigner::random()).collect();
    let spec = spec(&keys);
    let d = tempfile::tempdir().unwrap();
    netmind_chain::node::init(d.path(), &spec).unwrap();
    let node = Arc::new(Node::open(d.path(), keys[0].clone(), PoolConfig::default()).unwrap());
    let ts = node.head().0.timestamp + 1;
    let sealed = node.seal_next(ts).unwrap();
    let (handle, addr) = netmind_chain::rpc::serve(node.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let call = |method: &str, params: serde_json::Value| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        post(addr, body.to_string())
    };
    let head = call("netmind_head", json!([])).await;
    assert_eq!(head["result"]["number"], "0x1");
    assert_eq!(head["result"]["finalized"], "0x0", "1 of 3 is not final");
    let blocks = call("netmind_getBlocks", json!(["0x1", 10])).await;
    let blocks = blocks["result"].as_array().unwrap();
    assert_eq!(blocks.len(), 1);
    let raw: alloy_primitives::Bytes = blocks[0].as_str().unwrap().parse().unwrap();
    let back = netmind_chain::import::decode_block(&raw).unwrap();
    assert_eq!(back.header.hash_slow(), sealed.hash);
    assert_eq!(
        call("netmind_newBlock", json!([raw])).await["result"],
        "known"
    );
    for (method, params, code) in [
        ("netmind_newBlock", json!(["0x1234"]), -32602),
        ("netmind_newBlock", json!([42]), -32602),
        ("netmind_newBlock", json!([]), -32602),
        ("netmind_getBlocks", json!(["one", 2]), -32602),
        ("netmind_vote", json!([{}]), -32602),
        (
            "netmind_vote",
            json!([{"chainId": "0x1", "number": "0x1", "hash": sealed.hash, "signature": "0x00"}]),
            -32602,
        ),
        ("clique_propose", json!(["0xnot-an-address", true]), -32602),
    ] {
        let r = call(method, params.clone()).await;
        assert_eq!(r["error"]["code"], code, "{method} {params}: {r}");
    }
    // A signed vote from a non-authority: refused with its reason.
    let stranger = PrivateKeySigner::random();
    let v = SignedVote::sign(
        Vote {
            chain_id: spec.chain_id,
            number: 1,
            hash: sealed.hash,
        },
        &stranger,
    )
    .unwrap();
    let r = call(
        "netmind_vote",
        json!([netmind_chain::net::vote_to_json(&v)]),
    )
    .await;
    assert_eq!(r["error"]["code"], -32000);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an authority"),
        "{r}"
    );
    // A block from another chain's authority.
    let other = {
        let d = tempfile::tempdir().unwrap();
        let k = PrivateKeySigner::random();
        let s = spec_for(&k);
        netmind_chain::node::init(d.path(), &s).unwrap();
        let n = Node::open(d.path(), k, PoolConfig::default()).unwrap();
        let b = n.seal_next(ts + 1).unwrap();
        n.rlp_block(b.header.number).unwrap().unwrap()
    };
    let r = call("netmind_newBlock", json!([other])).await;
    assert_eq!(r["error"]["code"], -32000, "{r}");
    // clique_propose queues a vote that the next sealed block carries.
    let newcomer = Address::repeat_byte(7);
    call("clique_propose", json!([newcomer, true])).await;
    assert_eq!(node.proposals().get(&newcomer), Some(&true));
    call("clique_discard", json!([newcomer])).await;
    assert!(node.proposals().is_empty());
    assert_eq!(node.head().0.number, 1, "garbage changed nothing");
    let _ = handle.stop();
}

fn spec_for(key: &PrivateKeySigner) -> ChainSpec {
    let mut genesis = ChainSpec::dev(1).genesis;
    genesis.extra_data = signers_extra(&[key.address()]);
    genesis.config.chain_id = 999;
    ChainSpec::from_genesis(genesis).unwrap()
}
