-- An upload session is locked by a lease on its row while a request writes
-- to it, instead of by an advisory lock on a pooled connection: a client
-- streaming a body slowly must not hold a connection of the pool (a few
-- dozen slow uploads would starve every other request of the node).
-- `lease_until` is PostgreSQL's clock, in milliseconds; a node that dies
-- leaves its leases to run out (5 s; each node renews those it holds in
-- one statement a second).
ALTER TABLE uploads ADD COLUMN lease TEXT;
ALTER TABLE uploads ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
