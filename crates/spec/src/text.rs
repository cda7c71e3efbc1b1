//! From text to a [`Node`] tree: choosing JSON or YAML, and turning parser errors into messages
//! that say where the text is broken.

use crate::SpecFormat;
use crate::error::SpecError;
use crate::node::Node;

/// Values a document may hold beyond one per byte of text. Plain JSON or YAML cannot come close
/// to one value per byte; the allowance is for YAML aliases, which legitimately repeat shared
/// parts, while a crafted "billion laughs" document runs out of it long before memory does.
const ALIAS_ALLOWANCE: usize = 100_000;

/// A parsed document: its tree, how many values it holds, and the format it was read as.
pub(crate) struct Decoded {
    pub(crate) root: Node,
    pub(crate) values: usize,
    pub(crate) format: SpecFormat,
}

/// Parses `data` as `format`, or detects the format: JSON when the text parses as a JSON object,
/// YAML otherwise.
pub(crate) fn decode(data: &str, format: Option<SpecFormat>) -> Result<Decoded, SpecError> {
    let data = data.strip_prefix('\u{feff}').unwrap_or(data);
    if data.trim().is_empty() {
        return Err(SpecError::document("the document is empty"));
    }
    let budget = data.len().saturating_add(ALIAS_ALLOWANCE);
    let (root, values, format) = match format {
        Some(SpecFormat::Json) => json(data, budget).map(|(n, v)| (n, v, SpecFormat::Json))?,
        Some(SpecFormat::Yaml) => yaml(data, budget).map(|(n, v)| (n, v, SpecFormat::Yaml))?,
        None => match json(data, budget) {
            Ok((root @ Node::Object(_), values)) => (root, values, SpecFormat::Json),
            Ok(_) => yaml(data, budget).map(|(n, v)| (n, v, SpecFormat::Yaml))?,
            Err(json_error) => match yaml(data, budget) {
                Ok((root, values)) => (root, values, SpecFormat::Yaml),
                // Text that opens like a JSON object was meant as JSON: the JSON parser's
                // complaint is the useful one.
                Err(_) if data.trim_start().starts_with('{') => return Err(json_error),
                Err(yaml_error) => return Err(yaml_error),
            },
        },
    };
    if root == Node::Null {
        return Err(SpecError::document(
            "the document is empty (it holds only comments or `null`)",
        ));
    }
    Ok(Decoded {
        root,
        values,
        format,
    })
}

/// `data` as text: it must be UTF-8 (a leading byte-order mark is fine).
pub(crate) fn utf8(data: &[u8]) -> Result<&str, SpecError> {
    if data.starts_with(&[0xFF, 0xFE]) || data.starts_with(&[0xFE, 0xFF]) {
        return Err(SpecError::document(
            "the document is UTF-16 encoded: send it as UTF-8",
        ));
    }
    std::str::from_utf8(data).map_err(|e| {
        SpecError::document(format!(
            "the document is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

fn json(data: &str, budget: usize) -> Result<(Node, usize), SpecError> {
    let mut deserializer = serde_json::Deserializer::from_str(data);
    let parsed = Node::read(&mut deserializer, budget).and_then(|node| {
        deserializer.end()?;
        Ok(node)
    });
    parsed.map_err(|e| {
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let problem = text.strip_suffix(&suffix).unwrap_or(&text);
        SpecError::document(if e.line() == 0 {
            format!("invalid JSON: {problem}")
        } else {
            format!(
                "invalid JSON at line {} column {}: {problem}",
                e.line(),
                e.column()
            )
        })
    })
}

fn yaml(data: &str, budget: usize) -> Result<(Node, usize), SpecError> {
    Node::read(serde_yaml_ng::Deserializer::from_str(data), budget).map_err(|e| {
        let text = e.to_string();
        let text = match text.as_str() {
            // serde_yaml_ng's own guard against alias bombs, which may trip before our budget.
            "repetition limit exceeded" => {
                "YAML aliases repeat too much of the document (repetition limit exceeded)".into()
            }
            _ => text,
        };
        SpecError::document(match e.location() {
            Some(at) => {
                let suffix = format!(" at line {} column {}", at.line(), at.column());
                let problem = text.replacen(&suffix, "", 1);
                format!(
                    "invalid YAML at line {} column {}: {problem}",
                    at.line(),
                    at.column()
                )
            }
            None => format!("invalid YAML: {text}"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(data: &str, format: Option<SpecFormat>) -> String {
        decode(data, format).map(|_| ()).unwrap_err().message
    }

    #[test]
    fn a_json_object_is_detected_as_json() -> Result<(), SpecError> {
        assert_eq!(decode(" {\"a\": 1}", None)?.format, SpecFormat::Json);
        assert_eq!(decode("a: 1", None)?.format, SpecFormat::Yaml);
        assert_eq!(decode("{a: 1}", None)?.format, SpecFormat::Yaml);
        Ok(())
    }

    #[test]
    fn broken_json_reports_the_json_error_with_its_position() {
        assert_eq!(
            error("{\n  \"a\": 1,\n  \"b\" 2\n}", None),
            "invalid JSON at line 3 column 7: expected `:`"
        );
        assert_eq!(
            error("asyncapi: 3.0.0", Some(SpecFormat::Json)),
            "invalid JSON at line 1 column 1: expected value"
        );
    }

    #[test]
    fn broken_yaml_reports_the_position_first() {
        assert_eq!(
            error("a:\n  b: 1\n c: 2\n", None),
            "invalid YAML at line 3 column 2: did not find expected key, \
             while parsing a block mapping"
        );
    }

    #[test]
    fn blank_or_comment_only_text_is_empty() {
        assert_eq!(error(" \n\t", None), "the document is empty");
        assert_eq!(error("\u{feff}", None), "the document is empty");
        assert!(error("# nothing\n", None).starts_with("the document is empty"));
    }
}
