//! Users, robot accounts and web sessions. Secrets are stored hashed (the
//! registry hashes them; this module never sees a password). The same SQL
//! on both databases: one body, [`impl_accounts`].

use super::{RobotRow, SessionRow, UserRow};
use crate::error::Result;
use async_trait::async_trait;

#[async_trait]
pub trait Accounts: Send + Sync {
    /// Add a user; false if the name is taken.
    async fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        admin: bool,
        groups: &[String],
    ) -> Result<bool>;
    /// Add a user row as it is (`registry migrate` copies accounts with
    /// their times and credential generation, so refresh tokens survive the
    /// move); false if the name is taken.
    async fn import_user(&self, user: &UserRow) -> Result<bool>;
    /// Replace a user's password hash and credential generation (its
    /// refresh tokens die) and end its web sessions; false if there is no
    /// such user.
    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool>;
    async fn delete_user(&self, name: &str) -> Result<bool>;
    async fn user(&self, name: &str) -> Result<Option<UserRow>>;
    async fn users(&self) -> Result<Vec<UserRow>>;
    /// Add a robot account; false if the name is taken.
    async fn add_robot(
        &self,
        name: &str,
        secret_hash: &str,
        scopes: &[String],
        expires_at: Option<i64>,
    ) -> Result<bool>;
    /// Add a robot row as it is (see [`Accounts::import_user`]); false if
    /// the name is taken.
    async fn import_robot(&self, robot: &RobotRow) -> Result<bool>;
    /// Replace a robot's secret hash and credential generation: the old
    /// secret and its refresh tokens stop working. False if there is no
    /// such robot.
    async fn rotate_robot(&self, name: &str, secret_hash: &str) -> Result<bool>;
    async fn delete_robot(&self, name: &str) -> Result<bool>;
    async fn robot(&self, name: &str) -> Result<Option<RobotRow>>;
    async fn robots(&self) -> Result<Vec<RobotRow>>;
    /// Record a web session (`id_hash` of its cookie value), forgetting
    /// expired ones.
    async fn create_session(
        &self,
        id_hash: &str,
        user: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<()>;
    /// A live session by the hash of its cookie value.
    async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
}

pub(crate) type UserTuple = (String, String, bool, String, i64, i64, String);

pub(crate) fn user_row(
    (name, password_hash, admin, groups, created_at, changed, gen): UserTuple,
) -> UserRow {
    UserRow {
        name,
        password_hash,
        admin,
        groups: serde_json::from_str(&groups).unwrap_or_default(),
        created_at,
        password_changed_at: changed,
        credential_gen: gen,
    }
}

pub(crate) type RobotTuple = (String, String, String, Option<i64>, i64, String);

pub(crate) fn robot_row(
    (name, secret_hash, scopes, expires_at, created_at, gen): RobotTuple,
) -> RobotRow {
    RobotRow {
        name,
        secret_hash,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        expires_at,
        created_at,
        credential_gen: gen,
    }
}

pub(crate) const USER_COLUMNS: &str =
    "name, password_hash, admin, groups, created_at, password_changed_at, credential_gen";
pub(crate) const ROBOT_COLUMNS: &str =
    "name, secret_hash, scopes, expires_at, created_at, credential_gen";

/// [`Accounts`] for a dialect.
macro_rules! impl_accounts {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl $crate::metadata::Accounts for $ty {
            async fn add_user(
                &self,
                name: &str,
                password_hash: &str,
                admin: bool,
                groups: &[String],
            ) -> $crate::error::Result<bool> {
                let now = $crate::metadata::now();
                let user = $crate::metadata::UserRow {
                    name: name.to_owned(),
                    password_hash: password_hash.to_owned(),
                    admin,
                    groups: groups.to_vec(),
                    created_at: now,
                    password_changed_at: now,
                    credential_gen: $crate::metadata::new_credential_gen(),
                };
                <Self as $crate::metadata::Accounts>::import_user(self, &user).await
            }

            async fn import_user(
                &self,
                u: &$crate::metadata::UserRow,
            ) -> $crate::error::Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO users (name, password_hash, admin, groups, created_at, password_changed_at,
                                        credential_gen)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
                )
                .bind(&u.name)
                .bind(&u.password_hash)
                .bind(u.admin)
                .bind(serde_json::to_string(&u.groups).expect("strings serialize"))
                .bind(u.created_at)
                .bind(u.password_changed_at)
                .bind(&u.credential_gen)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_password(
                &self,
                name: &str,
                password_hash: &str,
            ) -> $crate::error::Result<bool> {
                let gen = $crate::metadata::new_credential_gen();
                Ok($crate::metadata::retrying!(async {
                    let mut tx = self.begin().await?;
                    let done = sqlx::query(
                        "UPDATE users SET password_hash = $2, password_changed_at = $3, credential_gen = $4
                         WHERE name = $1",
                    )
                    .bind(name)
                    .bind(password_hash)
                    .bind($crate::metadata::now())
                    .bind(&gen)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM web_sessions WHERE user_name = $1")
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok::<_, sqlx::Error>(done.rows_affected() >= 1)
                })?)
            }

            async fn delete_user(&self, name: &str) -> $crate::error::Result<bool> {
                let done = sqlx::query("DELETE FROM users WHERE name = $1")
                    .bind(name)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn user(
                &self,
                name: &str,
            ) -> $crate::error::Result<Option<$crate::metadata::UserRow>> {
                use $crate::metadata::accounts::{user_row, UserTuple, USER_COLUMNS};
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
                let row: Option<UserTuple> = sqlx::query_as(&sql)
                    .bind(name)
                    .fetch_optional(self.reader())
                    .await?;
                Ok(row.map(user_row))
            }

            async fn users(&self) -> $crate::error::Result<Vec<$crate::metadata::UserRow>> {
                use $crate::metadata::accounts::{user_row, UserTuple, USER_COLUMNS};
                let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
                let rows: Vec<UserTuple> = sqlx::query_as(&sql).fetch_all(self.reader()).await?;
                Ok(rows.into_iter().map(user_row).collect())
            }

            async fn add_robot(
                &self,
                name: &str,
                secret_hash: &str,
                scopes: &[String],
                expires_at: Option<i64>,
            ) -> $crate::error::Result<bool> {
                let robot = $crate::metadata::RobotRow {
                    name: name.to_owned(),
                    secret_hash: secret_hash.to_owned(),
                    scopes: scopes.to_vec(),
                    expires_at,
                    created_at: $crate::metadata::now(),
                    credential_gen: $crate::metadata::new_credential_gen(),
                };
                <Self as $crate::metadata::Accounts>::import_robot(self, &robot).await
            }

            async fn import_robot(
                &self,
                r: &$crate::metadata::RobotRow,
            ) -> $crate::error::Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO robots (name, secret_hash, scopes, expires_at, created_at, credential_gen)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
                )
                .bind(&r.name)
                .bind(&r.secret_hash)
                .bind(r.scopes.join(" "))
                .bind(r.expires_at)
                .bind(r.created_at)
                .bind(&r.credential_gen)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn rotate_robot(
                &self,
                name: &str,
                secret_hash: &str,
            ) -> $crate::error::Result<bool> {
                let done = sqlx::query(
                    "UPDATE robots SET secret_hash = $2, credential_gen = $3 WHERE name = $1",
                )
                .bind(name)
                .bind(secret_hash)
                .bind($crate::metadata::new_credential_gen())
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_robot(&self, name: &str) -> $crate::error::Result<bool> {
                let done = sqlx::query("DELETE FROM robots WHERE name = $1")
                    .bind(name)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn robot(
                &self,
                name: &str,
            ) -> $crate::error::Result<Option<$crate::metadata::RobotRow>> {
                use $crate::metadata::accounts::{robot_row, RobotTuple, ROBOT_COLUMNS};
                let sql = format!("SELECT {ROBOT_COLUMNS} FROM robots WHERE name = $1");
                let row: Option<RobotTuple> = sqlx::query_as(&sql)
                    .bind(name)
                    .fetch_optional(self.reader())
                    .await?;
                Ok(row.map(robot_row))
            }

            async fn robots(&self) -> $crate::error::Result<Vec<$crate::metadata::RobotRow>> {
                use $crate::metadata::accounts::{robot_row, RobotTuple, ROBOT_COLUMNS};
                let sql = format!("SELECT {ROBOT_COLUMNS} FROM robots ORDER BY name");
                let rows: Vec<RobotTuple> = sqlx::query_as(&sql).fetch_all(self.reader()).await?;
                Ok(rows.into_iter().map(robot_row).collect())
            }

            async fn create_session(
                &self,
                id_hash: &str,
                user: &str,
                csrf: &str,
                expires_at: i64,
            ) -> $crate::error::Result<()> {
                let now = $crate::metadata::now();
                sqlx::query("DELETE FROM web_sessions WHERE expires_at < $1")
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                sqlx::query(
                    "INSERT INTO web_sessions (id_hash, user_name, csrf, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id_hash)
                .bind(user)
                .bind(csrf)
                .bind(now)
                .bind(expires_at)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn session(
                &self,
                id_hash: &str,
            ) -> $crate::error::Result<Option<$crate::metadata::SessionRow>> {
                let row: Option<(String, String, i64)> = sqlx::query_as(
                    "SELECT user_name, csrf, expires_at FROM web_sessions
                     WHERE id_hash = $1 AND expires_at >= $2",
                )
                .bind(id_hash)
                .bind($crate::metadata::now())
                .fetch_optional(self.reader())
                .await?;
                Ok(row.map(|(user, csrf, expires_at)| $crate::metadata::SessionRow {
                    user,
                    csrf,
                    expires_at,
                }))
            }

            async fn delete_session(&self, id_hash: &str) -> $crate::error::Result<()> {
                sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_accounts;
