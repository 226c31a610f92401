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
pub const TAG_HISTORY: &str = "SELECT h.old_digest, h.new_digest, h.action, h.at, h.actor FROM tag_history h JOIN repositories r ON r.id = h.repo_id WHERE r.name = $1 AND h.tag = $2 ORDER BY h.id DESC LIMIT $3";

/// Whether manifest `$2` is stored in repository id `$1`.
pub const MANIFEST_DIGEST: &str = "SELECT digest FROM manifests WHERE repo_id = $1 AND digest = $2";

/// The digest tag `$2` of repository id `$1` points at.
pub const TAG_DIGEST: &str = "SELECT digest FROM tags WHERE repo_id = $1 AND name = $2";

/// Point tag `$2` of repository id `$1` at `$3` (time `$4`, by `$5`).
pub const MOVE_TAG: &str = "INSERT INTO tags (repo_id, name, digest, updated_at, actor) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at, actor = excluded.actor";

/// Name `$3` as who deletes tag `$2` of repository `$1` (just before).
pub const TAG_ACTOR: &str = "UPDATE tags SET actor = $3 WHERE name = $2 AND repo_id = (SELECT id FROM repositories WHERE name = $1)";

/// Name `$3` as who deletes the tags of manifest `$2` of repository `$1`.
pub const MANIFEST_TAGS_ACTOR: &str = "UPDATE tags SET actor = $3 WHERE digest = $2 AND repo_id = (SELECT id FROM repositories WHERE name = $1)";

/// Name the action (`$3`) of the last change of tag `$2` in repository id `$1`.
pub const NAME_ACTION: &str = "UPDATE tag_history SET action = $3 WHERE id = (SELECT MAX(id) FROM tag_history WHERE repo_id = $1 AND tag = $2)";

/// The lifecycle policy of repository `$1` (a row: the repository exists).
pub const LIFECYCLE_POLICY: &str = "SELECT lifecycle_policy FROM repositories WHERE name = $1";

/// Set (or, NULL, remove) the lifecycle policy of repository id `$1`.
pub const SET_LIFECYCLE_POLICY: &str =
    "UPDATE repositories SET lifecycle_policy = $2 WHERE id = $1";

/// Repositories with a lifecycle policy, with it.
pub const LIFECYCLE_REPOS: &str = "SELECT name, lifecycle_policy FROM repositories WHERE lifecycle_policy IS NOT NULL ORDER BY name";

/// The images of repository `$1` as lifecycle policies see them: manifests
/// that stand on their own (no subject, no index naming them), one row per
/// tag (NULL: untagged): digest, pushed (milliseconds), last pulled, tag.
pub const LIFECYCLE_IMAGES: &str = "SELECT m.digest, COALESCE(m.pushed_ms, m.created_at * 1000), m.last_pulled, t.name FROM manifests m JOIN repositories r ON r.id = m.repo_id LEFT JOIN tags t ON t.repo_id = m.repo_id AND t.digest = m.digest WHERE r.name = $1 AND m.subject IS NULL AND NOT EXISTS (SELECT 1 FROM manifest_refs x WHERE x.ref_digest = m.digest AND x.repo_id = m.repo_id AND x.kind = 'manifest') ORDER BY m.digest, t.name";

/// Delete manifest `$1` of repository `$2` (its tags and references go by
/// foreign key).
pub const DELETE_MANIFEST: &str = "DELETE FROM manifests WHERE digest = $1 AND repo_id = (SELECT id FROM repositories WHERE name = $2)";

/// Delete tag `$1` of repository `$2`.
pub const DELETE_TAG: &str =
    "DELETE FROM tags WHERE name = $1 AND repo_id = (SELECT id FROM repositories WHERE name = $2)";

/// An event for the deletion of manifest `$1` of repository `$2` by `$3`
/// at `$4` (milliseconds), written before the delete.
pub const EVENT_MANIFEST_DELETE: &str = "INSERT INTO events (action, repo_id, digest, tag, media_type, size, actor, at_ms) SELECT 'delete', repo_id, digest, NULL, media_type, size, $3, $4 FROM manifests WHERE digest = $1 AND repo_id = (SELECT id FROM repositories WHERE name = $2)";

/// An event for the deletion of tag `$1` of repository `$2` by `$3` at `$4`.
pub const EVENT_TAG_DELETE: &str = "INSERT INTO events (action, repo_id, digest, tag, media_type, size, actor, at_ms) SELECT 'delete', t.repo_id, t.digest, t.name, m.media_type, m.size, $3, $4 FROM tags t JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest WHERE t.name = $1 AND t.repo_id = (SELECT id FROM repositories WHERE name = $2)";

/// An event for tag `$2` of repository id `$1` now at manifest `$3`
/// (a rollback), by `$4` at `$5`.
pub const EVENT_TAG_MOVE: &str = "INSERT INTO events (action, repo_id, digest, tag, media_type, size, actor, at_ms) SELECT 'push', repo_id, digest, $2, media_type, size, $4, $5 FROM manifests WHERE repo_id = $1 AND digest = $3";

/// Events after `$1` (at most `$2`), with their repository's name:
/// id, action, repository, digest, tag, media type, size, actor, time.
pub const EVENTS_AFTER: &str = "SELECT e.id, e.action, r.name AS repository, e.digest, e.tag, e.media_type, e.size, e.actor, e.at_ms FROM events e JOIN repositories r ON r.id = e.repo_id WHERE e.id > $1 ORDER BY e.id LIMIT $2";

pub const EVENT_CURSOR: &str = "SELECT last_id FROM event_cursors WHERE endpoint = $1";
/// The newest event's id (0: none).
pub const LAST_EVENT: &str = "SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM events";

/// Forget events delivered everywhere (`id <= $1`) or older than `$2` ms.
pub const TRIM_EVENTS: &str = "DELETE FROM events WHERE id <= $1 OR at_ms < $2";

pub const SET_EVENT_CURSOR: &str = "INSERT INTO event_cursors (endpoint, last_id) VALUES ($1, $2) ON CONFLICT (endpoint) DO UPDATE SET last_id = excluded.last_id";

/// Repositories of namespace `$1` (named `$1` or `$1/...`).
pub const NAMESPACE_REPOS: &str = "SELECT COUNT(*) FROM repositories WHERE name = $1 OR substr(name, 1, length($1) + 1) = $1 || '/'";

/// Bytes of the distinct blobs linked in namespace `$1`.
pub const NAMESPACE_BYTES: &str = "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs WHERE digest IN (SELECT rb.digest FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id WHERE r.name = $1 OR substr(r.name, 1, length($1) + 1) = $1 || '/')";

/// Whether blob `$2` is linked anywhere in namespace `$1`.
pub const NAMESPACE_HAS_BLOB: &str = "SELECT EXISTS(SELECT 1 FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id WHERE rb.digest = $2 AND (r.name = $1 OR substr(r.name, 1, length($1) + 1) = $1 || '/'))";

/// Record that manifest `$2` of repository `$1` was pulled at `$3`.
pub const RECORD_PULL: &str = "UPDATE manifests SET last_pulled = $3 WHERE digest = $2 AND repo_id = (SELECT id FROM repositories WHERE name = $1) AND (last_pulled IS NULL OR last_pulled < $3)";

/// Layer `$1`'s stored file list.
pub const LAYER_INDEX: &str =
    "SELECT state, detail, data, entries FROM layer_indexes WHERE digest = $1";

/// Keep a layer's file list (none kept yet, and the blob still there).
pub const PUT_LAYER_INDEX: &str = "INSERT INTO layer_indexes (digest, state, detail, data, entries, created_at) SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM blobs WHERE digest = $1) ON CONFLICT (digest) DO NOTHING";
