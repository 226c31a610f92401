-- See the SQLite migration of the same name.
ALTER TABLE blobs ADD COLUMN location TEXT;
ALTER TABLE uploads ADD COLUMN state BYTEA;
ALTER TABLE uploads ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
