-- Only the journal is written before an order is acknowledged. It now keeps
-- the signed order too; the derived tables (deals, orders) are projected from
-- it in larger batches right after (netmind_market::journal::project).
-- `projected` is the last journal entry they hold, updated in the same
-- transaction as their rows; a restart projects whatever follows it.
ALTER TABLE journal ADD COLUMN signed TEXT;  -- JSON of the signed order, for offers and bids placed by their makers

UPDATE journal SET signed = (SELECT o.signed FROM orders o WHERE o.seq = journal.seq);

INSERT INTO meta (key, value)
SELECT 'projected', CAST(COALESCE(MAX(seq), 0) AS TEXT) FROM journal;
