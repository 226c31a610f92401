-- Every change of a tag, recorded by the database in the statement that
-- makes it (see the SQLite migration of the same name for the rules).
CREATE TABLE tag_history (
    id BIGSERIAL PRIMARY KEY,
    repo_id BIGINT NOT NULL,
    tag TEXT COLLATE "C" NOT NULL,
    old_digest TEXT,
    new_digest TEXT,
    action TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX tag_history_by_tag ON tag_history(repo_id, tag, id);

CREATE FUNCTION registry_tag_history() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO tag_history (repo_id, tag, old_digest, new_digest, action, at)
        VALUES (NEW.repo_id, NEW.name, NULL, NEW.digest, 'push', NEW.updated_at);
    ELSIF TG_OP = 'UPDATE' THEN
        IF OLD.digest IS DISTINCT FROM NEW.digest THEN
            INSERT INTO tag_history (repo_id, tag, old_digest, new_digest, action, at)
            VALUES (NEW.repo_id, NEW.name, OLD.digest, NEW.digest, 'push', NEW.updated_at);
        END IF;
    ELSE
        INSERT INTO tag_history (repo_id, tag, old_digest, new_digest, action, at)
        VALUES (OLD.repo_id, OLD.name, OLD.digest, NULL, 'delete',
                EXTRACT(EPOCH FROM clock_timestamp())::BIGINT);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tags_history AFTER INSERT OR UPDATE OR DELETE ON tags
    FOR EACH ROW EXECUTE FUNCTION registry_tag_history();
