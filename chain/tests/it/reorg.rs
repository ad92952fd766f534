//! Reorganisations between three authorities in one process: a node that
//! sealed a lighter fork switches to the heavier branch (state unwound
//! through the history and rebuilt, its replaced transaction pooled again),
//! keeps its chain against a lighter or equal branch, refuses a branch below
//! the finalized block, and puts its chain back when a branch block turns
//! out invalid mid-way.

use alloy_consensus::TxEip1559;
use alloy_eips::eip2930::AccessList;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use netmind_chain::Error;
use netmind_chain::clique::{DIFF_IN_TURN, DIFF_NO_TURN};
use netmind_chain::import::ImportError;
use netmind_chain::node::{ChainEvent, Node, Reorg};

use crate::network::{rlp, three, vote};
use crate::transactions::raw;
use crate::util::{CHAIN_ID, GWEI, sign};

/// Head hash and state root of `node`, to show nothing changed.
fn state(node: &Node) -> (alloy_primitives::B256, alloy_primitives::B256) {
    (node.head().1, node.reader().unwrap().state_root().unwrap())
}

#[test]
fn a_heavier_branch_replaces_a_lighter_fork_and_nothing_else_does() {
    let t = three();
    let n = &t.nodes;
    let mut ts = n[0].head().0.timestamp;
    // A transfer that only node 0 has.
    let payer = &netmind_chain::spec::dev_signers()[1];
    let tx = sign(
        payer,
        TxEip1559 {
            chain_id: CHAIN_ID,
            nonce: 0,
            gas_limit: 21_000,
            max_fee_per_gas: 3 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to: TxKind::Call(Address::repeat_byte(0x42)),
            value: U256::from(7),
            access_list: AccessList::default(),
            input: Bytes::new(),
        },
    );
    let tx_hash = n[0].submit_raw(&raw(&tx)).unwrap();

    // Partitioned: node 0 seals block 1 out of turn with the transfer; nodes
    // 1 and 2 seal blocks 1 and 2 in turn.
    ts += 1;
    let lone = n[0].seal_next(ts).unwrap();
    assert_eq!(lone.header.difficulty, DIFF_NO_TURN);
    assert_eq!(lone.transactions.len(), 1);
    assert!(n[0].with_pool(|p| p.is_empty()));
    let b1 = n[1].seal_next(ts).unwrap();
    n[2].import(rlp(&n[1], 1)).unwrap();
    ts += 1;
    let b2 = n[2].seal_next(ts).unwrap();
    n[1].import(rlp(&n[2], 2)).unwrap();
    assert_eq!(
        (b1.header.difficulty, b2.header.difficulty),
        (DIFF_IN_TURN, DIFF_IN_TURN)
    );

    // Healed: node 0 cannot import the other side's block 1 (its parent is
    // not the head) nor block 2 (unknown parent); the branch (1, 2)
    // outweighs its block 1 (4 against 1), so it switches.
    let e = n[0].import(rlp(&n[2], 1)).unwrap_err();
    assert!(
        matches!(e, Error::Import(ImportError::NotOnHead { .. })),
        "{e}"
    );
    let e = n[0].import(rlp(&n[2], 2)).unwrap_err();
    assert!(
        matches!(e, Error::Import(ImportError::UnknownParent(_))),
        "{e}"
    );
    let branch = vec![rlp(&n[2], 1), rlp(&n[2], 2)];
    let mut events = n[0].subscribe_blocks();
    assert_eq!(
        n[0].reorg(branch.clone()).unwrap(),
        Reorg::Switched {
            replaced: 1,
            head: (2, b2.hash)
        }
    );
    assert_eq!(state(&n[0]), state(&n[2]), "same head and state root");
    // Subscribers hear the replaced block go, then the branch's heads.
    let mut heard = vec![];
    while let Ok(e) = events.try_recv() {
        heard.push(match e {
            ChainEvent::Removed(b) => ("removed", b.hash),
            ChainEvent::Head(b) => ("head", b.hash),
        });
    }
    assert_eq!(
        heard,
        [("removed", lone.hash), ("head", b1.hash), ("head", b2.hash)]
    );
    let reader = n[0].reader().unwrap();
    assert_eq!(reader.canonical_hash(1).unwrap(), Some(b1.hash));
    assert_eq!(reader.tx_location(tx_hash).unwrap(), None, "unindexed");
    assert_eq!(reader.account(payer.address()).unwrap().unwrap().nonce, 0);
    drop(reader);
    // The replaced block's transfer is pooled again, and goes into block 3
    // (in turn for node 0).
    assert!(n[0].with_pool(|p| p.get(&tx_hash).is_some()));
    ts += 1;
    let b3 = n[0].seal_next(ts).unwrap();
    assert_eq!(b3.transactions.len(), 1);
    assert_eq!(*b3.transactions[0].tx_hash(), tx_hash);
    // The same branch again: already canonical.
    assert_eq!(n[0].reorg(branch).unwrap(), Reorg::Kept);

    // A lighter branch at height 3 (node 1 out of turn) is kept out.
    // Node 1 (at block 2, without node 0's block 3) seals its own block 3.
    let fork = n[1].seal_next(ts).unwrap();
    assert_eq!(fork.header.difficulty, DIFF_NO_TURN);
    let before = state(&n[0]);
    assert_eq!(n[0].reorg(vec![rlp(&n[1], 3)]).unwrap(), Reorg::Kept);
    assert_eq!(state(&n[0]), before);

    // A heavier branch whose last block is invalid: node 0 tries it and
    // puts its chain back. Nodes 1 and 2 build 3', 4', 5' (1 + 1 + 1 = 3
    // against node 0's block 3 with 2).
    n[2].import(rlp(&n[1], 3)).unwrap();
    let b4 = n[2].seal_next(ts + 1).unwrap();
    n[1].import(rlp(&n[2], 4)).unwrap();
    let b5 = n[1].seal_next(ts + 2).unwrap();
    assert_eq!(
        (b4.header.difficulty, b5.header.difficulty),
        (DIFF_NO_TURN, DIFF_NO_TURN)
    );
    let mut bad = rlp(&n[1], 5);
    bad.header.gas_limit -= 1; // no longer what was sealed
    let e = n[0]
        .reorg(vec![rlp(&n[1], 3), rlp(&n[1], 4), bad])
        .unwrap_err();
    assert!(matches!(e, Error::Import(_)), "{e}");
    assert_eq!(state(&n[0]), before, "the old chain is back");
    assert_eq!(
        n[0].reader().unwrap().canonical_hash(3).unwrap(),
        Some(b3.hash)
    );
    // The valid branch wins.
    assert_eq!(
        n[0].reorg(vec![rlp(&n[1], 3), rlp(&n[1], 4), rlp(&n[1], 5)])
            .unwrap(),
        Reorg::Switched {
            replaced: 1,
            head: (5, b5.hash)
        }
    );
    assert_eq!(state(&n[0]), state(&n[1]));

    // Finalise block 5 on node 0; a branch forking below it is refused.
    for k in &t.keys {
        let _ = n[0].receive_vote(&vote(&n[0], 5, k));
    }
    assert_eq!(n[0].finalized(), (5, b5.hash));
    let before = state(&n[0]);
    let e = n[0].reorg(vec![rlp(&n[1], 3)]);
    assert_eq!(e.unwrap(), Reorg::Kept, "already canonical");
    let e = n[0].reorg(vec![rlp(&t.nodes[0], 1)]).unwrap();
    assert_eq!(e, Reorg::Kept);
    // Node 0's own first block, long replaced, forks below block 5.
    let lone_again = netmind_chain::import::RlpBlock {
        header: lone.header,
        body: alloy_consensus::BlockBody {
            transactions: lone.transactions,
            ommers: vec![],
            withdrawals: Some(Default::default()),
        },
    };
    let e = n[0].reorg(vec![lone_again]).unwrap_err();
    assert!(
        matches!(e, Error::Import(ImportError::ConflictsWithFinalized { .. })),
        "{e}"
    );
    assert_eq!(state(&n[0]), before);
    // Not a chain: block 5 after block 3.
    let e = n[0].reorg(vec![rlp(&n[1], 3), rlp(&n[1], 5)]).unwrap_err();
    assert!(
        matches!(e, Error::Import(ImportError::NotABranch { .. })),
        "{e}"
    );
}

/// Over the peer API (`netmind_head`, `netmind_getBlocks`): a node level
/// with a peer on a lighter block, then behind a peer whose chain forks
/// below its head, follows the peer's heavier branch in one sync round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_follows_a_peers_heavier_branch() {
    use std::sync::Arc;

    use alloy_signer_local::PrivateKeySigner;
    use netmind_chain::net::{PeerClient, sync_round};
    use netmind_chain::pool::PoolConfig;

    let mut keys: Vec<PrivateKeySigner> = (0..3).map(|_| PrivateKeySigner::random()).collect();
    keys.sort_by_key(|k| k.address());
    let spec = crate::network::spec(&keys);
    let mut dirs = Vec::new();
    let n: Vec<Arc<Node>> = keys
        .iter()
        .map(|k| {
            let d = tempfile::tempdir().unwrap();
            netmind_chain::node::init(d.path(), &spec).unwrap();
            let node = Node::open(d.path(), k.clone(), PoolConfig::default()).unwrap();
            dirs.push(d);
            Arc::new(node)
        })
        .collect();
    let (_server, addr) = netmind_chain::rpc::serve(n[1].clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let peers = [format!("http://{addr}")];
    let client = PeerClient::new();
    let mut ts = n[0].head().0.timestamp;

    // Level: node 0's block 1 out of turn against node 1's in turn.
    ts += 1;
    n[0].seal_next(ts).unwrap();
    let b1 = n[1].seal_next(ts).unwrap();
    assert_eq!(sync_round(&n[0], &client, &peers).await, 1);
    assert_eq!(n[0].head().1, b1.hash);

    // Behind: node 0 seals block 2 out of turn; nodes 2 and 1 seal 2 and 3.
    ts += 1;
    n[0].seal_next(ts).unwrap();
    n[2].import(rlp(&n[1], 1)).unwrap();
    let b2 = n[2].seal_next(ts).unwrap();
    n[1].import(rlp(&n[2], 2)).unwrap();
    let b3 = n[1].seal_next(ts + 1).unwrap();
    assert_eq!(sync_round(&n[0], &client, &peers).await, 2);
    assert_eq!(n[0].head(), n[1].head());
    assert_eq!(
        n[0].reader().unwrap().canonical_hash(2).unwrap(),
        Some(b2.hash)
    );
    assert_eq!(n[0].head().1, b3.hash);
    assert_eq!(state(&n[0]), state(&n[1]));
    // In step: nothing more to do.
    assert_eq!(sync_round(&n[0], &client, &peers).await, 0);
}
