-- Ids and addresses as their bytes (BYTEA: 32 and 20 bytes), not 0x-hex text
-- (66 and 42 characters): every index entry is half the size and compares
-- with one memcmp. `orders_maker` is gone (nothing reads orders by maker);
-- `deals_offer` is new (`GET /v1/orders/{id}` of an offer lists its deals).
--
-- These tables are derived from the journal: they are emptied here, and the
-- market projects the whole journal into them again when it starts
-- (`Journal::replay_into` projects every entry after `meta.projected`).
DROP TABLE deals;
DROP TABLE orders;

CREATE TABLE deals (
    id      BYTEA   PRIMARY KEY,   -- the deal id (32 bytes): a deal exists once
    seq     BIGINT  NOT NULL,      -- the journal entry that made it
    bid     BYTEA   NOT NULL,      -- 32 bytes
    offer   BYTEA   NOT NULL,      -- 32 bytes
    owner   BYTEA   NOT NULL,      -- 20-byte address
    host    BYTEA   NOT NULL,      -- 20-byte address
    class   TEXT    NOT NULL,
    price   TEXT    NOT NULL,      -- decimal, NMT base units per second
    seconds BIGINT  NOT NULL,
    replica BIGINT  NOT NULL,
    at      BIGINT  NOT NULL,
    ord     BIGINT  NOT NULL       -- the deal's place among its command's events
);

CREATE INDEX deals_bid ON deals (bid);
CREATE INDEX deals_offer ON deals (offer);
CREATE INDEX deals_class ON deals (class, seq);
CREATE INDEX deals_owner ON deals (owner);
CREATE INDEX deals_host ON deals (host);

CREATE TABLE orders (
    id     BYTEA   PRIMARY KEY,   -- the order id (its 32-byte signing hash)
    seq    BIGINT  NOT NULL,      -- the journal entry that placed it
    kind   TEXT    NOT NULL,      -- 'offer' or 'bid'
    maker  BYTEA   NOT NULL,      -- 20-byte address
    class  TEXT    NOT NULL,
    at     BIGINT  NOT NULL
);

DELETE FROM meta WHERE key = 'projected';
