-- Online garbage collection (see README, "Garbage collection"). Review
-- queues: a row says "this may have become garbage at `since`". Pushes
-- write them (a new manifest, a new link) in the statement that stores
-- what they queue, and triggers write them whenever a reference goes away,
-- so a collection reviews only what changed since the last one: its cost
-- follows the garbage, not the size of the registry. A row is reviewed
-- once `since` is older than the grace period, and removed when reviewed.
CREATE TABLE gc_manifest_queue (
    repo_id INTEGER NOT NULL,
    digest TEXT NOT NULL,
    -- Unix milliseconds, by the database's clock.
    since INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX gc_manifest_queue_since ON gc_manifest_queue(since);

CREATE TABLE gc_link_queue (
    repo_id INTEGER NOT NULL,
    digest TEXT NOT NULL,
    since INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX gc_link_queue_since ON gc_link_queue(since);

CREATE TABLE gc_blob_queue (
    digest TEXT PRIMARY KEY,
    since INTEGER NOT NULL
);
CREATE INDEX gc_blob_queue_since ON gc_blob_queue(since);

-- Liveness lookups of a collection: "does any manifest of this repository
-- reference it", "did a tag point here lately".
DROP INDEX manifest_refs_ref;
CREATE INDEX manifest_refs_ref ON manifest_refs(ref_digest, repo_id, kind);
CREATE INDEX tag_history_old ON tag_history(repo_id, old_digest) WHERE old_digest IS NOT NULL;

-- A tag moved off or deleted: its old manifest may be garbage now, and so
-- may that manifest's subject (a tagged signature kept its image).
CREATE TRIGGER gc_tag_update AFTER UPDATE OF digest ON tags
WHEN OLD.digest IS NOT NEW.digest BEGIN
    INSERT INTO gc_manifest_queue (repo_id, digest, since)
    VALUES (OLD.repo_id, OLD.digest, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (repo_id, digest) DO UPDATE SET since = MAX(since, excluded.since);
    INSERT INTO gc_manifest_queue (repo_id, digest, since)
    SELECT repo_id, subject, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM manifests
    WHERE repo_id = OLD.repo_id AND digest = OLD.digest AND subject IS NOT NULL
    ON CONFLICT (repo_id, digest) DO UPDATE SET since = MAX(since, excluded.since);
END;

CREATE TRIGGER gc_tag_delete AFTER DELETE ON tags BEGIN
    INSERT INTO gc_manifest_queue (repo_id, digest, since)
    VALUES (OLD.repo_id, OLD.digest, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (repo_id, digest) DO UPDATE SET since = MAX(since, excluded.since);
    INSERT INTO gc_manifest_queue (repo_id, digest, since)
    SELECT repo_id, subject, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM manifests
    WHERE repo_id = OLD.repo_id AND digest = OLD.digest AND subject IS NOT NULL
    ON CONFLICT (repo_id, digest) DO UPDATE SET since = MAX(since, excluded.since);
END;

-- A manifest went (deleted, or collected): what it referenced may be
-- garbage now (its layers and config in this repository, the children of
-- an index), and so may the referrers whose subject it was.
CREATE TRIGGER gc_ref_delete AFTER DELETE ON manifest_refs BEGIN
    INSERT INTO gc_link_queue (repo_id, digest, since)
    SELECT OLD.repo_id, OLD.ref_digest, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    WHERE OLD.kind = 'blob'
    ON CONFLICT (repo_id, digest) DO UPDATE SET since = MAX(since, excluded.since);
    INSERT INTO gc_manifest_queue (repo_id, digest, since)
    SELECT OLD.repo_id, OLD.ref_digest, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    WHERE OLD.kind = 'manifest'
    ON CONFLICT (repo_id, digest) DO UPDATE SET since = MAX(since, excluded.since);
END;

CREATE TRIGGER gc_manifest_delete AFTER DELETE ON manifests BEGIN
    INSERT INTO gc_manifest_queue (repo_id, digest, since)
    SELECT repo_id, digest, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM manifests
    WHERE repo_id = OLD.repo_id AND subject = OLD.digest
    ON CONFLICT (repo_id, digest) DO UPDATE SET since = MAX(since, excluded.since);
END;

-- The last link of a blob may have gone (a blob DELETE, a collected link).
CREATE TRIGGER gc_link_delete AFTER DELETE ON repo_blobs BEGIN
    INSERT INTO gc_blob_queue (digest, since)
    VALUES (OLD.digest, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (digest) DO UPDATE SET since = MAX(since, excluded.since);
END;

-- What was stored before collection existed is reviewed once.
INSERT INTO gc_manifest_queue (repo_id, digest, since)
SELECT repo_id, digest, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM manifests;
INSERT INTO gc_link_queue (repo_id, digest, since)
SELECT repo_id, digest, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM repo_blobs;
INSERT INTO gc_blob_queue (digest, since)
SELECT digest, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM blobs;
