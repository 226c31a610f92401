-- What each layer blob contains (its file list), computed once per digest
-- for every image that shares the layer; goes with the blob.
CREATE TABLE layer_indexes (
    digest TEXT PRIMARY KEY REFERENCES blobs(digest) ON DELETE CASCADE,
    -- 'ready', or why there is no list: 'too_large', 'invalid'.
    state TEXT NOT NULL,
    detail TEXT,
    -- The list, zstd-compressed JSON (state 'ready' only).
    data BYTEA,
    entries BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
