-- What hosts signed about the work they do for deals (netmind_market::jobs):
-- a Start when a replica begins, a Receipt when it ends. Stored before they
-- are applied, replayed after the journal at start, so job states survive
-- a restart.
CREATE TABLE work (
    seq    BIGSERIAL PRIMARY KEY,
    at     BIGINT NOT NULL,   -- ms since the Unix epoch, when the market took it
    kind   TEXT NOT NULL,    -- 'start' or 'receipt'
    deal   TEXT NOT NULL,    -- 0x-hex deal id
    host   TEXT NOT NULL,
    signed TEXT NOT NULL     -- JSON: {"order": Start | Receipt, "signature": ...}
);

CREATE INDEX work_deal ON work (deal);
