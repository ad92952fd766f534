-- Ids and addresses as their bytes (BLOB: 32 and 20 bytes), not 0x-hex text
-- (66 and 42 characters): every index entry is half the size and compares
-- with one memcmp. `orders_maker` is gone (nothing reads orders by maker);
-- `deals_offer` is new (`GET /v1/orders/{id}` of an offer lists its deals).
-- `orders` is read only by id: it is stored as that one B-tree (WITHOUT
-- ROWID), not a table and an index on its id.
--
-- These tables are derived from the journal: they are emptied here, and the
-- market projects the whole journal into them again when it starts
-- (`Journal::replay_into` projects every entry after `meta.projected`).
DROP TABLE deals;
DROP TABLE orders;

CREATE TABLE deals (
    id      BLOB    PRIMARY KEY,   -- the deal id (32 bytes): a deal exists once
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
    ord     INTEGER NOT NULL       -- the deal's place among its command's events
);

CREATE INDEX deals_bid ON deals (bid);
CREATE INDEX deals_offer ON deals (offer);
CREATE INDEX deals_class ON deals (class, seq);
CREATE INDEX deals_owner ON deals (owner);
CREATE INDEX deals_host ON deals (host);

CREATE TABLE orders (
    id     BLOB    PRIMARY KEY,   -- the order id (its 32-byte signing hash)
    seq    INTEGER NOT NULL,      -- the journal entry that placed it
    kind   TEXT    NOT NULL,      -- 'offer' or 'bid'
    maker  BLOB    NOT NULL,      -- 20-byte address
    class  TEXT    NOT NULL,
    at     INTEGER NOT NULL
) WITHOUT ROWID;

DELETE FROM meta WHERE key = 'projected';
