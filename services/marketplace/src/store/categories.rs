//! The category tree. A category keeps the path of ids from the top down to itself; since a
//! category never moves, its listings can carry that path and a search in a category is one array
//! test, facets one `unnest`.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, violates};
use crate::error::reasons;

/// A stored category.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CategoryRow {
    /// Its id.
    pub category_id: String,
    /// Shown name.
    pub display_name: String,
    /// What belongs in it.
    pub description: String,
    /// The category it sits in.
    pub parent_id: Option<String>,
    /// Ids from the top down to this one.
    pub path: Vec<String>,
    /// Made.
    pub create_time: DateTime<Utc>,
}

impl CategoryRow {
    /// `categories/{category}`.
    pub fn name(&self) -> String {
        format!("categories/{}", self.category_id)
    }
}

const COLUMNS: &str = "category_id, display_name, description, parent_id, path, create_time";

/// Which categories a list shows.
#[derive(Debug, Clone, Copy)]
pub enum Level<'a> {
    /// Every category.
    All,
    /// The top ones.
    Top,
    /// The direct children of one.
    ChildrenOf(&'a str),
}

impl Store {
    /// Creates category `category_id` under `parent_id`.
    pub async fn create_category(
        &self,
        category_id: &str,
        parent_id: Option<&str>,
        display_name: &str,
        description: &str,
    ) -> Result<CategoryRow, StoreError> {
        let mut tx = self.begin().await?;
        let mut path = match parent_id {
            Some(parent) => {
                self.category_in(&mut tx, parent)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("categories/{parent}")))?
                    .path
            }
            None => Vec::new(),
        };
        path.push(category_id.to_owned());
        let row = sqlx::query_as(&format!(
            "INSERT INTO categories (category_id, display_name, description, parent_id, path) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        ))
        .bind(category_id)
        .bind(display_name)
        .bind(description)
        .bind(parent_id)
        .bind(&path)
        .fetch_one(&mut *tx)
        .await
        .map_err(|err| {
            if violates(&err, "categories_pkey") {
                StoreError::Exists {
                    reason: reasons::CATEGORY_EXISTS,
                    name: format!("categories/{category_id}"),
                }
            } else {
                err.into()
            }
        })?;
        self.commit(tx).await?;
        Ok(row)
    }

    async fn category_in(
        &self,
        conn: &mut sqlx::PgConnection,
        category_id: &str,
    ) -> Result<Option<CategoryRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM categories WHERE category_id = $1"
        ))
        .bind(category_id)
        .fetch_optional(conn)
        .await?)
    }

    /// The category `category_id`.
    pub async fn category(&self, category_id: &str) -> Result<Option<CategoryRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.category_in(&mut conn, category_id).await
    }

    /// Categories of `level` by id, from `offset`.
    pub async fn list_categories(
        &self,
        level: Level<'_>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<CategoryRow>, StoreError> {
        let (condition, parent) = match level {
            Level::All => ("true", None),
            Level::Top => ("parent_id IS NULL", None),
            Level::ChildrenOf(parent) => ("parent_id = $3", Some(parent)),
        };
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM categories WHERE {condition} ORDER BY category_id \
             OFFSET $1 LIMIT $2"
        ))
        .bind(offset)
        .bind(limit)
        .bind(parent)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Changes a category's name or description.
    pub async fn update_category(
        &self,
        category_id: &str,
        display_name: Option<&str>,
        description: Option<&str>,
    ) -> Result<CategoryRow, StoreError> {
        let row: Option<CategoryRow> = sqlx::query_as(&format!(
            "UPDATE categories SET display_name = coalesce($2, display_name), \
               description = coalesce($3, description) \
             WHERE category_id = $1 RETURNING {COLUMNS}"
        ))
        .bind(category_id)
        .bind(display_name)
        .bind(description)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or_else(|| StoreError::NotFound(format!("categories/{category_id}")))
    }

    /// Deletes a category that holds neither sub-categories nor listings (deleted ones count:
    /// they can come back).
    pub async fn delete_category(&self, category_id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let name = format!("categories/{category_id}");
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT category_id FROM categories WHERE category_id = $1 FOR UPDATE",
        )
        .bind(category_id)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(name));
        }
        let in_use: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM categories WHERE parent_id = $1) \
                 OR EXISTS (SELECT 1 FROM listings WHERE category_id = $1)",
        )
        .bind(category_id)
        .fetch_one(&mut *tx)
        .await?;
        if in_use {
            return Err(StoreError::Refused {
                reason: reasons::CATEGORY_IN_USE,
                message: format!("{name} still holds sub-categories or listings"),
            });
        }
        sqlx::query("DELETE FROM categories WHERE category_id = $1")
            .bind(category_id)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await
    }
}
