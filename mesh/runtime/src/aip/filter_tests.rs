//! Tests of the AIP-160 filter parser.

use super::*;

const KINDS: &[(&str, i32)] = &[("BACKLOG", 1), ("DONE", 4)];
const FIELDS: &[FilterField] = &[
    FilterField {
        name: "display_name",
        sql: "display_name",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "create_time",
        sql: "create_time",
        kind: FieldKind::Timestamp,
    },
    FilterField {
        name: "kind",
        sql: "kind",
        kind: FieldKind::Enum(KINDS),
    },
    FilterField {
        name: "position",
        sql: "position",
        kind: FieldKind::Integer,
    },
    FilterField {
        name: "labels",
        sql: "labels",
        kind: FieldKind::TextArray,
    },
];

fn sql(text: &str) -> String {
    let filter = Filter::parse(text, FIELDS).expect("parses");
    let mut query = QueryBuilder::<Postgres>::new("WHERE true");
    filter.push_and(&mut query);
    query.sql().to_owned()
}

#[test]
fn an_empty_filter_restricts_nothing() {
    assert!(Filter::parse("   ", FIELDS).expect("ok").is_empty());
    assert_eq!(sql(""), "WHERE true");
}

#[test]
fn comparisons_become_bound_parameters() {
    assert_eq!(
        sql("display_name = \"x\""),
        "WHERE true AND (display_name = $1)"
    );
    assert_eq!(sql("position >= 3"), "WHERE true AND (position >= $1)");
}

#[test]
fn or_binds_tighter_than_and() {
    assert_eq!(
        sql("position = 1 AND position = 2 OR position = 3"),
        "WHERE true AND ((position = $1 AND (position = $2 OR position = $3)))"
    );
}

#[test]
fn not_minus_parentheses_and_implicit_and() {
    assert_eq!(
        sql("NOT (kind = DONE) -position = 2 display_name:\"a\""),
        "WHERE true AND ((NOT (kind = $1) AND NOT (position = $2) AND display_name ILIKE $3))"
    );
}

#[test]
fn wildcards_and_has_match_text() {
    assert_eq!(
        sql("display_name = \"ab*\""),
        "WHERE true AND (display_name LIKE $1)"
    );
}

#[test]
fn list_fields_match_an_element() {
    assert_eq!(sql("labels:\"bug\""), "WHERE true AND ($1 = ANY(labels))");
    assert!(Filter::parse("labels = bug", FIELDS).is_err());
}

#[test]
fn unknown_fields_are_named() {
    let err = Filter::parse("colour = red", FIELDS).expect_err("unknown");
    assert!(err.0.contains("colour"), "{err}");
}

#[test]
fn bad_values_are_rejected_by_type() {
    assert!(Filter::parse("create_time > yesterday", FIELDS).is_err());
    assert!(Filter::parse("kind = PURPLE", FIELDS).is_err());
    assert!(Filter::parse("position = x", FIELDS).is_err());
    assert!(Filter::parse("kind > DONE", FIELDS).is_err());
}

#[test]
fn malformed_text_is_rejected() {
    for text in [
        "(",
        "display_name",
        "display_name =",
        "= 3",
        "a ! b",
        "\"open",
        "x = 1)",
    ] {
        assert!(Filter::parse(text, FIELDS).is_err(), "{text}");
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let text = format!("{}position = 1{}", "(".repeat(500), ")".repeat(500));
    assert!(Filter::parse(&text, FIELDS).is_err());
}

#[test]
fn timestamps_parse_as_rfc3339() {
    assert_eq!(
        sql("create_time > \"2026-01-31T12:00:00Z\""),
        "WHERE true AND (create_time > $1)"
    );
}
