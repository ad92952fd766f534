//! The dashboard in a real browser: headless Chromium (Debian's `chromium`)
//! loads `/` from a market holding signed offers, bids and a trade. The test
//! drives it over the DevTools protocol (`--remote-debugging-pipe`, the
//! transport Playwright uses): it reads the DOM the page rendered, decodes
//! screenshots and looks for the charts' pixels where the page drew them,
//! posts more orders and waits for the page to show them from the event
//! stream, and clicks a waiting bid to open its explainer.
//!
//! `--dump-dom` with `--virtual-time-budget` cannot be used: virtual time
//! stops while a request is in flight, and the event stream always is.
//!
//! Without Chromium the test is skipped, unless `CI` or
//! `NETMIND_REQUIRE_CHROMIUM` is set (then it fails). `NETMIND_CHROMIUM`
//! names another browser binary; `NETMIND_DASHBOARD_OUT` names a directory to
//! keep the DOM and the screenshots in.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use alloy_signer_local::PrivateKeySigner;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::*;

/// The browser's viewport; screenshots have exactly this size.
const WIDTH: u32 = 1400;
const HEIGHT: u32 = 1700;

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NETMIND_CHROMIUM") {
        return Some(p.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Headless Chromium driven over the DevTools protocol on a pipe: requests
/// go to its fd 3 and answers come from its fd 4, each a JSON text ended by
/// a NUL byte.
struct Browser {
    child: Child,
    to: File,
    from: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
    stderr: PathBuf,
}

impl Browser {
    fn launch(exe: &Path, work: &Path) -> Self {
        let (to_path, from_path) = (work.join("cdp-in"), work.join("cdp-out"));
        for fifo in [&to_path, &from_path] {
            let made = Command::new("mkfifo").arg(fifo).status().unwrap();
            assert!(made.success(), "mkfifo {}", fifo.display());
        }
        let stderr = work.join("chromium.err");
        let child = Command::new("sh")
            .args(["-c", r#"exec "$0" "$@" 3<"$CDP_IN" 4>"$CDP_OUT""#])
            .arg(exe)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--mute-audio",
                "--force-device-scale-factor=1",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--window-size={WIDTH},{HEIGHT}"))
            .arg(format!(
                "--user-data-dir={}",
                work.join("profile").display()
            ))
            .arg("about:blank")
            .env("CDP_IN", &to_path)
            .env("CDP_OUT", &from_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        // The shell opens its end of each pipe before it runs the browser,
        // in this order: these opens wait for it.
        let to = File::options().write(true).open(&to_path).unwrap();
        let from = File::open(&from_path).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut from = BufReader::new(from);
            let mut buf = Vec::new();
            while from.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
                if let Ok(v) =
                    serde_json::from_slice::<Value>(buf.strip_suffix(&[0]).unwrap_or(&buf))
                    && tx.send(v).is_err()
                {
                    return;
                }
                buf.clear();
            }
        });
        let mut b = Self {
            child,
            to,
            from: rx,
            next_id: 0,
            session: String::new(),
            stderr,
        };
        let target = b.call("Target.createTarget", json!({ "url": "about:blank" }));
        let attached = b.call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        b.session = attached["sessionId"].as_str().unwrap().to_owned();
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false }),
        );
        b.call("Page.enable", json!({}));
        b
    }

    /// Sends a command (to the page once attached) and waits for its answer.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = self.session.clone().into();
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.from.recv_timeout(left).unwrap_or_else(|e| {
                panic!(
                    "no answer to {method} ({e}); chromium said:\n{}",
                    self.log()
                )
            });
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(
            r["exceptionDetails"].is_null(),
            "{expr}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits up to `secs` seconds for `expr` to be true in the page.
    fn wait_for(&mut self, expr: &str, secs: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.eval(&format!("!!({expr})")) != Value::Bool(true) {
            if Instant::now() > deadline {
                let body = self.eval("document.body.innerText");
                panic!(
                    "{what}: not within {secs} s; the page shows:\n{}",
                    body.as_str().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn html(&mut self) -> String {
        self.eval("document.documentElement.outerHTML")
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn screenshot(&mut self) -> Vec<u8> {
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        base64(r["data"].as_str().unwrap())
    }

    /// The box (x, y, w, h) of the element with this id, in viewport pixels.
    fn rect(&mut self, id: &str) -> [u32; 4] {
        let r = self.eval(&format!(
            "(() => {{ const r = document.getElementById('{id}').getBoundingClientRect(); \
             return [r.x, r.y, r.width, r.height].map(Math.round); }})()"
        ));
        let b: Vec<u32> = r
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert!(
            b[2] > 100 && b[3] > 100 && b[0] + b[2] <= WIDTH && b[1] + b[3] <= HEIGHT,
            "{id} at {b:?} is not in the {WIDTH}×{HEIGHT} viewport"
        );
        [b[0], b[1], b[2], b[3]]
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.contains("dbus")).collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        acc = (acc << 6) | u32::from(value(c));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The HTML of the element that opens with `<tag id="id"`, up to its closing
/// tag (the dashboard does not nest these tags in themselves).
fn element<'a>(dom: &'a str, tag: &str, id: &str) -> &'a str {
    let open = format!("<{tag} id=\"{id}\"");
    let start = dom
        .find(&open)
        .unwrap_or_else(|| panic!("no {open} in the DOM"));
    let close = format!("</{tag}>");
    let end = dom[start..].find(&close).expect("closed") + start + close.len();
    &dom[start..end]
}

/// Whether the element's opening tag has `hidden`.
fn hidden(html: &str) -> bool {
    html[..html.find('>').unwrap()].contains(" hidden")
}

/// `<tr>` rows in an element's `<tbody>`.
fn rows(html: &str) -> usize {
    html.split("<tbody>")
        .nth(1)
        .map_or(0, |b| b.matches("<tr").count())
}

fn assert_has(html: &str, what: &str, needles: &[&str]) {
    for n in needles {
        assert!(html.contains(n), "{what} lacks `{n}`:\n{html}");
    }
}

/// The chart colours of style.css: light theme, dark theme.
const BID: [[u8; 3]; 2] = [[0x16, 0xa3, 0x4a], [0x3f, 0xb9, 0x50]];
const ASK: [[u8; 3]; 2] = [[0xdc, 0x26, 0x26], [0xf8, 0x51, 0x49]];
const ACCENT: [[u8; 3]; 2] = [[0x25, 0x63, 0xeb], [0x58, 0xa6, 0xff]];
const BACKGROUND: [[u8; 3]; 2] = [[0xf5, 0xf6, 0xf8], [0x0f, 0x12, 0x16]];

/// A decoded RGB screenshot.
struct Shot {
    width: u32,
    height: u32,
    rgb: Vec<[u8; 3]>,
}

impl Shot {
    fn decode(png_bytes: Vec<u8>) -> Self {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let channels = info.color_type.samples();
        assert!(channels >= 3, "a colour screenshot: {:?}", info.color_type);
        let rgb = buf[..info.buffer_size()]
            .chunks_exact(channels)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        Self {
            width: info.width,
            height: info.height,
            rgb,
        }
    }

    fn at(&self, x: u32, y: u32) -> [u8; 3] {
        self.rgb[(y * self.width + x) as usize]
    }

    /// How many pixels in `bx` (x, y, w, h) are within a small distance of
    /// `colour`, and their mean x.
    fn count(&self, bx: [u32; 4], colour: [u8; 3]) -> (usize, f64) {
        let (mut n, mut sum_x) = (0usize, 0f64);
        for y in bx[1]..(bx[1] + bx[3]).min(self.height) {
            for x in bx[0]..(bx[0] + bx[2]).min(self.width) {
                let p = self.at(x, y);
                if colour
                    .iter()
                    .zip(p)
                    .all(|(a, b)| (i16::from(*a) - i16::from(b)).abs() <= 24)
                {
                    n += 1;
                    sum_x += f64::from(x);
                }
            }
        }
        (n, if n == 0 { 0.0 } else { sum_x / n as f64 })
    }
}

/// Checks a screenshot in theme `t` (0 light, 1 dark): the page's background;
/// the depth chart with bids (green) left of offers (red); the price chart
/// with its candle and last-price line, the latest candle on the right.
fn check_charts(png: &Shot, t: usize, depth: [u32; 4], price: [u32; 4]) {
    assert_eq!((png.width, png.height), (WIDTH, HEIGHT));
    let corner = png.at(2, HEIGHT - 3);
    assert_eq!(corner, BACKGROUND[t], "the page's background");
    let (bid_px, bid_x) = png.count(depth, BID[t]);
    let (ask_px, ask_x) = png.count(depth, ASK[t]);
    assert!(
        bid_px > 150 && ask_px > 150,
        "depth chart: {bid_px} bid and {ask_px} offer pixels"
    );
    assert!(
        bid_x < ask_x,
        "bids (mean x {bid_x}) left of offers ({ask_x})"
    );
    let (accent_px, _) = png.count(price, ACCENT[t]);
    // A candle is green when it closed at or above its open, red below.
    let (up, up_x) = png.count(price, BID[t]);
    let (down, down_x) = png.count(price, ASK[t]);
    let candle_px = up + down;
    let candle_x = (up as f64 * up_x + down as f64 * down_x) / candle_px.max(1) as f64;
    assert!(
        accent_px > 300,
        "price chart: {accent_px} last-price pixels"
    );
    // A body is at least 3 x 5 whole pixels, drawn over the last-price line.
    assert!(candle_px >= 15, "price chart: {candle_px} candle pixels");
    assert!(
        candle_x > f64::from(price[0] + price[2] / 2),
        "the latest candle is on the right ({candle_x})"
    );
}

/// A click on a job opens its view: each replica's log is shown and new
/// text appears live as its host sends it.
async fn job_logs_show_and_follow(
    m: &TestMarket,
    b: &mut Browser,
    host: &PrivateKeySigner,
    job: &Value,
) {
    let id = job["id"].as_str().unwrap();
    let deal: B256 = job["deals"][0]["id"].as_str().unwrap().parse().unwrap();
    let replica = format!("replica {} on", job["deals"][0]["replica"]);
    let first = "loading the model\n";
    let (s, body) = super::logs::append(m, host, deal, 0, first).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    blocking(|| {
        b.eval(&format!(
            "document.querySelector('#jobs tr[data-job=\"{id}\"]').click()"
        ));
        b.wait_for(
            &format!(
                "document.querySelector('#job-logs [data-deal=\"{deal}\"] pre.log')\
                 ?.textContent === 'loading the model\\n'"
            ),
            10,
            "the job's log",
        );
    });
    // The page is waiting on the market for more: it shows it at once.
    let (s, body) = super::logs::append(m, host, deal, first.len() as u64, "step 1/3 done\n").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let panel = blocking(|| {
        b.wait_for(
            "document.querySelector('#job-logs pre.log')?.textContent.includes('step 1/3 done')",
            10,
            "the job's log, live",
        );
        b.html()
    });
    assert_has(
        element(&panel, "section", "detail"),
        "the job's view",
        &[
            "Replicas",
            "Logs",
            &replica,
            "loading the model\nstep 1/3 done",
        ],
    );
}

/// Runs blocking browser calls without stalling the market on this runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_the_book_trades_and_charts_in_chromium() {
    let Some(exe) = chromium() else {
        let required = ["CI", "NETMIND_REQUIRE_CHROMIUM"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        assert!(
            !required,
            "chromium is not installed (apt-get install chromium) and CI or \
             NETMIND_REQUIRE_CHROMIUM is set"
        );
        eprintln!("skipped: no chromium on PATH (set NETMIND_CHROMIUM to name one)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let m = TestMarket::start(config(&dir.path().join("market"), None)).await;
    let keep = std::env::var_os("NETMIND_DASHBOARD_OUT").map(PathBuf::from);

    // The page and its files are served; other names are not.
    let get = |path: &'static str| {
        let m = &m;
        async move { m.client.request(Method::GET, path, None, "").await.unwrap() }
    };
    let (s, h, page) = get("/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert!(String::from_utf8_lossy(&page).contains("/dashboard/app.js"));
    for (file, kind) in [
        ("/dashboard/app.js", "text/javascript; charset=utf-8"),
        ("/dashboard/charts.js", "text/javascript; charset=utf-8"),
        ("/dashboard/style.css", "text/css; charset=utf-8"),
    ] {
        let (s, h, body) = get(file).await;
        assert_eq!(
            (s, h["content-type"].to_str().unwrap()),
            (StatusCode::OK, kind)
        );
        assert!(h.contains_key("etag") && !body.is_empty(), "{file}");
    }
    assert_eq!(get("/dashboard/secret.txt").await.0, StatusCode::NOT_FOUND);

    // A book with three offer levels, two waiting bids and one trade.
    let class = "gpu-24g";
    let mut hosts = Vec::new();
    for (price, slots) in [(1_234_567, 2), (1_250_000, 3), (1_300_000, 1)] {
        let host = PrivateKeySigner::random();
        let (s, o) = m
            .post(
                "/v1/offers",
                &sign(offer(&host, class, price, slots), &host),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        hosts.push(host);
    }
    let owner = PrivateKeySigner::random();
    let (_, traded) = m
        .post("/v1/bids", &sign(job(&owner, class, 1_240_000, 1), &owner))
        .await;
    let deal = traded["deals"][0]["id"]
        .as_str()
        .expect("a deal")
        .to_owned();
    let mut waiting = Vec::new();
    for (max, replicas) in [(1_100_000, 2), (1_050_000, 1)] {
        let (_, b) = m
            .post("/v1/bids", &sign(job(&owner, class, max, replicas), &owner))
            .await;
        assert_eq!(b["status"], "open", "{b}");
        waiting.push(b["id"].as_str().unwrap().to_owned());
    }
    let (_, listed_hosts) = m.get("/v1/hosts").await;
    let (_, listed_jobs) = m.get("/v1/jobs").await;

    let work = dir.path().to_owned();
    let url = format!("{}/", m.client.base());
    let mut b = blocking(|| {
        let mut b = Browser::launch(&exe, &work);
        b.call("Page.navigate", json!({ "url": url }));
        b.wait_for(
            "document.querySelectorAll('#trade-list tbody tr').length === 1 \
             && document.querySelectorAll('#offers tbody tr').length === 3 \
             && document.getElementById('conn').dataset.state === 'live'",
            30,
            "the book, the trade and the live stream",
        );
        b
    });
    let (dom, text, shot, depth_box, price_box) = blocking(|| {
        let text = b.eval("document.body.innerText");
        (
            b.html(),
            text.as_str().unwrap().to_owned(),
            b.screenshot(),
            b.rect("depth"),
            b.rect("price"),
        )
    });
    for junk in ["undefined", "NaN", "null", "[object"] {
        assert!(!text.contains(junk), "the page shows `{junk}`:\n{text}");
    }
    if let Some(keep) = &keep {
        std::fs::create_dir_all(keep).unwrap();
        std::fs::write(keep.join("dashboard.html"), &dom).unwrap();
        std::fs::write(keep.join("dashboard.png"), &shot).unwrap();
    }

    // Classes: every class, the active one selected with its prices.
    let classes = element(&dom, "table", "classes");
    assert_eq!(rows(classes), m.config.api.classes.len(), "{classes}");
    for c in &m.config.api.classes {
        assert!(classes.contains(&format!(">{c}</td>")), "{classes}");
    }
    let selected = &classes[classes
        .find("class=\"selected\"")
        .expect("a selected class")..];
    let selected = &selected[..selected.find("</tr>").unwrap()];
    // best bid, best ask, last price, deals
    assert_has(
        selected,
        "the selected class",
        &[class, ">1,100,000<", ">1,234,567<", ">1<"],
    );
    assert_has(
        element(&dom, "span", "book-class"),
        "the book's title",
        &[class],
    );

    // The book: offers cheapest first with their free slots, bids highest first.
    let offers = element(&dom, "table", "offers");
    assert_eq!(rows(offers), 3, "{offers}");
    assert_has(
        offers,
        "the offers",
        &[
            "1,234,567",
            "1/2",
            "1,250,000",
            "3/3",
            "1,300,000",
            "RTX 4090",
            "24 GiB",
        ],
    );
    assert!(offers.find("1,234,567") < offers.find("1,250,000"));
    assert!(offers.find("1,250,000") < offers.find("1,300,000"));
    let first_host = hosts[0].address().to_string().to_lowercase();
    assert!(
        offers.contains(&format!("title=\"{first_host}\"")),
        "{offers}"
    );
    assert!(hidden(element(&dom, "p", "offers-empty")));
    let bids = element(&dom, "table", "bids");
    assert_eq!(rows(bids), 2, "{bids}");
    assert_has(bids, "the bids", &["1,100,000", "2/2", "1,050,000", "1/1"]);
    assert!(bids.find("1,100,000") < bids.find("1,050,000"));

    // Trades and market data.
    let trades = element(&dom, "table", "trade-list");
    assert_has(
        trades,
        "the trades",
        &["1,234,567", ">600<", &format!("title=\"{deal}\"")],
    );
    assert_has(
        element(&dom, "p", "market-summary"),
        "the market summary",
        &[
            "last 1,234,567",
            "best bid 1,100,000",
            "1 deals",
            "notional 740,740,200",
        ],
    );
    assert_has(
        element(&dom, "canvas", "depth"),
        "the depth chart",
        &["2 bid levels from 1100000", "3 offer levels from 1234567"],
    );
    assert_has(
        element(&dom, "canvas", "price"),
        "the price chart",
        &["1 candles, last price 1234567"],
    );

    // Hosts and jobs: rows once the market serves them, an empty state until then.
    let host_rows = rows(element(&dom, "table", "hosts"));
    if listed_hosts["hosts"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        assert!(host_rows > 0, "the market lists hosts; the page shows none");
    } else {
        assert_eq!(host_rows, 0);
        let e = element(&dom, "p", "hosts-empty");
        assert!(!hidden(e));
        assert_has(
            e,
            "the hosts' empty state",
            &["no hosts online", "netmind host run"],
        );
    }
    let jobs_served = listed_jobs["jobs"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    if jobs_served {
        assert_has(
            element(&dom, "table", "jobs"),
            "the jobs",
            &[&waiting[0], "queued"],
        );
    } else {
        assert_eq!(rows(element(&dom, "table", "jobs")), 0);
        let e = element(&dom, "p", "jobs-empty");
        assert!(!hidden(e));
        assert_has(
            e,
            "the jobs' empty state",
            &["no jobs yet", "netmind job submit"],
        );
    }

    // The screenshot, in the default (light) theme.
    check_charts(&Shot::decode(shot), 0, depth_box, price_box);

    // Live: an offer and a bid that trades with it show up from the event
    // stream (while it is up the page polls only every 30 s).
    let late = PrivateKeySigner::random();
    let (s, _) = m
        .post(
            "/v1/offers",
            &sign(offer(&late, class, 1_111_111, 1), &late),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    blocking(|| {
        b.wait_for(
            "document.getElementById('offers').textContent.includes('1,111,111')",
            10,
            "the new offer, live",
        );
    });
    let (_, took) = m
        .post("/v1/bids", &sign(job(&owner, class, 1_200_000, 1), &owner))
        .await;
    assert_eq!(took["deals"][0]["price"], "1111111", "{took}");
    blocking(|| {
        b.wait_for(
            "document.querySelectorAll('#trade-list tbody tr').length === 2 \
             && !document.getElementById('offers').textContent.includes('1,111,111')",
            10,
            "the new trade, live",
        );
        if jobs_served {
            b.wait_for(
                &format!(
                    "document.querySelector('#jobs tr[data-job=\"{}\"] .s-matched')",
                    took["id"].as_str().unwrap()
                ),
                10,
                "the new job, matched, live",
            );
        }
    });
    job_logs_show_and_follow(&m, &mut b, &late, &took).await;

    // A click on the highest waiting bid explains it: priced out of every
    // offer, and two replicas need two distinct hosts, so 1,250,000.
    let detail = blocking(|| {
        b.eval("document.querySelector('#bids tbody tr').click()");
        b.wait_for(
            "!document.getElementById('detail').hidden \
             && document.getElementById('detail').textContent.includes('would match now')",
            10,
            "the explainer",
        );
        b.html()
    });
    let panel = element(&detail, "section", "detail");
    assert_has(
        panel,
        "the explainer",
        &[
            "Why it waits",
            &waiting[0],
            "would match now at a maximum of 1,250,000",
            "price above the bid's maximum",
        ],
    );

    // The dark theme: the same charts in its colours.
    let (dark, depth_box, price_box) = blocking(|| {
        b.eval("document.getElementById('detail-close').click()");
        b.eval(
            "document.getElementById('theme').click(); document.getElementById('theme').click()",
        );
        b.wait_for(
            "document.documentElement.dataset.theme === 'dark'",
            10,
            "the dark theme",
        );
        (b.screenshot(), b.rect("depth"), b.rect("price"))
    });
    if let Some(keep) = &keep {
        std::fs::write(keep.join("dashboard-dark.png"), &dark).unwrap();
    }
    check_charts(&Shot::decode(dark), 1, depth_box, price_box);
    drop(b);
    m.stop().await;
}
