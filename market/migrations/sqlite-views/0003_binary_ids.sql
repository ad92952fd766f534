-- Ids and addresses as their bytes (BLOB: 32 and 20 bytes), not 0x-hex text
-- (66 and 42 characters): every index entry is half the size and compares
-- with one memcmp. `orders_maker` is gone (nothing reads orders by maker);
-- `deals_offer` is new (`GET /v1/orders/{id}` of an offer lists its deals).
-- Deals are keyed by the journal entry that made them and their place in it
-- (`seq`, `ord`), so the table grows at its end; nothing looks a deal up by
-- its id here, so the id (a random hash) has no index to keep.
-- Bids, offers and order ids are random hashes, so each new row lands on a
-- random page of their indexes: those index an 8-byte prefix (`*_key`, an
-- integer), a third of the size of the whole id, so that a projection
-- dirties a third of the pages; a lookup compares the whole id after.
-- Orders are keyed by the journal entry that placed them (`seq`), so that
-- table too grows at its end.
--
-- These tables are derived from the journal: they are emptied here, and the
-- market projects the whole journal into them again when it starts
-- (`Journal::replay_into` projects every entry after `meta.projected`).
DROP TABLE deals;
DROP TABLE orders;

CREATE TABLE deals (
    id      BLOB    NOT NULL,      -- the deal id (32 bytes)
    seq     INTEGER NOT NULL,      -- the journal entry that made it
    bid     BLOB    NOT NULL,      -- 32 bytes
    offer   BLOB    NOT NULL,      -- 32 bytes
    owner   BLOB    NOT NULL,      -- 20-byte address
    host    BLOB    NOT NULL,      -- 20-byte address
    class   TEXT    NOT NULL,
    price   TEXT    NOT NULL,      -- decimal, NMT base units per second
    seconds INTEGER NOT NULL,
    replica INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    ord     INTEGER NOT NULL,      -- the deal's place among its command's events
    bid_key   INTEGER NOT NULL,    -- the bid's first 8 bytes (big-endian, signed)
    offer_key INTEGER NOT NULL,    -- the offer's first 8 bytes
    -- A deal exists once: the entry that made it and its place there.
    PRIMARY KEY (seq, ord)
) WITHOUT ROWID;

CREATE INDEX deals_bid ON deals (bid_key);
CREATE INDEX deals_offer ON deals (offer_key);
CREATE INDEX deals_class ON deals (class, seq);
CREATE INDEX deals_owner ON deals (owner);
CREATE INDEX deals_host ON deals (host);

CREATE TABLE orders (
    seq    INTEGER PRIMARY KEY,   -- the journal entry that placed it
    id     BLOB    NOT NULL,      -- the order id (its 32-byte signing hash)
    kind   TEXT    NOT NULL,      -- 'offer' or 'bid'
    maker  BLOB    NOT NULL,      -- 20-byte address
    class  TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    id_key INTEGER NOT NULL       -- the id's first 8 bytes (big-endian, signed)
);

CREATE INDEX orders_id ON orders (id_key);

DELETE FROM meta WHERE key = 'projected';
