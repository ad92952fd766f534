-- The signed order stays in the journal only (`journal.signed`, by `seq`):
-- `GET /v1/orders/{id}` reads it from there, and the projection no longer
-- writes a second copy of every order.
ALTER TABLE orders DROP COLUMN signed;
