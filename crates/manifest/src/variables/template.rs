//! Spin's expression templates: `"literal {{ name }} literal"`.
//!
//! Rules (Spin's `spin-expressions` `Template`):
//! - `{{` opens an expression that runs to the *first* following `}}`; the text between is
//!   trimmed of surrounding whitespace and is the variable name (`{{x}}`, `{{  x  }}` and
//!   `{{ x }}` are the same; `{{ }}` names the empty variable).
//! - A `{{` without a later `}}` is an error; a lone `}}` is literal text.
//! - There is no escaping and no nesting.
//! - Names inside a template are not checked for syntax: a name that is not an application
//!   variable is reported as an unknown variable when the template is validated.

use std::fmt;

/// An error in a template's syntax or in what it refers to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{{` with no closing `}}`.
    #[error("invalid variable template: unmatched '{{{{' in template")]
    Unmatched,
    /// The template uses a name that is not an application variable.
    #[error("invalid variable template: unknown variable {0:?}")]
    UnknownVariable(String),
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text copied as is.
    Literal(String),
    /// A `{{ name }}` expression (the name, trimmed).
    Variable(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses a template string.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after_open) = rest.strip_prefix("{{") {
                let close = after_open.find("}}").ok_or(TemplateError::Unmatched)?;
                parts.push(Part::Variable(after_open[..close].trim().to_owned()));
                rest = &after_open[close + 2..];
            } else {
                let end = rest.find("{{").unwrap_or(rest.len());
                parts.push(Part::Literal(rest[..end].to_owned()));
                rest = &rest[end..];
            }
        }
        Ok(Self { parts })
    }

    /// The pieces of the template, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// True if the template has no `{{ }}` expression.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The variable names used by the template, in order (with repeats).
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Variable(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Checks that every name used is one of `known` (Spin refuses such a template when the
    /// application starts).
    pub fn check_names(&self, mut known: impl FnMut(&str) -> bool) -> Result<(), TemplateError> {
        match self.variables().find(|name| !known(name)) {
            Some(unknown) => Err(TemplateError::UnknownVariable(unknown.to_owned())),
            None => Ok(()),
        }
    }

    /// Renders the template, looking each variable up with `value`.
    pub fn render<E>(&self, mut value: impl FnMut(&str) -> Result<String, E>) -> Result<String, E> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(name) => out.push_str(&value(name)?),
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    /// Writes the template back in canonical form (`{{ name }}` with single spaces).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(text) => f.write_str(text)?,
                Part::Variable(name) => write!(f, "{{{{ {name} }}}}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Part {
        Part::Literal(s.to_owned())
    }
    fn var(s: &str) -> Part {
        Part::Variable(s.to_owned())
    }

    #[test]
    fn templates_split_into_literals_and_trimmed_names() {
        for (text, expected) in [
            ("", vec![]),
            ("plain", vec![lit("plain")]),
            ("a-{{ x }}-b", vec![lit("a-"), var("x"), lit("-b")]),
            ("{{x}}{{  y\t}}", vec![var("x"), var("y")]),
            ("{{ }}", vec![var("")]),
            ("}} alone", vec![lit("}} alone")]),
            ("{{ {{ x }}", vec![var("{{ x")]),
            ("{{{ x }}}", vec![var("{ x"), lit("}")]),
            (
                "https://{{ host }}:{{ port }}",
                vec![lit("https://"), var("host"), lit(":"), var("port")],
            ),
        ] {
            let t = Template::parse(text).unwrap();
            assert_eq!(t.parts(), expected.as_slice(), "{text:?}");
        }
    }

    #[test]
    fn unmatched_open_braces_are_an_error() {
        assert_eq!(
            Template::parse("{{ ok }} {{ unmatched"),
            Err(TemplateError::Unmatched)
        );
        assert_eq!(
            TemplateError::Unmatched.to_string(),
            "invalid variable template: unmatched '{{' in template"
        );
    }

    #[test]
    fn rendering_substitutes_values_and_display_is_canonical() -> Result<(), String> {
        let t = Template::parse("x={{a}}, y={{  b }}").map_err(|e| e.to_string())?;
        let out = t.render(|n| Ok::<_, String>(n.to_uppercase()))?;
        assert_eq!(out, "x=A, y=B");
        assert_eq!(t.to_string(), "x={{ a }}, y={{ b }}");
        assert!(!t.is_literal());
        assert!(
            Template::parse("lit")
                .map_err(|e| e.to_string())?
                .is_literal()
        );
        Ok(())
    }

    #[test]
    fn unknown_names_are_reported() {
        let t = Template::parse("{{ known }} {{ Nope }}").unwrap();
        assert_eq!(
            t.check_names(|n| n == "known"),
            Err(TemplateError::UnknownVariable("Nope".into()))
        );
    }
}
