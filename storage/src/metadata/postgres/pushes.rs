//! The writes of a push on PostgreSQL, where several nodes push while one
//! collects: each write is a transaction, retried after a deadlock, and a
//! manifest's transaction holds what it names (`FOR SHARE`) until it commits, so a
//! concurrent collection cannot remove it underneath (see `gc.rs`).

use super::PgMeta;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Described, ParsedManifest};
use crate::metadata::pushes::{check_stored, Stored};
use crate::metadata::NewManifest;
use crate::metadata::{now, retrying, Pushes};

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
    let blobs: Stored = sqlx::query_as::<_, (String, i64)>(
        "SELECT rb.digest, b.size FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest
         WHERE rb.repo_id = $1 AND rb.digest = ANY($2) FOR SHARE OF rb",
    )
    .bind(repo_id)
    .bind(digests(&parsed.blobs))
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(d, s)| (d, (s as u64, None)))
    .collect();
    if let Err(e) = check_stored(&parsed.blobs, "blob", &blobs) {
        return Ok(Err(e));
    }
    let children: Stored = sqlx::query_as::<_, (String, i64, String)>(
        "SELECT digest, size, media_type FROM manifests
         WHERE repo_id = $1 AND digest = ANY($2) FOR SHARE",
    )
    .bind(repo_id)
    .bind(digests(&parsed.children))
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(d, s, t)| (d, (s as u64, Some(t))))
    .collect();
    Ok(check_stored(&parsed.children, "manifest", &children))
}

#[async_trait::async_trait]
impl Pushes for PgMeta {
    async fn create_upload(&self, id: &str, repo: &str) -> Result<()> {
        let now = now();
        sqlx::query(
            "INSERT INTO uploads (id, repo, created_at, updated_at) VALUES ($1, $2, $3, $3)",
        )
        .bind(id)
        .bind(repo)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn link_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        location: Option<&str>,
        upload: Option<&str>,
    ) -> Result<()> {
        let repo_id = self.ensure_repo(repo).await?;
        let digest = digest.to_string();
        retrying!(async {
            let mut tx = self.begin().await?;
            let now = now();
            sqlx::query(
                "INSERT INTO blobs (digest, size, created_at, location) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (digest) DO NOTHING",
            )
            .bind(&digest)
            .bind(size as i64)
            .bind(now)
            .bind(location)
            .execute(&mut *tx)
            .await?;
            // DO UPDATE, not NOTHING: it waits for a collection that holds
            // the link, then links anew if that removed it.
            sqlx::query(
                "INSERT INTO repo_blobs (repo_id, digest, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (repo_id, digest) DO UPDATE SET created_at = repo_blobs.created_at",
            )
            .bind(repo_id)
            .bind(&digest)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // Unreferenced until a manifest names it: the grace period of
            // collection starts now.
            sqlx::query(
                "INSERT INTO gc_link_queue (repo_id, digest, since)
                 VALUES ($1, $2, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)
                 ON CONFLICT (repo_id, digest) DO UPDATE SET since = GREATEST(gc_link_queue.since, excluded.since)",
            )
            .bind(repo_id)
            .bind(&digest)
            .execute(&mut *tx)
            .await?;
            if let Some(id) = upload {
                sqlx::query("DELETE FROM uploads WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    async fn put_manifest(&self, m: &NewManifest<'_>) -> Result<()> {
        let now = m.pushed_ms / 1000;
        let repo_id = self.manifest_repo(m).await?;
        let digest = m.digest.to_string();
        let (mut positions, mut kinds, mut refs) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (kind, d)) in m
            .parsed
            .blobs
            .iter()
            .map(|d| ("blob", d))
            .chain(m.parsed.children.iter().map(|d| ("manifest", d)))
            .enumerate()
        {
            positions.push(i as i64);
            kinds.push(kind.to_owned());
            refs.push(d.digest.to_string());
        }
        let outcome = retrying!(async {
            let mut tx = self.begin().await?;
            if m.check_refs {
                if let Err(e) = check_references(&mut tx, repo_id, m.parsed).await? {
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
            .bind(&m.parsed.media_type)
            .bind(&m.parsed.artifact_type)
            .bind(m.parsed.subject.as_ref().map(|s| s.to_string()))
            .bind(m.parsed.annotations.as_ref().map(|a| a.to_string()))
            .bind(m.content.len() as i64)
            .bind(m.content)
            .bind(now)
            .bind(m.pushed_ms)
            .execute(&mut *tx)
            .await?;
            if m.tag.is_none() {
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
            if let Some(tag) = m.tag {
                // An immutable tag is only ever created; a concurrent first
                // push of another digest wins the insert, and this one is
                // refused below.
                let on_conflict = if m.keep_existing {
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
                .bind(m.actor)
                .execute(&mut *tx)
                .await?;
                if m.keep_existing {
                    let held: Option<String> = sqlx::query_scalar(
                        "SELECT digest FROM tags WHERE repo_id = $1 AND name = $2",
                    )
                    .bind(repo_id)
                    .bind(tag)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if held.as_deref() != Some(digest.as_str()) {
                        return Ok(Err(Error::tag_immutable(m.repo, tag)));
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
            .bind(m.tag)
            .bind(&m.parsed.media_type)
            .bind(m.content.len() as i64)
            .bind(m.actor)
            .bind(m.pushed_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Ok(()))
        })?;
        outcome
    }
}
