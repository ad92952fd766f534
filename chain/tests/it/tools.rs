//! External tools for the differential tests: anvil and cast (npm
//! `@foundry-rs/*-linux-amd64`) and solcjs (npm `solc`), installed by
//! `scripts/test.sh` into `.tools/npm` (or `$NETMIND_TOOLS_DIR`).
//!
//! A missing tool fails the test when `NETMIND_REQUIRE_TOOLS=1` (as CI runs
//! it) and skips it with a printed notice otherwise.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, Bytes, U256, keccak256};
use serde_json::Value;

/// How the tools get installed, for messages.
pub(crate) const INSTALL_HINT: &str = "scripts/test.sh installs it (npm install --prefix .tools/npm \
     @foundry-rs/anvil-linux-amd64 @foundry-rs/cast-linux-amd64 solc; see its \"== npm tools\" step)";

/// The npm prefix the tools are installed under.
pub(crate) fn tools_dir() -> PathBuf {
    match std::env::var_os("NETMIND_TOOLS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/npm"),
    }
}

fn required() -> bool {
    std::env::var("NETMIND_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// `node_modules/.bin/NAME` under [`tools_dir`], or `None` (after printing a
/// skip notice) when it is missing; panics instead under `NETMIND_REQUIRE_TOOLS=1`.
pub(crate) fn tool(name: &str) -> Option<PathBuf> {
    let path = tools_dir().join("node_modules/.bin").join(name);
    if path.exists() {
        return Some(path);
    }
    missing(&format!("{name} not found at {}", path.display()))
}

fn missing<T>(what: &str) -> Option<T> {
    assert!(
        !required(),
        "{what}; NETMIND_REQUIRE_TOOLS=1 makes this a failure: {INSTALL_HINT}"
    );
    // Straight to stderr: the test harness captures `eprintln!`.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}; {INSTALL_HINT}");
    None
}

/// A contract compiled by solcjs.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    /// Creation code (constructor arguments not included).
    pub(crate) bytecode: Bytes,
    /// Runtime code, as `eth_getCode` returns it after deployment.
    pub(crate) runtime: Bytes,
}

/// `chain/tests/data/Token.sol` compiled by solcjs for Prague (our node's
/// hardfork), once per test process; `None` when node or solc is missing (see
/// [`tool`]).
pub(crate) fn token() -> Option<Compiled> {
    static TOKEN: OnceLock<Option<Compiled>> = OnceLock::new();
    TOKEN.get_or_init(|| compile("Token")).clone()
}

fn compile(name: &str) -> Option<Compiled> {
    let modules = tools_dir().join("node_modules");
    if !modules.join("solc/package.json").exists() {
        return missing(&format!("npm solc not found under {}", modules.display()));
    }
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let out = match Command::new("node")
        .env("NODE_PATH", &modules)
        .arg(data.join("solc.js"))
        .arg("prague")
        .arg(data.join(format!("{name}.sol")))
        .output()
    {
        Ok(out) => out,
        Err(e) => return missing(&format!("node could not be started ({e})")),
    };
    assert!(
        out.status.success(),
        "solcjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("solc.js prints JSON");
    let field = |k: &str| -> Bytes { v[name][k].as_str().unwrap().parse().unwrap() };
    Some(Compiled {
        bytecode: field("bytecode"),
        runtime: field("deployedBytecode"),
    })
}

/// A child process killed (and reaped) on drop.
pub(crate) struct ChildGuard(pub(crate) Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts anvil on a free 127.0.0.1 port with `args`; returns the process and
/// its HTTP address once it listens.
pub(crate) fn start_anvil(anvil: &PathBuf, args: &[&str]) -> (ChildGuard, std::net::SocketAddr) {
    let mut child = Command::new(anvil)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start anvil");
    let stdout = child.stdout.take().unwrap();
    let guard = ChildGuard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some(addr) = line.strip_prefix("Listening on ") {
                let _ = tx.send(addr.trim().to_string());
                sent = true;
            }
            // Keep draining so anvil never blocks on a full pipe.
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = rx
        .recv_timeout(deadline - Instant::now())
        .expect("anvil did not print its address within 20 s");
    (guard, addr.parse().expect("anvil's address"))
}

/// ABI: `selector(sig) ‖ args` with each argument one 32-byte word.
pub(crate) fn calldata(sig: &str, args: &[Word]) -> Bytes {
    let mut v = keccak256(sig.as_bytes())[..4].to_vec();
    for a in args {
        v.extend_from_slice(&a.word());
    }
    v.into()
}

/// One static ABI argument.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Word {
    Addr(Address),
    Uint(U256),
}

impl Word {
    fn word(self) -> [u8; 32] {
        match self {
            Self::Addr(a) => a.into_word().0,
            Self::Uint(u) => u.to_be_bytes(),
        }
    }
}

/// `Token`'s creation code with its constructor argument `supply`.
pub(crate) fn token_deploy_code(token: &Compiled, supply: U256) -> Bytes {
    let mut code = token.bytecode.to_vec();
    code.extend_from_slice(&supply.to_be_bytes::<32>());
    code.into()
}

/// JSON-RPC over HTTP to any node (ours or anvil).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rpc(pub(crate) std::net::SocketAddr);

impl Rpc {
    /// The full response of `method(params)`.
    pub(crate) async fn raw(&self, method: &str, params: Value) -> Value {
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        crate::util::post(self.0, body.to_string()).await
    }

    /// The `result` of `method(params)`; panics on an error response.
    pub(crate) async fn call(&self, method: &str, params: Value) -> Value {
        let resp = self.raw(method, params).await;
        match resp.get("result") {
            Some(r) => r.clone(),
            None => panic!("{method} at {} failed: {resp}", self.0),
        }
    }

    /// Polls until the receipt of `hash` exists (10 s at most).
    pub(crate) async fn receipt(&self, hash: alloy_primitives::B256) -> Value {
        for _ in 0..500 {
            let r = self
                .call("eth_getTransactionReceipt", serde_json::json!([hash]))
                .await;
            if !r.is_null() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no receipt for {hash} at {} after 10 s", self.0);
    }
}
