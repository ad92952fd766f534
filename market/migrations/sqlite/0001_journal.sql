-- The market's journal: every accepted command, in order. The book is a pure
-- function of it (netmind_market::engine), so it is the only state that must
-- survive a crash; the deals table is derived from it in the same transaction.
CREATE TABLE journal (
    seq     INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,   -- ms since the Unix epoch, as given to the engine
    command TEXT    NOT NULL    -- JSON of netmind_market::engine::Command
);

CREATE TABLE deals (
    id      TEXT    PRIMARY KEY,   -- 0x-hex of the deal id: a deal exists once
    seq     INTEGER NOT NULL REFERENCES journal (seq),
    bid     TEXT    NOT NULL,
    offer   TEXT    NOT NULL,
    owner   TEXT    NOT NULL,
    host    TEXT    NOT NULL,
    class   TEXT    NOT NULL,
    price   TEXT    NOT NULL,      -- decimal, NMT base units per second
    seconds INTEGER NOT NULL,
    replica INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    ord     INTEGER NOT NULL     -- the deal's place among its command's events
);

CREATE INDEX deals_bid ON deals (bid);

-- The engine rules and settings the journal was written with.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
