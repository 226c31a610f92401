-- ECR's tag immutability per repository (see the SQLite migration).
ALTER TABLE repositories ADD COLUMN immutable INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN immutable_exclusions TEXT NOT NULL DEFAULT '[]';
