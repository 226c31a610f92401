-- Who changed a tag (see the SQLite migration of the same name).
ALTER TABLE tags ADD COLUMN actor TEXT;
ALTER TABLE tag_history ADD COLUMN actor TEXT;

CREATE OR REPLACE FUNCTION registry_tag_history() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO tag_history (repo_id, tag, old_digest, new_digest, action, at, actor)
        VALUES (NEW.repo_id, NEW.name, NULL, NEW.digest, 'push', NEW.updated_at, NEW.actor);
    ELSIF TG_OP = 'UPDATE' THEN
        IF OLD.digest IS DISTINCT FROM NEW.digest THEN
            INSERT INTO tag_history (repo_id, tag, old_digest, new_digest, action, at, actor)
            VALUES (NEW.repo_id, NEW.name, OLD.digest, NEW.digest, 'push', NEW.updated_at, NEW.actor);
        END IF;
    ELSE
        INSERT INTO tag_history (repo_id, tag, old_digest, new_digest, action, at, actor)
        VALUES (OLD.repo_id, OLD.name, OLD.digest, NULL, 'delete',
                EXTRACT(EPOCH FROM clock_timestamp())::BIGINT, OLD.actor);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
