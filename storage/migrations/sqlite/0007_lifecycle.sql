-- ECR lifecycle policies per repository (the policy's JSON text as set),
-- and when each manifest was last pulled: written in batches from memory,
-- never once per pull (for `sinceImagePulled`; NULL: never pulled).
ALTER TABLE repositories ADD COLUMN lifecycle_policy TEXT;
ALTER TABLE manifests ADD COLUMN last_pulled INTEGER;
-- When it was first pushed, in milliseconds: policies keep "the newest N",
-- and pushes a second apart must not tie.
ALTER TABLE manifests ADD COLUMN pushed_ms INTEGER;
