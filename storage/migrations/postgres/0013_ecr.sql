-- The ECR API (issue 22).
-- Access keys for SigV4: the secret sealed (encrypted) under a server key
-- kept outside the database, never in clear (see auth::access_key).
-- `owner` is the account the key acts as: a user name or `robot+NAME`.
CREATE TABLE access_keys (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    sealed_secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX access_keys_owner ON access_keys(owner);
-- ECR resource tags of repositories (TagResource, CreateRepository's tags).
CREATE TABLE repository_tags (
    repo_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (repo_id, tag_key)
);
-- DeleteRepository empties a repository and marks it deleted (rows keep
-- their ids: other nodes cache them); a later push or CreateRepository
-- brings it back.
ALTER TABLE repositories ADD COLUMN deleted_at BIGINT;
-- The policy of the last StartLifecyclePolicyPreview, evaluated when the
-- preview is read.
CREATE TABLE lifecycle_previews (
    repo_id BIGINT PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
    policy TEXT NOT NULL,
    started_at BIGINT NOT NULL
);
-- Pull-through cache rules made through the ECR API: every node reads
-- them (besides the [[cache]] rules of its own configuration).
CREATE TABLE pull_through_rules (
    prefix TEXT PRIMARY KEY,
    upstream_url TEXT NOT NULL,
    upstream_registry TEXT,
    upstream_prefix TEXT,
    credential_arn TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
