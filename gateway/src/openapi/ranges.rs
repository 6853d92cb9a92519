//! Regular expressions for ranges of decimal integers, which JSON Schema's `pattern` needs where the
//! contracts bound a value written as text (a duration's whole seconds, say).

/// A regular expression (no anchors) matching the decimal integers `low..=high`, without leading
/// zeros.
pub(super) fn integer_range(low: u64, high: u64) -> String {
    let mut alternatives = Vec::new();
    let (low_digits, high_digits) = (low.to_string().len(), high.to_string().len());
    for digits in low_digits..=high_digits {
        let from = if digits == low_digits {
            low
        } else {
            10_u64.pow(u32::try_from(digits - 1).unwrap_or(0))
        };
        let to = if digits == high_digits {
            high
        } else {
            10_u64.pow(u32::try_from(digits).unwrap_or(0)) - 1
        };
        alternatives.push(same_length_range(&from.to_string(), &to.to_string()));
    }
    alternatives.join("|")
}

/// The integers from `low` to `high`, both written with the same number of digits.
fn same_length_range(low: &str, high: &str) -> String {
    let digit = |text: &str| text.as_bytes()[0] - b'0';
    let (l, h) = (digit(low), digit(high));
    let (low_rest, high_rest) = (&low[1..], &high[1..]);
    if low_rest.is_empty() {
        return if l == h {
            l.to_string()
        } else {
            format!("[{l}-{h}]")
        };
    }
    if l == h {
        return format!("{l}(?:{})", same_length_range(low_rest, high_rest));
    }
    let width = low_rest.len();
    let mut alternatives = vec![format!(
        "{l}(?:{})",
        same_length_range(low_rest, &"9".repeat(width))
    )];
    if h - l > 1 {
        let middle = if h - l == 2 {
            (l + 1).to_string()
        } else {
            format!("[{}-{}]", l + 1, h - 1)
        };
        alternatives.push(format!("{middle}[0-9]{{{width}}}"));
    }
    alternatives.push(format!(
        "{h}(?:{})",
        same_length_range(&"0".repeat(width), high_rest)
    ));
    alternatives.join("|")
}

#[cfg(test)]
mod tests {
    use super::integer_range;

    #[test]
    fn integer_ranges_match_exactly_their_numbers() {
        for (low, high) in [
            (1, 599),
            (1, 3599),
            (1, 86_399),
            (7, 7),
            (10, 99),
            (3, 1234),
        ] {
            let pattern = format!("^(?:{})$", integer_range(low, high));
            let re = regex::Regex::new(&pattern).expect("compiles");
            for n in 0..=high + 50 {
                assert_eq!(
                    re.is_match(&n.to_string()),
                    (low..=high).contains(&n),
                    "{n} in {pattern}"
                );
            }
            assert!(
                !re.is_match(&format!("0{low}")),
                "no leading zeros: {pattern}"
            );
        }
    }
}
