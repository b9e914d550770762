//! Users, their roles, browser sessions and API tokens.
//!
//! Invariant: secrets are stored only as hashes given by the caller (argon2 for passwords,
//! SHA-256 for session ids and tokens); this module never sees a clear-text secret.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, StoreError, conflict, opt_time, time, to_us};

/// One user with their roles.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    /// Primary key.
    pub id: i64,
    /// Login name, unique.
    pub username: String,
    /// Free text; may be empty.
    pub email: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// An inactive user cannot log in and their tokens are refused.
    pub active: bool,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// Last successful login.
    pub last_login: Option<DateTime<Utc>>,
    /// Role names (`viewer`, `operator`, `author`, `admin`), sorted.
    pub roles: Vec<String>,
}

/// An API token's metadata (never the token).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    /// Primary key.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Label given at creation.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Refused after this, if set.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last request made with it (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

const USER_COLS: &str = "id, username, email, password_hash, active, created_at, last_login";

fn user_row(r: &AnyRow) -> Result<UserRow> {
    Ok(UserRow {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        email: r.try_get("email")?,
        password_hash: r.try_get("password_hash")?,
        active: r.try_get::<i64, _>("active")? != 0,
        created_at: time(r, "created_at")?,
        last_login: opt_time(r, "last_login")?,
        roles: Vec::new(),
    })
}

/// The user of a browser session, with what the session holds for them.
#[derive(Debug, Clone)]
pub struct SessionUser {
    /// The user, with roles.
    pub user: UserRow,
    /// The session's CSRF token.
    pub csrf: String,
    /// A message left by the session's last form post, not yet shown.
    pub flash: Option<String>,
}

impl Store {
    /// Creates a user with `roles`; `Conflict` if the name is taken.
    pub async fn create_user(
        &self,
        username: &str,
        email: &str,
        password_hash: &str,
        roles: &[String],
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO app_user (username, email, password_hash, active, created_at) \
             VALUES ($1, $2, $3, 1, $4) RETURNING id",
        )
        .bind(username)
        .bind(email)
        .bind(password_hash)
        .bind(to_us(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, || format!("user `{username}`")))?
        .try_get("id")?;
        for role in roles {
            sqlx::query("INSERT INTO user_role (user_id, role) VALUES ($1, $2)")
                .bind(id)
                .bind(role)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// The user named `username`, with roles.
    pub async fn find_user(&self, username: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM app_user WHERE username = $1"))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        self.with_roles(row.as_ref().map(user_row).transpose()?).await
    }

    /// The user with primary key `id`, with roles.
    pub async fn get_user(&self, id: i64) -> Result<Option<UserRow>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM app_user WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        self.with_roles(row.as_ref().map(user_row).transpose()?).await
    }

    async fn with_roles(&self, user: Option<UserRow>) -> Result<Option<UserRow>> {
        let Some(mut user) = user else { return Ok(None) };
        let rows = sqlx::query("SELECT role FROM user_role WHERE user_id = $1 ORDER BY role")
            .bind(user.id)
            .fetch_all(&self.pool)
            .await?;
        user.roles = rows.iter().map(|r| r.try_get("role")).collect::<Result<_, _>>()?;
        Ok(Some(user))
    }

    /// Every user, by name, with roles.
    pub async fn list_users(&self) -> Result<Vec<UserRow>> {
        let rows = sqlx::query(&format!("SELECT {USER_COLS} FROM app_user ORDER BY username"))
            .fetch_all(&self.pool)
            .await?;
        let mut users: Vec<UserRow> = rows.iter().map(user_row).collect::<Result<_>>()?;
        let roles = sqlx::query("SELECT user_id, role FROM user_role ORDER BY role")
            .fetch_all(&self.pool)
            .await?;
        for r in &roles {
            let uid: i64 = r.try_get("user_id")?;
            if let Some(u) = users.iter_mut().find(|u| u.id == uid) {
                u.roles.push(r.try_get("role")?);
            }
        }
        Ok(users)
    }

    /// Number of users (zero on a fresh database).
    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM app_user")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Replaces a user's roles.
    pub async fn set_user_roles(&self, id: i64, roles: &[String]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM user_role WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
        for role in roles {
            sqlx::query("INSERT INTO user_role (user_id, role) VALUES ($1, $2)")
                .bind(id)
                .bind(role)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a user's password hash and ends their sessions.
    pub async fn set_user_password(&self, id: i64, password_hash: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE app_user SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {id}")));
        }
        sqlx::query("DELETE FROM web_session WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Activates or deactivates a user; deactivation ends their sessions.
    pub async fn set_user_active(&self, id: i64, active: bool) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE app_user SET active = $1 WHERE id = $2")
            .bind(i64::from(active))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if !active {
            sqlx::query("DELETE FROM web_session WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a user with their roles, sessions and tokens.
    pub async fn delete_user(&self, id: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for sql in [
            "DELETE FROM user_role WHERE user_id = $1",
            "DELETE FROM web_session WHERE user_id = $1",
            "DELETE FROM api_token WHERE user_id = $1",
            "DELETE FROM app_user WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a successful login.
    pub async fn record_login(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE app_user SET last_login = $1 WHERE id = $2")
            .bind(to_us(now))
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Creates a browser session; `id_hash` is the hash of the cookie's value.
    pub async fn create_session(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        // Expired sessions are swept here, on the rare login, not on every request.
        sqlx::query("DELETE FROM web_session WHERE expires_at < $1")
            .bind(to_us(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO web_session (id, user_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(csrf_token)
        .bind(to_us(now))
        .bind(to_us(expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The active user of an unexpired session, with the session's CSRF token and its flash
    /// message, if one waits. Two indexed reads: this runs on every page request.
    pub async fn session_user(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionUser>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.email, u.password_hash, u.active, u.created_at, \
             u.last_login, s.csrf_token, s.flash FROM web_session s \
             JOIN app_user u ON u.id = s.user_id \
             WHERE s.id = $1 AND s.expires_at > $2 AND u.active = 1",
        )
        .bind(id_hash)
        .bind(to_us(now))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let csrf: String = row.try_get("csrf_token")?;
        let flash: Option<String> = row.try_get("flash")?;
        let user = self.with_roles(Some(user_row(&row)?)).await?;
        Ok(user.map(|user| SessionUser { user, csrf, flash }))
    }

    /// Leaves `message` for the next page the session shows (replacing one not yet shown).
    pub async fn set_flash(&self, id_hash: &str, message: &str) -> Result<()> {
        sqlx::query("UPDATE web_session SET flash = $1 WHERE id = $2")
            .bind(message)
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Drops the flash message `shown` once a page showed it; a newer one set meanwhile stays.
    pub async fn take_flash(&self, id_hash: &str, shown: &str) -> Result<()> {
        sqlx::query("UPDATE web_session SET flash = NULL WHERE id = $1 AND flash = $2")
            .bind(id_hash)
            .bind(shown)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM web_session WHERE id = $1")
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Creates an API token for a user; `token_hash` is the hash of the secret.
    pub async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<i64> {
        Ok(sqlx::query(
            "INSERT INTO api_token (user_id, name, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(user_id)
        .bind(name)
        .bind(token_hash)
        .bind(to_us(now))
        .bind(expires_at.map(to_us))
        .fetch_one(&self.writer)
        .await?
        .try_get("id")?)
    }

    /// The active user owning an unexpired token.
    pub async fn token_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserRow>> {
        let row = sqlx::query(
            "SELECT t.id, t.user_id, t.last_used_at FROM api_token t \
             JOIN app_user u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > $2) \
             AND u.active = 1",
        )
        .bind(token_hash)
        .bind(to_us(now))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let last: Option<i64> = row.try_get("last_used_at")?;
        // A write per API call would make every read a write: once a minute is enough to
        // show whether a token is in use.
        if last.is_none_or(|l| to_us(now) - l > 60_000_000) {
            sqlx::query("UPDATE api_token SET last_used_at = $1 WHERE id = $2")
                .bind(to_us(now))
                .bind(row.try_get::<i64, _>("id")?)
                .execute(&self.writer)
                .await?;
        }
        self.get_user(row.try_get("user_id")?).await
    }

    /// A user's tokens (metadata only).
    pub async fn list_tokens(&self, user_id: i64) -> Result<Vec<TokenRow>> {
        let rows = sqlx::query(
            "SELECT id, user_id, name, created_at, expires_at, last_used_at FROM api_token \
             WHERE user_id = $1 ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenRow {
                    id: r.try_get("id")?,
                    user_id: r.try_get("user_id")?,
                    name: r.try_get("name")?,
                    created_at: time(r, "created_at")?,
                    expires_at: opt_time(r, "expires_at")?,
                    last_used_at: opt_time(r, "last_used_at")?,
                })
            })
            .collect()
    }

    /// Revokes one of a user's tokens; false if there was none.
    pub async fn delete_token(&self, user_id: i64, token_id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM api_token WHERE id = $1 AND user_id = $2")
            .bind(token_id)
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
