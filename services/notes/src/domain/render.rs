//! A note's Markdown as HTML that is safe to put in a page: `pulldown-cmark` renders CommonMark
//! (with tables, task lists, strikethrough and footnotes), then `ammonia` keeps only an allow-list
//! of tags and attributes. Scripts, styles, frames, forms, event-handler attributes and every URL
//! scheme but `http`, `https` and `mailto` are removed, whether they came as raw HTML or as
//! Markdown links; links get `rel="noopener noreferrer nofollow"`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::OnceLock;

use pulldown_cmark::{Options, Parser};

/// `markdown` rendered and sanitized.
pub fn html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut raw = String::with_capacity(markdown.len() + markdown.len() / 2);
    pulldown_cmark::html::push_html(&mut raw, Parser::new_ext(markdown, options));
    sanitizer().clean(&raw).to_string()
}

/// The allow-list, built once.
fn sanitizer() -> &'static ammonia::Builder<'static> {
    static SANITIZER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    SANITIZER.get_or_init(|| {
        let mut builder = ammonia::Builder::default();
        builder
            .url_schemes(HashSet::from(["http", "https", "mailto"]))
            .link_rel(Some("noopener noreferrer nofollow"))
            // Task lists render as disabled checkboxes; no other input survives.
            .add_tags(["input"])
            .add_tag_attributes("input", ["type", "checked", "disabled"])
            .attribute_filter(|element, attribute, value| match (element, attribute) {
                ("input", "type") if value != "checkbox" => None,
                _ => Some(Cow::Borrowed(value)),
            });
        builder
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What must never come out, whatever goes in (compared in lower case).
    const FORBIDDEN: &[&str] = &[
        "<script",
        "javascript:",
        "vbscript:",
        "data:",
        "onerror",
        "onload",
        "onclick",
        "onmouseover",
        "<iframe",
        "<svg",
        "<object",
        "<embed",
        "<form",
        "<meta",
        "<style",
        "style=",
        "<base",
        "<link",
        "srcdoc",
        "formaction",
    ];

    #[test]
    fn hostile_input_comes_out_harmless() {
        let hostile = [
            "<script>alert(1)</script>",
            "before <script src=https://evil.example/x.js></script> after",
            "[click](javascript:alert(1))",
            "[click](JaVaScRiPt:alert(1))",
            "<a href=\"&#106;avascript:alert(1)\">x</a>",
            "<a href=\"  javascript:alert(1)\">x</a>",
            "![x](javascript:alert(1))",
            "[x](vbscript:msgbox(1))",
            "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
            "<img src=x onerror=alert(1)>",
            "<img src=\"https://ok.example/a.png\" onload=\"alert(1)\">",
            "<svg onload=alert(1)><circle r=1 /></svg>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
            "<object data=\"x.swf\"></object><embed src=\"x.swf\">",
            "<form action=\"https://evil.example\"><input type=text name=p>\
             <button formaction=\"javascript:alert(1)\">go</button></form>",
            "<div style=\"background:url(javascript:alert(1))\">styled</div>",
            "<style>body{display:none}</style>",
            "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
            "<base href=\"https://evil.example/\"><link rel=stylesheet href=x.css>",
            "<p onclick=\"alert(1)\" onmouseover=alert(2)>hover</p>",
            "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
            "<<script>script>alert(1)<</script>/script>",
            "- [ ] <input type=\"text\" onfocus=alert(1) autofocus>",
        ];
        for input in hostile {
            let out = html(input).to_lowercase();
            for bad in FORBIDDEN {
                assert!(!out.contains(bad), "{input:?} gave {out:?} with {bad:?}");
            }
        }
    }

    #[test]
    fn markdown_keeps_its_shape() {
        let out = html(
            "# Plan\n\n**bold** _it_ ~~old~~ `code`\n\n\
             | a | b |\n|---|---|\n| 1 | 2 |\n\n\
             - [x] done\n- [ ] open\n\n\
             [site](https://example.org) <mailto:a@example.org>\n",
        );
        for good in [
            "<h1>Plan</h1>",
            "<strong>bold</strong>",
            "<em>it</em>",
            "<del>old</del>",
            "<code>code</code>",
            "<table>",
            "<td>1</td>",
            "type=\"checkbox\"",
            "checked",
            "href=\"https://example.org\"",
            "rel=\"noopener noreferrer nofollow\"",
            "href=\"mailto:a@example.org\"",
        ] {
            assert!(out.contains(good), "{good:?} missing from {out}");
        }
    }

    #[test]
    fn text_that_looks_like_html_is_escaped_in_code() {
        let out = html("`<script>alert(1)</script>`\n\n```\n<img src=x onerror=alert(1)>\n```");
        assert!(out.contains("&lt;script&gt;"), "{out}");
        assert!(out.contains("&lt;img src=x onerror=alert(1)&gt;"), "{out}");
    }
}
