//! The host daemon yields to the machine's owner: with other programs
//! loading the CPU it withdraws its offer and says why in `netmind host
//! status`; when the machine is idle again it offers again.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::market::Server;
use crate::{keystore, netmind, stdout};

/// Kills the child when the test ends, pass or fail.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status(data: &std::path::Path) -> Value {
    let o = netmind(&["host", "status", "--json", "--data", data.to_str().unwrap()]);
    serde_json::from_str(&stdout(&o)).unwrap_or(Value::Null)
}

fn wait(what: &str, secs: u64, mut f: impl FnMut() -> Option<Value>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_host_yields_to_its_owner_and_offers_again_once_the_machine_is_idle() {
    let tmp = tempfile::tempdir().unwrap();
    let market = Server::start(&tmp.path().join("market"));
    let key_dir = tmp.path().join("key");
    std::fs::create_dir_all(&key_dir).unwrap();
    let (ks, pw, address) = keystore(&key_dir);
    let data = tmp.path().join("host");
    std::fs::create_dir_all(&data).unwrap();
    // Busy when other programs use over 90% of the cores: only the burners
    // below reach that, not the other tests running beside this one.
    std::fs::write(
        data.join("host.toml"),
        "slots = 2\n[idle]\nmax-cpu = 0.9\ncheck-every = \"200ms\"\nresume-after = \"1s\"\n",
    )
    .unwrap();
    let host = Kill(
        Command::new(env!("CARGO_BIN_EXE_netmind"))
            .args([
                "host",
                "run",
                "--gpu",
                "off",
                "--market",
                &market.url,
                "--keystore",
            ])
            .arg(&ks)
            .arg("--password-file")
            .arg(&pw)
            .arg("--data")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = netmind_market::client::MarketClient::new(&market.url).unwrap();
    let offered = |want: bool| {
        let hosts = rt.block_on(client.get("/v1/hosts")).unwrap();
        let free = hosts["hosts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h["address"].as_str() == Some(address.to_lowercase().as_str()))
            .any(|h| h["slots_free"].as_u64().unwrap_or(0) == 2);
        (free == want).then_some(hosts)
    };
    wait("the host offers its two slots", 60, || offered(true));
    let s = wait("the status file", 10, || {
        Some(status(&data)).filter(|s| s["alive"] == true)
    });
    assert_eq!(s["mode"]["state"], "working", "{s}");
    assert_eq!(s["slots"], 2, "the config file's slots: {s}");

    // The owner starts a game: every core busy.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let burners: Vec<Kill> = (0..cores)
        .map(|_| {
            Kill(
                Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    let s = wait("the host yields", 30, || {
        Some(status(&data)).filter(|s| s["mode"]["state"] == "yielding")
    });
    let reason = s["mode"]["reason"].as_str().unwrap();
    assert!(reason.contains("of the CPU"), "{s}");
    wait("the offer is withdrawn", 30, || offered(false));
    let text = stdout(&netmind(&[
        "host",
        "status",
        "--data",
        data.to_str().unwrap(),
    ]));
    assert!(
        text.contains("yielding to the owner: other programs use"),
        "{text}"
    );

    // The game ends: after a calm second the host offers again.
    drop(burners);
    wait("the host offers again", 60, || offered(true));
    assert_eq!(status(&data)["mode"]["state"], "working");

    // A second daemon on the same data directory is refused, naming the way out.
    let o = netmind(&[
        "host",
        "run",
        "--market",
        &market.url,
        "--keystore",
        ks.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        crate::stderr(&o).contains("another host daemon uses"),
        "{}",
        crate::stderr(&o)
    );
    drop(host);
    let o = netmind(&["host", "status", "--data", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).contains("not running"), "{}", stdout(&o));
}
