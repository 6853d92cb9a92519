//! Google AIP helpers shared by every service: filters (AIP-160), ordering (AIP-132), page tokens
//! (AIP-158), field masks (AIP-134) and resource ids (AIP-122). Each returns an INVALID_ARGUMENT
//! status with a field violation naming the request field that is wrong.

pub mod filter;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::status::FieldViolation;

pub use filter::{FieldKind, Filter, FilterField};

/// Default page size when the request leaves it 0.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page size; larger requests are clamped (AIP-158).
pub const MAX_PAGE_SIZE: i64 = 1000;

/// A method's page sizes: what `page_size = 0` means and the largest it serves (AIP-158).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSizes {
    /// The size of a page when the request leaves `page_size` 0.
    pub default: i64,
    /// Larger requests are clamped to this.
    pub max: i64,
}

/// The sizes of list methods: 50 by default, at most 1000.
pub const LIST_PAGES: PageSizes = PageSizes {
    default: DEFAULT_PAGE_SIZE,
    max: MAX_PAGE_SIZE,
};

/// The sizes of search methods, whose ranking and snippets cost more per row: 20, at most 100.
pub const SEARCH_PAGES: PageSizes = PageSizes {
    default: 20,
    max: 100,
};

/// Parses a list request's filter, reporting errors on the `filter` field.
pub fn parse_filter(text: &str, fields: &[FilterField]) -> Result<Filter, FieldViolation> {
    Filter::parse(text, fields).map_err(|e| FieldViolation::new("filter", e.0))
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub offset: i64,
    /// Rows to return.
    pub size: i64,
}

impl Page {
    /// Appends ` ORDER BY <order> LIMIT <size + 1> OFFSET <offset>` to a query: one row more than
    /// the page, to learn whether another page follows (see [`split_page`]).
    pub fn push_sql(&self, query: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>, order: &str) {
        query.push(" ORDER BY ");
        query.push(order);
        query.push(" LIMIT ");
        query.push_bind(self.size + 1);
        query.push(" OFFSET ");
        query.push_bind(self.offset);
    }
}

/// Drops the extra row fetched by [`Page::push_sql`] and mints the next page token.
pub fn split_page<T>(mut rows: Vec<T>, page: Page, fingerprint: &str) -> (Vec<T>, String) {
    let has_more = rows.len() as i64 > page.size;
    rows.truncate(usize::try_from(page.size).unwrap_or(usize::MAX));
    (rows, next_page_token(page, has_more, fingerprint))
}

/// The identity of one list request (parent, filter, order, ...), so that a page token only
/// serves the request it came from.
pub fn fingerprint(parts: &[&str]) -> String {
    parts.join("\u{1f}")
}

#[derive(Serialize, Deserialize)]
struct PageToken {
    /// Offset of the next page.
    o: i64,
    /// Fingerprint of the request fields the token is valid for.
    f: String,
}

/// Reads `page_size` and `page_token` of a list method ([`LIST_PAGES`]). `fingerprint` identifies
/// the other request fields (parent, filter, order, ...): a token minted for one request is
/// refused for another.
pub fn page(page_size: i32, page_token: &str, fingerprint: &str) -> Result<Page, FieldViolation> {
    page_of(LIST_PAGES, page_size, page_token, fingerprint)
}

/// [`page`] for a method with its own page sizes (searches: [`SEARCH_PAGES`]).
pub fn page_of(
    sizes: PageSizes,
    page_size: i32,
    page_token: &str,
    fingerprint: &str,
) -> Result<Page, FieldViolation> {
    if page_size < 0 {
        return Err(FieldViolation::new("page_size", "must not be negative"));
    }
    let size = match i64::from(page_size) {
        0 => sizes.default,
        n => n.min(sizes.max),
    };
    if page_token.is_empty() {
        return Ok(Page { offset: 0, size });
    }
    let invalid = || FieldViolation::new("page_token", "is not a token returned by this method");
    let bytes = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| invalid())?;
    let token: PageToken = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if token.o < 0 {
        return Err(invalid());
    }
    if token.f != fingerprint_hash(fingerprint) {
        return Err(FieldViolation::new(
            "page_token",
            "was issued for a request with other parameters (filter, order_by, parent or show_deleted changed)",
        ));
    }
    Ok(Page {
        offset: token.o,
        size,
    })
}

/// The token of the page after `page`, or empty when `has_more` is false.
pub fn next_page_token(page: Page, has_more: bool, fingerprint: &str) -> String {
    if !has_more {
        return String::new();
    }
    let token = PageToken {
        o: page.offset + page.size,
        f: fingerprint_hash(fingerprint),
    };
    // Serializing two plain fields cannot fail.
    let json = serde_json::to_vec(&token).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// FNV-1a: stable across processes and releases, unlike `DefaultHasher`, so any replica accepts any
/// replica's token.
fn fingerprint_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// A field a list may be ordered by.
#[derive(Debug, Clone, Copy)]
pub struct OrderField {
    /// Name in `order_by`.
    pub name: &'static str,
    /// SQL expression.
    pub sql: &'static str,
}

/// Turns `order_by` ("display_name desc, create_time") into an SQL ORDER BY list, always ending
/// with `tiebreak` so that pages are stable.
pub fn order_by(
    text: &str,
    fields: &[OrderField],
    default: &str,
    tiebreak: &str,
) -> Result<String, FieldViolation> {
    let text = if text.trim().is_empty() {
        default
    } else {
        text
    };
    let mut parts = Vec::new();
    for item in text.split(',') {
        let words: Vec<&str> = item.split_whitespace().collect();
        let (name, direction) = match words.as_slice() {
            [name] => (*name, "ASC"),
            [name, dir] if dir.eq_ignore_ascii_case("desc") => (*name, "DESC"),
            [name, dir] if dir.eq_ignore_ascii_case("asc") => (*name, "ASC"),
            _ => {
                return Err(FieldViolation::new(
                    "order_by",
                    format!("`{}` is not `field` or `field desc`", item.trim()),
                ));
            }
        };
        let field = fields.iter().find(|f| f.name == name).ok_or_else(|| {
            let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
            FieldViolation::new(
                "order_by",
                format!("cannot order by `{name}`; one of {}", known.join(", ")),
            )
        })?;
        parts.push(format!("{} {direction}", field.sql));
    }
    parts.push(format!("{tiebreak} ASC"));
    Ok(parts.join(", "))
}

/// The paths of an update mask, checked against `allowed`. An absent or empty mask, or `*`, means
/// every allowed path (AIP-134).
pub fn update_paths(
    mask: Option<&prost_types::FieldMask>,
    allowed: &[&'static str],
) -> Result<Vec<&'static str>, FieldViolation> {
    let paths = mask.map(|m| m.paths.as_slice()).unwrap_or_default();
    if paths.is_empty() || paths.iter().any(|p| p == "*") {
        return Ok(allowed.to_vec());
    }
    paths
        .iter()
        .map(|path| {
            allowed.iter().copied().find(|a| a == path).ok_or_else(|| {
                FieldViolation::new(
                    "update_mask",
                    format!(
                        "`{path}` cannot be updated; updatable: {}",
                        allowed.join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// The request's `request_id` (AIP-155), `None` when not set. Its form (a UUID) is the contract's
/// rule, checked before a handler runs.
pub fn request_id(text: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(text).ok()
}

/// A new server-chosen id: time-ordered and unguessable.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_chain_through_their_tokens() {
        let first = page(7, "", "parent=a").expect("first");
        assert_eq!(first, Page { offset: 0, size: 7 });
        let token = next_page_token(first, true, "parent=a");
        let second = page(7, &token, "parent=a").expect("second");
        assert_eq!(second, Page { offset: 7, size: 7 });
        assert!(next_page_token(second, false, "parent=a").is_empty());
    }

    #[test]
    fn a_token_is_refused_for_other_request_fields() {
        let token = next_page_token(Page { offset: 0, size: 5 }, true, "filter=a");
        let err = page(5, &token, "filter=b").expect_err("mismatch");
        assert_eq!(err.field, "page_token");
    }

    #[test]
    fn garbage_tokens_and_negative_sizes_are_invalid() {
        assert!(page(5, "%%%", "").is_err());
        assert!(page(5, "bm90LWpzb24", "").is_err());
        assert!(page(-1, "", "").is_err());
        assert_eq!(page(0, "", "").expect("ok").size, DEFAULT_PAGE_SIZE);
        assert_eq!(page(5000, "", "").expect("ok").size, MAX_PAGE_SIZE);
    }

    #[test]
    fn a_method_sets_its_own_default_and_largest_page() {
        let search = |size| page_of(SEARCH_PAGES, size, "", "").expect("ok").size;
        assert_eq!((search(0), search(7), search(500)), (20, 7, 100));
        assert!(page_of(SEARCH_PAGES, -1, "", "").is_err());
        // A token keeps working with the method's sizes.
        let first = page_of(SEARCH_PAGES, 0, "", "q").expect("first");
        let token = next_page_token(first, true, "q");
        let second = page_of(SEARCH_PAGES, 0, &token, "q").expect("second");
        assert_eq!((second.offset, second.size), (20, 20));
    }

    const ORDER: &[OrderField] = &[
        OrderField {
            name: "display_name",
            sql: "lower(display_name)",
        },
        OrderField {
            name: "create_time",
            sql: "create_time",
        },
    ];

    #[test]
    fn order_by_ends_with_the_tiebreak() {
        assert_eq!(
            order_by(
                "display_name desc, create_time",
                ORDER,
                "create_time",
                "uid"
            )
            .expect("ok"),
            "lower(display_name) DESC, create_time ASC, uid ASC"
        );
        assert_eq!(
            order_by("", ORDER, "create_time", "uid").expect("ok"),
            "create_time ASC, uid ASC"
        );
        assert!(order_by("colour", ORDER, "create_time", "uid").is_err());
        assert!(order_by("display_name sideways", ORDER, "create_time", "uid").is_err());
    }

    #[test]
    fn update_masks_default_to_every_allowed_path() {
        let allowed = &["display_name", "description"];
        assert_eq!(update_paths(None, allowed).expect("ok"), allowed.to_vec());
        let mask = prost_types::FieldMask {
            paths: vec!["description".into()],
        };
        assert_eq!(
            update_paths(Some(&mask), allowed).expect("ok"),
            vec!["description"]
        );
        let bad = prost_types::FieldMask {
            paths: vec!["uid".into()],
        };
        assert!(update_paths(Some(&bad), allowed).is_err());
    }

    #[test]
    fn request_ids_are_uuids_or_absent() {
        assert!(request_id("").is_none());
        assert!(request_id("0194f0c4-3c56-7f43-a6a1-3f1ad1f0a1b2").is_some());
    }
}
