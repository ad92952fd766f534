//! `netmind market serve|book`, `netmind offer post|cancel`,
//! `netmind job submit|status|explain` against a real market process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::{keystore, netmind, pack, sample, stderr, stdout};

/// A `netmind market serve` child on a free loopback port.
pub(crate) struct Server {
    child: Option<Child>,
    pub(crate) url: String,
}

impl Server {
    pub(crate) fn start(data: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netmind"))
            .args(["market", "serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn netmind market serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "printed {url:?}");
        Self {
            child: Some(child),
            url,
        }
    }

    /// SIGTERM, then the exit status and stderr.
    fn stop(mut self) -> Output {
        let child = self.child.take().unwrap();
        let pid = child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        child.wait_with_output().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A keystore in its own directory: (keystore, password file, address).
fn key(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    keystore(&d)
}

fn with_key<'a>(args: &[&'a str], k: &'a (PathBuf, PathBuf, String), url: &'a str) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend([
        "--keystore",
        k.0.to_str().unwrap(),
        "--password-file",
        k.1.to_str().unwrap(),
        "--market",
        url,
    ]);
    v
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}\nstdout: {}",
        stderr(o),
        stdout(o)
    );
    stdout(o).trim().to_owned()
}

#[test]
fn a_host_and_an_owner_trade_through_a_market_served_by_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("market"));
    let url = server.url.clone();
    let host = key(tmp.path(), "host");
    let owner = key(tmp.path(), "owner");

    // The host offers two slots of a 24 GiB GPU at 10 per second.
    let offer_id = ok(&netmind(&with_key(
        &[
            "offer",
            "post",
            "--class",
            "gpu-24g",
            "--price",
            "10",
            "--slots",
            "2",
            "--gpu-model",
            "RTX 4090",
            "--vram",
            "24GiB",
            "--cores",
            "8",
            "--memory",
            "32GiB",
            "--score",
            "100",
        ],
        &host,
        &url,
    )));
    assert!(
        offer_id.starts_with("0x") && offer_id.len() == 66,
        "{offer_id}"
    );
    let book = ok(&netmind(&["market", "book", "gpu-24g", "--market", &url]));
    assert!(book.contains(&offer_id) && book.contains(&host.2), "{book}");
    let classes = ok(&netmind(&["market", "book", "--market", &url]));
    assert!(
        classes
            .lines()
            .any(|l| l.starts_with("gpu-24g") && l.contains(" 10 ")),
        "{classes}"
    );

    // The owner submits a job: bundle and input uploaded, order signed and matched.
    let (_stmp, dir) = sample("hello");
    let bundle = tmp.path().join("hello.nmb");
    assert!(pack(&dir, &bundle, &[]).status.success());
    let input = tmp.path().join("input");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    std::fs::write(input.join("a.txt"), "alpha").unwrap();
    std::fs::write(input.join("sub/b.txt"), "beta").unwrap();
    let b = bundle.to_str().unwrap();
    let i = input.to_str().unwrap();
    let o = netmind(&with_key(
        &[
            "job",
            "submit",
            b,
            "--input",
            i,
            "--max-price",
            "12",
            "--replicas",
            "1",
            "--class",
            "gpu-24g",
        ],
        &owner,
        &url,
    ));
    let bid = ok(&o);
    assert!(
        stderr(&o).contains("bundle ") && stderr(&o).contains("uploaded"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("1 deal(s)"), "{}", stderr(&o));
    // The same bundle and input again: already there, and a new order (new nonce).
    let o = netmind(&with_key(
        &[
            "job",
            "submit",
            b,
            "--input",
            i,
            "--max-price",
            "5",
            "--class",
            "gpu-24g",
        ],
        &owner,
        &url,
    ));
    let waiting = ok(&o);
    assert!(stderr(&o).contains("already there"), "{}", stderr(&o));
    assert_ne!(bid, waiting);

    // Status of the matched one; explanation of the waiting one.
    let status = ok(&netmind(&["job", "status", &bid, "--market", &url]));
    assert!(
        status.contains("closed") && status.contains("1 deal(s)"),
        "{status}"
    );
    assert!(
        status.contains(&format!("on host {}", host.2)) && status.contains("at 10/s"),
        "{status}"
    );
    let explain = ok(&netmind(&["job", "explain", &waiting, "--market", &url]));
    assert!(
        explain.contains("price above the bid's maximum"),
        "{explain}"
    );
    assert!(
        explain.contains("would match now at a maximum of 10/s"),
        "{explain}"
    );
    let json = ok(&netmind(&[
        "job", "status", &waiting, "--market", &url, "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["status"], "open");
    assert_eq!(
        v["signed"]["order"]["owner"]
            .as_str()
            .unwrap()
            .to_lowercase(),
        owner.2.to_lowercase()
    );

    // Only the maker cancels; then the offer is gone.
    let o = netmind(&with_key(&["offer", "cancel", &offer_id], &owner, &url));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("only its maker may cancel"),
        "{}",
        stderr(&o)
    );
    ok(&netmind(&with_key(
        &["offer", "cancel", &offer_id],
        &host,
        &url,
    )));
    let book = ok(&netmind(&["market", "book", "gpu-24g", "--market", &url]));
    assert!(!book.contains(&offer_id), "{book}");
    let o = netmind(&with_key(&["offer", "cancel", &offer_id], &host, &url));
    assert!(stderr(&o).contains("no open order"), "{}", stderr(&o));

    // Errors say what to fix.
    let o = netmind(&["job", "status", "0x12", "--market", &url]);
    assert!(stderr(&o).contains("not an order id"), "{}", stderr(&o));
    let o = netmind(&["market", "book", "quantum", "--market", &url]);
    assert!(
        stderr(&o).contains("unknown class `quantum`"),
        "{}",
        stderr(&o)
    );

    // A stop on SIGTERM, and a restart keeps the book.
    let out = server.stop();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = Server::start(&tmp.path().join("market"));
    let status = ok(&netmind(&[
        "job",
        "status",
        &waiting,
        "--market",
        &server.url,
    ]));
    assert!(status.contains("open (1 waiting)"), "{status}");
    drop(server);
}

#[test]
fn a_second_server_on_the_same_data_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("market");
    let server = Server::start(&data);
    let o = netmind(&[
        "market",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("another market is sequencing this journal"),
        "{}",
        stderr(&o)
    );
    drop(server);
}
