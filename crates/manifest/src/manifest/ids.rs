//! Identifier rules of the Spin manifest (Spin's `spin-serde` `KebabId`, `SnakeId` and
//! `LowerSnakeId`).
//!
//! An identifier is one or more words joined by a delimiter (`-` for kebab-case, `_` for
//! snake_case). Every word starts with an ASCII letter, holds only ASCII letters and digits,
//! and its letters are all lowercase or all UPPERCASE (`FOO-bar` is a valid kebab id).
//! Lower-case identifiers (variable names) additionally forbid UPPERCASE words.

/// Checks a kebab-case identifier (component ids, trigger component references).
pub fn check_kebab(id: &str) -> Result<(), String> {
    check_words(id, '-', false)
}

/// Checks a snake_case identifier that may contain UPPERCASE words (store labels).
pub fn check_snake(id: &str) -> Result<(), String> {
    check_words(id, '_', false)
}

/// Checks a lower_snake_case identifier (application and component variable names).
pub fn check_lower_snake(id: &str) -> Result<(), String> {
    check_words(id, '_', true)
}

/// Checks a key-value store or SQLite database label: kebab-case or snake_case.
pub fn check_label(label: &str) -> Result<(), String> {
    if check_kebab(label).is_ok() || check_snake(label).is_ok() {
        Ok(())
    } else {
        Err("expected kebab-case or snake_case".to_owned())
    }
}

fn check_words(id: &str, delim: char, lower_only: bool) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty".to_owned());
    }
    let wrong = if delim == '-' { '_' } else { '-' };
    if id.contains(wrong) {
        return Err(format!(
            "words must be separated with {delim:?}, not {wrong:?}"
        ));
    }
    for word in id.split(delim) {
        let Some(first) = word.chars().next() else {
            return Err(format!("{delim:?}-separated words must not be empty"));
        };
        if !first.is_ascii_alphabetic() {
            return Err(format!(
                "{delim:?}-separated words must start with an ASCII letter; got {first:?}"
            ));
        }
        let upper = first.is_ascii_uppercase();
        for ch in word.chars().skip(1) {
            if !ch.is_ascii_alphanumeric() {
                return Err(format!(
                    "{delim:?}-separated words may only contain alphanumeric ASCII; got {ch:?}"
                ));
            }
            if ch.is_ascii_alphabetic() && ch.is_ascii_uppercase() != upper {
                return Err(format!(
                    "{delim:?}-separated words must be all lowercase or all UPPERCASE; got {word:?}"
                ));
            }
        }
        if lower_only && upper {
            return Err(format!(
                "Lower-case identifiers must be all lowercase; got {id:?}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_ids_follow_spin_rules() {
        for ok in ["a", "hello-world", "a1-b2", "FOO-bar", "HTTP"] {
            assert!(check_kebab(ok).is_ok(), "{ok} should be valid");
        }
        for (bad, why) in [
            ("", "empty"),
            ("bad_id", "not '_'"),
            ("1-2-3", "start with an ASCII letter; got '1'"),
            ("a--b", "must not be empty"),
            ("-a", "must not be empty"),
            ("a-", "must not be empty"),
            ("mIxed", "all lowercase or all UPPERCASE"),
            ("a.b", "alphanumeric ASCII; got '.'"),
            ("caf\u{e9}", "alphanumeric ASCII"),
        ] {
            let err = check_kebab(bad).expect_err(bad);
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn variable_names_are_lower_snake_case() {
        for ok in ["a", "api_key", "a1b", "letters1_then2_numbers345"] {
            assert!(check_lower_snake(ok).is_ok(), "{ok} should be valid");
        }
        for bad in [
            "",
            "kebab-case",
            "_lead",
            "trail_",
            "double__u",
            "1st",
            "a_1",
            "Upper",
            "UPPER",
            "bad+name",
        ] {
            assert!(check_lower_snake(bad).is_err(), "{bad:?} should be invalid");
        }
        assert!(check_snake("mixed_CASE_words").is_ok());
    }

    #[test]
    fn labels_may_be_kebab_or_snake() {
        for ok in ["default", "snake_case", "kebab-case", "UPPER_snake"] {
            assert!(check_label(ok).is_ok(), "{ok}");
        }
        for bad in ["b@dlabel", "camelCase", "mixed-and_both", ""] {
            assert!(check_label(bad).is_err(), "{bad}");
        }
    }
}
