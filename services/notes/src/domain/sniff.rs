//! What a file is, from its first bytes rather than from what the uploader claims: a known magic
//! number (the `infer` crate's table), else text when the bytes are UTF-8, else
//! `application/octet-stream`.

/// How many leading bytes [`content_type`] looks at.
pub const HEAD: usize = 8192;

/// The type of a file starting with `head` (its first [`HEAD`] bytes, or all of a shorter file).
pub fn content_type(head: &[u8]) -> &'static str {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type();
    }
    if head.is_empty() {
        return "application/octet-stream";
    }
    match std::str::from_utf8(head) {
        Ok(text) if !text.contains('\0') => "text/plain",
        // A multi-byte character cut at the end of the head is still text.
        Err(e) if e.error_len().is_none() && head.len() - e.valid_up_to() < 4 => {
            if head[..e.valid_up_to()].contains(&0) {
                "application/octet-stream"
            } else {
                "text/plain"
            }
        }
        _ => "application/octet-stream",
    }
}

/// A file name safe to keep and show: its last path component, without control characters,
/// at most 255 bytes; `attachment` when nothing is left.
pub fn filename(claimed: &str) -> String {
    let last = claimed.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut name: String = last.chars().filter(|c| !c.is_control()).collect();
    let trimmed = name.trim().trim_start_matches('.').trim().to_owned();
    name = trimmed;
    while name.len() > 255 {
        name.pop();
    }
    if name.is_empty() {
        "attachment".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];
        assert_eq!(content_type(&png), "image/png");
        assert_eq!(content_type(b"%PDF-1.7\n"), "application/pdf");
        let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0\x01\0\0\0".to_vec();
        elf.resize(64, 0);
        assert_eq!(content_type(&elf), "application/x-executable");
        assert_eq!(
            content_type(b"MZ\x90\0\x03\0\0\0"),
            "application/vnd.microsoft.portable-executable"
        );
        assert_eq!(
            content_type("plain words, d\u{e9}j\u{e0} vu".as_bytes()),
            "text/plain"
        );
        // Markup is known for what it is (and is not on the default allow-list).
        assert_eq!(
            content_type(b"<html><script>alert(1)</script>"),
            "text/html"
        );
        let cut = "\u{e9}t\u{e9}".as_bytes();
        assert_eq!(content_type(&cut[..cut.len() - 1]), "text/plain");
        assert_eq!(content_type(b"a\0b"), "application/octet-stream");
        assert_eq!(
            content_type(&[0xff, 0xfe, 0x00, 0x10, 0x80]),
            "application/octet-stream"
        );
        assert_eq!(content_type(b""), "application/octet-stream");
    }

    #[test]
    fn file_names_lose_paths_and_controls() {
        assert_eq!(filename("../../etc/passwd"), "passwd");
        assert_eq!(filename("C:\\Users\\ada\\plan.pdf"), "plan.pdf");
        assert_eq!(filename("a\nb\u{0}.txt"), "ab.txt");
        assert_eq!(filename(".."), "attachment");
        assert_eq!(filename(""), "attachment");
        assert_eq!(filename(&"x".repeat(300)).len(), 255);
        assert_eq!(filename("r\u{e9}sum\u{e9}.pdf"), "r\u{e9}sum\u{e9}.pdf");
    }
}
