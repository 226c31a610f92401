-- Users (people), with argon2id password hashes (PHC strings).
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    -- JSON array of group names, for [access] rules.
    groups TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,
    -- Refresh tokens issued before this are refused.
    password_changed_at INTEGER NOT NULL
);

-- Robot accounts: a hashed secret, their own scopes, an optional expiry.
CREATE TABLE robots (
    name TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    -- Scope patterns separated by spaces (`repository:team/*:pull`).
    scopes TEXT NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL
);

-- Signed-in web sessions; the cookie holds the id, the table its hash.
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);
