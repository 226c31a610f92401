//! [`SqliteMeta`] as a [`MetaStore`]: each method is the inherent one.

use super::SqliteMeta;
use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::ParsedManifest;
use crate::metadata::*;
use async_trait::async_trait;

#[async_trait]
impl MetaStore for SqliteMeta {
    async fn ping(&self) -> Result<()> {
        SqliteMeta::ping(self).await
    }

    async fn repo_exists(&self, name: &str) -> Result<bool> {
        SqliteMeta::repo_exists(self, name).await
    }

    async fn link_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        location: Option<&str>,
        upload: Option<&str>,
    ) -> Result<()> {
        SqliteMeta::link_blob(self, repo, digest, size, location, upload).await
    }

    async fn linked_blob(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<(u64, Option<String>)>> {
        SqliteMeta::linked_blob(self, repo, digest).await
    }

    async fn repos_with_blob(&self, digest: &Digest, limit: i64) -> Result<Vec<String>> {
        SqliteMeta::repos_with_blob(self, digest, limit).await
    }

    async fn unlink_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        SqliteMeta::unlink_blob(self, repo, digest).await
    }

    async fn create_upload(&self, id: &str, repo: &str) -> Result<()> {
        SqliteMeta::create_upload(self, id, repo).await
    }

    async fn upload_in_repo(&self, id: &str, repo: &str) -> Result<bool> {
        SqliteMeta::upload_in_repo(self, id, repo).await
    }

    async fn touch_upload(&self, id: &str) -> Result<()> {
        SqliteMeta::touch_upload(self, id).await
    }

    async fn delete_upload(&self, id: &str) -> Result<bool> {
        SqliteMeta::delete_upload(self, id).await
    }

    async fn upload_state(&self, id: &str) -> Result<Option<(Option<Vec<u8>>, i64)>> {
        SqliteMeta::upload_state(self, id).await
    }

    async fn save_upload_state(&self, id: &str, version: i64, state: &[u8]) -> Result<bool> {
        SqliteMeta::save_upload_state(self, id, version, state).await
    }

    async fn try_lock_upload(&self, id: &str) -> Result<Option<crate::blobstore::SessionLock>> {
        SqliteMeta::try_lock_upload(self, id).await
    }

    async fn uploads(&self, before: Option<i64>) -> Result<Vec<(String, String)>> {
        SqliteMeta::uploads(self, before).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn put_manifest(
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
        SqliteMeta::put_manifest(
            self,
            repo,
            digest,
            parsed,
            content,
            tag,
            keep_existing,
            check_refs,
            pushed_ms,
            actor,
        )
        .await
    }

    async fn manifest_by_digest(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<StoredManifest>> {
        SqliteMeta::manifest_by_digest(self, repo, digest).await
    }

    async fn manifest_by_tag(&self, repo: &str, tag: &str) -> Result<Option<StoredManifest>> {
        SqliteMeta::manifest_by_tag(self, repo, tag).await
    }

    async fn delete_manifest(
        &self,
        repo: &str,
        digest: &Digest,
        actor: Option<&str>,
    ) -> Result<bool> {
        SqliteMeta::delete_manifest(self, repo, digest, actor).await
    }

    async fn delete_tag(&self, repo: &str, tag: &str, actor: Option<&str>) -> Result<bool> {
        SqliteMeta::delete_tag(self, repo, tag, actor).await
    }

    async fn list_tags(
        &self,
        repo: &str,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<String>>> {
        SqliteMeta::list_tags(self, repo, last, limit).await
    }

    async fn catalog(&self, last: Option<&str>, limit: i64) -> Result<Vec<String>> {
        SqliteMeta::catalog(self, last, limit).await
    }

    async fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        SqliteMeta::referrers(self, repo, subject, artifact_type).await
    }

    async fn repo_summaries(
        &self,
        filter: Option<&str>,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RepoSummary>> {
        SqliteMeta::repo_summaries(self, filter, last, limit).await
    }

    async fn tag_rows(
        &self,
        repo: &str,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<TagRow>>> {
        SqliteMeta::tag_rows(self, repo, last, limit).await
    }

    async fn blob_uses(&self, blobs: &[String]) -> Result<Vec<BlobUse>> {
        SqliteMeta::blob_uses(self, blobs).await
    }

    async fn blob_any(&self, digest: &str) -> Result<Option<(i64, Option<String>)>> {
        SqliteMeta::blob_any(self, digest).await
    }

    async fn blob_rows(&self) -> Result<Vec<(String, u64, Option<String>)>> {
        SqliteMeta::blob_rows(self).await
    }

    async fn dangling_refs(&self) -> Result<Vec<DanglingRef>> {
        SqliteMeta::dangling_refs(self).await
    }

    async fn each_manifest(
        &self,
        each: &mut (dyn FnMut(String, String, Vec<u8>) + Send),
    ) -> Result<u64> {
        SqliteMeta::each_manifest(self, each).await
    }

    async fn blob_links(&self) -> Result<Vec<(String, String, u64)>> {
        SqliteMeta::blob_links(self).await
    }

    async fn all_tags(&self) -> Result<Vec<(String, String, String)>> {
        SqliteMeta::all_tags(self).await
    }

    async fn tag_history(&self, repo: &str, tag: &str, limit: i64) -> Result<Vec<TagChange>> {
        SqliteMeta::tag_history(self, repo, tag, limit).await
    }

    async fn move_tag(
        &self,
        repo: &str,
        tag: &str,
        digest: &str,
        action: &str,
        actor: Option<&str>,
    ) -> Result<bool> {
        SqliteMeta::move_tag(self, repo, tag, digest, action, actor).await
    }

    async fn immutability(&self, repo: &str) -> Result<Option<Immutability>> {
        SqliteMeta::immutability(self, repo).await
    }

    async fn set_immutability(&self, repo: &str, i: &Immutability) -> Result<()> {
        SqliteMeta::set_immutability(self, repo, i).await
    }

    async fn manifest_page(
        &self,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<crate::metadata::ManifestRow>> {
        SqliteMeta::manifest_page(self, after, limit).await
    }

    async fn drop_blob(&self, digest: &str) -> Result<Vec<String>> {
        SqliteMeta::drop_blob(self, digest).await
    }

    async fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        admin: bool,
        groups: &[String],
    ) -> Result<bool> {
        SqliteMeta::add_user(self, name, password_hash, admin, groups).await
    }

    async fn import_user(&self, user: &UserRow) -> Result<bool> {
        SqliteMeta::import_user(self, user).await
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        SqliteMeta::set_password(self, name, password_hash).await
    }

    async fn delete_user(&self, name: &str) -> Result<bool> {
        SqliteMeta::delete_user(self, name).await
    }

    async fn user(&self, name: &str) -> Result<Option<UserRow>> {
        SqliteMeta::user(self, name).await
    }

    async fn users(&self) -> Result<Vec<UserRow>> {
        SqliteMeta::users(self).await
    }

    async fn add_robot(
        &self,
        name: &str,
        secret_hash: &str,
        scopes: &[String],
        expires_at: Option<i64>,
    ) -> Result<bool> {
        SqliteMeta::add_robot(self, name, secret_hash, scopes, expires_at).await
    }

    async fn import_robot(&self, robot: &RobotRow) -> Result<bool> {
        SqliteMeta::import_robot(self, robot).await
    }

    async fn rotate_robot(&self, name: &str, secret_hash: &str) -> Result<bool> {
        SqliteMeta::rotate_robot(self, name, secret_hash).await
    }

    async fn delete_robot(&self, name: &str) -> Result<bool> {
        SqliteMeta::delete_robot(self, name).await
    }

    async fn robot(&self, name: &str) -> Result<Option<RobotRow>> {
        SqliteMeta::robot(self, name).await
    }

    async fn robots(&self) -> Result<Vec<RobotRow>> {
        SqliteMeta::robots(self).await
    }

    async fn create_session(
        &self,
        id_hash: &str,
        user: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<()> {
        SqliteMeta::create_session(self, id_hash, user, csrf, expires_at).await
    }

    async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>> {
        SqliteMeta::session(self, id_hash).await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        SqliteMeta::delete_session(self, id_hash).await
    }

    async fn gc_manifests(&self, clock: GcClock, limit: i64) -> Result<GcStep> {
        SqliteMeta::gc_manifests(self, clock, limit).await
    }

    async fn gc_links(&self, clock: GcClock, limit: i64) -> Result<GcStep> {
        SqliteMeta::gc_links(self, clock, limit).await
    }

    async fn gc_due_blobs(&self, clock: GcClock, limit: i64) -> Result<Vec<String>> {
        SqliteMeta::gc_due_blobs(self, clock, limit).await
    }

    async fn gc_blobs(
        &self,
        clock: GcClock,
        digests: &[String],
        forced: &[String],
    ) -> Result<GcStep> {
        SqliteMeta::gc_blobs(self, clock, digests, forced).await
    }

    async fn gc_dry_run(&self, clock: GcClock) -> Result<GcStep> {
        SqliteMeta::gc_dry_run(self, clock).await
    }

    async fn enter_fence(&self, digest: &str) -> Result<crate::blobstore::SessionLock> {
        SqliteMeta::enter_fence(self, digest).await
    }

    async fn take_fences(
        &self,
        digests: &[String],
    ) -> Result<(Vec<String>, crate::blobstore::SessionLock)> {
        SqliteMeta::take_fences(self, digests).await
    }

    async fn try_gc_lease(&self) -> Result<Option<crate::blobstore::SessionLock>> {
        SqliteMeta::try_gc_lease(self).await
    }

    async fn lifecycle_policy(&self, repo: &str) -> Result<Option<Option<String>>> {
        SqliteMeta::lifecycle_policy(self, repo).await
    }

    async fn set_lifecycle_policy(&self, repo: &str, policy: Option<&str>) -> Result<()> {
        SqliteMeta::set_lifecycle_policy(self, repo, policy).await
    }

    async fn lifecycle_repos(&self) -> Result<Vec<(String, String)>> {
        SqliteMeta::lifecycle_repos(self).await
    }

    async fn lifecycle_images(&self, repo: &str) -> Result<Vec<crate::lifecycle::Image>> {
        SqliteMeta::lifecycle_images(self, repo).await
    }

    async fn record_pulls(&self, pulls: &[(String, String, i64)]) -> Result<()> {
        SqliteMeta::record_pulls(self, pulls).await
    }

    async fn namespace_usage(&self, ns: &str) -> Result<(i64, i64)> {
        SqliteMeta::namespace_usage(self, ns).await
    }

    async fn namespace_has_blob(&self, ns: &str, digest: &str) -> Result<bool> {
        SqliteMeta::namespace_has_blob(self, ns, digest).await
    }

    async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<Event>> {
        SqliteMeta::events_after(self, after, limit).await
    }

    async fn event_cursor(&self, endpoint: &str) -> Result<Option<i64>> {
        SqliteMeta::event_cursor(self, endpoint).await
    }

    async fn set_event_cursor(&self, endpoint: &str, id: i64) -> Result<()> {
        SqliteMeta::set_event_cursor(self, endpoint, id).await
    }

    async fn last_event(&self) -> Result<i64> {
        SqliteMeta::last_event(self).await
    }

    async fn trim_events(&self, upto: i64, older_than_ms: i64) -> Result<u64> {
        SqliteMeta::trim_events(self, upto, older_than_ms).await
    }
}
