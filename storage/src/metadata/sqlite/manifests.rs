//! Manifests, tags and listings: the manifest write (with its reference
//! checks) and the reads of the pull and discovery paths.

use super::SqliteMeta;
use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use crate::manifest::{Described, ParsedManifest};
use crate::metadata::{sql, Referrer, StoredManifest};
use sqlx::Row;
use std::collections::HashMap;

impl SqliteMeta {
    // ---- manifests and tags ------------------------------------------------

    /// Store a manifest (and point `tag` at it) after checking that all it
    /// references exists in the repository (unless `check_refs` is off: a
    /// pull-through cache stores what its upstream served before fetching
    /// what it names). One transaction: a tag never points at a manifest
    /// that is not there.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_manifest(
        &self,
        repo: &str,
        digest: &Digest,
        parsed: &ParsedManifest,
        content: &[u8],
        tag: Option<&str>,
        keep_existing: bool,
        check_refs: bool,
        pushed_ms: i64,
        actor: Option<&str>,
    ) -> Result<()> {
        // A repository without rows cannot hold what the manifest names:
        // fail before creating it.
        let repo_id = match self.repo_id(repo).await? {
            Some(id) => id,
            None if !check_refs => self.ensure_repo(repo).await?,
            None => match (parsed.blobs.first(), parsed.children.first()) {
                (Some(b), _) => return Err(missing_blob(b)),
                (None, Some(c)) => return Err(missing_child(c)),
                (None, None) => self.ensure_repo(repo).await?,
            },
        };
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        if check_refs {
            check_references(&mut tx, repo_id, parsed).await?;
        }
        // One round trip for the manifest, its references and its tag: the
        // single writer connection is the bottleneck of small pushes.
        // $1 repository, $2 digest, $9 now (milliseconds); references from $10 on.
        let refs: Vec<(&str, &Digest)> = parsed
            .blobs
            .iter()
            .map(|d| ("blob", &d.digest))
            .chain(parsed.children.iter().map(|d| ("manifest", &d.digest)))
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
        if tag.is_none() {
            // Untagged: collectable once the grace period has passed,
            // unless something names it by then.
            sql.push_str(
                "INSERT INTO gc_manifest_queue (repo_id, digest, since)
                 VALUES ($1, $2, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
                 ON CONFLICT (repo_id, digest) DO UPDATE SET since = MAX(since, excluded.since);",
            );
        }
        if tag.is_some() {
            // An immutable tag is only ever created: checked below.
            let on_conflict = if keep_existing {
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
        let (tag_param, actor_param) = match tag {
            Some(_) => (format!("${next}"), format!("${}", next + 1)),
            None => ("NULL".to_owned(), format!("${next}")),
        };
        sql.push_str(&format!(
            "INSERT INTO events (action, repo_id, digest, tag, media_type, size, actor, at_ms)
             VALUES ('push', $1, $2, {tag_param}, $3, $7, {actor_param}, $9);"
        ));
        let mut q = sqlx::query(&sql)
            .bind(repo_id)
            .bind(digest.to_string())
            .bind(&parsed.media_type)
            .bind(&parsed.artifact_type)
            .bind(parsed.subject.as_ref().map(|s| s.to_string()))
            .bind(parsed.annotations.as_ref().map(|a| a.to_string()))
            .bind(content.len() as i64)
            .bind(content)
            .bind(pushed_ms);
        for (i, (kind, reference)) in first.iter().enumerate() {
            q = q.bind(i as i64).bind(*kind).bind(reference.to_string());
        }
        if let Some(tag) = tag {
            q = q.bind(tag).bind(actor);
        } else {
            q = q.bind(actor);
        }
        q.execute(&mut *tx).await?;
        if let (Some(tag), true) = (tag, keep_existing) {
            let held: Option<String> =
                sqlx::query_scalar("SELECT digest FROM tags WHERE repo_id = $1 AND name = $2")
                    .bind(repo_id)
                    .bind(tag)
                    .fetch_optional(&mut *tx)
                    .await?;
            if held.as_deref() != Some(digest.to_string().as_str()) {
                // Dropping the transaction rolls the manifest back too.
                return Err(Error::tag_immutable(repo, tag));
            }
        }
        // Manifests with more references than one batch: the rest.
        for (n, batch) in rest.chunks(BATCH).enumerate() {
            let mut next = 3;
            let sql = refs_insert(&mut next, batch.len());
            let mut q = sqlx::query(&sql).bind(repo_id).bind(digest.to_string());
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

    pub async fn manifest_by_digest(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<StoredManifest>> {
        let row = sqlx::query(
            "SELECT m.media_type, m.content FROM manifests m
             JOIN repositories r ON r.id = m.repo_id
             WHERE r.name = $1 AND m.digest = $2",
        )
        .bind(repo)
        .bind(digest.to_string())
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| StoredManifest {
            digest: digest.clone(),
            media_type: r.get(0),
            content: r.get(1),
        }))
    }

    pub async fn manifest_by_tag(&self, repo: &str, tag: &str) -> Result<Option<StoredManifest>> {
        let row = sqlx::query(
            "SELECT m.digest, m.media_type, m.content FROM tags t
             JOIN repositories r ON r.id = t.repo_id
             JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
             WHERE r.name = $1 AND t.name = $2",
        )
        .bind(repo)
        .bind(tag)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(StoredManifest {
                digest: r.get::<String, _>(0).parse()?,
                media_type: r.get(1),
                content: r.get(2),
            })
        })
        .transpose()
    }

    /// Delete a manifest; its tags and reference rows go with it, `actor`
    /// recorded as who deleted the tags.
    pub async fn delete_manifest(
        &self,
        repo: &str,
        digest: &Digest,
        actor: Option<&str>,
    ) -> Result<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let d = digest.to_string();
        sqlx::query(sql::MANIFEST_TAGS_ACTOR)
            .bind(repo)
            .bind(&d)
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::EVENT_MANIFEST_DELETE)
            .bind(&d)
            .bind(repo)
            .bind(actor)
            .bind(crate::metadata::now_ms())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "DELETE FROM manifests WHERE digest = $1 AND repo_id = (SELECT id FROM repositories WHERE name = $2)",
        )
        .bind(&d)
        .bind(repo)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_tag(&self, repo: &str, tag: &str, actor: Option<&str>) -> Result<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(sql::TAG_ACTOR)
            .bind(repo)
            .bind(tag)
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::EVENT_TAG_DELETE)
            .bind(tag)
            .bind(repo)
            .bind(actor)
            .bind(crate::metadata::now_ms())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "DELETE FROM tags WHERE name = $1 AND repo_id = (SELECT id FROM repositories WHERE name = $2)",
        )
        .bind(tag)
        .bind(repo)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Tags of `repo` in byte order after `last`, at most `limit`; `None` if
    /// the repository does not exist.
    pub async fn list_tags(
        &self,
        repo: &str,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<String>>> {
        let Some(repo_id) = self.repo_id(repo).await? else {
            return Ok(None);
        };
        let tags = sqlx::query_scalar(
            "SELECT name FROM tags WHERE repo_id = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(repo_id)
        .bind(last.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(Some(tags))
    }

    /// Repository names in byte order after `last`, at most `limit`.
    pub async fn catalog(&self, last: Option<&str>, limit: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2",
        )
        .bind(last.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?)
    }

    pub async fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        let rows = sqlx::query(
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations
             FROM manifests m JOIN repositories r ON r.id = m.repo_id
             WHERE r.name = $1 AND m.subject = $2 AND ($3 IS NULL OR m.artifact_type = $3)
             ORDER BY m.created_at, m.digest",
        )
        .bind(repo)
        .bind(subject.to_string())
        .bind(artifact_type)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|r| {
                let annotations: Option<String> = r.get(4);
                Ok(Referrer {
                    digest: r.get(0),
                    media_type: r.get(1),
                    size: r.get(2),
                    artifact_type: r.get(3),
                    annotations: annotations
                        .map(|a| serde_json::from_str(&a))
                        .transpose()
                        .map_err(Error::internal)?,
                })
            })
            .collect()
    }
}

/// Rows per multi-row statement: far below SQLite's bound-parameter limit.
const BATCH: usize = 300;

/// Size and media type (where the table has one) of the rows of `wanted`
/// that `select` (a query ending in `IN`, taking the repository id as `$1`
/// and returning digest, size, media type) finds, by digest; one statement
/// per batch instead of one per digest.
fn missing_blob(d: &Described) -> Error {
    Error::new(
        ErrorCode::ManifestBlobUnknown,
        format!("{} references a blob unknown to this repository", d.at),
    )
    .with_detail(serde_json::json!({ "digest": d.digest.to_string() }))
}

fn missing_child(d: &Described) -> Error {
    Error::new(
        ErrorCode::ManifestBlobUnknown,
        format!("{} references a manifest unknown to this repository", d.at),
    )
    .with_detail(serde_json::json!({ "digest": d.digest.to_string() }))
}

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
    for d in &parsed.blobs {
        match blobs.get(&d.digest.to_string()) {
            None => return Err(missing_blob(d)),
            Some((size, _)) => d.check(*size, None)?,
        }
    }
    let children = stored(
        tx,
        "SELECT digest, size, media_type FROM manifests WHERE repo_id = $1 AND digest IN",
        repo_id,
        &parsed.children,
    )
    .await?;
    for d in &parsed.children {
        match children.get(&d.digest.to_string()) {
            None => return Err(missing_child(d)),
            Some((size, media_type)) => d.check(*size, media_type.as_deref())?,
        }
    }
    Ok(())
}

async fn stored(
    tx: &mut sqlx::SqliteConnection,
    select: &str,
    repo_id: i64,
    wanted: &[Described],
) -> Result<HashMap<String, (u64, Option<String>)>> {
    let mut found = HashMap::new();
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
