-- Every change of a tag, recorded by the database in the statement that
-- makes it (a push, a delete, a manifest delete that takes its tags, a
-- rollback, or SQL run by hand): the history cannot miss a change or record
-- one that did not commit. `action` is 'push' or 'delete' unless the writer
-- names it (a rollback updates `action` of the row it caused). No foreign
-- key: the history of a tag outlives its manifests.
CREATE TABLE tag_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id INTEGER NOT NULL,
    tag TEXT NOT NULL,
    old_digest TEXT,
    new_digest TEXT,
    action TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX tag_history_by_tag ON tag_history(repo_id, tag, id);

CREATE TRIGGER tag_history_insert AFTER INSERT ON tags BEGIN
    INSERT INTO tag_history (repo_id, tag, old_digest, new_digest, action, at)
    VALUES (NEW.repo_id, NEW.name, NULL, NEW.digest, 'push', NEW.updated_at);
END;

-- An upsert's update fires this; a push of the same digest again is no change.
CREATE TRIGGER tag_history_update AFTER UPDATE OF digest ON tags
WHEN OLD.digest IS NOT NEW.digest BEGIN
    INSERT INTO tag_history (repo_id, tag, old_digest, new_digest, action, at)
    VALUES (NEW.repo_id, NEW.name, OLD.digest, NEW.digest, 'push', NEW.updated_at);
END;

CREATE TRIGGER tag_history_delete AFTER DELETE ON tags BEGIN
    INSERT INTO tag_history (repo_id, tag, old_digest, new_digest, action, at)
    VALUES (OLD.repo_id, OLD.name, OLD.digest, NULL, 'delete', CAST(strftime('%s', 'now') AS INTEGER));
END;
