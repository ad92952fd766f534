-- Only the journal is written before an order is acknowledged. It now keeps
-- the signed order too; the derived tables (deals, orders) move to their own
-- file, `<journal>-views.db` (migrations/sqlite-views), projected from the
-- journal in larger batches by netmind_market::journal::project, so that
-- their writes never hold the journal's write lock. That file is rebuilt
-- from the journal whenever it is missing.
ALTER TABLE journal ADD COLUMN signed TEXT;  -- JSON of the signed order, for offers and bids placed by their makers

UPDATE journal SET signed = (SELECT o.signed FROM orders o WHERE o.seq = journal.seq);

DROP TABLE deals;
DROP TABLE orders;
