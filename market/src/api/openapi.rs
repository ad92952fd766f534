//! The OpenAPI 3.0 description of the API, served at `GET /openapi.json`.
//!
//! Written by hand; `every_route_is_described` in the integration tests
//! checks it against the router.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description,
            "schema": { "type": "string" } })
}

fn query_param(name: &str, description: &str, kind: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description,
            "schema": { "type": kind } })
}

/// The errors every write can answer with.
fn write_errors(mut responses: Value) -> Value {
    let r = responses.as_object_mut().expect("an object");
    for (code, what) in [
        (
            "400",
            "Malformed or invalid (a field that does not parse, an unknown class, a price above the maximum, an expired order)",
        ),
        (
            "401",
            "The signature is not the named maker's (forged, altered, or signed for another chain id)",
        ),
        ("409", "The order was placed before (a replay or duplicate)"),
        ("413", "The body is larger than the limit"),
        (
            "429",
            "Too many requests from this address or client; see Retry-After",
        ),
        (
            "500",
            "The market failed to store the order; nothing was changed",
        ),
    ] {
        r.insert(code.into(), error_response(what));
    }
    responses
}

fn signed(order: &str) -> Value {
    json!({
        "type": "object",
        "required": ["order", "signature"],
        "properties": {
            "order": reference(order),
            "signature": { "type": "string", "description": "0x and 130 hex digits: r ‖ s ‖ v over the EIP-712 signing hash" }
        }
    })
}

fn uint(bits: u32) -> Value {
    json!({ "type": "integer", "minimum": 0, "format": format!("uint{bits}") })
}

fn strings() -> Value {
    json!({ "type": "array", "items": { "type": "string" } })
}

fn addresses() -> Value {
    json!({ "type": "array", "items": reference("Address") })
}

/// The deals' logs' schemas (kept apart: one `json!` this size hits the
/// macro recursion limit).
fn log_schemas() -> Value {
    json!({
        "Log": {
            "type": "object",
            "description": "EIP-712 type Log(address host,bytes32 deal,uint64 offset,string text): a piece of what a deal's job printed, appended at byte `offset` of the deal's log",
            "required": ["host", "deal", "offset", "text"],
            "properties": { "host": reference("Address"), "deal": reference("Hash"), "offset": uint(64), "text": { "type": "string" } }
        },
        "LogSlice": {
            "type": "object",
            "description": "Part of a deal's log. A replicated job's logs are `held` (empty) until the job is decided",
            "properties": {
                "deal": reference("Hash"), "job": reference("Hash"), "host": reference("Address"),
                "state": { "type": "string", "description": "The deal's state" },
                "from": uint(64), "next": { "type": "integer", "description": "Where the next read starts" },
                "len": { "type": "integer", "description": "The log's length, bytes" },
                "text": { "type": "string" }, "held": { "type": "boolean" },
                "complete": { "type": "boolean", "description": "The deal is over and its whole log has been read" }
            }
        },
        "SignedLog": signed("Log")
    })
}

fn schemas() -> Value {
    let mut all = schemas_but_logs();
    if let (Some(all), Value::Object(logs)) = (all.as_object_mut(), log_schemas()) {
        all.extend(logs);
    }
    all
}

fn schemas_but_logs() -> Value {
    json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": {
                "code": { "type": "string", "enum": ["malformed", "invalid", "expired", "unknown_class", "bad_signature", "not_maker", "not_found", "method_not_allowed", "duplicate", "too_large", "rate_limited", "unavailable", "internal"] },
                "message": { "type": "string", "description": "What went wrong and what to fix" }
            } } }
        },
        "Address": { "type": "string", "pattern": "^0x[0-9a-fA-F]{40}$" },
        "Hash": { "type": "string", "pattern": "^0x[0-9a-fA-F]{64}$" },
        "Uint256": { "type": "string", "description": "a non-negative integer: decimal, or 0x and hex digits" },
        "Decimal": { "type": "string", "pattern": "^[0-9]+$", "description": "NMT base units, as a decimal string" },
        "Offer": {
            "type": "object",
            "description": "EIP-712 type Offer under the domain {name: \"NetMind Market\", version: \"1\", chainId}",
            "required": ["host", "class", "gpuModel", "vram", "wgpuFeatures", "encodings", "cores", "memoryBytes", "score", "price", "slots", "expiry", "nonce"],
            "properties": {
                "host": reference("Address"), "class": { "type": "string" }, "gpuModel": { "type": "string" },
                "vram": uint(64), "wgpuFeatures": strings(), "encodings": strings(), "cores": uint(32),
                "memoryBytes": uint(64), "score": uint(64), "price": reference("Uint256"), "slots": uint(32),
                "expiry": uint(64), "nonce": uint(64)
            }
        },
        "JobOrder": {
            "type": "object",
            "description": "EIP-712 type JobOrder under the market's domain",
            "required": ["owner", "bundle", "input", "class", "gpu", "minVram", "encodings", "wgpuFeatures", "cores", "minMemory", "minScore", "allow", "deny", "maxPrice", "maxSeconds", "replicas", "deadline", "nonce"],
            "properties": {
                "owner": reference("Address"), "bundle": reference("Hash"), "input": reference("Hash"),
                "class": { "type": "string" }, "gpu": { "type": "boolean" }, "minVram": uint(64),
                "encodings": strings(), "wgpuFeatures": strings(), "cores": uint(32), "minMemory": uint(64),
                "minScore": uint(64), "allow": addresses(), "deny": addresses(), "maxPrice": reference("Uint256"),
                "maxSeconds": uint(64), "replicas": uint(32), "deadline": uint(64), "nonce": uint(64)
            }
        },
        "Cancel": {
            "type": "object",
            "description": "EIP-712 type Cancel(address maker,bytes32 order,uint64 expiry) under the market's domain",
            "required": ["maker", "order", "expiry"],
            "properties": { "maker": reference("Address"), "order": reference("Hash"), "expiry": uint(64) }
        },
        "SignedOffer": signed("Offer"),
        "SignedJobOrder": signed("JobOrder"),
        "SignedCancel": signed("Cancel"),
        "Start": {
            "type": "object",
            "description": "EIP-712 type Start(address host,bytes32 deal,uint64 at): a host begins a deal's replica",
            "required": ["host", "deal", "at"],
            "properties": { "host": reference("Address"), "deal": reference("Hash"), "at": uint(64) }
        },
        "Receipt": {
            "type": "object",
            "description": "EIP-712 type Receipt(address host,bytes32 deal,bytes32 output,string status,int32 exitCode,uint64 runtimeMs,uint64 fuel,uint64 gpuTimeMs,uint64 gpuDispatches,bytes32 gpuHash): what a host's run produced; output is the SHA-256 of the uploaded output archive",
            "required": ["host", "deal", "output", "status", "exitCode", "runtimeMs", "fuel", "gpuTimeMs", "gpuDispatches", "gpuHash"],
            "properties": {
                "host": reference("Address"), "deal": reference("Hash"), "output": reference("Hash"),
                "status": { "type": "string", "description": "exited, trapped, timeout, cpu-time, memory, output-limit, fuel, invalid-output, host-error" },
                "exitCode": { "type": "integer", "format": "int32" }, "runtimeMs": uint(64), "fuel": uint(64),
                "gpuTimeMs": uint(64), "gpuDispatches": uint(64), "gpuHash": reference("Hash")
            }
        },
        "Release": {
            "type": "object",
            "description": "EIP-712 type Release(address host,bytes32 deal,uint64 at): a host hands back a deal's replica unfinished",
            "required": ["host", "deal", "at"],
            "properties": { "host": reference("Address"), "deal": reference("Hash"), "at": uint(64) }
        },
        "SignedStart": signed("Start"),
        "SignedRelease": signed("Release"),
        "SignedReceipt": signed("Receipt"),
        "Job": {
            "type": "object",
            "description": "A job (its bid) and its replicas; see docs/design/jobs-api.md. Replica outputs are shown once the job is decided.",
            "properties": {
                "id": reference("Hash"), "owner": reference("Address"), "class": { "type": "string" },
                "state": { "type": "string", "enum": ["queued", "matched", "running", "verifying", "done", "failed", "cancelled", "expired"] },
                "replicas": uint(32), "max_price": { "type": "string" }, "max_seconds": uint(64),
                "bundle": reference("Hash"), "input": reference("Hash"), "created": uint(64), "updated": uint(64),
                "deals": { "type": "array", "items": { "type": "object" } },
                "result": { "type": "object", "properties": { "output": reference("Hash"), "status": { "type": "string" }, "exit": { "type": "integer" }, "hosts": addresses() } },
                "reason": { "type": "string" },
                "traceparent": { "type": "string", "description": "W3C trace context of the job's trace, when its submitter was traced (docs/TELEMETRY.md); hosts continue the trace from it" }
            }
        },
        "Deal": {
            "type": "object",
            "properties": {
                "id": reference("Hash"), "bid": reference("Hash"), "offer": reference("Hash"),
                "owner": reference("Address"), "host": reference("Address"), "class": { "type": "string" },
                "price": reference("Decimal"), "seconds": uint(64), "replica": uint(32), "at": uint(64),
                "seq": { "type": "integer", "description": "the journal entry that made it (GET /v1/deals only; page with ?before=)" }
            }
        },
        "Placed": {
            "type": "object",
            "required": ["id", "kind", "class", "status", "remaining", "deals"],
            "properties": {
                "id": reference("Hash"), "kind": { "type": "string", "enum": ["offer", "bid"] },
                "class": { "type": "string" }, "status": { "type": "string", "enum": ["open", "filled"] },
                "remaining": uint(32), "deals": { "type": "array", "items": reference("Deal") }
            }
        },
        "Level": { "type": "object", "properties": { "price": reference("Decimal"), "quantity": uint(64) } },
        "Candle": { "type": "object", "properties": {
            "start": uint(64), "open": reference("Decimal"), "high": reference("Decimal"),
            "low": reference("Decimal"), "close": reference("Decimal"), "deals": uint(64) } },
        "Market": { "type": "object", "properties": {
            "class": { "type": "string" }, "best_ask": reference("Decimal"), "best_bid": reference("Decimal"),
            "last_price": reference("Decimal"), "deals": uint(64), "notional": reference("Decimal"),
            "depth": { "type": "object", "properties": {
                "asks": { "type": "array", "items": reference("Level") },
                "bids": { "type": "array", "items": reference("Level") } } },
            "interval": uint(64), "candles": { "type": "array", "items": reference("Candle") } } },
        "Explanation": { "type": "object", "description": "Why a bid waits: offers it can take, the others with the constraints that eliminated them, counts per reason, the nearest offers it is priced out of, and the maximum price at which it would match now",
            "properties": {
                "bid": reference("Hash"), "waiting_replicas": uint(32),
                "matching": { "type": "array", "items": { "type": "object" } },
                "eliminated": { "type": "array", "items": { "type": "array" } },
                "by_reason": { "type": "array", "items": { "type": "array" } },
                "nearest": { "type": "array", "items": { "type": "object" } },
                "match_price": { "type": "integer", "nullable": true } } },
        "Blob": { "type": "object", "properties": { "id": { "type": "string" }, "size": uint(64), "created": { "type": "boolean" } } }
    })
}

/// The document.
pub fn document() -> Value {
    let class = path_param(
        "class",
        "a resource class this market trades (GET /v1/info)",
    );
    let unknown_class = error_response("Unknown class");
    let blob = path_param("sha256", "the SHA-256 of the blob's bytes, 64 hex digits");
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "NetMind market",
            "version": "1",
            "description": "Order book for GPU compute: hosts post signed offers, job owners post signed job orders (bids); matched by price and time at the offer's price. Writes are acknowledged only after the journal commits. Errors are {\"error\": {\"code\", \"message\"}}."
        },
        "paths": {
            "/": { "get": {
                "summary": "The web dashboard (HTML; its script and style sheet are under /dashboard/)",
                "responses": { "200": { "description": "The page", "content": { "text/html": { "schema": { "type": "string" } } } },
                               "304": { "description": "Not modified (If-None-Match matched the ETag)" } }
            } },
            "/dashboard/{file}": { "get": {
                "summary": "A file of the dashboard: app.js, charts.js or style.css",
                "parameters": [path_param("file", "app.js, charts.js or style.css")],
                "responses": { "200": { "description": "The file (text/javascript or text/css)", "content": {
                                   "text/javascript": { "schema": { "type": "string" } }, "text/css": { "schema": { "type": "string" } } } },
                               "304": { "description": "Not modified (If-None-Match matched the ETag)" },
                               "404": error_response("No such file") }
            } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": ok("OpenAPI 3 document", json!({ "type": "object" })) } } },
            "/v1/info": { "get": { "summary": "The EIP-712 domain to sign under, classes, limits", "responses": { "200": ok("Market info", json!({ "type": "object" })) } } },
            "/v1/offers": { "post": {
                "summary": "Place a signed offer (host)",
                "requestBody": { "required": true, "content": { "application/json": { "schema": reference("SignedOffer") } } },
                "responses": write_errors(json!({ "201": ok("Placed, committed, and matched against waiting bids", reference("Placed")) }))
            } },
            "/v1/bids": { "post": {
                "summary": "Place a signed job order (bid)",
                "requestBody": { "required": true, "content": { "application/json": { "schema": reference("SignedJobOrder") } } },
                "responses": write_errors(json!({ "201": ok("Placed, committed, and matched against resting offers", reference("Placed")) }))
            } },
            "/v1/cancels": { "post": {
                "summary": "Withdraw what is left of an order, signed by its maker",
                "requestBody": { "required": true, "content": { "application/json": { "schema": reference("SignedCancel") } } },
                "responses": write_errors(json!({
                    "200": ok("Cancelled and committed", json!({ "type": "object", "properties": { "id": reference("Hash"), "cancelled": { "type": "boolean" } } })),
                    "403": error_response("The cancel's signer is not the order's maker"),
                    "404": error_response("No open order has this id")
                }))
            } },
            "/v1/orders/{id}": { "get": {
                "summary": "A placed order: the signed order, whether it is open, its deals",
                "parameters": [path_param("id", "the order id (0x and 64 hex digits)")],
                "responses": { "200": ok("The order", json!({ "type": "object" })), "400": error_response("Not an order id"), "404": error_response("Never placed") }
            } },
            "/v1/bids/{id}/explain": { "get": {
                "summary": "Why an open bid waits and what would make it match",
                "parameters": [path_param("id", "the bid's order id")],
                "responses": { "200": ok("The explanation", reference("Explanation")), "400": error_response("Not an order id"), "404": error_response("Not an open bid") }
            } },
            "/v1/classes": { "get": { "summary": "Classes with best ask, best bid, last price", "responses": { "200": ok("Classes", json!({ "type": "array", "items": { "type": "object" } })) } } },
            "/v1/book/{class}": { "get": {
                "summary": "Open offers (cheapest first) and bids (highest first) of a class",
                "parameters": [class, query_param("limit", "most orders per side (1-1000, default 100)", "integer")],
                "responses": { "200": ok("The book", json!({ "type": "object" })), "400": error_response("Bad limit"), "404": unknown_class }
            } },
            "/v1/market/{class}": { "get": {
                "summary": "Market data: best bid and ask, last price, deals, notional volume, depth, OHLC candles",
                "parameters": [class,
                    query_param("interval", "candle interval in ms (1000 to one week, default 60000)", "integer"),
                    query_param("from", "candles from this time, ms", "integer"),
                    query_param("to", "candles before this time, ms", "integer")],
                "responses": { "200": ok("Market data", reference("Market")), "400": error_response("Bad parameter"), "404": unknown_class }
            } },
            "/v1/trades/{class}": { "get": {
                "summary": "Recent trades of a class, newest first",
                "parameters": [class, query_param("limit", "1-1000, default 100", "integer")],
                "responses": { "200": ok("Trades", json!({ "type": "array", "items": { "type": "object" } })), "400": error_response("Bad limit"), "404": unknown_class }
            } },
            "/v1/deals": { "get": {
                "summary": "Deals, newest first, filtered by any of bid, offer, owner, host, class",
                "parameters": [
                    query_param("bid", "bid id", "string"), query_param("offer", "offer id", "string"),
                    query_param("owner", "job owner address", "string"), query_param("host", "host address", "string"),
                    query_param("class", "class", "string"), query_param("before", "only deals of journal entries before this seq (paging)", "integer"),
                    query_param("limit", "1-1000, default 100", "integer")],
                "responses": { "200": ok("Deals", json!({ "type": "array", "items": reference("Deal") })), "400": error_response("Bad parameter") }
            } },
            "/v1/jobs": { "get": {
                "summary": "Jobs, newest first",
                "parameters": [query_param("owner", "owner address", "string"), query_param("state", "one job state", "string"),
                               query_param("limit", "1-1000, default 100", "integer")],
                "responses": { "200": ok("Jobs", json!({ "type": "object", "properties": { "jobs": { "type": "array", "items": reference("Job") } } })), "400": error_response("Bad parameter") }
            } },
            "/v1/jobs/{id}": { "get": {
                "summary": "A job by its bid's id (or a bid placing one of its replicas again)",
                "parameters": [path_param("id", "the job order's id")],
                "responses": { "200": ok("The job", reference("Job")), "400": error_response("Not an order id"), "404": error_response("No such job") }
            } },
            "/v1/hosts": { "get": {
                "summary": "Hosts seen in the last 10 minutes: status, capabilities, open slots, what they run",
                "responses": { "200": ok("Hosts", json!({ "type": "object", "properties": { "hosts": { "type": "array", "items": { "type": "object" } } } })) }
            } },
            "/v1/deals/{id}/start": { "post": {
                "summary": "A host starts a deal it holds",
                "parameters": [path_param("id", "the deal id")],
                "requestBody": { "required": true, "content": { "application/json": { "schema": reference("SignedStart") } } },
                "responses": write_errors(json!({ "200": ok("The job as it now is", reference("Job")),
                    "403": error_response("Another host holds the deal"), "404": error_response("No such deal"), "409": error_response("The deal or its job is decided") }))
            } },
            "/v1/deals/{id}/release": { "post": {
                "summary": "A host hands back a deal it holds, unfinished: the replica goes to another host at once (the deal is `lapsed`)",
                "parameters": [path_param("id", "the deal id")],
                "requestBody": { "required": true, "content": { "application/json": { "schema": reference("SignedRelease") } } },
                "responses": write_errors(json!({ "200": ok("The job as it now is", reference("Job")),
                    "403": error_response("Another host holds the deal"), "404": error_response("No such deal"), "409": error_response("The deal is reported or its job decided") }))
            } },
            "/v1/deals/{id}/logs": {
                "get": {
                    "summary": "A deal's log (what its job printed) from a byte offset, optionally waiting for more (`netmind job logs --follow`)",
                    "parameters": [path_param("id", "the deal id"),
                        query_param("from", "Byte offset to read from (default 0): the last answer's `next`", "integer"),
                        query_param("wait", "When nothing is past `from` yet, wait up to this many ms (at most 30000) for text or the deal's end", "integer"),
                        query_param("max", "Most bytes to answer (default and at most 262144)", "integer")],
                    "responses": { "200": ok("Text from `from`", reference("LogSlice")),
                        "400": error_response("A parameter does not parse"), "404": error_response("No such deal") }
                },
                "post": {
                    "summary": "The deal's host appends a piece of its job's log while it runs (at most 1 MiB per deal is kept)",
                    "parameters": [path_param("id", "the deal id")],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": reference("SignedLog") } } },
                    "responses": write_errors(json!({ "200": ok("Stored: `len` is the log's length", json!({ "type": "object" })),
                        "403": error_response("Another host holds the deal"), "404": error_response("No such deal"),
                        "409": error_response("The deal is reported or its job decided, or the piece would leave a gap (send from the named byte)") }))
                }
            },
            "/v1/receipts": { "post": {
                "summary": "A host's receipt for a deal it holds (upload the output blob first)",
                "requestBody": { "required": true, "content": { "application/json": { "schema": reference("SignedReceipt") } } },
                "responses": write_errors(json!({ "200": ok("The job as it now is (decided once a majority of replicas agree)", reference("Job")),
                    "403": error_response("Another host holds the deal"), "404": error_response("No such deal"), "409": error_response("Already reported, lapsed, or the job is decided") }))
            } },
            "/v1/events": { "get": {
                "summary": "Server-sent events: `book` (rested, filled, cancelled, expired) and `trade` (a deal), after commit",
                "parameters": [{
                    "name": "class", "in": "query", "required": false,
                    "description": "Follow only these classes (repeat the parameter, or separate them with commas): their trades and the book changes of their orders; every class when absent",
                    "schema": { "type": "array", "items": { "type": "string" } }, "style": "form", "explode": true
                }, {
                    "name": "host", "in": "query", "required": false,
                    "description": "A host daemon's stream: only the trades that give this host a deal, each with its `job` (as GET /v1/jobs/{id} shows it), and `job` events for the jobs it holds a replica of once they are over; no `book` or `host` events",
                    "schema": { "type": "string", "pattern": "^0x[0-9a-fA-F]{40}$" }
                }],
                "responses": { "200": { "description": "An event stream", "content": { "text/event-stream": { "schema": { "type": "string" } } } },
                               "400": error_response("`class` names no class, or `host` is not an address"), "404": unknown_class,
                               "503": error_response("Too many streams open") }
            } },
            "/v1/blobs/{sha256}": {
                "put": {
                    "summary": "Upload a blob; stored only if its bytes hash to the name",
                    "parameters": [blob],
                    "requestBody": { "required": true, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
                    "responses": {
                        "201": ok("Stored", reference("Blob")), "200": ok("Already stored", reference("Blob")),
                        "400": error_response("Not a SHA-256 name, or the bytes hash to another name"),
                        "413": error_response("Larger than the limit"), "429": error_response("Too many requests")
                    }
                },
                "get": {
                    "summary": "Download a blob",
                    "parameters": [blob],
                    "responses": { "200": { "description": "The bytes", "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
                                   "400": error_response("Not a SHA-256 name"), "404": error_response("Not stored") }
                },
                "head": {
                    "summary": "Whether a blob is stored, and its size (Content-Length)",
                    "parameters": [blob],
                    "responses": { "200": { "description": "Stored" }, "400": { "description": "Not a SHA-256 name" }, "404": { "description": "Not stored" } }
                }
            }
        },
        "components": { "schemas": schemas() }
    })
}
