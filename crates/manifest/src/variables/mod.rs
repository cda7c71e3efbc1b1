//! Application and component variables (`fermyon:spin/variables`).
//!
//! How Spin resolves them (Spin's `spin-expressions`, `spin-variables-env` and
//! `spin-factor-variables`):
//! - An application variable's value comes from the environment variable
//!   `SPIN_VARIABLE_<NAME>` (the name upper-cased with `to_ascii_uppercase`; see
//!   [`env_var_name`]), else from its `default`. The environment wins over the default.
//! - At start-up, a `required` variable with no value is an error naming it.
//! - A component sees only the names in its `[component.<id>.variables]`; each value is a
//!   template over application variables (checked when the manifest is loaded).
//! - `get(name)` first checks the name's syntax (`invalid-name`), then that the component
//!   declares it (`undefined`), then renders the template.
//!
//! Spin's default environment provider also reads a `.env` file in the working directory
//! when `SPIN_VARIABLE_<NAME>` is not set; the host may merge such a file into the map given
//! to [`resolve`].

mod template;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

pub use template::{Part, Template, TemplateError};

use crate::manifest::Manifest;

/// A start-up failure while resolving application variables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariablesError {
    /// Required variables without a value (the names, in manifest order).
    #[error(
        "no value for required variable(s): {}; set {}",
        names.join(", "),
        names.iter().map(|n| env_var_name(n)).collect::<Vec<_>>().join(", ")
    )]
    MissingRequired {
        /// The variables without a value.
        names: Vec<String>,
    },
    /// A template that cannot be resolved.
    #[error("{0}")]
    Template(#[from] TemplateError),
}

/// The error of `get` in `fermyon:spin/variables@2.0.0`:
/// `invalid-name(string) | undefined(string) | provider(string) | other(string)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    /// The requested name is not a valid variable name.
    #[error("invalid variable name: {0}")]
    InvalidName(String),
    /// The component does not declare the variable.
    #[error("undefined variable: {0}")]
    Undefined(String),
    /// A provider failed to give a value.
    #[error("provider error: {0}")]
    Provider(String),
    /// Any other failure.
    #[error("{0}")]
    Other(String),
}

/// The environment variable Spin reads for an application variable:
/// `SPIN_VARIABLE_` followed by the name upper-cased.
pub fn env_var_name(variable: &str) -> String {
    format!("SPIN_VARIABLE_{}", variable.to_ascii_uppercase())
}

/// Checks a name passed to `get` (Spin's `Key::validate`): non-empty; only lower-case ASCII
/// letters, digits and `_`; starts with a letter; ends with a letter or digit; no `__`.
/// The error text is what Spin puts in `invalid-name`.
pub fn check_variable_name(name: &str) -> Result<(), VariableError> {
    let reason = if name.is_empty() {
        Some("must not be empty".to_owned())
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        Some(format!(
            "invalid character {c:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        ))
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("must start with a lowercase ASCII letter".to_owned())
    } else if !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        Some("must end with a lowercase ASCII letter or digit".to_owned())
    } else if name.contains("__") {
        Some("must not contain multiple consecutive underscores".to_owned())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(VariableError::InvalidName(format!("{name:?}: {reason}"))),
        None => Ok(()),
    }
}

/// Resolved application variables plus every component's variable templates.
#[derive(Debug, Clone, Default)]
pub struct ResolvedVariables {
    values: HashMap<String, String>,
    components: HashMap<String, Vec<(String, Template)>>,
}

/// Resolves the application variables of `manifest` from `env` (a snapshot of the process
/// environment: only `SPIN_VARIABLE_*` keys matter) and defaults.
pub fn resolve(
    manifest: &Manifest,
    env: &HashMap<String, String>,
) -> Result<ResolvedVariables, VariablesError> {
    let mut values = HashMap::new();
    let mut missing = Vec::new();
    for (name, variable) in &manifest.variables {
        match env.get(&env_var_name(name)).or(variable.default.as_ref()) {
            Some(value) => {
                values.insert(name.clone(), value.clone());
            }
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(VariablesError::MissingRequired { names: missing });
    }
    let mut components = HashMap::new();
    for component in &manifest.components {
        let mut templates = Vec::new();
        for (name, text) in &component.variables {
            let template = Template::parse(text)?;
            template.check_names(|n| values.contains_key(n))?;
            templates.push((name.clone(), template));
        }
        components.insert(component.id.clone(), templates);
    }
    Ok(ResolvedVariables { values, components })
}

impl ResolvedVariables {
    /// The value of an application variable.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Renders a template over the application variables (e.g. an `allowed_outbound_hosts`
    /// entry). An unknown name is an error.
    pub fn render(&self, template: &str) -> Result<String, VariablesError> {
        let template = Template::parse(template)?;
        template.render(|name| {
            self.value(name)
                .map(str::to_owned)
                .ok_or_else(|| TemplateError::UnknownVariable(name.to_owned()).into())
        })
    }

    /// The variables as seen by one component.
    pub fn component<'a>(&'a self, component_id: &'a str) -> ComponentVariables<'a> {
        ComponentVariables {
            resolved: self,
            component_id,
        }
    }
}

/// The variables one component can read.
#[derive(Debug, Clone, Copy)]
pub struct ComponentVariables<'a> {
    resolved: &'a ResolvedVariables,
    component_id: &'a str,
}

impl ComponentVariables<'_> {
    /// `fermyon:spin/variables.get(name)`, with Spin's errors:
    /// `invalid-name` for a malformed name, `undefined` for a name the component does not
    /// declare (`no variable for "<component>"."<name>"`).
    pub fn get(&self, name: &str) -> Result<String, VariableError> {
        check_variable_name(name)?;
        let templates = self.templates()?;
        let template = templates
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| {
                VariableError::Undefined(format!(
                    "no variable for {:?}.{name:?}",
                    self.component_id
                ))
            })?;
        self.render(template)
    }

    /// All of the component's variables, resolved, in manifest order (what
    /// `wasi:config/store.get-all` returns).
    pub fn all(&self) -> Result<Vec<(String, String)>, VariableError> {
        let Ok(templates) = self.templates() else {
            return Ok(Vec::new());
        };
        templates
            .iter()
            .map(|(name, t)| Ok((name.clone(), self.render(t)?)))
            .collect()
    }

    fn templates(&self) -> Result<&[(String, Template)], VariableError> {
        self.resolved
            .components
            .get(self.component_id)
            .map(Vec::as_slice)
            .ok_or_else(|| {
                VariableError::Undefined(format!(
                    "no variable for component {:?}",
                    self.component_id
                ))
            })
    }

    fn render(&self, template: &Template) -> Result<String, VariableError> {
        template.render(|n| {
            self.resolved.value(n).map(str::to_owned).ok_or_else(|| {
                VariableError::Provider(format!("no provider resolved required variable {n:?}"))
            })
        })
    }
}
