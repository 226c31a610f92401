-- Online garbage collection: review queues filled by pushes and by
-- triggers whenever a reference goes away (see the SQLite migration of the
-- same name for the rules, and README, "Garbage collection"). `since` is in
-- unix milliseconds, by the database's clock.
CREATE TABLE gc_manifest_queue (
    repo_id BIGINT NOT NULL,
    digest TEXT NOT NULL,
    since BIGINT NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX gc_manifest_queue_since ON gc_manifest_queue(since);

CREATE TABLE gc_link_queue (
    repo_id BIGINT NOT NULL,
    digest TEXT NOT NULL,
    since BIGINT NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX gc_link_queue_since ON gc_link_queue(since);

CREATE TABLE gc_blob_queue (
    digest TEXT PRIMARY KEY,
    since BIGINT NOT NULL
);
CREATE INDEX gc_blob_queue_since ON gc_blob_queue(since);

DROP INDEX manifest_refs_ref;
CREATE INDEX manifest_refs_ref ON manifest_refs(ref_digest, repo_id, kind);
CREATE INDEX tag_history_old ON tag_history(repo_id, old_digest) WHERE old_digest IS NOT NULL;

CREATE FUNCTION registry_gc_queue() RETURNS trigger AS $$
DECLARE
    now BIGINT := (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT;
BEGIN
    IF TG_TABLE_NAME = 'tags' THEN
        IF TG_OP = 'DELETE' OR OLD.digest IS DISTINCT FROM NEW.digest THEN
            INSERT INTO gc_manifest_queue (repo_id, digest, since) VALUES (OLD.repo_id, OLD.digest, now)
            ON CONFLICT (repo_id, digest) DO UPDATE SET since = GREATEST(gc_manifest_queue.since, excluded.since);
            -- A tagged signature kept its image: the image may go now too.
            INSERT INTO gc_manifest_queue (repo_id, digest, since)
            SELECT repo_id, subject, now FROM manifests
            WHERE repo_id = OLD.repo_id AND digest = OLD.digest AND subject IS NOT NULL
            ON CONFLICT (repo_id, digest) DO UPDATE SET since = GREATEST(gc_manifest_queue.since, excluded.since);
        END IF;
    ELSIF TG_TABLE_NAME = 'manifest_refs' THEN
        IF OLD.kind = 'blob' THEN
            INSERT INTO gc_link_queue (repo_id, digest, since) VALUES (OLD.repo_id, OLD.ref_digest, now)
            ON CONFLICT (repo_id, digest) DO UPDATE SET since = GREATEST(gc_link_queue.since, excluded.since);
        ELSE
            INSERT INTO gc_manifest_queue (repo_id, digest, since) VALUES (OLD.repo_id, OLD.ref_digest, now)
            ON CONFLICT (repo_id, digest) DO UPDATE SET since = GREATEST(gc_manifest_queue.since, excluded.since);
        END IF;
    ELSIF TG_TABLE_NAME = 'manifests' THEN
        INSERT INTO gc_manifest_queue (repo_id, digest, since)
        SELECT repo_id, digest, now FROM manifests WHERE repo_id = OLD.repo_id AND subject = OLD.digest
        ON CONFLICT (repo_id, digest) DO UPDATE SET since = GREATEST(gc_manifest_queue.since, excluded.since);
    ELSE
        INSERT INTO gc_blob_queue (digest, since) VALUES (OLD.digest, now)
        ON CONFLICT (digest) DO UPDATE SET since = GREATEST(gc_blob_queue.since, excluded.since);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tags_gc AFTER UPDATE OR DELETE ON tags
    FOR EACH ROW EXECUTE FUNCTION registry_gc_queue();
CREATE TRIGGER manifest_refs_gc AFTER DELETE ON manifest_refs
    FOR EACH ROW EXECUTE FUNCTION registry_gc_queue();
CREATE TRIGGER manifests_gc AFTER DELETE ON manifests
    FOR EACH ROW EXECUTE FUNCTION registry_gc_queue();
CREATE TRIGGER repo_blobs_gc AFTER DELETE ON repo_blobs
    FOR EACH ROW EXECUTE FUNCTION registry_gc_queue();

INSERT INTO gc_manifest_queue (repo_id, digest, since)
SELECT repo_id, digest, (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT FROM manifests;
INSERT INTO gc_link_queue (repo_id, digest, since)
SELECT repo_id, digest, (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT FROM repo_blobs;
INSERT INTO gc_blob_queue (digest, since)
SELECT digest, (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT FROM blobs;
