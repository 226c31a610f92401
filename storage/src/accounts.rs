//! Accounts of the registry (users, robots, web sessions) as the server and
//! the CLI see them; hashing and policy are the `auth` crate's.

use crate::error::Result;
use crate::metadata::{AccessKeyRow, Metadata, RobotRow, SessionRow, UserRow};
use crate::service::Registry;

/// The account operations of a [`Registry`].
pub struct Accounts<'a>(&'a Metadata);

impl Registry {
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts(self.meta())
    }
}

impl Accounts<'_> {
    /// Store an ECR access key (its secret sealed by the caller); false if
    /// the ID is taken.
    pub async fn add_access_key(&self, key: &AccessKeyRow) -> Result<bool> {
        self.0.add_access_key(key).await
    }

    pub async fn access_key(&self, id: &str) -> Result<Option<AccessKeyRow>> {
        self.0.access_key(id).await
    }

    pub async fn access_keys(&self, owner: Option<&str>) -> Result<Vec<AccessKeyRow>> {
        self.0.access_keys(owner).await
    }

    pub async fn set_access_key_disabled(&self, id: &str, at: Option<i64>) -> Result<bool> {
        self.0.set_access_key_disabled(id, at).await
    }

    pub async fn delete_access_key(&self, id: &str) -> Result<bool> {
        self.0.delete_access_key(id).await
    }

    pub async fn touch_access_key(&self, id: &str, at: i64) -> Result<()> {
        self.0.touch_access_key(id, at).await
    }

    pub async fn add_user(
        &self,
        name: &str,
        hash: &str,
        admin: bool,
        groups: &[String],
    ) -> Result<bool> {
        self.0.add_user(name, hash, admin, groups).await
    }

    pub async fn set_password(&self, name: &str, hash: &str) -> Result<bool> {
        self.0.set_password(name, hash).await
    }

    pub async fn delete_user(&self, name: &str) -> Result<bool> {
        self.0.delete_user(name).await
    }

    pub async fn user(&self, name: &str) -> Result<Option<UserRow>> {
        self.0.user(name).await
    }

    pub async fn users(&self) -> Result<Vec<UserRow>> {
        self.0.users().await
    }

    pub async fn add_robot(
        &self,
        name: &str,
        hash: &str,
        scopes: &[String],
        expires_at: Option<i64>,
    ) -> Result<bool> {
        self.0.add_robot(name, hash, scopes, expires_at).await
    }

    /// A new secret (hashed by the caller): the old one and the refresh
    /// tokens issued to it stop working.
    pub async fn rotate_robot(&self, name: &str, hash: &str) -> Result<bool> {
        self.0.rotate_robot(name, hash).await
    }

    /// Account rows as they are, for `registry migrate`.
    pub async fn import_user(&self, user: &UserRow) -> Result<bool> {
        self.0.import_user(user).await
    }

    pub async fn import_robot(&self, robot: &RobotRow) -> Result<bool> {
        self.0.import_robot(robot).await
    }

    pub async fn delete_robot(&self, name: &str) -> Result<bool> {
        self.0.delete_robot(name).await
    }

    pub async fn robot(&self, name: &str) -> Result<Option<RobotRow>> {
        self.0.robot(name).await
    }

    pub async fn robots(&self) -> Result<Vec<RobotRow>> {
        self.0.robots().await
    }

    pub async fn create_session(
        &self,
        id_hash: &str,
        user: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<()> {
        self.0.create_session(id_hash, user, csrf, expires_at).await
    }

    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>> {
        self.0.session(id_hash).await
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.0.delete_session(id_hash).await
    }
}
