//! SearchListings in SQL: the listed listings (published, not deleted, of a public provider)
//! matching words (`websearch_to_tsquery` over the weighted title and description), a price range,
//! a minimum rating and a venue, in a category and those under it (`category_path @> {id}`, GIN).
//! The page and the category counts are two statements over the same conditions, run side by side.
//! The counts leave the category condition out (so a client can offer the other categories) and
//! group by each listing's own category; rolled up the tree they give the facets, and the asked
//! category's facet (or their sum) is the total: no third scan to count.

use sqlx::{Postgres, QueryBuilder};

use super::listings::{COLUMNS, ListingRow};
use super::{Store, StoreError};
use crate::domain::search::{Order, SearchQuery, Venue};

/// One page of a search.
#[derive(Debug, Clone)]
pub struct Found {
    /// The page's listings, one more than asked for when another page follows.
    pub rows: Vec<ListingRow>,
    /// Matches over every page.
    pub total: i64,
    /// Matches per category (ids), its sub-categories' included, most first.
    pub facets: Vec<(String, i64)>,
}

/// The facets (categories with the matches in them and below them, most first) and the total of
/// `counts`, each a category's path and its own matches; the total is `category`'s facet when one
/// was asked for, every match otherwise.
fn roll_up(counts: &[(Vec<String>, i64)], category: Option<&str>) -> (Vec<(String, i64)>, i64) {
    let mut facets: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for (path, n) in counts {
        for id in path {
            *facets.entry(id.as_str()).or_default() += n;
        }
    }
    let total = match category {
        Some(category) => facets.get(category).copied().unwrap_or(0),
        None => counts.iter().map(|(_, n)| n).sum(),
    };
    let mut facets: Vec<(String, i64)> = facets
        .into_iter()
        .map(|(id, n)| (id.to_owned(), n))
        .collect();
    facets.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    (facets, total)
}

/// The text search configuration of the `searchable` column.
const CONFIG: &str = "'english'";

/// Appends the WHERE conditions of `search` (without the category's when `with_category` is
/// false) to a query over `listings l`.
fn push_conditions(
    query: &mut QueryBuilder<'_, Postgres>,
    search: &SearchQuery,
    with_category: bool,
) {
    query.push(" WHERE l.listed");
    if !search.words.is_empty() {
        query.push(format!(
            " AND l.searchable @@ websearch_to_tsquery({CONFIG}, "
        ));
        query.push_bind(search.words.clone());
        query.push(")");
    }
    if with_category && let Some(category) = &search.category {
        query.push(" AND l.category_path @> ARRAY[");
        query.push_bind(category.clone());
        query.push("]::text[]");
    }
    if let Some(currency) = &search.currency_code {
        query.push(" AND l.currency_code = ");
        query.push_bind(currency.clone());
    }
    if let Some(min) = &search.min_price {
        query.push(" AND l.price >= ");
        query.push_bind(min.clone());
        query.push("::numeric");
    }
    if let Some(max) = &search.max_price {
        query.push(" AND l.price <= ");
        query.push_bind(max.clone());
        query.push("::numeric");
    }
    if search.min_rating > 0.0 {
        query.push(" AND l.rating_count > 0 AND l.rating_average >= ");
        query.push_bind(search.min_rating);
    }
    match search.venue {
        Venue::Any => {}
        Venue::Remote => {
            query.push(" AND l.remote");
        }
        Venue::InPerson => {
            query.push(" AND NOT l.remote");
        }
    }
}

/// The ORDER BY list of `order`, ties broken by age and name so that pages are stable.
fn order_sql(order: Order, has_words: bool) -> &'static str {
    match order {
        Order::Relevance if has_words => {
            "rank DESC, l.create_time DESC, l.provider_id, l.listing_id"
        }
        Order::Relevance | Order::Newest => "l.create_time DESC, l.provider_id, l.listing_id",
        Order::Rating => {
            "l.rating_average DESC, l.rating_count DESC, l.create_time DESC, l.provider_id, l.listing_id"
        }
        Order::PriceAscending => "l.price, l.create_time DESC, l.provider_id, l.listing_id",
        Order::PriceDescending => "l.price DESC, l.create_time DESC, l.provider_id, l.listing_id",
    }
}

impl Store {
    /// The listings `search` finds, `limit` of them from `offset` (plus one to tell whether more
    /// follow), with the total and the facets.
    pub async fn search_listings(
        &self,
        search: &SearchQuery,
        offset: i64,
        limit: i64,
    ) -> Result<Found, StoreError> {
        let mut page = QueryBuilder::new(format!("SELECT {COLUMNS}"));
        if search.words.is_empty() {
            page.push(", 0::real AS rank");
        } else {
            page.push(format!(
                ", ts_rank_cd(l.searchable, websearch_to_tsquery({CONFIG}, "
            ));
            page.push_bind(search.words.clone());
            page.push(")) AS rank");
        }
        page.push(" FROM listings l");
        push_conditions(&mut page, search, true);
        page.push(" ORDER BY ");
        page.push(order_sql(search.order, !search.words.is_empty()));
        page.push(" LIMIT ");
        page.push_bind(limit + 1);
        page.push(" OFFSET ");
        page.push_bind(offset);

        // Matches per category, every filter but the category's, with each category's path; the
        // roll-up up the tree and the total (the asked category's count, or all of them) follow.
        let mut facets = QueryBuilder::new(
            "SELECT c.path, m.n FROM (SELECT l.category_id, count(*) AS n FROM listings l",
        );
        push_conditions(&mut facets, search, false);
        facets.push(
            " GROUP BY l.category_id) AS m JOIN categories c ON c.category_id = m.category_id",
        );

        let (rows, counts) = tokio::try_join!(
            page.build_query_as::<ListingRow>().fetch_all(&self.pool),
            facets
                .build_query_as::<(Vec<String>, i64)>()
                .fetch_all(&self.pool),
        )?;
        let (facets, total) = roll_up(&counts, search.category.as_deref());
        Ok(Found {
            rows,
            total,
            facets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_roll_up_the_tree_and_the_total_is_the_asked_categorys() {
        let path = |ids: &[&str]| ids.iter().map(|id| (*id).to_owned()).collect::<Vec<_>>();
        let counts = vec![
            (path(&["home"]), 2),
            (path(&["home", "cleaning"]), 5),
            (path(&["home", "garden"]), 1),
            (path(&["fitness", "yoga"]), 4),
        ];
        let (facets, total) = roll_up(&counts, None);
        assert_eq!(total, 12);
        assert_eq!(
            facets,
            [
                ("home", 8),
                ("cleaning", 5),
                ("fitness", 4),
                ("yoga", 4),
                ("garden", 1)
            ]
            .map(|(id, n)| (id.to_owned(), n))
        );
        assert_eq!(roll_up(&counts, Some("home")).1, 8);
        assert_eq!(roll_up(&counts, Some("yoga")).1, 4);
        assert_eq!(roll_up(&counts, Some("music")).1, 0);
    }
}
