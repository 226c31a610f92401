-- Where a blob's bytes are when not under its digest's own name (an S3
-- object written by a multipart upload), and the state of an upload session
-- that any node can continue (S3: multipart id, parts, the running hash).
ALTER TABLE blobs ADD COLUMN location TEXT;
ALTER TABLE uploads ADD COLUMN state BLOB;
ALTER TABLE uploads ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
