//! Checks of raw input, each naming the offending field (`in.webhooks[0].url`) in its
//! `BAD_USER_INPUT` error. Inputs are validated once, at the resolver, into stored types.

use eventplane_core::Error;
use eventplane_outbound::url::{UrlProblem, http_host};

/// The longest application name (a DNS label).
pub(crate) const MAX_APPLICATION_NAME: usize = 63;
/// The longest description.
pub(crate) const MAX_DESCRIPTION: usize = 2000;
/// The longest name, group, version, user name, label key or value.
pub(crate) const MAX_SHORT_TEXT: usize = 256;
/// The longest URL.
pub(crate) const MAX_URL: usize = 2048;

/// An application name: a DNS label (RFC 1123): 1 to 63 lowercase letters, digits and `-`,
/// starting and ending with a letter or digit.
pub(crate) fn application_name(field: &str, name: String) -> Result<String, Error> {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_APPLICATION_NAME
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum);
    if valid {
        Ok(name)
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{name:?} is not a DNS label: use 1 to {MAX_APPLICATION_NAME} lowercase letters, \
                 digits and `-`, starting and ending with a letter or digit"
            ),
        ))
    }
}

/// Non-blank text of at most `max` characters.
pub(crate) fn required_text(field: &str, text: String, max: usize) -> Result<String, Error> {
    if text.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    bounded_text(field, text, max)
}

/// Text of at most `max` characters.
pub(crate) fn bounded_text(field: &str, text: String, max: usize) -> Result<String, Error> {
    if text.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(text)
}

/// Optional text of at most `max` characters; empty text counts as absent.
pub(crate) fn optional_text(
    field: &str,
    text: Option<String>,
    max: usize,
) -> Result<Option<String>, Error> {
    match text {
        Some(text) if !text.is_empty() => bounded_text(field, text, max).map(Some),
        _ => Ok(None),
    }
}

/// An absolute `http` or `https` URL with a host, no whitespace, at most [`MAX_URL`] long.
pub(crate) fn http_url(field: &str, url: String) -> Result<String, Error> {
    let problem = url_problem(&url);
    match problem {
        None => Ok(url),
        Some(problem) => Err(Error::invalid(field, problem)),
    }
}

fn url_problem(url: &str) -> Option<String> {
    let problem = http_host(url, MAX_URL).err()?;
    Some(match problem {
        UrlProblem::NotAbsolute => format!("{url:?} is not an absolute http or https URL"),
        UrlProblem::MalformedHost | UrlProblem::NoHost | UrlProblem::InvalidPort => {
            format!("{url:?} {problem}")
        }
        UrlProblem::TooLong(_) | UrlProblem::Whitespace | UrlProblem::Scheme(_) => {
            problem.to_string()
        }
    })
}

/// Keys and values of labels: non-empty keys of at most [`MAX_SHORT_TEXT`] characters,
/// values of at most as many; values are deduplicated and sorted.
pub(crate) fn label(field: &str, key: &str, values: Vec<String>) -> Result<Vec<String>, Error> {
    if key.trim().is_empty() || key.chars().count() > MAX_SHORT_TEXT {
        return Err(Error::invalid(
            field,
            format!("label keys have 1 to {MAX_SHORT_TEXT} characters"),
        ));
    }
    let mut values = values
        .into_iter()
        .map(|value| bounded_text(&format!("{field}.{key}"), value, MAX_SHORT_TEXT))
        .collect::<Result<Vec<_>, _>>()?;
    values.sort();
    values.dedup();
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_names_are_dns_labels() {
        for good in ["a", "shop", "shop-1", "0", "a-b-c", &"a".repeat(63)] {
            assert!(application_name("name", good.to_owned()).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Shop",
            "a_b",
            "a.b",
            "ä",
            "a b",
            &"a".repeat(64),
        ] {
            let err = application_name("name", bad.to_owned()).unwrap_err();
            assert_eq!(err.code(), "BAD_REQUEST", "{bad}");
        }
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        for good in [
            "http://example.com",
            "https://example.com:8443/hook?x=1#f",
            "HTTPS://user:pw@example.com/",
            "http://[::1]:3000/x",
            "http://127.0.0.1",
        ] {
            assert!(url_problem(good).is_none(), "{good}");
        }
        for bad in [
            "",
            "example.com",
            "ftp://example.com",
            "http://",
            "http:///path",
            "http://exa mple.com",
            "http://example.com:x",
            "http://example.com:70000",
            "http://example.com:",
            "javascript://alert(1)",
        ] {
            assert!(url_problem(bad).is_some(), "{bad}");
        }
        assert!(url_problem(&format!("http://e.com/{}", "a".repeat(MAX_URL))).is_some());
    }

    #[test]
    fn label_values_are_sorted_and_unique() -> Result<(), Error> {
        let values = label("labels", "env", vec!["b".into(), "a".into(), "b".into()])?;
        assert_eq!(values, ["a", "b"]);
        assert!(label("labels", " ", vec![]).is_err());
        Ok(())
    }
}
