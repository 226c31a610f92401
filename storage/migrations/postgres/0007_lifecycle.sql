-- ECR lifecycle policies per repository, and when each manifest was last
-- pulled (see the SQLite migration of the same name).
ALTER TABLE repositories ADD COLUMN lifecycle_policy TEXT;
ALTER TABLE manifests ADD COLUMN last_pulled BIGINT;
-- When it was first pushed, in milliseconds: policies keep "the newest N",
-- and pushes a second apart must not tie.
ALTER TABLE manifests ADD COLUMN pushed_ms BIGINT;
