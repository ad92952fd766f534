-- Signed orders as their makers sent them (EIP-712 typed data and signature),
-- stored with the journal entry that placed them, in the same transaction:
-- the proof a contract can check, and what `GET /v1/orders/{id}` shows.
CREATE TABLE orders (
    id     TEXT    PRIMARY KEY,   -- 0x-hex of the order id (its signing hash)
    seq    BIGINT  NOT NULL REFERENCES journal (seq),
    kind   TEXT    NOT NULL,      -- 'offer' or 'bid'
    maker  TEXT    NOT NULL,
    class  TEXT    NOT NULL,
    at     BIGINT  NOT NULL,
    signed TEXT    NOT NULL       -- JSON: {"order": ..., "signature": ...}
);

CREATE INDEX orders_maker ON orders (maker);
CREATE INDEX deals_class ON deals (class, seq);
CREATE INDEX deals_owner ON deals (owner);
CREATE INDEX deals_host ON deals (host);
