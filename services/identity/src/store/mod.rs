//! PostgreSQL access of the identity service: users, refresh-token families and API keys. Every
//! change that others may care about commits with its event in the outbox.

use chrono::{DateTime, Duration, Utc};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use taskmesh_contracts::identity_v1::{
    ApiKey, ApiKeyScope, RegistrationCancelled, User, UserActivated, UserRegistered, UserUpdated,
    user,
};
use taskmesh_events::{Outbox, OutgoingEvent};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::time::to_timestamp;
use uuid::Uuid;

use crate::domain::{self, REFRESH_PREFIX};
use crate::error::Error;

/// The reason of a registration cancelled because the saga did not finish in time.
pub const REGISTRATION_TIMED_OUT: &str = "REGISTRATION_TIMED_OUT";

/// Database handle plus the outbox.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    outbox: Outbox,
}

/// A user row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// Username.
    pub id: String,
    email: String,
    display_name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// 1 pending, 2 active.
    pub state: i16,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    version: i64,
    personal_organization: Option<String>,
}

const USER_COLUMNS: &str = "id, email, display_name, password_hash, state, create_time, update_time, version, \
     personal_organization";

impl UserRow {
    /// The resource.
    pub fn into_proto(self) -> User {
        let active = self.state == user::State::Active as i16;
        User {
            name: format!("users/{}", self.id),
            email: self.email,
            display_name: self.display_name,
            state: i32::from(self.state),
            create_time: Some(to_timestamp(self.create_time)),
            update_time: Some(to_timestamp(self.update_time)),
            personal_organization: if active {
                self.personal_organization
                    .unwrap_or_else(|| format!("organizations/{}", self.id))
            } else {
                String::new()
            },
            etag: format!("v{}", self.version),
        }
    }
}

/// A new registration.
#[derive(Debug)]
pub struct NewUser {
    /// Username.
    pub id: String,
    /// Email as given (trimmed).
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// argon2id hash.
    pub password_hash: String,
}

/// A refresh token just issued.
#[derive(Debug)]
pub struct IssuedRefresh {
    /// The secret, shown once.
    pub token: String,
    /// When it expires.
    pub expire_time: DateTime<Utc>,
}

/// family, user, expiry, when used, when revoked.
type RefreshRow = (
    Uuid,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// Why a refresh token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshRefusal {
    /// Unknown, expired or revoked.
    Invalid,
    /// Used before: its family is now revoked.
    Reused,
}

#[derive(Debug, sqlx::FromRow)]
struct ApiKeyRow {
    id: Uuid,
    user_id: String,
    display_name: String,
    scope: i16,
    prefix: String,
    create_time: DateTime<Utc>,
    expire_time: Option<DateTime<Utc>>,
    revoke_time: Option<DateTime<Utc>>,
}

const KEY_COLUMNS: &str =
    "id, user_id, display_name, scope, prefix, create_time, expire_time, revoke_time";

impl ApiKeyRow {
    fn into_proto(self) -> ApiKey {
        ApiKey {
            name: format!("users/{}/apiKeys/{}", self.user_id, self.id),
            display_name: self.display_name,
            scope: i32::from(self.scope),
            expire_time: self.expire_time.map(to_timestamp),
            create_time: Some(to_timestamp(self.create_time)),
            revoke_time: self.revoke_time.map(to_timestamp),
            prefix: self.prefix,
        }
    }
}

fn event<M: prost::Name>(context: &CallContext, user: &str, message: &M) -> OutgoingEvent {
    OutgoingEvent::new(&format!("users/{user}"), message)
        .caused_by(&context.correlation_id, &context.traceparent)
}

impl Store {
    /// A store over `pool`, publishing through `outbox`.
    pub fn new(pool: PgPool, outbox: Outbox) -> Self {
        Self { pool, outbox }
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, Error> {
        Ok(self.pool.begin().await?)
    }

    async fn emit(&self, conn: &mut PgConnection, event: &OutgoingEvent) -> Result<(), Error> {
        Ok(self.outbox.enqueue(conn, event).await?)
    }

    async fn commit(&self, tx: Transaction<'static, Postgres>) -> Result<(), Error> {
        tx.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Creates a pending user and publishes UserRegistered (the start of the saga).
    pub async fn register(&self, context: &CallContext, new: NewUser) -> Result<User, Error> {
        let mut tx = self.begin().await?;
        let now = Utc::now();
        let row: UserRow = sqlx::query_as(&format!(
            "INSERT INTO users (id, uid, email, email_key, display_name, password_hash, state, \
             create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
             RETURNING {USER_COLUMNS}"
        ))
        .bind(&new.id)
        .bind(Uuid::now_v7())
        .bind(&new.email)
        .bind(domain::email_key(&new.email))
        .bind(&new.display_name)
        .bind(&new.password_hash)
        .bind(user::State::Pending as i16)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                let field = if db.constraint().is_some_and(|c| c.contains("email")) {
                    "email"
                } else {
                    "username"
                };
                Error::AlreadyRegistered { field }
            }
            _ => Error::Database(e),
        })?;
        let user = row.into_proto();
        let registered = UserRegistered {
            user: Some(user.clone()),
        };
        self.emit(&mut tx, &event(context, &new.id, &registered))
            .await?;
        self.commit(tx).await?;
        Ok(user)
    }

    /// The user with this email, if any.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, Error> {
        Ok(sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email_key = $1"
        ))
        .bind(domain::email_key(email))
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The user `id`, if any.
    pub async fn user(&self, id: &str) -> Result<Option<UserRow>, Error> {
        Ok(
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Starts a refresh-token family for a login.
    pub async fn start_session(&self, user: &str, ttl: Duration) -> Result<IssuedRefresh, Error> {
        let mut conn = self.pool.acquire().await?;
        insert_refresh(&mut conn, user, Uuid::now_v7(), ttl).await
    }

    /// Uses a refresh token once: returns its user and the next token of the family. A token
    /// presented a second time revokes the family (the revocation commits; the call fails).
    pub async fn refresh(
        &self,
        token: &str,
        ttl: Duration,
    ) -> Result<Result<(UserRow, IssuedRefresh), RefreshRefusal>, Error> {
        let mut tx = self.begin().await?;
        let found: Option<RefreshRow> = sqlx::query_as(
            "SELECT family, user_id, expire_time, used_time, revoke_time FROM refresh_tokens \
                 WHERE token_hash = $1 FOR UPDATE",
        )
        .bind(domain::digest(token))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((family, user_id, expire_time, used_time, revoke_time)) = found else {
            return Ok(Err(RefreshRefusal::Invalid));
        };
        if revoke_time.is_some() || expire_time <= Utc::now() {
            return Ok(Err(RefreshRefusal::Invalid));
        }
        if used_time.is_some() {
            sqlx::query(
                "UPDATE refresh_tokens SET revoke_time = now() WHERE family = $1 AND revoke_time IS NULL",
            )
            .bind(family)
            .execute(&mut *tx)
            .await
            ?;
            tx.commit().await?;
            tracing::warn!(user = %user_id, %family, "refresh token reused; family revoked");
            return Ok(Err(RefreshRefusal::Reused));
        }
        sqlx::query("UPDATE refresh_tokens SET used_time = now() WHERE token_hash = $1")
            .bind(domain::digest(token))
            .execute(&mut *tx)
            .await?;
        let user: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .bind(&user_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(user) = user else {
            return Ok(Err(RefreshRefusal::Invalid));
        };
        let next = insert_refresh(&mut tx, &user_id, family, ttl).await?;
        tx.commit().await?;
        Ok(Ok((user, next)))
    }

    /// Revokes the family of `token` (logout). Unknown tokens are ignored.
    pub async fn logout(&self, token: &str) -> Result<(), Error> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoke_time = now() WHERE revoke_time IS NULL AND family = \
             (SELECT family FROM refresh_tokens WHERE token_hash = $1)",
        )
        .bind(domain::digest(token))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Changes the display name (etag checked when given) and publishes UserUpdated.
    pub async fn update_display_name(
        &self,
        context: &CallContext,
        id: &str,
        etag: &str,
        display_name: &str,
    ) -> Result<User, Error> {
        let mut tx = self.begin().await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM users WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(version) = current else {
            return Err(Error::NotFound(format!("users/{id}")));
        };
        if !etag.is_empty() && etag != format!("v{version}") {
            return Err(Error::EtagMismatch {
                resource: format!("users/{id}"),
                current: format!("v{version}"),
            });
        }
        let row: UserRow = sqlx::query_as(&format!(
            "UPDATE users SET display_name = $2, update_time = now(), version = version + 1 \
             WHERE id = $1 RETURNING {USER_COLUMNS}"
        ))
        .bind(id)
        .bind(display_name)
        .fetch_one(&mut *tx)
        .await?;
        let user = row.into_proto();
        let updated = UserUpdated {
            user: Some(user.clone()),
        };
        self.emit(&mut tx, &event(context, id, &updated)).await?;
        self.commit(tx).await?;
        Ok(user)
    }

    /// Stores a new password hash and revokes every refresh token of the user.
    pub async fn set_password(&self, id: &str, password_hash: &str) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE users SET password_hash = $2, update_time = now(), version = version + 1 WHERE id = $1",
        )
        .bind(id)
        .bind(password_hash)
        .execute(&mut *tx)
        .await
        ?;
        sqlx::query("UPDATE refresh_tokens SET revoke_time = now() WHERE user_id = $1 AND revoke_time IS NULL")
            .bind(id)
            .execute(&mut *tx)
            .await
            ?;
        Ok(tx.commit().await?)
    }

    /// Completes the saga: a pending user becomes active. `false` when there is no pending user.
    pub async fn activate(
        &self,
        context: &CallContext,
        id: &str,
        organization: &str,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "UPDATE users SET state = $2, update_time = now(), version = version + 1, \
             personal_organization = $4 WHERE id = $1 AND state = $3 RETURNING {USER_COLUMNS}"
        ))
        .bind(id)
        .bind(user::State::Active as i16)
        .bind(user::State::Pending as i16)
        .bind(organization)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let activated = UserActivated {
            user: Some(row.into_proto()),
        };
        self.emit(&mut tx, &event(context, id, &activated)).await?;
        self.commit(tx).await?;
        Ok(true)
    }

    /// Compensates the saga: a pending user is removed, freeing the username and email.
    pub async fn cancel_registration(
        &self,
        context: &CallContext,
        id: &str,
        reason: &str,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "DELETE FROM users WHERE id = $1 AND state = $2 RETURNING {USER_COLUMNS}"
        ))
        .bind(id)
        .bind(user::State::Pending as i16)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let cancelled = RegistrationCancelled {
            user: Some(row.into_proto()),
            reason: reason.to_owned(),
        };
        self.emit(&mut tx, &event(context, id, &cancelled)).await?;
        self.commit(tx).await?;
        Ok(true)
    }

    /// The saga's timeout: cancels (as [`cancel_registration`](Self::cancel_registration) does)
    /// every registration still pending `older_than` after it was made, at most 100 per call.
    /// Returns the usernames freed.
    pub async fn expire_registrations(
        &self,
        context: &CallContext,
        older_than: std::time::Duration,
    ) -> Result<Vec<String>, Error> {
        let age = Duration::from_std(older_than).unwrap_or(Duration::MAX);
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM users WHERE state = $1 AND create_time < $2 ORDER BY create_time LIMIT 100",
        )
        .bind(user::State::Pending as i16)
        .bind(Utc::now() - age)
        .fetch_all(&self.pool)
        .await?;
        let mut freed = Vec::with_capacity(stale.len());
        for id in stale {
            if self
                .cancel_registration(context, &id, REGISTRATION_TIMED_OUT)
                .await?
            {
                freed.push(id);
            }
        }
        Ok(freed)
    }

    /// Stores a new API key; returns it and its secret.
    pub async fn create_api_key(
        &self,
        user: &str,
        display_name: &str,
        scope: ApiKeyScope,
        expire_time: Option<DateTime<Utc>>,
    ) -> Result<(ApiKey, String), Error> {
        let secret = domain::new_secret(taskmesh_mesh::auth::API_KEY_PREFIX);
        let prefix: String = secret.chars().take(10).collect();
        let row: ApiKeyRow = sqlx::query_as(&format!(
            "INSERT INTO api_keys (id, user_id, display_name, scope, prefix, secret_hash, \
             create_time, expire_time) VALUES ($1, $2, $3, $4, $5, $6, now(), $7) RETURNING {KEY_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(user)
        .bind(display_name)
        .bind(scope as i16)
        .bind(&prefix)
        .bind(domain::digest(&secret))
        .bind(expire_time)
        .fetch_one(&self.pool)
        .await
        ?;
        Ok((row.into_proto(), secret))
    }

    /// The user's keys, newest first, `size` per page after key `after`.
    pub async fn list_api_keys(
        &self,
        user: &str,
        show_revoked: bool,
        after: Option<Uuid>,
        size: i64,
    ) -> Result<(Vec<ApiKey>, Option<Uuid>), Error> {
        let rows: Vec<ApiKeyRow> = sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 \
             AND ($2 OR revoke_time IS NULL) AND ($3::uuid IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(user)
        .bind(show_revoked)
        .bind(after)
        .bind(size + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() as i64 > size;
        let rows: Vec<ApiKeyRow> = rows.into_iter().take(size as usize).collect();
        let last = if more {
            rows.last().map(|r| r.id)
        } else {
            None
        };
        Ok((rows.into_iter().map(ApiKeyRow::into_proto).collect(), last))
    }

    /// Revokes a key of `user`; NOT_FOUND when the user has no such key.
    pub async fn revoke_api_key(&self, user: &str, id: Uuid) -> Result<ApiKey, Error> {
        let row: Option<ApiKeyRow> = sqlx::query_as(&format!(
            "UPDATE api_keys SET revoke_time = COALESCE(revoke_time, now()) \
             WHERE id = $1 AND user_id = $2 RETURNING {KEY_COLUMNS}"
        ))
        .bind(id)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        row.map(ApiKeyRow::into_proto)
            .ok_or_else(|| Error::NotFound(format!("users/{user}/apiKeys/{id}")))
    }

    /// The live key with this secret (not revoked, not expired, user active).
    pub async fn api_key_by_secret(&self, secret: &str) -> Result<Option<ApiKey>, Error> {
        let row: Option<ApiKeyRow> = sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE secret_hash = $1 AND revoke_time IS NULL \
             AND (expire_time IS NULL OR expire_time > now()) \
             AND EXISTS (SELECT 1 FROM users WHERE users.id = api_keys.user_id AND state = $2)"
        ))
        .bind(domain::digest(secret))
        .bind(user::State::Active as i16)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(ApiKeyRow::into_proto))
    }
}

async fn insert_refresh(
    conn: &mut PgConnection,
    user: &str,
    family: Uuid,
    ttl: Duration,
) -> Result<IssuedRefresh, Error> {
    let token = domain::new_secret(REFRESH_PREFIX);
    let now = Utc::now();
    let expire_time = now + ttl;
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family, user_id, create_time, expire_time) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(domain::digest(&token))
    .bind(family)
    .bind(user)
    .bind(now)
    .bind(expire_time)
    .execute(conn)
    .await?;
    Ok(IssuedRefresh { token, expire_time })
}
