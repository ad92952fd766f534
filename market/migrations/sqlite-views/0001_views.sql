-- The market's derived tables on SQLite, in their own file beside the
-- journal (`<journal>-views.db`): projected from the journal by
-- netmind_market::journal::project, and rebuilt from it when missing.

-- `projected`: the last journal entry these tables hold.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE deals (
    id      TEXT    PRIMARY KEY,   -- 0x-hex of the deal id: a deal exists once
    seq     INTEGER NOT NULL,      -- the journal entry that made it
    bid     TEXT    NOT NULL,
    offer   TEXT    NOT NULL,
    owner   TEXT    NOT NULL,
    host    TEXT    NOT NULL,
    class   TEXT    NOT NULL,
    price   TEXT    NOT NULL,      -- decimal, NMT base units per second
    seconds INTEGER NOT NULL,
    replica INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    ord     INTEGER NOT NULL       -- the deal's place among its command's events
);

CREATE INDEX deals_bid ON deals (bid);
CREATE INDEX deals_class ON deals (class, seq);
CREATE INDEX deals_owner ON deals (owner);
CREATE INDEX deals_host ON deals (host);

-- Signed orders as their makers sent them (EIP-712 typed data and signature):
-- the proof a contract can check, and what `GET /v1/orders/{id}` shows.
CREATE TABLE orders (
    id     TEXT    PRIMARY KEY,   -- 0x-hex of the order id (its signing hash)
    seq    INTEGER NOT NULL,      -- the journal entry that placed it
    kind   TEXT    NOT NULL,      -- 'offer' or 'bid'
    maker  TEXT    NOT NULL,
    class  TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    signed TEXT    NOT NULL       -- JSON: {"order": ..., "signature": ...}
);

CREATE INDEX orders_maker ON orders (maker);
