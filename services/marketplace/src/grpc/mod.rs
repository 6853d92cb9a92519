//! The marketplace's four gRPC services. Each call parses the names it is given, decides what the
//! caller may do (checking permission before existence: a resource the caller may not see is
//! NOT_FOUND, one they may see but not change PERMISSION_DENIED), then asks the store.

mod categories;
mod listings;
mod providers;
mod reviews;

pub use categories::CategoriesService;
pub use listings::ListingsService;
pub use providers::ProvidersService;
pub use reviews::ReviewsService;

use taskmesh_contracts::marketplace_v1::{Category, Listing, Money, Provider, Rating, Review};
use taskmesh_mesh::time::to_timestamp;

use crate::store::categories::CategoryRow;
use crate::store::listings::ListingRow;
use crate::store::providers::ProviderRow;
use crate::store::reviews::{ReviewRow, Tally};

/// The user id of the caller (`users/{user}`).
fn caller_id(caller: &str) -> &str {
    caller.strip_prefix("users/").unwrap_or(caller)
}

fn rating(count: i64, sum: i64) -> Rating {
    Rating {
        count,
        #[allow(clippy::cast_precision_loss)] // Counts and sums of stars stay far below 2^52.
        average: if count == 0 {
            0.0
        } else {
            sum as f64 / count as f64
        },
    }
}

/// A listing's rating from its tally.
fn tally_rating(tally: Tally) -> Rating {
    rating(tally.rating_count, tally.rating_sum)
}

/// As the API shows a stored provider.
fn provider_proto(row: &ProviderRow) -> Provider {
    Provider {
        name: row.name(),
        display_name: row.display_name.clone(),
        description: row.description.clone(),
        time_zone: row.time_zone.clone(),
        public: row.public,
        user: format!("users/{}", row.provider_id),
        rating: Some(rating(row.rating_count, row.rating_sum)),
        create_time: Some(to_timestamp(row.create_time)),
        update_time: Some(to_timestamp(row.update_time)),
        etag: row.etag(),
    }
}

/// As the API shows a stored category.
fn category_proto(row: &CategoryRow) -> Category {
    Category {
        name: row.name(),
        display_name: row.display_name.clone(),
        description: row.description.clone(),
        parent: row
            .parent_id
            .as_ref()
            .map(|parent| format!("categories/{parent}"))
            .unwrap_or_default(),
        create_time: Some(to_timestamp(row.create_time)),
    }
}

/// As the API shows a stored listing.
fn listing_proto(row: &ListingRow) -> Listing {
    Listing {
        name: row.name(),
        title: row.title.clone(),
        description: row.description.clone(),
        category: format!("categories/{}", row.category_id),
        price: Some(Money {
            currency_code: row.currency_code.clone(),
            units: row.price_units,
            nanos: row.price_nanos,
        }),
        duration: Some(prost_types::Duration {
            seconds: i64::from(row.duration_seconds),
            nanos: 0,
        }),
        remote: row.remote,
        location: row.location.clone(),
        state: i32::from(row.state),
        rating: Some(rating(row.rating_count, row.rating_sum)),
        create_time: Some(to_timestamp(row.create_time)),
        update_time: Some(to_timestamp(row.update_time)),
        delete_time: row.delete_time.map(to_timestamp),
        etag: row.etag(),
    }
}

/// As the API shows a stored review.
fn review_proto(row: &ReviewRow) -> Review {
    Review {
        name: row.name(),
        booking: row.booking.clone(),
        rating: i32::from(row.rating),
        comment: row.comment.clone(),
        author: row.author.clone(),
        create_time: Some(to_timestamp(row.create_time)),
        update_time: Some(to_timestamp(row.update_time)),
        edit_deadline: Some(to_timestamp(row.edit_deadline)),
        etag: row.etag(),
    }
}
