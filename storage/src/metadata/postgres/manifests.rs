//! Manifests, tags and listings on PostgreSQL.

use super::{retrying, PgMeta};
use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use crate::manifest::{Described, ParsedManifest};
use crate::metadata::{Referrer, StoredManifest};
use sqlx::Row;
use std::collections::HashMap;

fn missing(d: &Described, what: &str) -> Error {
    Error::new(
        ErrorCode::ManifestBlobUnknown,
        format!("{} references a {what} unknown to this repository", d.at),
    )
    .with_detail(serde_json::json!({ "digest": d.digest.to_string() }))
}

fn digests(ds: &[Described]) -> Vec<String> {
    ds.iter().map(|d| d.digest.to_string()).collect()
}

/// Check what the manifest names against what is stored, in the
/// transaction that stores it.
async fn check_references(
    tx: &mut sqlx::PgConnection,
    repo_id: i64,
    parsed: &ParsedManifest,
) -> std::result::Result<std::result::Result<(), Error>, sqlx::Error> {
    // FOR SHARE: a concurrent unlink (or garbage collection) of a blob
    // this manifest names waits for this transaction.
    let blobs: HashMap<String, u64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT rb.digest, b.size FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest
         WHERE rb.repo_id = $1 AND rb.digest = ANY($2) FOR SHARE OF rb",
    )
    .bind(repo_id)
    .bind(digests(&parsed.blobs))
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(d, s)| (d, s as u64))
    .collect();
    for d in &parsed.blobs {
        match blobs.get(&d.digest.to_string()) {
            None => return Ok(Err(missing(d, "blob"))),
            Some(size) => {
                if let Err(e) = d.check(*size, None) {
                    return Ok(Err(e));
                }
            }
        }
    }
    let children: HashMap<String, (u64, String)> = sqlx::query_as::<_, (String, i64, String)>(
        "SELECT digest, size, media_type FROM manifests
         WHERE repo_id = $1 AND digest = ANY($2) FOR SHARE",
    )
    .bind(repo_id)
    .bind(digests(&parsed.children))
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(d, s, t)| (d, (s as u64, t)))
    .collect();
    for d in &parsed.children {
        match children.get(&d.digest.to_string()) {
            None => return Ok(Err(missing(d, "manifest"))),
            Some((size, media_type)) => {
                if let Err(e) = d.check(*size, Some(media_type)) {
                    return Ok(Err(e));
                }
            }
        }
    }
    Ok(Ok(()))
}

impl PgMeta {
    /// Store a manifest (and point `tag` at it) after checking that all it
    /// references exists in the repository; one transaction.
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
        let now = pushed_ms / 1000;
        let repo_id = match self.repo_id(repo).await? {
            Some(id) => id,
            None if !check_refs => self.ensure_repo(repo).await?,
            None => match (parsed.blobs.first(), parsed.children.first()) {
                (Some(b), _) => return Err(missing(b, "blob")),
                (None, Some(c)) => return Err(missing(c, "manifest")),
                (None, None) => self.ensure_repo(repo).await?,
            },
        };
        let digest = digest.to_string();
        let (mut positions, mut kinds, mut refs) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (kind, d)) in parsed
            .blobs
            .iter()
            .map(|d| ("blob", d))
            .chain(parsed.children.iter().map(|d| ("manifest", d)))
            .enumerate()
        {
            positions.push(i as i64);
            kinds.push(kind.to_owned());
            refs.push(d.digest.to_string());
        }
        let outcome = retrying!(async {
            let mut tx = self.pool.begin().await?;
            if check_refs {
                if let Err(e) = check_references(&mut tx, repo_id, parsed).await? {
                    return Ok(Err(e));
                }
            }
            sqlx::query(
                "INSERT INTO manifests
                   (repo_id, digest, media_type, artifact_type, subject, annotations, size, content, created_at, pushed_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (repo_id, digest) DO UPDATE SET created_at = manifests.created_at",
            )
            .bind(repo_id)
            .bind(&digest)
            .bind(&parsed.media_type)
            .bind(&parsed.artifact_type)
            .bind(parsed.subject.as_ref().map(|s| s.to_string()))
            .bind(parsed.annotations.as_ref().map(|a| a.to_string()))
            .bind(content.len() as i64)
            .bind(content)
            .bind(now)
            .bind(pushed_ms)
            .execute(&mut *tx)
            .await?;
            if tag.is_none() {
                // Untagged: collectable once the grace period has passed,
                // unless something names it by then.
                sqlx::query(
                    "INSERT INTO gc_manifest_queue (repo_id, digest, since)
                     VALUES ($1, $2, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)
                     ON CONFLICT (repo_id, digest) DO UPDATE SET since = GREATEST(gc_manifest_queue.since, excluded.since)",
                )
                .bind(repo_id)
                .bind(&digest)
                .execute(&mut *tx)
                .await?;
            }
            if !refs.is_empty() {
                sqlx::query(
                    "INSERT INTO manifest_refs (repo_id, manifest_digest, position, kind, ref_digest)
                     SELECT $1, $2, p, k, r FROM UNNEST($3::BIGINT[], $4::TEXT[], $5::TEXT[]) AS t(p, k, r)
                     ON CONFLICT DO NOTHING",
                )
                .bind(repo_id)
                .bind(&digest)
                .bind(&positions)
                .bind(&kinds)
                .bind(&refs)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(tag) = tag {
                // An immutable tag is only ever created; a concurrent first
                // push of another digest wins the insert, and this one is
                // refused below.
                let on_conflict = if keep_existing {
                    "DO NOTHING"
                } else {
                    "DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at, actor = excluded.actor"
                };
                sqlx::query(&format!(
                    "INSERT INTO tags (repo_id, name, digest, updated_at, actor) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (repo_id, name) {on_conflict}"
                ))
                .bind(repo_id)
                .bind(tag)
                .bind(&digest)
                .bind(now)
                .bind(actor)
                .execute(&mut *tx)
                .await?;
                if keep_existing {
                    let held: Option<String> = sqlx::query_scalar(
                        "SELECT digest FROM tags WHERE repo_id = $1 AND name = $2",
                    )
                    .bind(repo_id)
                    .bind(tag)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if held.as_deref() != Some(digest.as_str()) {
                        return Ok(Err(Error::tag_immutable(repo, tag)));
                    }
                }
            }
            // The push event for webhooks, in the same transaction.
            sqlx::query(
                "INSERT INTO events (action, repo_id, digest, tag, media_type, size, actor, at_ms)
                 VALUES ('push', $1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(repo_id)
            .bind(&digest)
            .bind(tag)
            .bind(&parsed.media_type)
            .bind(content.len() as i64)
            .bind(actor)
            .bind(pushed_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Ok(()))
        })?;
        outcome
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
        .fetch_optional(&self.pool)
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
        .fetch_optional(&self.pool)
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

    /// Delete a manifest and its tags, `actor` recorded as who.
    pub async fn delete_manifest(
        &self,
        repo: &str,
        digest: &Digest,
        actor: Option<&str>,
    ) -> Result<bool> {
        let d = digest.to_string();
        Ok(retrying!(async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(crate::metadata::sql::MANIFEST_TAGS_ACTOR)
                .bind(repo)
                .bind(&d)
                .bind(actor)
                .execute(&mut *tx)
                .await?;
            sqlx::query(crate::metadata::sql::EVENT_MANIFEST_DELETE)
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
            Ok::<_, sqlx::Error>(done.rows_affected() > 0)
        })?)
    }

    pub async fn delete_tag(&self, repo: &str, tag: &str, actor: Option<&str>) -> Result<bool> {
        Ok(retrying!(async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(crate::metadata::sql::TAG_ACTOR)
                .bind(repo)
                .bind(tag)
                .bind(actor)
                .execute(&mut *tx)
                .await?;
            sqlx::query(crate::metadata::sql::EVENT_TAG_DELETE)
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
            Ok::<_, sqlx::Error>(done.rows_affected() > 0)
        })?)
    }

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
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(tags))
    }

    pub async fn catalog(&self, last: Option<&str>, limit: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2",
        )
        .bind(last.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
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
             WHERE r.name = $1 AND m.subject = $2 AND ($3::TEXT IS NULL OR m.artifact_type = $3)
             ORDER BY m.created_at, m.digest",
        )
        .bind(repo)
        .bind(subject.to_string())
        .bind(artifact_type)
        .fetch_all(&self.pool)
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
