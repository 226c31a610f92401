//! [`PgMeta`] as a [`MetaStore`]: each method is the inherent one.

use super::PgMeta;
use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::ParsedManifest;
use crate::metadata::*;
use async_trait::async_trait;

#[async_trait]
impl MetaStore for PgMeta {
    async fn ping(&self) -> Result<()> {
        PgMeta::ping(self).await
    }

    async fn repo_exists(&self, name: &str) -> Result<bool> {
        PgMeta::repo_exists(self, name).await
    }

    async fn link_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        location: Option<&str>,
        upload: Option<&str>,
    ) -> Result<()> {
        PgMeta::link_blob(self, repo, digest, size, location, upload).await
    }

    async fn linked_blob(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<(u64, Option<String>)>> {
        PgMeta::linked_blob(self, repo, digest).await
    }

    async fn repos_with_blob(&self, digest: &Digest, limit: i64) -> Result<Vec<String>> {
        PgMeta::repos_with_blob(self, digest, limit).await
    }

    async fn unlink_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        PgMeta::unlink_blob(self, repo, digest).await
    }

    async fn create_upload(&self, id: &str, repo: &str) -> Result<()> {
        PgMeta::create_upload(self, id, repo).await
    }

    async fn upload_in_repo(&self, id: &str, repo: &str) -> Result<bool> {
        PgMeta::upload_in_repo(self, id, repo).await
    }

    async fn touch_upload(&self, id: &str) -> Result<()> {
        PgMeta::touch_upload(self, id).await
    }

    async fn delete_upload(&self, id: &str) -> Result<bool> {
        PgMeta::delete_upload(self, id).await
    }

    async fn upload_state(&self, id: &str) -> Result<Option<(Option<Vec<u8>>, i64)>> {
        PgMeta::upload_state(self, id).await
    }

    async fn save_upload_state(&self, id: &str, version: i64, state: &[u8]) -> Result<bool> {
        PgMeta::save_upload_state(self, id, version, state).await
    }

    async fn try_lock_upload(&self, id: &str) -> Result<Option<crate::blobstore::SessionLock>> {
        PgMeta::try_lock_upload(self, id).await
    }

    async fn uploads(&self, before: Option<i64>) -> Result<Vec<(String, String)>> {
        PgMeta::uploads(self, before).await
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
        PgMeta::put_manifest(
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
        PgMeta::manifest_by_digest(self, repo, digest).await
    }

    async fn manifest_by_tag(&self, repo: &str, tag: &str) -> Result<Option<StoredManifest>> {
        PgMeta::manifest_by_tag(self, repo, tag).await
    }

    async fn delete_manifest(
        &self,
        repo: &str,
        digest: &Digest,
        actor: Option<&str>,
    ) -> Result<bool> {
        PgMeta::delete_manifest(self, repo, digest, actor).await
    }

    async fn delete_tag(&self, repo: &str, tag: &str, actor: Option<&str>) -> Result<bool> {
        PgMeta::delete_tag(self, repo, tag, actor).await
    }

    async fn list_tags(
        &self,
        repo: &str,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<String>>> {
        PgMeta::list_tags(self, repo, last, limit).await
    }

    async fn catalog(&self, last: Option<&str>, limit: i64) -> Result<Vec<String>> {
        PgMeta::catalog(self, last, limit).await
    }

    async fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        PgMeta::referrers(self, repo, subject, artifact_type).await
    }

    async fn repo_summaries(
        &self,
        filter: Option<&str>,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RepoSummary>> {
        PgMeta::repo_summaries(self, filter, last, limit).await
    }

    async fn tag_rows(
        &self,
        repo: &str,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<TagRow>>> {
        PgMeta::tag_rows(self, repo, last, limit).await
    }

    async fn blob_uses(&self, blobs: &[String]) -> Result<Vec<BlobUse>> {
        PgMeta::blob_uses(self, blobs).await
    }

    async fn blob_any(&self, digest: &str) -> Result<Option<(i64, Option<String>)>> {
        PgMeta::blob_any(self, digest).await
    }

    async fn blob_rows(&self) -> Result<Vec<(String, u64, Option<String>)>> {
        PgMeta::blob_rows(self).await
    }

    async fn dangling_refs(&self) -> Result<Vec<DanglingRef>> {
        PgMeta::dangling_refs(self).await
    }

    async fn each_manifest(
        &self,
        each: &mut (dyn FnMut(String, String, Vec<u8>) + Send),
    ) -> Result<u64> {
        PgMeta::each_manifest(self, each).await
    }

    async fn blob_links(&self) -> Result<Vec<(String, String, u64)>> {
        PgMeta::blob_links(self).await
    }

    async fn all_tags(&self) -> Result<Vec<(String, String, String)>> {
        PgMeta::all_tags(self).await
    }

    async fn tag_history(&self, repo: &str, tag: &str, limit: i64) -> Result<Vec<TagChange>> {
        PgMeta::tag_history(self, repo, tag, limit).await
    }

    async fn move_tag(
        &self,
        repo: &str,
        tag: &str,
        digest: &str,
        action: &str,
        actor: Option<&str>,
    ) -> Result<bool> {
        PgMeta::move_tag(self, repo, tag, digest, action, actor).await
    }

    async fn immutability(&self, repo: &str) -> Result<Option<Immutability>> {
        PgMeta::immutability(self, repo).await
    }

    async fn set_immutability(&self, repo: &str, i: &Immutability) -> Result<()> {
        PgMeta::set_immutability(self, repo, i).await
    }

    async fn manifest_page(
        &self,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<crate::metadata::ManifestRow>> {
        PgMeta::manifest_page(self, after, limit).await
    }

    async fn drop_blob(&self, digest: &str) -> Result<Vec<String>> {
        PgMeta::drop_blob(self, digest).await
    }

    async fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        admin: bool,
        groups: &[String],
    ) -> Result<bool> {
        PgMeta::add_user(self, name, password_hash, admin, groups).await
    }

    async fn import_user(&self, user: &UserRow) -> Result<bool> {
        PgMeta::import_user(self, user).await
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        PgMeta::set_password(self, name, password_hash).await
    }

    async fn delete_user(&self, name: &str) -> Result<bool> {
        PgMeta::delete_user(self, name).await
    }

    async fn user(&self, name: &str) -> Result<Option<UserRow>> {
        PgMeta::user(self, name).await
    }

    async fn users(&self) -> Result<Vec<UserRow>> {
        PgMeta::users(self).await
    }

    async fn add_robot(
        &self,
        name: &str,
        secret_hash: &str,
        scopes: &[String],
        expires_at: Option<i64>,
    ) -> Result<bool> {
        PgMeta::add_robot(self, name, secret_hash, scopes, expires_at).await
    }

    async fn import_robot(&self, robot: &RobotRow) -> Result<bool> {
        PgMeta::import_robot(self, robot).await
    }

    async fn rotate_robot(&self, name: &str, secret_hash: &str) -> Result<bool> {
        PgMeta::rotate_robot(self, name, secret_hash).await
    }

    async fn delete_robot(&self, name: &str) -> Result<bool> {
        PgMeta::delete_robot(self, name).await
    }

    async fn robot(&self, name: &str) -> Result<Option<RobotRow>> {
        PgMeta::robot(self, name).await
    }

    async fn robots(&self) -> Result<Vec<RobotRow>> {
        PgMeta::robots(self).await
    }

    async fn create_session(
        &self,
        id_hash: &str,
        user: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<()> {
        PgMeta::create_session(self, id_hash, user, csrf, expires_at).await
    }

    async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>> {
        PgMeta::session(self, id_hash).await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        PgMeta::delete_session(self, id_hash).await
    }

    fn watch(
        &self,
        on: std::sync::Arc<dyn Fn(crate::metadata::Invalidation) + Send + Sync>,
    ) -> bool {
        PgMeta::watch(self, on);
        true
    }

    async fn gc_manifests(&self, clock: GcClock, limit: i64) -> Result<GcStep> {
        PgMeta::gc_manifests(self, clock, limit).await
    }

    async fn gc_links(&self, clock: GcClock, limit: i64) -> Result<GcStep> {
        PgMeta::gc_links(self, clock, limit).await
    }

    async fn gc_due_blobs(&self, clock: GcClock, limit: i64) -> Result<Vec<String>> {
        PgMeta::gc_due_blobs(self, clock, limit).await
    }

    async fn gc_blobs(
        &self,
        clock: GcClock,
        digests: &[String],
        forced: &[String],
    ) -> Result<GcStep> {
        PgMeta::gc_blobs(self, clock, digests, forced).await
    }

    async fn gc_dry_run(&self, clock: GcClock) -> Result<GcStep> {
        PgMeta::gc_dry_run(self, clock).await
    }

    async fn enter_fence(&self, digest: &str) -> Result<crate::blobstore::SessionLock> {
        PgMeta::enter_fence(self, digest).await
    }

    async fn take_fences(
        &self,
        digests: &[String],
    ) -> Result<(Vec<String>, crate::blobstore::SessionLock)> {
        PgMeta::take_fences(self, digests).await
    }

    async fn try_gc_lease(&self) -> Result<Option<crate::blobstore::SessionLock>> {
        PgMeta::try_gc_lease(self).await
    }

    async fn lifecycle_policy(&self, repo: &str) -> Result<Option<Option<String>>> {
        PgMeta::lifecycle_policy(self, repo).await
    }

    async fn set_lifecycle_policy(&self, repo: &str, policy: Option<&str>) -> Result<()> {
        PgMeta::set_lifecycle_policy(self, repo, policy).await
    }

    async fn lifecycle_repos(&self) -> Result<Vec<(String, String)>> {
        PgMeta::lifecycle_repos(self).await
    }

    async fn lifecycle_images(&self, repo: &str) -> Result<Vec<crate::lifecycle::Image>> {
        PgMeta::lifecycle_images(self, repo).await
    }

    async fn record_pulls(&self, pulls: &[(String, String, i64)]) -> Result<()> {
        PgMeta::record_pulls(self, pulls).await
    }

    async fn namespace_usage(&self, ns: &str) -> Result<(i64, i64)> {
        PgMeta::namespace_usage(self, ns).await
    }

    async fn namespace_has_blob(&self, ns: &str, digest: &str) -> Result<bool> {
        PgMeta::namespace_has_blob(self, ns, digest).await
    }

    async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<Event>> {
        PgMeta::events_after(self, after, limit).await
    }

    async fn event_cursor(&self, endpoint: &str) -> Result<Option<i64>> {
        PgMeta::event_cursor(self, endpoint).await
    }

    async fn set_event_cursor(&self, endpoint: &str, id: i64) -> Result<()> {
        PgMeta::set_event_cursor(self, endpoint, id).await
    }

    async fn last_event(&self) -> Result<i64> {
        PgMeta::last_event(self).await
    }

    async fn trim_events(&self, upto: i64, older_than_ms: i64) -> Result<u64> {
        PgMeta::trim_events(self, upto, older_than_ms).await
    }
}
