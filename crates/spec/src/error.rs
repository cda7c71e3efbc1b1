//! [`SpecError`]: what is wrong with a document, and where.

use std::fmt;

/// Why a document is not a usable AsyncAPI document. Always the submitter's fault: the message is
/// written for them, and [`path`](Self::path) says where to look.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", At(path))]
pub struct SpecError {
    /// JSON Pointer (RFC 6901) of the offending value, e.g. `/channels/order~1created/publish`;
    /// `""` when the problem is the whole document (empty, unparseable, not AsyncAPI).
    pub path: String,
    /// What is wrong, written so that a person can fix it.
    pub message: String,
}

impl SpecError {
    /// A problem at `path` (a JSON Pointer, `""` for the whole document).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A problem with the whole document.
    pub(crate) fn document(message: impl Into<String>) -> Self {
        Self::new("", message)
    }
}

/// The ` (at /a/b)` suffix of the display form; nothing for the whole document, where
/// `(at )` would read like a missing word.
struct At<'a>(&'a str);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, " (at {})", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_path_when_there_is_one() {
        let at_title = SpecError::new("/info/title", "`info.title` is required");
        assert_eq!(
            at_title.to_string(),
            "`info.title` is required (at /info/title)"
        );
        let whole = SpecError::document("the document is empty");
        assert_eq!(whole.to_string(), "the document is empty");
    }
}
