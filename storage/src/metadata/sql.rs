//! Query text both databases run as it is (`$N` placeholders, standard
//! SQL): one copy, so the SQLite and PostgreSQL modules cannot drift apart
//! where they need not differ.

/// Every `(repository, digest, size)` blob link.
pub const BLOB_LINKS: &str = "SELECT r.name, rb.digest, b.size FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id JOIN blobs b ON b.digest = rb.digest ORDER BY r.name, rb.digest";

/// Every `(repository, tag, digest)`.
pub const ALL_TAGS: &str = "SELECT r.name, t.name, t.digest FROM tags t JOIN repositories r ON r.id = t.repo_id ORDER BY r.name, t.name";

/// Manifests after `($1, $2)` by (repository, digest), `$3` of them.
pub const MANIFEST_PAGE: &str = "SELECT r.name, m.digest, m.media_type, m.content FROM manifests m JOIN repositories r ON r.id = m.repo_id WHERE (r.name, m.digest) > ($1, $2) ORDER BY r.name, m.digest LIMIT $3";

/// The last `$3` changes of tag `$2` in repository `$1`, newest first.
pub const TAG_HISTORY: &str = "SELECT h.old_digest, h.new_digest, h.action, h.at FROM tag_history h JOIN repositories r ON r.id = h.repo_id WHERE r.name = $1 AND h.tag = $2 ORDER BY h.id DESC LIMIT $3";

/// Whether manifest `$2` is stored in repository id `$1`.
pub const MANIFEST_DIGEST: &str = "SELECT digest FROM manifests WHERE repo_id = $1 AND digest = $2";

/// The digest tag `$2` of repository id `$1` points at.
pub const TAG_DIGEST: &str = "SELECT digest FROM tags WHERE repo_id = $1 AND name = $2";

/// Point tag `$2` of repository id `$1` at `$3` (time `$4`).
pub const MOVE_TAG: &str = "INSERT INTO tags (repo_id, name, digest, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at";

/// Name the action (`$3`) of the last change of tag `$2` in repository id `$1`.
pub const NAME_ACTION: &str = "UPDATE tag_history SET action = $3 WHERE id = (SELECT MAX(id) FROM tag_history WHERE repo_id = $1 AND tag = $2)";
