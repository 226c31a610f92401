-- Push and delete events for webhooks (see the SQLite migration of the
-- same name).
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    action TEXT NOT NULL,
    repo_id BIGINT NOT NULL,
    digest TEXT NOT NULL,
    tag TEXT,
    media_type TEXT,
    size BIGINT,
    actor TEXT,
    at_ms BIGINT NOT NULL
);

CREATE TABLE event_cursors (
    endpoint TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL
);
