//! Networking between nodes of one chain: static peers over JSON-RPC.
//!
//! Every node serves, on its JSON-RPC port, a small peer API whose messages are
//! authenticated by their content (Clique seals, signed finality votes), so no
//! transport authentication is needed:
//!
//! - `netmind_head` → `{number, hash, finalized, finalizedHash, votes}`, `votes`
//!   being the last signed finality votes the node saw of each authority (so
//!   a node that missed pushed votes, e.g. a follower, still finalises);
//! - `netmind_getBlocks(from, count)` → up to [`MAX_BLOCKS`] canonical blocks
//!   from `from`, each a full RLP block (`0x` hex);
//! - `netmind_newBlock(rlp)` → `"head"` or `"known"`: the block goes through
//!   [`Node::import`] (seal verified, executed, roots checked) or is refused
//!   with -32000 and the reason (-32602 for undecodable bytes);
//! - `netmind_vote({chainId, number, hash, signature})` → the finalized number:
//!   a finality vote ([`SignedVote`]), refused with -32000 if its signer is not
//!   an authority, it names another chain or equivocates;
//! - `clique_propose(address, auth)`, `clique_discard(address)`,
//!   `clique_proposals`, `clique_getSnapshot` (geth's Clique API).
//!
//! [`spawn`] runs the client side: it pulls missing blocks from peers on start
//! and whenever a peer's head is ahead (a poll every [`POLL`]), pushes blocks
//! this node seals and its finality votes to every peer, and forwards
//! transactions admitted by `eth_sendRawTransaction`.
//!
//! Fork choice: authorities avoid forks (out of turn a block is sealed only
//! after a delay and only if no block at that height arrived, see
//! [`crate::node`], and not while a peer reports a longer chain), and resolve
//! those that still happen (a partition, two backups at once): when a peer's
//! chain is ahead, or level on another block, and does not extend ours, the
//! node walks back to the last block both have (never below its finalized
//! block), fetches the peer's branch (at most [`MAX_BRANCH`] blocks) and
//! offers it to [`Node::reorg`], which switches to it only if it is heavier
//! by Clique's rule (total difficulty, then fewer blocks, then the lower
//! hash). A block at or below the finalized height that is not canonical is
//! never taken.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, Bytes, Signature};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::Error;
use crate::finality::{SignedVote, Vote};
use crate::import::{ImportError, RlpBlock, decode_block};
use crate::node::{ChainEvent, Imported, Node, Reorg};
use crate::rpc::{err, internal};

/// Most blocks one `netmind_getBlocks` returns.
pub const MAX_BLOCKS: u64 = 64;
/// How often peers' heads are polled.
pub const POLL: Duration = Duration::from_millis(250);
/// Timeout of one request to a peer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request to a peer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The peer URL is not usable.
    #[error("invalid peer url {0}: use http://HOST:PORT or ws://HOST:PORT")]
    Url(String),
    /// Connecting, sending or reading failed.
    #[error("peer {peer}: {why}")]
    Transport {
        /// The peer.
        peer: String,
        /// What failed.
        why: String,
    },
    /// The peer answered with a JSON-RPC error.
    #[error("peer {peer}: error {code}: {message}")]
    Rpc {
        /// The peer.
        peer: String,
        /// JSON-RPC error code.
        code: i64,
        /// Its message.
        message: String,
    },
}

/// Turns `http://h:p`, `ws://h:p` (same port serves both) into the HTTP URL.
pub fn peer_url(url: &str) -> Result<String, NetError> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("ws://"))
        .ok_or_else(|| NetError::Url(url.into()))?;
    if rest.is_empty() || rest.contains('/') {
        return Err(NetError::Url(url.into()));
    }
    Ok(format!("http://{rest}"))
}

/// A JSON-RPC client for peers (plain HTTP/1.1).
#[derive(Debug, Clone)]
pub struct PeerClient {
    client: Client<HttpConnector, Full<hyper::body::Bytes>>,
}

impl Default for PeerClient {
    fn default() -> Self {
        Self::new()
    }
}

impl PeerClient {
    /// A client with a connection pool.
    pub fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Calls `method` with `params` on `peer` (an `http://` URL); returns the result.
    pub async fn call(&self, peer: &str, method: &str, params: Value) -> Result<Value, NetError> {
        let transport = |why: String| NetError::Transport {
            peer: peer.into(),
            why,
        };
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let req = hyper::Request::post(peer)
            .header("content-type", "application/json")
            .body(Full::new(hyper::body::Bytes::from(body.to_string())))
            .map_err(|e| transport(e.to_string()))?;
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| transport(e.to_string()))?;
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| transport(e.to_string()))?
                .to_bytes();
            serde_json::from_slice::<Value>(&bytes).map_err(|e| transport(e.to_string()))
        };
        let mut v = tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| transport("timed out".into()))??;
        if let Some(e) = v.get("error") {
            return Err(NetError::Rpc {
                peer: peer.into(),
                code: e["code"].as_i64().unwrap_or(0),
                message: e["message"].as_str().unwrap_or_default().into(),
            });
        }
        Ok(v["result"].take())
    }
}

fn args(params: &Params<'_>) -> Result<Vec<Value>, ErrorObjectOwned> {
    match params.as_str() {
        None => Ok(vec![]),
        Some(_) => params
            .parse::<Vec<Value>>()
            .map_err(|e| err(-32602, format!("invalid params: {e}"))),
    }
}

fn quantity(v: Option<&Value>, what: &str) -> Result<u64, ErrorObjectOwned> {
    let bad = || err(-32602, format!("invalid {what}: expected a quantity"));
    match v {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(bad),
        Some(Value::String(s)) => {
            let hex = s.strip_prefix("0x").ok_or_else(bad)?;
            u64::from_str_radix(hex, 16).map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

fn parse<T: std::str::FromStr>(v: Option<&Value>, what: &str) -> Result<T, ErrorObjectOwned> {
    v.and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err(-32602, format!("invalid {what}")))
}

/// Parses a vote object `{chainId, number, hash, signature}`.
pub fn vote_from_json(v: &Value) -> Result<SignedVote, ErrorObjectOwned> {
    let sig: Bytes = parse(v.get("signature"), "signature")?;
    let signature =
        Signature::from_raw(&sig).map_err(|e| err(-32602, format!("invalid signature: {e}")))?;
    Ok(SignedVote {
        vote: Vote {
            chain_id: quantity(v.get("chainId"), "chainId")?,
            number: quantity(v.get("number"), "number")?,
            hash: parse(v.get("hash"), "hash")?,
        },
        signature,
    })
}

/// A vote as `netmind_vote` takes it.
pub fn vote_to_json(v: &SignedVote) -> Value {
    json!({
        "chainId": format!("{:#x}", v.vote.chain_id),
        "number": format!("{:#x}", v.vote.number),
        "hash": v.vote.hash,
        "signature": Bytes::from(v.signature.as_bytes().to_vec()),
    })
}

/// The peer API and Clique methods over `node`.
pub fn module(node: Arc<Node>) -> RpcModule<Arc<Node>> {
    let mut m = RpcModule::new(node);
    m.register_blocking_method("netmind_head", |_, node, _| {
        let (head, hash) = node.head();
        let (fin, fin_hash) = node.finalized();
        Ok::<_, ErrorObjectOwned>(json!({
            "number": format!("{:#x}", head.number),
            "hash": hash,
            "finalized": format!("{fin:#x}"),
            "finalizedHash": fin_hash,
            "votes": node.recent_votes().iter().map(vote_to_json).collect::<Vec<_>>(),
        }))
    })
    .expect("unique name");
    m.register_blocking_method("netmind_getBlocks", |params, node, _| {
        let a = args(&params)?;
        let from = quantity(a.first(), "from")?;
        let count = quantity(a.get(1), "count")?.min(MAX_BLOCKS);
        let mut out = Vec::new();
        for n in from..from.saturating_add(count) {
            match node.rlp_block(n).map_err(internal)? {
                Some(b) => out.push(b),
                None => break,
            }
        }
        Ok::<_, ErrorObjectOwned>(out)
    })
    .expect("unique name");
    m.register_blocking_method("netmind_newBlock", |params, node, _| {
        let a = args(&params)?;
        let raw: Bytes = parse(a.first(), "block: expected 0x-hex RLP")?;
        let block = decode_block(&raw).map_err(|e| err(-32602, e.to_string()))?;
        match node.import(block) {
            Ok(Imported::Known) => Ok("known"),
            Ok(Imported::Head(..)) => Ok("head"),
            Err(e) => Err(err(-32000, format!("block refused: {e}"))),
        }
    })
    .expect("unique name");
    m.register_blocking_method("netmind_vote", |params, node, _| {
        let a = args(&params)?;
        let v = vote_from_json(a.first().unwrap_or(&Value::Null))?;
        node.receive_vote(&v)
            .map_err(|e| err(-32000, format!("vote refused: {e}")))?;
        Ok::<_, ErrorObjectOwned>(format!("{:#x}", node.finalized().0))
    })
    .expect("unique name");
    m.register_method("clique_propose", |params, node, _| {
        let a = args(&params)?;
        let address: Address = parse(a.first(), "address")?;
        let auth = a
            .get(1)
            .and_then(Value::as_bool)
            .ok_or_else(|| err(-32602, "invalid auth: expected a boolean"))?;
        node.propose(address, auth);
        Ok::<_, ErrorObjectOwned>(Value::Null)
    })
    .expect("unique name");
    m.register_method("clique_discard", |params, node, _| {
        let a = args(&params)?;
        let address: Address = parse(a.first(), "address")?;
        node.discard(address);
        Ok::<_, ErrorObjectOwned>(Value::Null)
    })
    .expect("unique name");
    m.register_method("clique_proposals", |_, node, _| {
        Ok::<_, ErrorObjectOwned>(node.proposals())
    })
    .expect("unique name");
    m.register_blocking_method("clique_getSnapshot", |_, node, _| {
        let snap = node.snapshot().map_err(internal)?;
        let (_, hash) = node.head();
        Ok::<_, ErrorObjectOwned>(json!({
            "number": snap.number,
            "hash": hash,
            "signers": snap.sorted_signers(),
        }))
    })
    .expect("unique name");
    m
}

/// Connects `node` to `peers` (`http://` or `ws://` URLs of their JSON-RPC
/// ports): the node does not seal until a first sync round ran, then blocks
/// it seals and its votes are pushed, admitted transactions forwarded, and
/// peers' heads polled every [`POLL`]. Abort the handle to stop.
pub fn spawn(node: Arc<Node>, peers: &[String]) -> Result<JoinHandle<()>, NetError> {
    let peers: Vec<String> = peers
        .iter()
        .map(|p| peer_url(p))
        .collect::<Result<_, _>>()?;
    let client = PeerClient::new();
    node.set_synced(false);
    let mut blocks = node.subscribe_blocks();
    let mut votes = node.subscribe_votes();
    let mut txs = node.subscribe_txs();
    Ok(tokio::spawn(async move {
        let mut tasks = Vec::new();
        sync_round(&node, &client, &peers).await;
        node.set_synced(true);
        // Blocks this node sealed.
        let (n, c, p) = (node.clone(), client.clone(), peers.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let block = match blocks.recv().await {
                    Ok(ChainEvent::Head(b)) => b,
                    Ok(ChainEvent::Removed(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                let sealer = crate::clique::recover_sealer(&block.header).ok();
                if !n.is_sealing() || sealer != Some(n.authority()) {
                    continue;
                }
                let Ok(Some(rlp)) = n.rlp_block(block.header.number) else {
                    continue;
                };
                broadcast(&c, &p, "netmind_newBlock", json!([rlp]));
            }
        }));
        let (c, p) = (client.clone(), peers.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                match votes.recv().await {
                    Ok(v) => broadcast(&c, &p, "netmind_vote", json!([vote_to_json(&v)])),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            }
        }));
        let (c, p) = (client.clone(), peers.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                match txs.recv().await {
                    Ok(raw) => broadcast(&c, &p, "eth_sendRawTransaction", json!([raw])),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            }
        }));
        let _guard = AbortOnDrop(tasks);
        loop {
            tokio::time::sleep(POLL).await;
            sync_round(&node, &client, &peers).await;
        }
    }))
}

struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(JoinHandle::abort);
    }
}

/// Sends `method(params)` to every peer without waiting; failures are logged.
fn broadcast(client: &PeerClient, peers: &[String], method: &'static str, params: Value) {
    for peer in peers {
        let (client, peer, params) = (client.clone(), peer.clone(), params.clone());
        tokio::spawn(async move {
            if let Err(e) = client.call(&peer, method, params).await {
                tracing::debug!(target: "chain::net", method, "{e}");
            }
        });
    }
}

/// Asks each peer for its head and imports the blocks it has beyond ours.
/// Returns how many blocks were imported.
pub async fn sync_round(node: &Arc<Node>, client: &PeerClient, peers: &[String]) -> usize {
    let mut imported = 0;
    for peer in peers {
        let (head, hash, votes) = match client.call(peer, "netmind_head", json!([])).await {
            Ok(mut v) => match quantity(v.get("number"), "number") {
                Ok(n) => (n, v["hash"].take(), v["votes"].take()),
                Err(_) => continue,
            },
            Err(e) => {
                tracing::debug!(target: "chain::net", "{e}");
                continue;
            }
        };
        let (ours, our_hash) = node.head();
        // Ahead, or level on another block: pull (a fork goes to the fork
        // choice).
        let level_fork = head == ours.number && hash != json!(our_hash);
        if head > ours.number || level_fork {
            node.set_peer_head(head);
            match pull(node, client, peer, head).await {
                Ok(n) => imported += n,
                Err(e) => tracing::warn!(target: "chain::net", %peer, "sync stopped: {e}"),
            }
            node.set_peer_head(0);
        }
        let fin = node.finalized().0;
        for v in votes.as_array().into_iter().flatten() {
            match vote_from_json(v) {
                Ok(v) if v.vote.number > fin => {
                    if let Err(e) = node.receive_vote(&v) {
                        tracing::debug!(target: "chain::net", %peer, "vote refused: {e}");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(target: "chain::net", %peer, "bad vote: {}", e.message()),
            }
        }
    }
    imported
}

async fn pull(
    node: &Arc<Node>,
    client: &PeerClient,
    peer: &str,
    head: u64,
) -> Result<usize, String> {
    let mut imported = 0;
    loop {
        let ours = node.head().0.number;
        if ours >= head {
            if ours == head {
                // Level with the peer: a fork of equal height still goes
                // to the fork choice.
                imported += fork_choice(node, client, peer, head, head).await?;
            }
            return Ok(imported);
        }
        let count = (head - ours).min(MAX_BLOCKS);
        let blocks = client
            .call(peer, "netmind_getBlocks", json!([ours + 1, count]))
            .await
            .map_err(|e| e.to_string())?;
        let blocks: Vec<Bytes> = serde_json::from_value(blocks).map_err(|e| e.to_string())?;
        if blocks.is_empty() {
            return Ok(imported);
        }
        for raw in blocks {
            let block = decode_block(&raw).map_err(|e| e.to_string())?;
            let n = node.clone();
            let number = block.header.number;
            match tokio::task::spawn_blocking(move || n.import(block)).await {
                Ok(Ok(Imported::Head(..))) => imported += 1,
                Ok(Ok(Imported::Known)) => {}
                Ok(Err(Error::Import(
                    ImportError::NotOnHead { .. } | ImportError::UnknownParent(_),
                ))) => {
                    // The peer's chain forks below this block.
                    let n = fork_choice(node, client, peer, number - 1, head).await?;
                    if n == 0 {
                        return Ok(imported);
                    }
                    imported += n;
                    break;
                }
                Ok(Err(e)) => {
                    return Err(format!("block {number} refused: {e}"));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// Blocks a fork choice fetches from a peer at most (the branch length).
pub const MAX_BRANCH: u64 = 1_024;

/// The peer's chain differs from ours at or below `from`: finds the last
/// block both have (no lower than our finalized block), fetches the peer's
/// branch after it up to `head`, and offers it to [`Node::reorg`]. Returns
/// how many blocks became canonical.
async fn fork_choice(
    node: &Arc<Node>,
    client: &PeerClient,
    peer: &str,
    from: u64,
    head: u64,
) -> Result<usize, String> {
    let (finalized, _) = node.finalized();
    let mut fork = from;
    loop {
        let theirs = peer_blocks(client, peer, fork, 1).await?;
        let Some(b) = theirs.first() else {
            return Err(format!("the peer has no block {fork}"));
        };
        let ours = node
            .reader()
            .map_err(|e| e.to_string())?
            .canonical_hash(fork);
        if ours.map_err(|e| e.to_string())? == Some(b.header.hash_slow()) {
            break;
        }
        if fork <= finalized || from - fork >= MAX_BRANCH {
            return Err(format!(
                "the peer's chain forks below block {fork} (finalized here: {finalized}): not followed"
            ));
        }
        fork -= 1;
    }
    if fork == head {
        return Ok(0);
    }
    let mut branch = Vec::new();
    let last = head.min(fork + MAX_BRANCH);
    while fork + (branch.len() as u64) < last {
        let next = fork + 1 + branch.len() as u64;
        let got = peer_blocks(client, peer, next, (last + 1 - next).min(MAX_BLOCKS)).await?;
        if got.is_empty() {
            break;
        }
        branch.extend(got);
    }
    let n = node.clone();
    match tokio::task::spawn_blocking(move || n.reorg(branch)).await {
        Ok(Ok(Reorg::Switched { replaced, head })) => {
            tracing::info!(target: "chain::net", %peer, fork, replaced, head = head.0, "followed the peer's heavier branch");
            Ok((head.0 - fork) as usize)
        }
        Ok(Ok(Reorg::Kept)) => Ok(0),
        Ok(Err(e)) => Err(format!(
            "the peer's branch after block {fork} was refused: {e}"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Up to `count` canonical blocks of `peer` from `from`, decoded.
async fn peer_blocks(
    client: &PeerClient,
    peer: &str,
    from: u64,
    count: u64,
) -> Result<Vec<RlpBlock>, String> {
    let raw = client
        .call(peer, "netmind_getBlocks", json!([from, count]))
        .await
        .map_err(|e| e.to_string())?;
    let raw: Vec<Bytes> = serde_json::from_value(raw).map_err(|e| e.to_string())?;
    raw.iter()
        .map(|r| decode_block(r).map_err(|e| e.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls() {
        assert_eq!(
            peer_url("http://127.0.0.1:1").unwrap(),
            "http://127.0.0.1:1"
        );
        assert_eq!(peer_url("ws://127.0.0.1:1/").unwrap(), "http://127.0.0.1:1");
        assert!(peer_url("127.0.0.1:1").is_err());
        assert!(peer_url("ftp://x").is_err());
    }

    #[test]
    fn votes_round_trip_through_json() {
        use alloy_primitives::B256;
        let key = alloy_signer_local::PrivateKeySigner::random();
        let v = Vote {
            chain_id: 7,
            number: 9,
            hash: B256::repeat_byte(3),
        };
        let signed = SignedVote::sign(v, &key).unwrap();
        let back = vote_from_json(&vote_to_json(&signed)).unwrap();
        assert_eq!(back, signed);
        assert_eq!(back.voter().unwrap(), key.address());
        assert!(vote_from_json(&json!({"chainId": "0x7"})).is_err());
    }
}
