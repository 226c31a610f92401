//! Users, robot accounts and web sessions. Secrets are stored hashed (the
//! registry hashes them; this module never sees a password).

use super::{retrying, PgMeta};
use crate::error::Result;
use crate::metadata::{new_credential_gen, now, RobotRow, SessionRow, UserRow};

type UserTuple = (String, String, bool, String, i64, i64, String);

fn user_row((name, password_hash, admin, groups, created_at, changed, gen): UserTuple) -> UserRow {
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

type RobotTuple = (String, String, String, Option<i64>, i64, String);

fn robot_row((name, secret_hash, scopes, expires_at, created_at, gen): RobotTuple) -> RobotRow {
    RobotRow {
        name,
        secret_hash,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        expires_at,
        created_at,
        credential_gen: gen,
    }
}

const USER_COLUMNS: &str =
    "name, password_hash, admin, groups, created_at, password_changed_at, credential_gen";
const ROBOT_COLUMNS: &str = "name, secret_hash, scopes, expires_at, created_at, credential_gen";

impl PgMeta {
    /// Add a user; false if the name is taken.
    pub async fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        admin: bool,
        groups: &[String],
    ) -> Result<bool> {
        let now = now();
        self.import_user(&UserRow {
            name: name.to_owned(),
            password_hash: password_hash.to_owned(),
            admin,
            groups: groups.to_vec(),
            created_at: now,
            password_changed_at: now,
            credential_gen: new_credential_gen(),
        })
        .await
    }

    /// Add a user row as it is (`registry migrate` copies accounts with
    /// their times and credential generation, so refresh tokens survive the
    /// move); false if the name is taken.
    pub async fn import_user(&self, u: &UserRow) -> Result<bool> {
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
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replace a user's password hash and credential generation (its
    /// refresh tokens die) and end its web sessions; false if there is no
    /// such user.
    pub async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        let gen = new_credential_gen();
        Ok(retrying!(async {
            let mut tx = self.pool.begin().await?;
            let done = sqlx::query(
                "UPDATE users SET password_hash = $2, password_changed_at = $3, credential_gen = $4
                 WHERE name = $1",
            )
            .bind(name)
            .bind(password_hash)
            .bind(now())
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

    pub async fn delete_user(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn user(&self, name: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
        let row: Option<UserTuple> = sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(user_row))
    }

    pub async fn users(&self) -> Result<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
        let rows: Vec<UserTuple> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
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
        self.import_robot(&RobotRow {
            name: name.to_owned(),
            secret_hash: secret_hash.to_owned(),
            scopes: scopes.to_vec(),
            expires_at,
            created_at: now(),
            credential_gen: new_credential_gen(),
        })
        .await
    }

    /// Add a robot row as it is (see [`Self::import_user`]); false if the
    /// name is taken.
    pub async fn import_robot(&self, r: &RobotRow) -> Result<bool> {
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
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replace a robot's secret hash and credential generation: the old
    /// secret and its refresh tokens stop working. False if there is no
    /// such robot.
    pub async fn rotate_robot(&self, name: &str, secret_hash: &str) -> Result<bool> {
        let done =
            sqlx::query("UPDATE robots SET secret_hash = $2, credential_gen = $3 WHERE name = $1")
                .bind(name)
                .bind(secret_hash)
                .bind(new_credential_gen())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_robot(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM robots WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn robot(&self, name: &str) -> Result<Option<RobotRow>> {
        let sql = format!("SELECT {ROBOT_COLUMNS} FROM robots WHERE name = $1");
        let row: Option<RobotTuple> = sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(robot_row))
    }

    pub async fn robots(&self) -> Result<Vec<RobotRow>> {
        let sql = format!("SELECT {ROBOT_COLUMNS} FROM robots ORDER BY name");
        let rows: Vec<RobotTuple> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
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
        sqlx::query("DELETE FROM web_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
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
        .execute(&self.pool)
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
        .fetch_optional(&self.pool)
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
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
