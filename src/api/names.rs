//! The host's naming rules, as far as a client must know them.
//!
//! Upload strips `"`, `'`, CR and LF from a name and renames a name an
//! active file in the folder already has to `name (2).ext`, `name (3).ext`,
//! ... (API-NOTES.md). Pure functions; no I/O.

/// The name an upload of `sent` is stored under when there is no collision.
pub fn upload_name(sent: &str) -> String {
    sent.chars()
        .filter(|c| !matches!(c, '"' | '\'' | '\r' | '\n'))
        .collect()
}

/// Whether `stored` is a name the host may give an upload of `sent`: the
/// upload name itself, or it with ` (N)` before the extension.
pub fn is_upload_variant(stored: &str, sent: &str) -> bool {
    let cleaned = upload_name(sent);
    if stored == cleaned {
        return true;
    }
    let (stem, ext) = match cleaned.rfind('.') {
        Some(i) if i > 0 => (&cleaned[..i], &cleaned[i..]),
        _ => (cleaned.as_str(), ""),
    };
    stored
        .strip_prefix(stem)
        .and_then(|r| r.strip_suffix(ext))
        .and_then(|r| r.strip_prefix(" ("))
        .and_then(|r| r.strip_suffix(')'))
        .is_some_and(|n| n.parse::<u32>().is_ok())
}

/// PHP `strip_tags` in short: removes `<...>` runs (and an unclosed `<...`).
pub fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Why the host cannot store `name` exactly, if it cannot. Quotes are not
/// a reason: an edit after the upload restores them.
pub fn unstorable(name: &str) -> Option<&'static str> {
    if name.contains('\r') || name.contains('\n') {
        Some("the host cannot store names with line breaks")
    } else if name.trim() != name {
        Some("the host removes leading and trailing spaces from names")
    } else if strip_tags(name) != name {
        Some("the host removes text like <...> from names")
    } else if name.len() > 255 {
        Some("the host cannot store names longer than 255 bytes")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_host_cannot_store() {
        assert_eq!(unstorable("ok name.txt"), None);
        assert_eq!(unstorable("it's \"fine\".txt"), None);
        assert!(unstorable(" lead").is_some());
        assert!(unstorable("trail ").is_some());
        assert!(unstorable("a\nb").is_some());
        assert!(unstorable("a<b>c").is_some());
        assert_eq!(
            unstorable("a < b"),
            Some("the host removes text like <...> from names")
        );
        assert_eq!(unstorable("a > b"), None);
        assert!(unstorable(&"x".repeat(256)).is_some());
        assert_eq!(unstorable(&"é".repeat(127)), None);
        assert!(unstorable(&"é".repeat(128)).is_some());
    }

    #[test]
    fn recognises_host_renamed_uploads() {
        assert!(is_upload_variant("a.txt", "a.txt"));
        assert!(is_upload_variant("a (2).txt", "a.txt"));
        assert!(is_upload_variant("its.txt", "it's.txt"));
        assert!(is_upload_variant("noext (3)", "noext"));
        assert!(!is_upload_variant("b.txt", "a.txt"));
        assert!(!is_upload_variant("a (x).txt", "a.txt"));
        assert_eq!(upload_name("say \"hi\"\n.txt"), "say hi.txt");
    }
}
