//! The writes of a push on SQLite, each one round trip to the single
//! writer where it can be (the writer is the bottleneck of small pushes):
//! new upload sessions written in groups, a blob's rows and link in one
//! multi-statement query, a manifest with its references, tag and event in
//! one statement list inside a BEGIN IMMEDIATE transaction.

use super::group::grouped;
use super::SqliteMeta;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Described, ParsedManifest};
use crate::metadata::pushes::{check_stored, Stored};
use crate::metadata::NewManifest;
use crate::metadata::{now, Pushes};
use sqlx::SqlitePool;

/// `(id, repository)` of new upload sessions.
pub(super) async fn insert_uploads(
    writer: SqlitePool,
    rows: Vec<(String, String)>,
) -> std::result::Result<(), sqlx::Error> {
    let values: Vec<String> = (0..rows.len())
        .map(|i| format!("(${}, ${}, $1, $1)", 2 * i + 2, 2 * i + 3))
        .collect();
    let sql = format!(
        "INSERT INTO uploads (id, repo, created_at, updated_at) VALUES {}",
        values.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(now());
    for (id, repo) in rows {
        q = q.bind(id).bind(repo);
    }
    q.execute(&writer).await.map(|_| ())
}

#[async_trait::async_trait]
impl Pushes for SqliteMeta {
    async fn create_upload(&self, id: &str, repo: &str) -> Result<()> {
        grouped(&self.new_uploads, (id.to_owned(), repo.to_owned())).await
    }

    /// All in one round trip to the writer. Should a later statement fail,
    /// a `blobs` row without a link is harmless (nothing can read it) and a
    /// leftover session is purged.
    async fn link_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        location: Option<&str>,
        upload: Option<&str>,
    ) -> Result<()> {
        let repo_id = self.ensure_repo(repo).await?;
        sqlx::query(
            "INSERT INTO blobs (digest, size, created_at, location) VALUES ($1, $2, $3, $6)
               ON CONFLICT (digest) DO NOTHING;
             INSERT INTO repo_blobs (repo_id, digest, created_at) VALUES ($4, $1, $3)
               ON CONFLICT (repo_id, digest) DO NOTHING;
             INSERT INTO gc_link_queue (repo_id, digest, since)
               VALUES ($4, $1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
               ON CONFLICT (repo_id, digest) DO UPDATE SET since = MAX(since, excluded.since);
             DELETE FROM uploads WHERE id = $5;",
        )
        .bind(digest.to_string())
        .bind(size as i64)
        .bind(now())
        .bind(repo_id)
        .bind(upload)
        .bind(location)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn put_manifest(&self, m: &NewManifest<'_>) -> Result<()> {
        let repo_id = self.manifest_repo(m).await?;
        let mut tx = self.begin().await?;
        if m.check_refs {
            check_references(&mut tx, repo_id, m.parsed).await?;
        }
        // One round trip for the manifest, its references and its tag: the
        // single writer connection is the bottleneck of small pushes.
        // $1 repository, $2 digest, $9 now (milliseconds); references from $10 on.
        let refs: Vec<(&str, &Digest)> = m
            .parsed
            .blobs
            .iter()
            .map(|d| ("blob", &d.digest))
            .chain(m.parsed.children.iter().map(|d| ("manifest", &d.digest)))
            .collect();
        let (first, rest) = refs.split_at(refs.len().min(BATCH));
        let mut sql = String::from(
            "INSERT INTO manifests
               (repo_id, digest, media_type, artifact_type, subject, annotations, size, content, created_at, pushed_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9 / 1000, $9)
             ON CONFLICT (repo_id, digest) DO NOTHING;",
        );
        let mut next = 10;
        if !first.is_empty() {
            sql.push_str(&refs_insert(&mut next, first.len()));
        }
        if m.tag.is_none() {
            // Untagged: collectable once the grace period has passed,
            // unless something names it by then.
            sql.push_str(
                "INSERT INTO gc_manifest_queue (repo_id, digest, since)
                 VALUES ($1, $2, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
                 ON CONFLICT (repo_id, digest) DO UPDATE SET since = MAX(since, excluded.since);",
            );
        }
        if m.tag.is_some() {
            // An immutable tag is only ever created: checked below.
            let on_conflict = if m.keep_existing {
                "DO NOTHING"
            } else {
                "DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at, actor = excluded.actor"
            };
            let by = next + 1;
            sql.push_str(&format!(
                "INSERT INTO tags (repo_id, name, digest, updated_at, actor) VALUES ($1, ${next}, $2, $9 / 1000, ${by})
                 ON CONFLICT (repo_id, name) {on_conflict};"
            ));
        }
        // The push event for webhooks, in the same transaction.
        let (tag_param, actor_param) = match m.tag {
            Some(_) => (format!("${next}"), format!("${}", next + 1)),
            None => ("NULL".to_owned(), format!("${next}")),
        };
        sql.push_str(&format!(
            "INSERT INTO events (action, repo_id, digest, tag, media_type, size, actor, at_ms)
             VALUES ('push', $1, $2, {tag_param}, $3, $7, {actor_param}, $9);"
        ));
        let mut q = sqlx::query(&sql)
            .bind(repo_id)
            .bind(m.digest.to_string())
            .bind(&m.parsed.media_type)
            .bind(&m.parsed.artifact_type)
            .bind(m.parsed.subject.as_ref().map(|s| s.to_string()))
            .bind(m.parsed.annotations.as_ref().map(|a| a.to_string()))
            .bind(m.content.len() as i64)
            .bind(m.content)
            .bind(m.pushed_ms);
        for (i, (kind, reference)) in first.iter().enumerate() {
            q = q.bind(i as i64).bind(*kind).bind(reference.to_string());
        }
        if let Some(tag) = m.tag {
            q = q.bind(tag).bind(m.actor);
        } else {
            q = q.bind(m.actor);
        }
        q.execute(&mut *tx).await?;
        if let (Some(tag), true) = (m.tag, m.keep_existing) {
            let held: Option<String> =
                sqlx::query_scalar("SELECT digest FROM tags WHERE repo_id = $1 AND name = $2")
                    .bind(repo_id)
                    .bind(tag)
                    .fetch_optional(&mut *tx)
                    .await?;
            if held.as_deref() != Some(m.digest.to_string().as_str()) {
                // Dropping the transaction rolls the manifest back too.
                return Err(Error::tag_immutable(m.repo, tag));
            }
        }
        // Manifests with more references than one batch: the rest.
        for (n, batch) in rest.chunks(BATCH).enumerate() {
            let mut next = 3;
            let sql = refs_insert(&mut next, batch.len());
            let mut q = sqlx::query(&sql).bind(repo_id).bind(m.digest.to_string());
            for (i, (kind, reference)) in batch.iter().enumerate() {
                let position = BATCH * (n + 1) + i;
                q = q
                    .bind(position as i64)
                    .bind(*kind)
                    .bind(reference.to_string());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Rows per multi-row statement: far below SQLite's bound-parameter limit.
const BATCH: usize = 300;

/// Everything `parsed` names is in the repository, with the sizes (and
/// media types) its descriptors give.
async fn check_references(
    tx: &mut sqlx::SqliteConnection,
    repo_id: i64,
    parsed: &ParsedManifest,
) -> Result<()> {
    let blobs = stored(
        tx,
        "SELECT rb.digest, b.size, NULL FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest
         WHERE rb.repo_id = $1 AND rb.digest IN",
        repo_id,
        &parsed.blobs,
    )
    .await?;
    check_stored(&parsed.blobs, "blob", &blobs)?;
    let children = stored(
        tx,
        "SELECT digest, size, media_type FROM manifests WHERE repo_id = $1 AND digest IN",
        repo_id,
        &parsed.children,
    )
    .await?;
    check_stored(&parsed.children, "manifest", &children)
}

/// The rows of `wanted` that `select` (a query ending in `IN`, taking the
/// repository id as `$1` and returning digest, size, media type) finds;
/// one statement per batch instead of one per digest.
async fn stored(
    tx: &mut sqlx::SqliteConnection,
    select: &str,
    repo_id: i64,
    wanted: &[Described],
) -> Result<Stored> {
    let mut found = Stored::new();
    for batch in wanted.chunks(BATCH) {
        let params: Vec<String> = (2..batch.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!("{select} ({})", params.join(", "));
        let mut q = sqlx::query_as::<_, (String, i64, Option<String>)>(&sql).bind(repo_id);
        for d in batch {
            q = q.bind(d.digest.to_string());
        }
        for (digest, size, media_type) in q.fetch_all(&mut *tx).await? {
            found.insert(digest, (size as u64, media_type));
        }
    }
    Ok(found)
}

/// `INSERT` of `rows` manifest references; `$1`/`$2` are the repository and
/// manifest, each row takes the next three parameters from `*next`. A
/// re-pushed manifest already has its rows: conflicts are no-ops.
fn refs_insert(next: &mut usize, rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|_| {
            let row = format!("($1, $2, ${}, ${}, ${})", *next, *next + 1, *next + 2);
            *next += 3;
            row
        })
        .collect();
    format!(
        "INSERT INTO manifest_refs (repo_id, manifest_digest, position, kind, ref_digest) VALUES {}
         ON CONFLICT DO NOTHING;",
        values.join(", ")
    )
}
