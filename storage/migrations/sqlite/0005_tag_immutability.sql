-- ECR's tag immutability per repository: an immutable repository's tags
-- are only ever created, never moved, except tags matching one of the
-- exclusion patterns (a JSON array of globs, `*` matching any run).
ALTER TABLE repositories ADD COLUMN immutable INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN immutable_exclusions TEXT NOT NULL DEFAULT '[]';
