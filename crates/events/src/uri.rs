//! RFC 3986 syntax checks for CloudEvents' `URI-reference` and `URI` attribute types.
//!
//! These are syntax checks only (allowed characters, well-formed percent escapes, a valid scheme
//! when there is one, at most one fragment); nothing is resolved or normalised.

/// Whether `b` may appear literally in a URI (unreserved, gen-delims, sub-delims, or `%`).
fn is_uri_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b':'
                | b'/'
                | b'?'
                | b'#'
                | b'['
                | b']'
                | b'@'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'%'
        )
}

/// The scheme of `s`, if it starts with one (`scheme ":"`), or `Err(())` if the text before the
/// first `:` can only be read as a scheme but is not a valid one.
fn scheme(s: &str) -> Result<Option<&str>, ()> {
    let Some(colon) = s.find(':') else {
        return Ok(None);
    };
    let head = &s[..colon];
    if head.contains(['/', '?', '#']) {
        // The colon is inside a path, query or fragment of a relative reference.
        return Ok(None);
    }
    // RFC 3986 §4.2: a relative path's first segment cannot contain ':', so the text before
    // the colon must be a scheme.
    let mut bytes = head.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if valid { Ok(Some(head)) } else { Err(()) }
}

/// Characters and percent escapes are well-formed and there is at most one `#`.
fn well_formed(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !is_uri_byte(b) {
            return false;
        }
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    s.matches('#').count() <= 1
}

/// A non-empty RFC 3986 `URI-reference` (absolute or relative).
pub(crate) fn is_uri_reference(s: &str) -> bool {
    !s.is_empty() && well_formed(s) && scheme(s).is_ok()
}

/// An RFC 3986 `absolute-URI` (§4.3): a scheme, and no fragment.
pub(crate) fn is_absolute_uri(s: &str) -> bool {
    well_formed(s) && matches!(scheme(s), Ok(Some(_))) && !s.contains('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_references() {
        for good in [
            "/applications/shop",
            "https://example.com/a?b=c#d",
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "shop",
            "./a:b",
            "mailto:x@example.com",
            "a%20b",
            "#frag",
        ] {
            assert!(is_uri_reference(good), "{good:?}");
        }
        for bad in [
            "",
            "a b",
            "1http://x",
            ":x",
            "a%2",
            "a%zz",
            "x#a#b",
            "é",
            "<x>",
        ] {
            assert!(!is_uri_reference(bad), "{bad:?}");
        }
    }

    #[test]
    fn absolute_uris() {
        for good in ["https://example.com/schema.json", "urn:x:y", "http://a/b?c"] {
            assert!(is_absolute_uri(good), "{good:?}");
        }
        for bad in ["/relative", "schema.json", "https://x/y#frag", "", "1x:y"] {
            assert!(!is_absolute_uri(bad), "{bad:?}");
        }
    }
}
