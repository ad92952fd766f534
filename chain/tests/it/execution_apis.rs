//! The execution-apis JSON-RPC conformance suite (`rpc-compat`, the `.io` files
//! in `$NETMIND_CONFORMANCE_DIR/execution-apis/tests/`), run against our node.
//!
//! The suite's recorded chain (`genesis.json` + `chain.rlp`) is imported with
//! trusted seals into a temporary datadir ([`crate::import::import_recorded`]),
//! a read-only node serves it on 127.0.0.1, and every `.io` file is replayed over
//! real HTTP: each `>> request` line is posted and the reply compared with the
//! following `<< response` line. Lines starting with `//` are comments.
//!
//! Comparison is exact JSON equality, with two documented tolerances:
//! - error responses: `code` must be equal, `message` and `data` are not compared
//!   (the spec fixes error codes, not client wording);
//! - files marked `// speconly` (the suite says "client response is only checked
//!   for schema validity"): a `result` of the same JSON kind is enough.
//!
//! [`KNOWN_FAILURES`] lists, with the reason, every file (or whole method folder)
//! we knowingly fail. The test fails when a file outside the list fails, and also
//! when a listed file passes, so the list is kept honest. Set
//! `NETMIND_IO_VERBOSE=1` to print each exchange that differs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use netmind_chain::NodeConfig;
use netmind_chain::node::start_readonly;
use netmind_chain::pool::PoolConfig;
use serde_json::Value;

use crate::util::post;

/// Files (`method/name.io`) or whole method folders (`method/`) we knowingly
/// fail, and why. Keep the reasons short and true.
const KNOWN_FAILURES: &[(&str, &str)] = &[
    // Methods the node does not serve (-32601).
    ("debug_traceBlockByHash/", "tracing not implemented"),
    ("debug_traceBlockByNumber/", "tracing not implemented"),
    ("debug_traceTransaction/", "tracing not implemented"),
    ("eth_config/", "EIP-7910 not implemented"),
    ("eth_simulateV1/", "not implemented"),
    ("testing_buildBlockV1/", "not implemented"),
    // Served methods that answer differently.
    (
        "eth_sendRawTransaction/send-access-list-transaction.io",
        "nonce gap (tx nonce 2, account nonce 0): the pool refuses gaps instead of queueing",
    ),
    (
        "eth_sendRawTransaction/send-dynamic-fee-access-list-transaction.io",
        "nonce gap (tx nonce 3): the pool refuses gaps instead of queueing",
    ),
    (
        "eth_sendRawTransaction/send-dynamic-fee-transaction.io",
        "nonce gap (tx nonce 1): the pool refuses gaps instead of queueing",
    ),
    (
        "eth_sendRawTransaction/send-blob-tx.io",
        "the pool refuses blob transactions (and this one is over the 128 KiB limit)",
    ),
];

/// One `>>` request and its `<<` expected response.
struct Exchange {
    request: String,
    expected: Value,
}

struct IoFile {
    /// `method/name.io`
    name: String,
    speconly: bool,
    exchanges: Vec<Exchange>,
}

fn tests_dir() -> PathBuf {
    crate::eip225::conformance_dir().join("execution-apis/tests")
}

fn read_io(dir: &Path) -> Vec<IoFile> {
    let mut files = Vec::new();
    let mut methods: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e} (set NETMIND_CONFORMANCE_DIR)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    methods.sort();
    for m in methods {
        let mut ios: Vec<_> = std::fs::read_dir(&m)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "io"))
            .collect();
        ios.sort();
        for path in ios {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = format!(
                "{}/{}",
                m.file_name().unwrap().to_string_lossy(),
                path.file_name().unwrap().to_string_lossy()
            );
            let mut file = IoFile {
                name,
                speconly: false,
                exchanges: vec![],
            };
            let mut pending: Option<String> = None;
            for line in text.lines() {
                if let Some(c) = line.strip_prefix("//") {
                    file.speconly |= c.trim_start().starts_with("speconly");
                } else if let Some(req) = line.strip_prefix(">>") {
                    assert!(pending.is_none(), "{}: two requests in a row", file.name);
                    pending = Some(req.trim().to_string());
                } else if let Some(resp) = line.strip_prefix("<<") {
                    let request = pending
                        .take()
                        .unwrap_or_else(|| panic!("{}: response without request", file.name));
                    let expected = serde_json::from_str(resp.trim())
                        .unwrap_or_else(|e| panic!("{}: bad response JSON: {e}", file.name));
                    file.exchanges.push(Exchange { request, expected });
                } else if !line.trim().is_empty() {
                    panic!("{}: unexpected line {line:?}", file.name);
                }
            }
            files.push(file);
        }
    }
    files
}

/// Whether `got` answers like `expected` (see the module docs for tolerances).
fn matches(expected: &Value, got: &Value, speconly: bool) -> bool {
    if expected.get("id") != got.get("id") || expected.get("jsonrpc") != got.get("jsonrpc") {
        return false;
    }
    match (expected.get("error"), got.get("error")) {
        (Some(e), Some(g)) => return e.get("code") == g.get("code"),
        (Some(_), None) | (None, Some(_)) => return false,
        (None, None) => {}
    }
    let (Some(e), Some(g)) = (expected.get("result"), got.get("result")) else {
        return false;
    };
    if speconly {
        std::mem::discriminant(e) == std::mem::discriminant(g)
    } else {
        e == g
    }
}

fn known_failure(name: &str) -> Option<&'static str> {
    KNOWN_FAILURES
        .iter()
        .find(|(k, _)| *k == name || (k.ends_with('/') && name.starts_with(k)))
        .map(|(_, why)| *why)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_apis_io() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || crate::import::import_recorded(&path))
        .await
        .unwrap();
    let running = start_readonly(NodeConfig {
        datadir: dir.path().to_path_buf(),
        http: "127.0.0.1:0".parse().unwrap(),
        ws: None,
        pool: PoolConfig::default(),
    })
    .await
    .unwrap();
    let addr = running.http_addr;
    let verbose = std::env::var_os("NETMIND_IO_VERBOSE").is_some();

    let files = read_io(&tests_dir());
    let mut results: BTreeMap<String, bool> = BTreeMap::new();
    for file in &files {
        let mut ok = true;
        for ex in &file.exchanges {
            let got = post(addr, ex.request.clone()).await;
            if !matches(&ex.expected, &got, file.speconly) {
                ok = false;
                if verbose {
                    println!(
                        "--- {}\n>> {}\n<< {}\ngot {}",
                        file.name, ex.request, ex.expected, got
                    );
                }
            }
        }
        results.insert(file.name.clone(), ok);
    }
    running.stop().await;

    let mut regressions = Vec::new();
    let mut now_passing = Vec::new();
    let (mut pass, mut fail) = (0, 0);
    for (name, ok) in &results {
        let known = known_failure(name);
        println!(
            "{} {name}{}",
            if *ok { "PASS" } else { "FAIL" },
            known.map(|w| format!("  (known: {w})")).unwrap_or_default()
        );
        if *ok {
            pass += 1;
        } else {
            fail += 1;
        }
        match (ok, known) {
            (false, None) => regressions.push(name.clone()),
            (true, Some(_)) => now_passing.push(name.clone()),
            _ => {}
        }
    }
    println!(
        "execution-apis: {pass} passed, {fail} failed (all known), {} files",
        results.len()
    );
    for (k, _) in KNOWN_FAILURES {
        assert!(
            results
                .keys()
                .any(|n| n == k || (k.ends_with('/') && n.starts_with(k))),
            "KNOWN_FAILURES names {k}, which is not in the suite"
        );
    }
    assert!(
        regressions.is_empty() && now_passing.is_empty(),
        "failing but not in KNOWN_FAILURES: {regressions:?}\n\
         passing but listed in KNOWN_FAILURES (remove them): {now_passing:?}"
    );
}
