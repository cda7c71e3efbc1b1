//! JSON Pointers (RFC 6901): building the paths that errors report, and reading the URI-fragment
//! pointers of local `$ref`s (`#/components/messages/Order%20Created`).

use crate::node::Node;

/// `parent` extended by the member or index `token`, escaped (`~` → `~0`, `/` → `~1`).
pub(crate) fn child(parent: &str, token: impl AsRef<str>) -> String {
    let token = token.as_ref();
    let mut path = String::with_capacity(parent.len() + token.len() + 1);
    path.push_str(parent);
    path.push('/');
    for c in token.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
    path
}

/// A `$ref` value, classified.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reference {
    /// A reference into this document: its reference tokens, unescaped.
    Local(Vec<String>),
    /// Anything else (another file, a URL): not supported, since a spec must stand alone.
    Remote,
    /// Starts with `#` but is not a JSON Pointer (a bad `~` escape or percent-encoding, or a
    /// plain-name fragment such as `#Order`).
    Malformed,
}

impl Reference {
    pub(crate) fn parse(reference: &str) -> Reference {
        let Some(fragment) = reference.strip_prefix('#') else {
            return Reference::Remote;
        };
        let Some(fragment) = percent_decode(fragment) else {
            return Reference::Malformed;
        };
        if fragment.is_empty() {
            return Reference::Local(Vec::new());
        }
        let Some(rest) = fragment.strip_prefix('/') else {
            return Reference::Malformed;
        };
        rest.split('/')
            .map(unescape)
            .collect::<Option<Vec<_>>>()
            .map_or(Reference::Malformed, Reference::Local)
    }
}

/// The pointer (as reported in errors) for `tokens`.
pub(crate) fn join(tokens: &[String]) -> String {
    tokens.iter().fold(String::new(), |path, t| child(&path, t))
}

/// The value at `tokens` under `root`, if there is one.
pub(crate) fn lookup<'d>(root: &'d Node, tokens: &[String]) -> Option<&'d Node> {
    tokens.iter().try_fold(root, |node, token| match node {
        Node::Object(members) => members.get(token.as_str()),
        Node::Array(items) => array_index(token).and_then(|i| items.get(i)),
        _ => None,
    })
}

/// RFC 6901 array index: `0` or digits without a leading zero.
pub(crate) fn array_index(token: &str) -> Option<usize> {
    let canonical = token == "0" || (!token.starts_with('0') && !token.is_empty());
    if canonical && token.bytes().all(|b| b.is_ascii_digit()) {
        token.parse().ok()
    } else {
        None
    }
}

fn unescape(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(tokens: &[&str]) -> Reference {
        Reference::Local(tokens.iter().map(|t| (*t).to_owned()).collect())
    }

    #[test]
    fn paths_escape_tilde_and_slash() {
        assert_eq!(
            child("/channels", "shop/order~x"),
            "/channels/shop~1order~0x"
        );
        assert_eq!(child("", ""), "/");
    }

    #[test]
    fn local_references_are_unescaped_and_percent_decoded() {
        assert_eq!(
            Reference::parse("#/components/messages/Order%20Created"),
            local(&["components", "messages", "Order Created"])
        );
        assert_eq!(
            Reference::parse("#/channels/a~1b~0c"),
            local(&["channels", "a/b~c"])
        );
        assert_eq!(Reference::parse("#"), local(&[]));
    }

    #[test]
    fn other_references_are_remote_or_malformed() {
        assert_eq!(
            Reference::parse("common.yaml#/components/schemas/Money"),
            Reference::Remote
        );
        assert_eq!(
            Reference::parse("https://example.com/s.json"),
            Reference::Remote
        );
        assert_eq!(Reference::parse("#Order"), Reference::Malformed);
        assert_eq!(Reference::parse("#/a~2"), Reference::Malformed);
        assert_eq!(Reference::parse("#/a%zz"), Reference::Malformed);
    }

    #[test]
    fn array_indexes_are_canonical_decimals() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("12"), Some(12));
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index(""), None);
    }
}
