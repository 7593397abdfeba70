//! The renderer of the `nginx/*.template` files: `${UPPER_CASE}` variables
//! are replaced, nginx's own `$variables` are left alone, and every
//! variable a template uses must be given. `make up` renders with it, and
//! so do the containers (`rtmp-live-render`, which takes the variables from
//! its environment and derives the rest with [`derived`]).

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

/// `host:port` of each API instance in `API_URL` (one base URL, or several
/// comma-separated).
pub fn api_hosts(api_url: &str) -> Vec<String> {
    api_url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|url| {
            let host = url.split_once("://").map_or(url, |(_, h)| h);
            host.split('/').next().unwrap_or(host).to_string()
        })
        .collect()
}

/// The edge's `upstream edge_api` servers (`API_SERVERS`, in the template's
/// `server ${API_SERVERS};`): one `server` per API instance. An instance
/// that failed is left alone for 5 s, and lookups go to the others
/// (`proxy_next_upstream` in the template). A host name resolving to
/// several addresses (compose's `--scale api=2`) gives a server for each.
pub fn api_servers(hosts: &[String]) -> String {
    hosts
        .iter()
        .map(|h| format!("{h} max_fails=1 fail_timeout=5s"))
        .collect::<Vec<_>>()
        .join(";\n        server ")
}

/// The variables a container's environment leaves to be derived, added
/// before `env` (so that a value given in `env` wins): the API's host:port
/// (`API_HOST`: each instance's, space-separated) from `API_URL`, and the
/// edge's upstream servers (`API_SERVERS`) from `API_HOST`; the edge's DNS
/// resolver (`EDGE_RESOLVER`, from `resolver()`: the system's) and how
/// long it keeps an answer (`EDGE_RESOLVER_VALID`, 10s); where the origin's
/// HTTP server listens (`ORIGIN_HTTP_LISTEN`: every interface of the
/// container at `ORIGIN_HTTP_PORT`).
pub fn derived(
    env: &[(String, String)],
    resolver: impl FnOnce() -> String,
) -> Vec<(String, String)> {
    let get = |k: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let mut out = Vec::new();
    let hosts: Vec<String> = match (get("API_HOST"), get("API_URL")) {
        (Some(h), _) => h
            .split([' ', ','])
            .filter(|h| !h.is_empty())
            .map(String::from)
            .collect(),
        (None, Some(url)) => api_hosts(url),
        (None, None) => Vec::new(),
    };
    if !hosts.is_empty() {
        out.push(("API_HOST".to_string(), hosts.join(" ")));
        if get("API_SERVERS").is_none() {
            out.push(("API_SERVERS".to_string(), api_servers(&hosts)));
        }
    }
    if get("EDGE_RESOLVER").is_none() {
        out.push(("EDGE_RESOLVER".to_string(), resolver()));
    }
    out.push(("EDGE_RESOLVER_VALID".to_string(), "10s".to_string()));
    // a container relays nothing unless told (ORIGIN_REPLICATION: nginx-rtmp
    // `push` directives)
    if get("ORIGIN_REPLICATION").is_none() {
        out.push(("ORIGIN_REPLICATION".to_string(), String::new()));
    }
    if let Some(port) = get("ORIGIN_HTTP_PORT") {
        out.push(("ORIGIN_HTTP_LISTEN".to_string(), port.to_string()));
    }
    out.extend(env.iter().cloned());
    out
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

    #[test]
    fn derives_what_the_environment_leaves_out_and_keeps_what_it_gives() {
        let env = v(&[
            ("API_URL", "http://api:9090/x"),
            ("ORIGIN_HTTP_PORT", "8080"),
        ]);
        let all = derived(&env, || "[::1]".into());
        let out = render(
            "${API_HOST} ${EDGE_RESOLVER} ${EDGE_RESOLVER_VALID} ${ORIGIN_HTTP_LISTEN}",
            &all,
        );
        assert_eq!(out.unwrap(), "api:9090 [::1] 10s 8080");
        let env = v(&[
            ("API_URL", "http://api:9090"),
            ("API_HOST", "10.0.0.2:9090"),
            ("EDGE_RESOLVER", "127.0.0.11"),
            ("ORIGIN_HTTP_PORT", "8080"),
            ("ORIGIN_HTTP_LISTEN", "127.0.0.1:8080"),
        ]);
        let all = derived(&env, || unreachable!("a resolver is given"));
        let out = render("${API_HOST} ${EDGE_RESOLVER} ${ORIGIN_HTTP_LISTEN}", &all);
        assert_eq!(out.unwrap(), "10.0.0.2:9090 127.0.0.11 127.0.0.1:8080");
        let out = render("server ${API_SERVERS};", &all).unwrap();
        assert_eq!(out, "server 10.0.0.2:9090 max_fails=1 fail_timeout=5s;");
    }

    #[test]
    fn several_api_instances() {
        let env = v(&[("API_URL", "http://a:9090, http://b:9091/")]);
        let all = derived(&env, || "r".into());
        assert_eq!(render("${API_HOST}", &all).unwrap(), "a:9090 b:9091");
        assert_eq!(
            render("server ${API_SERVERS};", &all).unwrap(),
            "server a:9090 max_fails=1 fail_timeout=5s;\n        \
             server b:9091 max_fails=1 fail_timeout=5s;"
        );
    }
}
