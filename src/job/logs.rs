//! `netmind job logs ID [--follow]`: what a job's replicas printed.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::Value;

use crate::market::MarketArgs;
use crate::offer::order_id;

/// How long one read waits at the market for more text, ms.
const WAIT_MS: u64 = 2_000;

/// Where the reader is in one deal's log.
#[derive(Debug, Default)]
struct Cursor {
    next: u64,
    complete: bool,
    held: bool,
}

/// Prints the job's logs; with `follow`, keeps printing until the job is
/// decided and every replica's log has been read.
pub(super) async fn logs(id: &str, market: &MarketArgs, follow: bool) -> Result<ExitCode> {
    let id = order_id(id)?;
    let client = market.client()?;
    let mut cursors: HashMap<String, Cursor> = HashMap::new();
    // The deal whose text was printed last (a header marks a switch).
    let mut shown: Option<String> = None;
    let mut out = std::io::stdout();
    loop {
        let job = client.get(&format!("/v1/jobs/{id}")).await?;
        let state = job["state"].as_str().unwrap_or_default().to_owned();
        let finished = matches!(state.as_str(), "done" | "failed" | "cancelled" | "expired");
        let deals: Vec<&Value> = job["deals"]
            .as_array()
            .map_or(vec![], |d| d.iter().collect());
        let many = deals.len() > 1;
        let mut open = None;
        for d in &deals {
            let deal = d["id"].as_str().unwrap_or_default().to_owned();
            let cursor = cursors.entry(deal.clone()).or_default();
            // Drain what is there now.
            while !cursor.complete {
                let r = client
                    .get(&format!("/v1/deals/{deal}/logs?from={}", cursor.next))
                    .await?;
                cursor.held = r["held"].as_bool().unwrap_or(false);
                cursor.complete = r["complete"].as_bool().unwrap_or(false);
                let text = r["text"].as_str().unwrap_or_default();
                if !text.is_empty() {
                    if many && shown.as_deref() != Some(&deal) {
                        writeln!(
                            out,
                            "==> replica {} on host {} (deal {deal}) <==",
                            d["replica"],
                            d["host"].as_str().unwrap_or_default()
                        )?;
                        shown = Some(deal.clone());
                    }
                    out.write_all(text.as_bytes())?;
                    out.flush()?;
                }
                cursor.next = r["next"].as_u64().unwrap_or(cursor.next);
                if text.is_empty() || cursor.held {
                    break;
                }
            }
            if !cursor.complete && !cursor.held && open.is_none() {
                open = Some(deal);
            }
        }
        let held = cursors.values().any(|c| c.held);
        if !follow {
            if held {
                eprintln!(
                    "job {id} runs on {} replicas: their logs are shown once the job is decided \
                     (`--follow` waits for that)",
                    job["replicas"]
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        if finished && cursors.values().all(|c| c.complete) {
            eprintln!("job {id}: {state}");
            return Ok(ExitCode::SUCCESS);
        }
        match open {
            // Wait at the market for this deal's next text (or its end).
            Some(deal) => {
                let c = &cursors[&deal];
                client
                    .get(&format!(
                        "/v1/deals/{deal}/logs?from={}&wait={WAIT_MS}&max=1",
                        c.next
                    ))
                    .await?;
            }
            // Queued, held until decided, or between replicas: look again soon.
            None => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
}
