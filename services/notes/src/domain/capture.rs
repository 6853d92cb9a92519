//! Quick capture: a note from a body alone. Its title is the body's first line with text, without
//! Markdown's heading, list and quote markers, cut at a word to at most [`MAX_TITLE`] characters.

/// The longest derived title, in characters (an ellipsis included).
pub const MAX_TITLE: usize = 80;

/// The title of a note captured with `body`; empty when the body has no text.
pub fn title_of(body: &str) -> String {
    let Some(line) = body.lines().map(strip_markers).find(|l| !l.is_empty()) else {
        return String::new();
    };
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= MAX_TITLE {
        return line;
    }
    let cut: String = line.chars().take(MAX_TITLE - 1).collect();
    // At the last space, unless that throws away most of it.
    let cut = match cut.rfind(' ') {
        Some(space) if space >= cut.len() / 2 => cut[..space].trim_end().to_owned(),
        _ => cut,
    };
    format!("{cut}…")
}

/// `line` without leading `#`s, `>`s, list bullets or numbers, and task boxes.
fn strip_markers(line: &str) -> &str {
    let mut rest = line.trim();
    loop {
        let before = rest;
        rest = rest.trim_start_matches(['#', '>']).trim_start();
        for bullet in ["- [ ] ", "- [x] ", "- [X] ", "- ", "* ", "+ "] {
            if let Some(after) = rest.strip_prefix(bullet) {
                rest = after.trim_start();
            }
        }
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0
            && let Some(after) = rest[digits..]
                .strip_prefix(". ")
                .or_else(|| rest[digits..].strip_prefix(") "))
        {
            rest = after.trim_start();
        }
        if rest == before {
            return rest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_is_the_first_line_with_text_without_its_markers() {
        for (body, title) in [
            ("Buy milk\nand bread", "Buy milk"),
            ("\n\n  # Meeting notes  \n- one", "Meeting notes"),
            ("> quoted idea", "quoted idea"),
            ("- [ ] call the bank", "call the bank"),
            ("1. first step", "first step"),
            ("## \n\nreal   text   here", "real text here"),
            ("2024 plans", "2024 plans"),
            ("   \n\t\n", ""),
        ] {
            assert_eq!(title_of(body), title, "{body:?}");
        }
    }

    #[test]
    fn a_long_first_line_is_cut_at_a_word() {
        let body = "word ".repeat(40);
        let title = title_of(&body);
        assert!(title.chars().count() <= MAX_TITLE, "{title}");
        assert!(title.ends_with("word…"), "{title}");
        let unbroken = "x".repeat(200);
        let title = title_of(&unbroken);
        assert_eq!(title.chars().count(), MAX_TITLE);
        let wide = "日本語のメモ".repeat(30);
        assert_eq!(title_of(&wide).chars().count(), MAX_TITLE);
    }
}
