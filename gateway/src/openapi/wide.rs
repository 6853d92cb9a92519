//! 64-bit integers in JSON Schema. Proto JSON writes them as strings and reads them as strings or
//! numbers, so their schema admits both: a number within the bounds, or a string of the decimal
//! forms the gateway parses (an optional sign, leading zeros) within the same bounds, stated as a
//! pattern since `minimum` and `maximum` do not apply to strings.

use serde_json::{Value, json};

use super::ranges::integer_range;

/// The schema of a 64-bit integer field admitting `low..=high`.
pub(super) fn schema(format: &str, low: i128, high: i128) -> Value {
    let mut schema = json!({"type": ["string", "integer"], "format": format});
    if let Some(pattern) = pattern(low, high) {
        schema["pattern"] = Value::String(pattern);
    }
    // Past 2^53 a JSON number is not exact; the bounds still say what the service accepts.
    schema["minimum"] = json!(low);
    schema["maximum"] = json!(high);
    schema
}

/// The bounds of a signed (`true`) or unsigned 64-bit integer.
pub(super) fn bounds(signed: bool) -> (i128, i128) {
    if signed {
        (i128::from(i64::MIN), i128::from(i64::MAX))
    } else {
        (0, i128::from(u64::MAX))
    }
}

/// The decimal strings of `low..=high` as Rust's integer parsing reads them (`+5`, `005`, `-0`).
/// `None` for an empty range.
pub(super) fn pattern(low: i128, high: i128) -> Option<String> {
    if low > high {
        return None;
    }
    let magnitude = |n: i128| u64::try_from(n.unsigned_abs()).unwrap_or(u64::MAX);
    let mut alternatives = Vec::new();
    if high >= 0 {
        let from = magnitude(low.max(0));
        alternatives.push(format!("\\+?0*(?:{})", range(from, magnitude(high))));
    }
    if low < 0 {
        // Negative numbers: magnitudes from max(1, -high) to -low.
        let from = magnitude(high.min(-1));
        alternatives.push(format!("-0*(?:{})", range(from, magnitude(low))));
    }
    if low <= 0 && high >= 0 {
        alternatives.push("-0+".to_owned());
    }
    Some(format!("^(?:{})$", alternatives.join("|")))
}

/// `low..=high` without leading zeros: [`integer_range`] for the narrow ranges contracts state,
/// a compact digit-by-digit form from 0 or 1, which stays small up to 20 digits.
fn range(low: u64, high: u64) -> String {
    match low {
        0 => format!("0|{}", up_to(high)),
        1 => up_to(high),
        _ => integer_range(low, high),
    }
}

/// `1..=high` without leading zeros (`high` at least 1): every shorter length, then for each
/// position of `high` a smaller digit there after its prefix, then `high` itself.
fn up_to(high: u64) -> String {
    let digits: Vec<u8> = high.to_string().bytes().map(|b| b - b'0').collect();
    let length = digits.len();
    let mut alternatives = Vec::new();
    if length > 1 {
        alternatives.push(format!("[1-9][0-9]{{0,{}}}", length - 2));
    }
    for (position, &digit) in digits.iter().enumerate() {
        let lowest = u8::from(position == 0);
        if digit > lowest {
            let prefix: String = digits[..position].iter().map(u8::to_string).collect();
            let rest = length - position - 1;
            let tail = if rest == 0 {
                String::new()
            } else {
                format!("[0-9]{{{rest}}}")
            };
            alternatives.push(format!("{prefix}[{lowest}-{}]{tail}", digit - 1));
        }
    }
    alternatives.push(high.to_string());
    alternatives.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        regex::Regex::new(pattern).expect("compiles").is_match(text)
    }

    #[test]
    fn a_bounded_range_admits_what_the_gateway_parses_in_it() {
        let pattern = pattern(0, 1_000_000_000).expect("a range");
        for text in ["0", "5", "+5", "0005", "-0", "1000000000"] {
            assert!(matches(&pattern, text), "{text}");
            let parsed: i64 = text.parse().expect("Rust parses it");
            assert!((0..=1_000_000_000).contains(&parsed));
        }
        for text in ["", "-1", "1000000001", "1.5", "5 ", "1e3", "+-5"] {
            assert!(!matches(&pattern, text), "{text}");
        }
    }

    #[test]
    fn the_whole_range_of_each_width_is_exact() {
        let (low, high) = bounds(true);
        let signed = pattern(low, high).expect("a range");
        for text in ["-9223372036854775808", "9223372036854775807", "-1", "0"] {
            assert!(matches(&signed, text), "{text}");
        }
        for text in ["9223372036854775808", "-9223372036854775809"] {
            assert!(!matches(&signed, text), "{text}");
        }
        let (low, high) = bounds(false);
        let unsigned = pattern(low, high).expect("a range");
        assert!(matches(&unsigned, "18446744073709551615"));
        assert!(!matches(&unsigned, "18446744073709551616"));
        assert!(!matches(&unsigned, "-1"));
        let negative = pattern(-10, -2).expect("a range");
        assert!(matches(&negative, "-2") && matches(&negative, "-010"));
        assert!(!matches(&negative, "-1") && !matches(&negative, "-0") && !matches(&negative, "2"));
    }

    #[test]
    fn ranges_from_zero_or_one_match_exactly_their_numbers() {
        for high in [1_u64, 9, 10, 11, 99, 100, 205, 1000, 4096] {
            let pattern = format!("^(?:{})$", range(0, high));
            for n in 0..=high + 20 {
                assert_eq!(
                    matches(&pattern, &n.to_string()),
                    n <= high,
                    "{n} in 0..={high}"
                );
            }
            assert!(!matches(&pattern, "01"), "no leading zero");
        }
    }
}
