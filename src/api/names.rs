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

#[cfg(test)]
mod tests {
    use super::*;

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
