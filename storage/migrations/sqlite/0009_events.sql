-- Push and delete events for webhooks: written in the transaction of the
-- change they tell of (a manifest PUT, a tag or manifest DELETE, a tag
-- rollback), so none is lost or told of a change that did not commit.
-- Each endpoint reads them in order from its cursor (the last id it
-- delivered): delivery is at least once, and survives restarts.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL,
    repo_id INTEGER NOT NULL,
    digest TEXT NOT NULL,
    tag TEXT,
    media_type TEXT,
    size INTEGER,
    actor TEXT,
    at_ms INTEGER NOT NULL
);

CREATE TABLE event_cursors (
    endpoint TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL
);
