//! A SearchListings request as the store runs it: words, category, bounds, venue and order,
//! checked; and the fingerprint that binds its page tokens to it.

use taskmesh_contracts::marketplace_v1::{SearchListingsRequest, Venue as VenueProto};
use taskmesh_mesh::aip;

use super::price::parse_bound;

/// Where the service may take place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Venue {
    /// Either.
    Any,
    /// Remote only.
    Remote,
    /// In person only.
    InPerson,
}

/// The order of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Best match first (newest first without words).
    Relevance,
    /// Best rated first.
    Rating,
    /// Cheapest first.
    PriceAscending,
    /// Dearest first.
    PriceDescending,
    /// Newest first.
    Newest,
}

impl Order {
    /// Reads `order_by`: `relevance`, `rating`, `price`, `price desc`, `newest` (any case, extra
    /// spaces allowed); empty is relevance with words and newest without.
    pub fn parse(text: &str, has_words: bool) -> Result<Self, String> {
        let words: Vec<String> = text
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        Ok(match words.as_slice() {
            [] if has_words => Self::Relevance,
            [] => Self::Newest,
            ["relevance"] => Self::Relevance,
            ["rating"] | ["rating", "desc"] => Self::Rating,
            ["price"] | ["price", "asc"] => Self::PriceAscending,
            ["price", "desc"] => Self::PriceDescending,
            ["newest"] => Self::Newest,
            _ => {
                return Err(format!(
                    "`{}` is not one of relevance, rating, price, price desc, newest",
                    text.trim()
                ));
            }
        })
    }
}

/// A checked search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// Web search syntax; empty for every listing.
    pub words: String,
    /// Category id.
    pub category: Option<String>,
    /// ISO 4217.
    pub currency_code: Option<String>,
    /// Decimal text.
    pub min_price: Option<String>,
    /// Decimal text.
    pub max_price: Option<String>,
    /// 0 for any.
    pub min_rating: f64,
    /// Remote, in person or either.
    pub venue: Venue,
    /// Order of results.
    pub order: Order,
}

impl SearchQuery {
    /// Reads `request`; the error names the field.
    pub fn from_request(request: &SearchListingsRequest) -> Result<Self, (&'static str, String)> {
        let words = request.query.trim().to_owned();
        let category = match request.category.as_str() {
            "" => None,
            name => Some(
                name.strip_prefix("categories/")
                    .filter(|id| taskmesh_mesh::names::valid_id(id))
                    .ok_or((
                        "category",
                        "must look like `categories/{category}`".to_owned(),
                    ))?
                    .to_owned(),
            ),
        };
        let bound = |field: &'static str, text: &str| match text {
            "" => Ok(None),
            text => parse_bound(text)
                .map(Some)
                .ok_or((field, "is not a decimal such as `19.5`".to_owned())),
        };
        let min_price = bound("min_price", &request.min_price)?;
        let max_price = bound("max_price", &request.max_price)?;
        if !(0.0..=5.0).contains(&request.min_rating) {
            return Err(("min_rating", "must be between 0 and 5".to_owned()));
        }
        let venue = match VenueProto::try_from(request.venue) {
            Ok(VenueProto::Unspecified) => Venue::Any,
            Ok(VenueProto::Remote) => Venue::Remote,
            Ok(VenueProto::InPerson) => Venue::InPerson,
            Err(_) => return Err(("venue", "is not a venue".to_owned())),
        };
        let order =
            Order::parse(&request.order_by, !words.is_empty()).map_err(|e| ("order_by", e))?;
        Ok(Self {
            words,
            category,
            currency_code: (!request.currency_code.is_empty())
                .then(|| request.currency_code.clone()),
            min_price,
            max_price,
            min_rating: request.min_rating,
            venue,
            order,
        })
    }

    /// What identifies this search, for its page tokens.
    pub fn fingerprint(&self) -> String {
        aip::fingerprint(&[
            &self.words,
            self.category.as_deref().unwrap_or_default(),
            self.currency_code.as_deref().unwrap_or_default(),
            self.min_price.as_deref().unwrap_or_default(),
            self.max_price.as_deref().unwrap_or_default(),
            &self.min_rating.to_string(),
            &format!("{:?}/{:?}", self.venue, self.order),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_read_their_names_and_default_by_words() {
        assert_eq!(Order::parse("", true), Ok(Order::Relevance));
        assert_eq!(Order::parse("  ", false), Ok(Order::Newest));
        assert_eq!(
            Order::parse("PRICE  desc", false),
            Ok(Order::PriceDescending)
        );
        assert_eq!(Order::parse("price", true), Ok(Order::PriceAscending));
        assert_eq!(Order::parse("rating", true), Ok(Order::Rating));
        assert!(Order::parse("title", true).is_err());
        assert!(Order::parse("price up", true).is_err());
    }

    #[test]
    fn a_request_is_checked_field_by_field() {
        let ok = SearchListingsRequest {
            query: " yoga ".into(),
            category: "categories/fitness".into(),
            min_price: "10".into(),
            max_price: "49.99".into(),
            currency_code: "EUR".into(),
            min_rating: 4.0,
            venue: VenueProto::Remote as i32,
            ..Default::default()
        };
        let query = SearchQuery::from_request(&ok).expect("valid");
        assert_eq!(query.words, "yoga");
        assert_eq!(query.category.as_deref(), Some("fitness"));
        assert_eq!(query.order, Order::Relevance);
        assert_eq!(query.venue, Venue::Remote);
        let bad = |change: fn(&mut SearchListingsRequest)| {
            let mut request = ok.clone();
            change(&mut request);
            SearchQuery::from_request(&request).expect_err("invalid").0
        };
        assert_eq!(bad(|r| r.category = "fitness".into()), "category");
        assert_eq!(bad(|r| r.min_price = "ten".into()), "min_price");
        assert_eq!(bad(|r| r.min_rating = 6.0), "min_rating");
        assert_eq!(bad(|r| r.venue = 9), "venue");
        assert_eq!(bad(|r| r.order_by = "title".into()), "order_by");
        let other = SearchListingsRequest {
            min_rating: 3.0,
            ..ok.clone()
        };
        assert_ne!(
            SearchQuery::from_request(&other)
                .expect("valid")
                .fingerprint(),
            query.fingerprint()
        );
    }
}
