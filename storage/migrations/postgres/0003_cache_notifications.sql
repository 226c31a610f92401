-- Every node caches tags, manifests and blob links in memory; when one node
-- (or anyone with SQL access) moves a tag or deletes a manifest or link, the
-- others must forget their copy. Triggers send the change on channel
-- `registry_cache` when the transaction commits, whoever wrote it.
-- Payload: kind, repository name and key, separated by tabs (names and
-- tags cannot hold a tab).
CREATE FUNCTION registry_cache_notify() RETURNS trigger AS $$
DECLARE
    repo TEXT;
BEGIN
    SELECT name INTO repo FROM repositories WHERE id = OLD.repo_id;
    IF TG_TABLE_NAME = 'tags' THEN
        PERFORM pg_notify('registry_cache', 'tag' || E'\t' || repo || E'\t' || OLD.name);
    ELSIF TG_TABLE_NAME = 'manifests' THEN
        PERFORM pg_notify('registry_cache', 'manifest' || E'\t' || repo || E'\t' || OLD.digest);
    ELSE
        PERFORM pg_notify('registry_cache', 'link' || E'\t' || repo || E'\t' || OLD.digest);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- A new tag or link was cached nowhere (only what exists is cached): updates
-- and deletes are what other nodes must hear of.
CREATE TRIGGER tags_cache_notify AFTER UPDATE OR DELETE ON tags
    FOR EACH ROW EXECUTE FUNCTION registry_cache_notify();
CREATE TRIGGER manifests_cache_notify AFTER DELETE ON manifests
    FOR EACH ROW EXECUTE FUNCTION registry_cache_notify();
CREATE TRIGGER repo_blobs_cache_notify AFTER DELETE ON repo_blobs
    FOR EACH ROW EXECUTE FUNCTION registry_cache_notify();
