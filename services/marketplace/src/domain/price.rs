//! Prices: `google.type.Money`-style units and nanos, and the decimal text a search bound is
//! written in.

/// The decimal text of `units` and `nanos` (`19.5`, `80`), as PostgreSQL's `numeric` reads it.
pub fn decimal(units: i64, nanos: i32) -> String {
    if nanos == 0 {
        return units.to_string();
    }
    let fraction = format!("{nanos:09}");
    format!("{units}.{}", fraction.trim_end_matches('0'))
}

/// Reads a search bound (`19.5`): at most ten digits, a point and nine more. `None` when it is
/// not one (the contract's pattern refuses those before this runs).
pub fn parse_bound(text: &str) -> Option<String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str, max: usize| s.len() <= max && s.bytes().all(|b| b.is_ascii_digit());
    let ok = !whole.is_empty()
        && digits(whole, 10)
        && digits(fraction, 9)
        && (fraction.is_empty() != text.contains('.'));
    ok.then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_every_nano_and_no_trailing_zero() {
        assert_eq!(decimal(19, 500_000_000), "19.5");
        assert_eq!(decimal(0, 1), "0.000000001");
        assert_eq!(decimal(80, 0), "80");
    }

    #[test]
    fn bounds_are_plain_decimals() {
        assert_eq!(parse_bound("19.5").as_deref(), Some("19.5"));
        assert_eq!(parse_bound("80").as_deref(), Some("80"));
        for bad in [
            "",
            ".5",
            "5.",
            "1e3",
            "-1",
            "12345678901",
            "1.1234567890",
            "NaN",
        ] {
            assert_eq!(parse_bound(bad), None, "{bad}");
        }
    }
}
