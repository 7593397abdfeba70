//! The renderer of the `nginx/*.template` files: `${UPPER_CASE}` variables
//! are replaced, nginx's own `$variables` are left alone, and every
//! variable a template uses must be given. The containers render the same
//! templates with `scripts/render-conf.sh` (envsubst); a test renders every
//! template both ways and compares the bytes.

use std::collections::BTreeSet;
use std::fmt;

/// A template variable that was not given.
#[derive(Debug, PartialEq, Eq)]
pub struct RenderError {
    pub missing: Vec<String>,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not set: {}", self.missing.join(", "))
    }
}

impl std::error::Error for RenderError {}

/// The `${NAME}` variables of `template` (upper case, digits, `_`), sorted.
pub fn template_vars(template: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        if let Some(name) = var_name(rest) {
            out.insert(name.to_string());
        }
    }
    out
}

/// `NAME` when `s` starts with `NAME}` and NAME is `[A-Z_][A-Z0-9_]*`.
fn var_name(s: &str) -> Option<&str> {
    let end = s.find('}')?;
    let name = &s[..end];
    let mut chars = name.chars();
    let first = chars.next()?;
    let ok = (first.is_ascii_uppercase() || first == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    ok.then_some(name)
}

/// Fills `template`'s variables from `vars` (name, value); fails naming
/// every variable the template uses that `vars` lacks.
pub fn render(template: &str, vars: &[(String, String)]) -> Result<String, RenderError> {
    let value = |name: &str| vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v);
    let missing: Vec<String> = template_vars(template)
        .into_iter()
        .filter(|n| value(n).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(RenderError { missing });
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match var_name(after).and_then(|n| Some((n, value(n)?))) {
            Some((name, v)) => {
                out.push_str(v);
                rest = &after[name.len() + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fills_upper_case_variables_and_leaves_nginx_ones() {
        let t = "listen ${PORT}; set $x ${A_1}$uri; map ${PORT} $y {}; ${lower} ${";
        let out = render(t, &v(&[("PORT", "80"), ("A_1", "a")])).unwrap();
        assert_eq!(out, "listen 80; set $x a$uri; map 80 $y {}; ${lower} ${");
    }

    #[test]
    fn names_every_missing_variable() {
        let err = render("${B} ${A} ${B}", &v(&[])).unwrap_err();
        assert_eq!(err.missing, ["A", "B"]);
    }
}
