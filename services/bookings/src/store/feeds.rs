//! Calendar feed tokens: one per user, 32 random bytes (URL-safe base64, 43 characters), replaced
//! on rotation so that the old address stops working at once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;

use super::{Store, StoreError};

/// A new token.
fn token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Store {
    /// The user's token and when it was made, made now if they have none.
    pub async fn feed_token(&self, user_id: &str) -> Result<(String, DateTime<Utc>), StoreError> {
        sqlx::query(
            "INSERT INTO calendar_feeds (user_id, token) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(token())
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_as("SELECT token, rotate_time FROM calendar_feeds WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// A new token for the user; the old one is gone.
    pub async fn rotate_feed_token(
        &self,
        user_id: &str,
    ) -> Result<(String, DateTime<Utc>), StoreError> {
        Ok(sqlx::query_as(
            "INSERT INTO calendar_feeds (user_id, token) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET token = $2, rotate_time = now() \
             RETURNING token, rotate_time",
        )
        .bind(user_id)
        .bind(token())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Whose feed `token` opens.
    pub async fn feed_owner(&self, token: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT user_id FROM calendar_feeds WHERE token = $1")
                .bind(token)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
