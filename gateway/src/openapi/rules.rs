//! A field's contract rules as JSON Schema keywords: `buf.validate` (lengths, patterns, ranges,
//! `in` lists, formats, item and pair counts) and `google.api.field_behavior` REQUIRED, so that
//! the OpenAPI document promises exactly what the services enforce.

use super::ranges::integer_range;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, Value as Proto};
use serde_json::{Map, Value, json};
use taskmesh_mesh::validate::{behavior, has_behavior};

/// `buf.validate.Ignore.IGNORE_IF_ZERO_VALUE`: the rules hold only for a set value.
const IGNORE_IF_ZERO_VALUE: i32 = 1;

/// The `(buf.validate.field)` rules of `field`, if it has any.
fn field_rules(field: &FieldDescriptor) -> Option<DynamicMessage> {
    let extension = field
        .parent_pool()
        .get_extension_by_name("buf.validate.field")?;
    let options = field.options();
    if !options.has_extension(&extension) {
        return None;
    }
    match options.get_extension(&extension).into_owned() {
        Proto::Message(rules) => Some(rules),
        _ => None,
    }
}

/// The message set in `rules` under `name`, if set.
fn set_message(rules: &DynamicMessage, name: &str) -> Option<DynamicMessage> {
    if !rules.has_field_by_name(name) {
        return None;
    }
    match rules.get_field_by_name(name)?.into_owned() {
        Proto::Message(inner) => Some(inner),
        _ => None,
    }
}

fn number(value: &Proto) -> Option<Value> {
    match value {
        Proto::I32(n) => Some(json!(n)),
        Proto::I64(n) => Some(json!(n)),
        Proto::U32(n) => Some(json!(n)),
        Proto::U64(n) => Some(json!(n)),
        Proto::F32(n) => Some(json!(n)),
        Proto::F64(n) => Some(json!(n)),
        _ => None,
    }
}

/// `rules.<name>` when set, as a JSON number.
fn set_number(rules: &DynamicMessage, name: &str) -> Option<Value> {
    rules
        .has_field_by_name(name)
        .then(|| rules.get_field_by_name(name))
        .flatten()
        .and_then(|v| number(&v))
}

/// Keywords of one scalar's rules (`StringRules`, `Int32Rules`, ...), and a text for the rules
/// JSON Schema cannot state (duration and timestamp bounds).
fn scalar_keywords(rules: &DynamicMessage, out: &mut Map<String, Value>, notes: &mut Vec<String>) {
    if let Some(string) = set_message(rules, "string") {
        for (rule, keyword) in [("min_len", "minLength"), ("max_len", "maxLength")] {
            if let Some(n) = set_number(&string, rule) {
                out.insert(keyword.into(), n);
            }
        }
        if string.has_field_by_name("pattern")
            && let Some(Proto::String(pattern)) =
                string.get_field_by_name("pattern").map(|v| v.into_owned())
        {
            out.insert("pattern".into(), Value::String(pattern));
        }
        if let Some(Proto::List(values)) = string.get_field_by_name("in").map(|v| v.into_owned())
            && !values.is_empty()
        {
            let values: Vec<Value> = values
                .iter()
                .filter_map(|v| v.as_str().map(|s| Value::String(s.to_owned())))
                .collect();
            out.insert("enum".into(), Value::Array(values));
        }
        for (rule, format) in [("email", "email"), ("uuid", "uuid"), ("uri", "uri")] {
            if string.has_field_by_name(rule)
                && string.get_field_by_name(rule).and_then(|v| v.as_bool()) == Some(true)
            {
                out.insert("format".into(), Value::String(format.into()));
            }
        }
        return;
    }
    if let Some(bytes) = set_message(rules, "bytes") {
        // JSON carries bytes as base64: n bytes take 4 * ceil(n / 3) characters.
        if let Some(max) = set_number(&bytes, "max_len").and_then(|v| v.as_u64()) {
            out.insert("maxLength".into(), json!(max.div_ceil(3) * 4));
        }
        return;
    }
    for kind in [
        "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64", "sfixed32",
        "sfixed64", "float", "double",
    ] {
        if let Some(range) = set_message(rules, kind) {
            if kind.ends_with("64") {
                wide_keywords(kind, &range, out);
                return;
            }
            for (rule, keyword) in [
                ("gte", "minimum"),
                ("gt", "exclusiveMinimum"),
                ("lte", "maximum"),
                ("lt", "exclusiveMaximum"),
            ] {
                if let Some(n) = set_number(&range, rule) {
                    out.insert(keyword.into(), n);
                }
            }
            return;
        }
    }
    if let Some(bounds) = set_message(rules, "duration")
        && let Some(pattern) = duration_pattern(&bounds)
    {
        out.insert("pattern".into(), Value::String(pattern));
    }
    for kind in ["duration", "timestamp"] {
        if let Some(bounds) = set_message(rules, kind) {
            for (rule, text) in [
                ("gt", "more than"),
                ("gte", "at least"),
                ("lt", "less than"),
                ("lte", "at most"),
            ] {
                if let Some(bound) = set_message(&bounds, rule) {
                    let seconds = bound
                        .get_field_by_name("seconds")
                        .and_then(|v| v.as_i64())
                        .unwrap_or_default();
                    notes.push(if kind == "duration" {
                        format!("{text} {seconds}s")
                    } else {
                        format!("{text} {seconds} seconds after the epoch")
                    });
                }
            }
            if bounds.get_field_by_name("gt_now").and_then(|v| v.as_bool()) == Some(true) {
                notes.push("in the future".into());
            }
            if bounds.get_field_by_name("lt_now").and_then(|v| v.as_bool()) == Some(true) {
                notes.push("in the past".into());
            }
        }
    }
}

/// Whole seconds of the `google.protobuf.Duration` bound `rule` of `bounds`, if set.
fn bound_seconds(bounds: &DynamicMessage, rule: &str) -> Option<u64> {
    let bound = set_message(bounds, rule)?;
    let seconds = bound.get_field_by_name("seconds")?.as_i64()?;
    u64::try_from(seconds).ok()
}

/// The bounds of a 64-bit integer's rules as `minimum`, `maximum` and the pattern of its string
/// form ([`wide`](super::wide)).
fn wide_keywords(kind: &str, range: &DynamicMessage, out: &mut Map<String, Value>) {
    let bound = |name: &str| {
        set_number(range, name).and_then(|v| {
            v.as_i64()
                .map(i128::from)
                .or_else(|| v.as_u64().map(i128::from))
        })
    };
    let (mut low, mut high) = super::wide::bounds(!kind.starts_with('u') && kind != "fixed64");
    if let Some(gte) = bound("gte") {
        low = low.max(gte);
    }
    if let Some(gt) = bound("gt") {
        low = low.max(gt + 1);
    }
    if let Some(lte) = bound("lte") {
        high = high.min(lte);
    }
    if let Some(lt) = bound("lt") {
        high = high.min(lt - 1);
    }
    out.insert("minimum".into(), json!(low));
    out.insert("maximum".into(), json!(high));
    if let Some(pattern) = super::wide::pattern(low, high) {
        out.insert("pattern".into(), Value::String(pattern));
    }
}

/// The proto-JSON form (`1.5s`) of the durations `DurationRules` admit, as a pattern, for the
/// bounds the contracts use: a lower bound of `gt` zero, or `gte` whole seconds (or none), and an
/// upper bound of `lte` or `lt` whole seconds (or none). `None` for other bounds (the note in the
/// description states them).
fn duration_pattern(bounds: &DynamicMessage) -> Option<String> {
    const FRACTION: &str = "(?:\\.[0-9]{1,9})?";
    /// Largest whole seconds written without a bound (11 digits, as `Duration` allows).
    const UNBOUNDED: u64 = 99_999_999_999;
    // The lowest whole second admitted with any fraction, and how zero itself is written.
    let (low, zero) = match (bound_seconds(bounds, "gt"), bound_seconds(bounds, "gte")) {
        // Zero excluded: only the fractions above it.
        (Some(0), None) => (1, Some("0\\.[0-9]{0,8}[1-9]".to_owned())),
        (None, Some(0) | None) => (1, Some(format!("0{FRACTION}"))),
        (None, Some(low)) => (low, None),
        _ => return None,
    };
    let mut alternatives: Vec<String> = zero.into_iter().collect();
    match (bound_seconds(bounds, "lte"), bound_seconds(bounds, "lt")) {
        // Any whole seconds from 1: written compactly.
        (None, None) if low == 1 => alternatives.push(format!("[1-9][0-9]{{0,10}}{FRACTION}")),
        (None, None) => {
            alternatives.push(format!("(?:{}){FRACTION}", integer_range(low, UNBOUNDED)));
        }
        (Some(max), None) if max >= low => {
            if max > low {
                alternatives.push(format!("(?:{}){FRACTION}", integer_range(low, max - 1)));
            }
            alternatives.push(format!("{max}(?:\\.0{{1,9}})?"));
        }
        (None, Some(max)) if max > low => {
            alternatives.push(format!("(?:{}){FRACTION}", integer_range(low, max - 1)));
        }
        _ => return None,
    }
    Some(format!("^(?:{})s$", alternatives.join("|")))
}

/// Adds `field`'s rules to its `schema` (the schema `field_schema` made for it).
pub(super) fn apply(field: &FieldDescriptor, schema: &mut Value) {
    let required = has_behavior(field, behavior::REQUIRED);
    let rules = field_rules(field);
    let ignore_zero = rules.as_ref().is_some_and(|r| {
        r.get_field_by_name("ignore")
            .and_then(|v| v.as_enum_number())
            == Some(IGNORE_IF_ZERO_VALUE)
    });
    let mut notes = Vec::new();

    if field.is_list() {
        if let Some(repeated) = rules.as_ref().and_then(|r| set_message(r, "repeated")) {
            for (rule, keyword) in [("min_items", "minItems"), ("max_items", "maxItems")] {
                if let Some(n) = set_number(&repeated, rule) {
                    schema[keyword] = n;
                }
            }
            if repeated.has_field_by_name("unique")
                && repeated
                    .get_field_by_name("unique")
                    .and_then(|v| v.as_bool())
                    == Some(true)
            {
                schema["uniqueItems"] = json!(true);
            }
            if let Some(items) = set_message(&repeated, "items") {
                let mut keywords = Map::new();
                scalar_keywords(&items, &mut keywords, &mut notes);
                merge(&mut schema["items"], keywords);
            }
        }
    } else if field.is_map() {
        if let Some(map) = rules.as_ref().and_then(|r| set_message(r, "map")) {
            for (rule, keyword) in [
                ("min_pairs", "minProperties"),
                ("max_pairs", "maxProperties"),
            ] {
                if let Some(n) = set_number(&map, rule) {
                    schema[keyword] = n;
                }
            }
            if let Some(keys) = set_message(&map, "keys") {
                let mut keywords = Map::new();
                scalar_keywords(&keys, &mut keywords, &mut notes);
                if !keywords.is_empty() {
                    keywords.insert("type".into(), json!("string"));
                    schema["propertyNames"] = Value::Object(keywords);
                }
            }
            if let Some(values) = set_message(&map, "values") {
                let mut keywords = Map::new();
                scalar_keywords(&values, &mut keywords, &mut notes);
                merge(&mut schema["additionalProperties"], keywords);
            }
        }
    } else {
        let mut keywords = Map::new();
        if let Some(rules) = &rules {
            scalar_keywords(rules, &mut keywords, &mut notes);
        }
        match field.kind() {
            Kind::String if required && !keywords.contains_key("minLength") => {
                // Proto3 cannot tell an empty string from none: a REQUIRED one is not empty.
                keywords.insert("minLength".into(), json!(1));
            }
            Kind::Enum(_) if required => {
                // ..._UNSPECIFIED (0) is what an unset enum reads as.
                if let Some(Value::Array(values)) = schema.get_mut("enum")
                    && let Kind::Enum(kind) = field.kind()
                    && let Some(zero) = kind.get_value(0)
                {
                    values.retain(|v| v != zero.name());
                }
            }
            _ => {}
        }
        let only_bounds_above = keywords
            .keys()
            .all(|k| k == "maxLength" || k == "maximum" || k == "exclusiveMaximum");
        if ignore_zero && !required && !only_bounds_above && !keywords.is_empty() {
            // The rules hold for a set value; the zero value (unset) is accepted as well.
            let zero = match field.kind() {
                Kind::String => json!({"const": ""}),
                _ => json!({"const": 0}),
            };
            schema["anyOf"] = json!([zero, Value::Object(keywords)]);
        } else {
            merge(schema, keywords);
        }
    }
    forbid_nul(schema);
    if !notes.is_empty() {
        let text = format!("Must be {}.", notes.join(" and "));
        let description = match schema.get("description").and_then(Value::as_str) {
            Some(existing) => format!("{existing}\n\n{text}"),
            None => text,
        };
        schema["description"] = Value::String(description);
    }
}

/// What every string of every request must match (`taskmesh_mesh::validate` refuses U+0000
/// anywhere: PostgreSQL text cannot hold it), for strings whose schema says nothing stricter.
const NO_NUL: &str = "^[^\\u0000]*$";

/// Gives each string schema in `schema` (its items, values, keys and alternatives too) that has no
/// pattern, format or fixed values of its own the [`NO_NUL`] pattern.
fn forbid_nul(schema: &mut Value) {
    let Value::Object(object) = schema else {
        return;
    };
    for nested in ["items", "additionalProperties", "propertyNames"] {
        if let Some(inner) = object.get_mut(nested) {
            forbid_nul(inner);
        }
    }
    if let Some(Value::Array(alternatives)) = object.get_mut("anyOf") {
        alternatives.iter_mut().for_each(forbid_nul);
    }
    let string = object.get("type").and_then(Value::as_str) == Some("string");
    let stricter = ["pattern", "format", "enum", "const"]
        .iter()
        .any(|k| object.contains_key(*k));
    if string && !stricter {
        object.insert("pattern".into(), json!(NO_NUL));
    }
}

/// One schema per oneof of `message`: at most one of its fields, exactly one when the contract
/// makes the oneof required (`(buf.validate.oneof).required`).
pub(super) fn oneofs(message: &prost_reflect::MessageDescriptor) -> Vec<Value> {
    let required_extension = message
        .parent_pool()
        .get_extension_by_name("buf.validate.oneof");
    let mut schemas = Vec::new();
    for oneof in message.oneofs().filter(|o| !o.is_synthetic()) {
        let names: Vec<String> = oneof.fields().map(|f| f.json_name().to_owned()).collect();
        let required = required_extension.as_ref().is_some_and(|extension| {
            let options = oneof.options();
            options.has_extension(extension)
                && matches!(
                    options.get_extension(extension).as_ref(),
                    Proto::Message(rules) if rules.get_field_by_name("required").and_then(|v| v.as_bool()) == Some(true)
                )
        });
        if required {
            let each: Vec<Value> = names.iter().map(|n| json!({"required": [n]})).collect();
            schemas.push(json!({"oneOf": each}));
        } else {
            let mut pairs = Vec::new();
            for (i, a) in names.iter().enumerate() {
                for b in &names[i + 1..] {
                    pairs.push(json!({"required": [a, b]}));
                }
            }
            if !pairs.is_empty() {
                schemas.push(json!({"not": {"anyOf": pairs}}));
            }
        }
    }
    schemas
}

/// Lets `schema` also be `null`: proto JSON reads a `null` field as an unset one.
pub(super) fn nullable(schema: &mut Value) {
    let Value::Object(object) = schema else {
        return;
    };
    if object.contains_key("$ref") {
        let mut reference = std::mem::take(object);
        for annotation in ["description", "readOnly"] {
            if let Some(value) = reference.remove(annotation) {
                object.insert(annotation.into(), value);
            }
        }
        object.insert(
            "anyOf".into(),
            json!([Value::Object(reference), {"type": "null"}]),
        );
        return;
    }
    match object.get_mut("type") {
        Some(Value::String(kind)) => {
            let kind = kind.clone();
            object.insert("type".into(), json!([kind, "null"]));
        }
        Some(Value::Array(kinds)) if !kinds.contains(&json!("null")) => kinds.push(json!("null")),
        _ => {}
    }
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        values.push(Value::Null);
    }
}

fn merge(schema: &mut Value, keywords: Map<String, Value>) {
    if let Value::Object(object) = schema {
        object.extend(keywords);
    }
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;

    use super::*;

    fn field(message: &str, name: &str) -> FieldDescriptor {
        DescriptorPool::decode(taskmesh_contracts::FILE_DESCRIPTOR_SET)
            .expect("pool")
            .get_message_by_name(message)
            .expect("message")
            .get_field_by_name(name)
            .expect("field")
    }

    fn applied(message: &str, name: &str, schema: Value) -> Value {
        let mut schema = schema;
        apply(&field(message, name), &mut schema);
        schema
    }

    #[test]
    fn strings_carry_lengths_patterns_and_formats() {
        let name = applied(
            "taskmesh.projects.v1.Project",
            "display_name",
            json!({"type": "string"}),
        );
        assert_eq!(name["maxLength"], 64);
        assert_eq!(name["minLength"], 1, "REQUIRED: {name}");
        assert!(name["pattern"].is_string());
        let email = applied(
            "taskmesh.identity.v1.RegisterRequest",
            "email",
            json!({"type": "string"}),
        );
        assert_eq!(email["format"], "email");
        let id = applied(
            "taskmesh.projects.v1.CreateProjectRequest",
            "project_id",
            json!({"type": "string"}),
        );
        assert_eq!(id["anyOf"][0], json!({"const": ""}), "optional: {id}");
        assert!(id["anyOf"][1]["pattern"].is_string());
    }

    #[test]
    fn strings_without_a_stricter_rule_refuse_nul() {
        let re = |schema: &Value| {
            regex::Regex::new(schema["pattern"].as_str().expect("pattern")).expect("re")
        };
        let email = applied(
            "taskmesh.identity.v1.LoginRequest",
            "email",
            json!({"type": "string"}),
        );
        assert!(re(&email).is_match("ada@example.org"));
        assert!(!re(&email).is_match("ada\u{0}@example.org"));
        let labels = applied(
            "taskmesh.tasks.v1.Task",
            "labels",
            json!({"type": "array", "items": {"type": "string"}}),
        );
        assert_ne!(
            labels["items"]["pattern"], NO_NUL,
            "its own pattern is stricter"
        );
        let comment = applied(
            "taskmesh.tasks.v1.Comment",
            "text",
            json!({"type": "string"}),
        );
        let text = re(&comment);
        assert!(text.is_match("fine") && !text.is_match("  ") && !text.is_match("a\u{0}b"));
    }

    #[test]
    fn bounded_durations_get_a_pattern_of_their_range() {
        let timeout = applied(
            "taskmesh.tasks.v1.Job",
            "timeout",
            json!({"type": "string"}),
        );
        let re = regex::Regex::new(timeout["pattern"].as_str().expect("pattern")).expect("re");
        for ok in ["1s", "0.5s", "599.999999999s", "600s", "600.000s", "30s"] {
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in [
            "0s",
            "0.0s",
            "600.1s",
            "601s",
            "-1s",
            "1m",
            "1.5",
            "0600s",
            "1.0000000001s",
        ] {
            assert!(!re.is_match(bad), "{bad}");
        }
        let estimate = applied(
            "taskmesh.tasks.v1.Task",
            "estimate",
            json!({"type": "string"}),
        );
        let re = regex::Regex::new(estimate["pattern"].as_str().expect("pattern")).expect("re");
        assert!(re.is_match("0s") && re.is_match("86400s") && !re.is_match("-5s"));
        // A lower bound above zero: a schedule's interval is 1 s to 366 days.
        let every = applied(
            "taskmesh.scheduler.v1.Interval",
            "every",
            json!({"type": "string"}),
        );
        let re = regex::Regex::new(every["pattern"].as_str().expect("pattern")).expect("re");
        for ok in ["1s", "1.5s", "3600s", "31622399.9s", "31622400s"] {
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in ["0s", "0.5s", "0.999s", "31622400.5s", "31622401s", "1m"] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn numbers_lists_and_enums_carry_their_bounds() {
        let size = applied(
            "taskmesh.projects.v1.ListProjectsRequest",
            "page_size",
            json!({"type": "integer"}),
        );
        assert_eq!(
            (size["minimum"].clone(), size["maximum"].clone()),
            (json!(0), json!(1000))
        );
        let labels = applied(
            "taskmesh.tasks.v1.Task",
            "labels",
            json!({"type": "array", "items": {"type": "string"}}),
        );
        assert_eq!(labels["maxItems"], 20);
        assert!(labels["items"]["pattern"].is_string());
        let kind = applied(
            "taskmesh.projects.v1.Column",
            "kind",
            json!({"type": "string", "enum": ["COLUMN_KIND_UNSPECIFIED", "COLUMN_KIND_TODO"]}),
        );
        assert_eq!(kind["enum"], json!(["COLUMN_KIND_TODO"]));
        let timeout = applied(
            "taskmesh.tasks.v1.Job",
            "timeout",
            json!({"type": "string"}),
        );
        assert!(
            timeout["description"]
                .as_str()
                .is_some_and(|d| d.contains("at most 600s")),
            "{timeout}"
        );
    }
}
