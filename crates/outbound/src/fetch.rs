//! The fetcher's wire protocol and the rules of a fetch.
//!
//! The registry sends a [`FetchJob`] to the fetcher (`POST http://fetcher.spin.internal/fetch`)
//! and gets a [`FetchOutcome`] back: the document, or a message a person can act on. Every
//! way a fetch can fail has its own message, built here.

use serde::{Deserialize, Serialize};

use crate::auth::RequestAuth;

/// The default of `fetch_max_bytes`: the largest response read (2 MiB).
pub const DEFAULT_FETCH_MAX_BYTES: usize = 2 * 1024 * 1024;

/// The default of `fetch_timeout_ms`: how long one fetch may take, token and CSRF requests and
/// redirects included (10 s).
pub const DEFAULT_FETCH_TIMEOUT_MS: u64 = 10_000;

/// The fetcher's path.
pub const FETCH_PATH: &str = "/fetch";

/// How a fetch request's URL is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FetchMode {
    /// The URL returns one document.
    Single,
    /// The URL returns a package of documents (not supported).
    Package,
    /// The URL returns an index of documents (not supported).
    Index,
}

/// The text format of a fetched document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FetchedFormat {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// What the registry asks the fetcher to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchJob {
    /// Where the document is (http or https).
    pub url: String,
    /// How to authenticate the fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RequestAuth>,
    /// How to read the URL.
    pub mode: FetchMode,
    /// The format the registrant declared, if any; detected otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FetchedFormat>,
}

/// How a fetch ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FetchOutcome {
    /// The document was fetched and is a valid AsyncAPI document.
    Succeeded {
        /// The document, as text.
        data: String,
        /// Its format.
        format: FetchedFormat,
    },
    /// Fetching or validating failed.
    Failed {
        /// Why, written for the registrant.
        message: String,
    },
}

impl FetchOutcome {
    /// A failure saying `message`.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed {
            message: message.into(),
        }
    }
}

/// The limits of one fetch (the `fetch_max_bytes`, `fetch_timeout_ms` and `spec_max_bytes`
/// variables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// The largest response body read; reading stops past it.
    pub max_bytes: usize,
    /// How long the whole fetch may take.
    pub timeout_ms: u64,
    /// The largest document accepted as a spec.
    pub spec_max_bytes: usize,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_FETCH_MAX_BYTES,
            timeout_ms: DEFAULT_FETCH_TIMEOUT_MS,
            spec_max_bytes: 1024 * 1024,
        }
    }
}

/// Why a mode other than `SINGLE` is refused.
pub fn unsupported_mode(mode: FetchMode) -> String {
    let name = match mode {
        FetchMode::Single => "SINGLE",
        FetchMode::Package => "PACKAGE",
        FetchMode::Index => "INDEX",
    };
    format!(
        "fetch mode {name} is not supported: only SINGLE (the URL returns one AsyncAPI document) is"
    )
}

/// A non-2xx answer.
pub fn http_status(status: u16, url: &str) -> String {
    format!("HTTP {status} from {url}")
}

/// A response that went past `limit` bytes.
pub fn too_large(limit: usize, url: &str) -> String {
    format!(
        "response larger than {} from {url} (the limit is fetch_max_bytes = {limit} bytes)",
        human_bytes(limit)
    )
}

/// A document larger than `spec_max_bytes`.
pub fn spec_too_large(size: usize, limit: usize, url: &str) -> String {
    format!(
        "the document from {url} is {}, larger than spec_max_bytes = {limit} bytes ({})",
        human_bytes(size),
        human_bytes(limit)
    )
}

/// A fetch that took longer than `timeout_ms`.
pub fn timed_out(timeout_ms: u64, url: &str) -> String {
    format!(
        "timed out after {} fetching {url}",
        human_duration(timeout_ms)
    )
}

/// A chain of redirects longer than [`MAX_REDIRECTS`](crate::redirect::MAX_REDIRECTS).
pub fn too_many_redirects(url: &str) -> String {
    format!(
        "more than {} redirects starting at {url} (a redirect loop?)",
        crate::redirect::MAX_REDIRECTS
    )
}

/// A document that does not parse or is not valid AsyncAPI; `problem` is the parser's message.
pub fn invalid_document(problem: &str, url: &str) -> String {
    format!("{problem} (in the document from {url})")
}

/// Checks a response's `Content-Type`: AsyncAPI documents come as JSON, YAML, plain text or
/// bytes; anything else (HTML, an image) is the wrong content.
pub fn check_content_type(content_type: Option<&str>, url: &str) -> Result<(), String> {
    let Some(content_type) = content_type else {
        return Ok(());
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let acceptable = essence.is_empty()
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/yaml"
                | "application/x-yaml"
                | "text/yaml"
                | "text/x-yaml"
                | "text/plain"
                | "application/octet-stream"
                | "binary/octet-stream"
        )
        || essence.ends_with("+json")
        || essence.ends_with("+yaml");
    if acceptable {
        Ok(())
    } else {
        Err(format!(
            "wrong content from {url}: Content-Type `{content_type}`, expected an AsyncAPI document (JSON or YAML)"
        ))
    }
}

/// `bytes` for people: `2 MiB`, `1.5 KiB`, `512 bytes`.
pub fn human_bytes(bytes: usize) -> String {
    const UNITS: [(usize, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if bytes >= size {
            let whole = bytes / size;
            let tenths = (bytes % size) * 10 / size;
            return if tenths == 0 {
                format!("{whole} {unit}")
            } else {
                format!("{whole}.{tenths} {unit}")
            };
        }
    }
    format!("{bytes} bytes")
}

/// `ms` for people: `10 s`, `2.5 s`, `300 ms`.
pub fn human_duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_naturally() {
        assert_eq!(human_bytes(2 * 1024 * 1024), "2 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_duration(10_000), "10 s");
        assert_eq!(human_duration(2_500), "2.5 s");
        assert_eq!(human_duration(300), "300 ms");
    }

    #[test]
    fn messages_name_the_problem() {
        assert_eq!(http_status(404, "http://h/s"), "HTTP 404 from http://h/s");
        assert!(too_large(DEFAULT_FETCH_MAX_BYTES, "u").starts_with("response larger than 2 MiB"));
        assert!(timed_out(10_000, "u").starts_with("timed out after 10 s"));
        assert!(unsupported_mode(FetchMode::Package).contains("PACKAGE is not supported"));
    }

    #[test]
    fn json_yaml_text_and_bytes_are_fine_other_content_is_not() {
        for ok in [
            None,
            Some("application/json; charset=utf-8"),
            Some("application/vnd.aai.asyncapi+json"),
            Some("application/x-yaml"),
            Some("text/plain"),
            Some("application/octet-stream"),
        ] {
            assert!(check_content_type(ok, "u").is_ok(), "{ok:?}");
        }
        for bad in ["text/html; charset=utf-8", "image/png", "application/pdf"] {
            let err = check_content_type(Some(bad), "u").err().unwrap_or_default();
            assert!(err.starts_with("wrong content from u"), "{err}");
        }
    }

    #[test]
    fn outcomes_have_a_stable_wire_form() {
        let ok = FetchOutcome::Succeeded {
            data: "asyncapi: 2.6.0".into(),
            format: FetchedFormat::Yaml,
        };
        assert_eq!(
            serde_json::to_value(&ok).unwrap_or_default(),
            serde_json::json!({"status": "succeeded", "data": "asyncapi: 2.6.0", "format": "YAML"})
        );
        assert_eq!(
            serde_json::to_value(FetchOutcome::failed("x")).unwrap_or_default(),
            serde_json::json!({"status": "failed", "message": "x"})
        );
    }
}
