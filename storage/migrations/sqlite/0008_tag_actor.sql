-- Who changed a tag. The writer names itself on the tag row (a push or a
-- rollback in the statement that moves it, a delete just before it), and
-- the history triggers copy it: NULL when authentication is off.
ALTER TABLE tags ADD COLUMN actor TEXT;
ALTER TABLE tag_history ADD COLUMN actor TEXT;

DROP TRIGGER tag_history_insert;
DROP TRIGGER tag_history_update;
DROP TRIGGER tag_history_delete;

CREATE TRIGGER tag_history_insert AFTER INSERT ON tags BEGIN
    INSERT INTO tag_history (repo_id, tag, old_digest, new_digest, action, at, actor)
    VALUES (NEW.repo_id, NEW.name, NULL, NEW.digest, 'push', NEW.updated_at, NEW.actor);
END;

CREATE TRIGGER tag_history_update AFTER UPDATE OF digest ON tags
WHEN OLD.digest IS NOT NEW.digest BEGIN
    INSERT INTO tag_history (repo_id, tag, old_digest, new_digest, action, at, actor)
    VALUES (NEW.repo_id, NEW.name, OLD.digest, NEW.digest, 'push', NEW.updated_at, NEW.actor);
END;

CREATE TRIGGER tag_history_delete AFTER DELETE ON tags BEGIN
    INSERT INTO tag_history (repo_id, tag, old_digest, new_digest, action, at, actor)
    VALUES (OLD.repo_id, OLD.name, OLD.digest, NULL, 'delete', CAST(strftime('%s', 'now') AS INTEGER), OLD.actor);
END;
