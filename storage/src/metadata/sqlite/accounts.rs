//! Users, robot accounts and web sessions. Secrets are stored hashed (the
//! registry hashes them; this module never sees a password).

use super::SqliteMeta;
use crate::error::Result;
use crate::metadata::{now, RobotRow, SessionRow, UserRow};

type UserTuple = (String, String, bool, String, i64, i64);

fn user_row((name, password_hash, admin, groups, created_at, changed): UserTuple) -> UserRow {
    UserRow {
        name,
        password_hash,
        admin,
        groups: serde_json::from_str(&groups).unwrap_or_default(),
        created_at,
        password_changed_at: changed,
    }
}

type RobotTuple = (String, String, String, Option<i64>, i64);

fn robot_row((name, secret_hash, scopes, expires_at, created_at): RobotTuple) -> RobotRow {
    RobotRow {
        name,
        secret_hash,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        expires_at,
        created_at,
    }
}

const USER_COLUMNS: &str = "name, password_hash, admin, groups, created_at, password_changed_at";
const ROBOT_COLUMNS: &str = "name, secret_hash, scopes, expires_at, created_at";

impl SqliteMeta {
    /// Add a user; false if the name is taken.
    pub async fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        admin: bool,
        groups: &[String],
    ) -> Result<bool> {
        let now = now();
        let done = sqlx::query(
            "INSERT INTO users (name, password_hash, admin, groups, created_at, password_changed_at)
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(password_hash)
        .bind(admin)
        .bind(serde_json::to_string(groups).expect("strings serialize"))
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replace a user's password hash (and end its web sessions); false if
    /// there is no such user.
    pub async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $2, password_changed_at = $3 WHERE name = $1;
             DELETE FROM web_sessions WHERE user_name = $1;",
        )
        .bind(name)
        .bind(password_hash)
        .bind(now())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() >= 1)
    }

    pub async fn delete_user(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn user(&self, name: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
        let row: Option<UserTuple> = sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(user_row))
    }

    pub async fn users(&self) -> Result<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
        let rows: Vec<UserTuple> = sqlx::query_as(&sql).fetch_all(&self.reader).await?;
        Ok(rows.into_iter().map(user_row).collect())
    }

    /// Add a robot account; false if the name is taken.
    pub async fn add_robot(
        &self,
        name: &str,
        secret_hash: &str,
        scopes: &[String],
        expires_at: Option<i64>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO robots (name, secret_hash, scopes, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(secret_hash)
        .bind(scopes.join(" "))
        .bind(expires_at)
        .bind(now())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_robot(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM robots WHERE name = $1")
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn robot(&self, name: &str) -> Result<Option<RobotRow>> {
        let sql = format!("SELECT {ROBOT_COLUMNS} FROM robots WHERE name = $1");
        let row: Option<RobotTuple> = sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(robot_row))
    }

    pub async fn robots(&self) -> Result<Vec<RobotRow>> {
        let sql = format!("SELECT {ROBOT_COLUMNS} FROM robots ORDER BY name");
        let rows: Vec<RobotTuple> = sqlx::query_as(&sql).fetch_all(&self.reader).await?;
        Ok(rows.into_iter().map(robot_row).collect())
    }

    /// Record a web session (`id_hash` of its cookie value).
    pub async fn create_session(
        &self,
        id_hash: &str,
        user: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<()> {
        let now = now();
        sqlx::query(
            "DELETE FROM web_sessions WHERE expires_at < $5;
             INSERT INTO web_sessions (id_hash, user_name, csrf, created_at, expires_at)
             VALUES ($1, $2, $3, $5, $4);",
        )
        .bind(id_hash)
        .bind(user)
        .bind(csrf)
        .bind(expires_at)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// A live session by the hash of its cookie value.
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>> {
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT user_name, csrf, expires_at FROM web_sessions
             WHERE id_hash = $1 AND expires_at >= $2",
        )
        .bind(id_hash)
        .bind(now())
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|(user, csrf, expires_at)| SessionRow {
            user,
            csrf,
            expires_at,
        }))
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
