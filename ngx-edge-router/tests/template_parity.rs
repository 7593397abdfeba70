//! The edge configs written by hand - these tests' own (`common::edge_conf`),
//! `scripts/bench-edge.sh`'s and the README examples - keep the focused,
//! minimal shape that makes each test readable, but must mean what the
//! platform's one `nginx/edge.conf.template` means:
//!
//! - every `edge_router*` directive is one the module documents, used in a
//!   context the documentation allows;
//! - the internal API location (the `edge_router_api` prefix) and the probe
//!   location (`edge_router_probe`) make the same request as the
//!   template's: same `internal`, `rewrite`, `proxy_method`,
//!   `proxy_pass_request_*`, `proxy_next_upstream`, and a `proxy_pass` to
//!   the same path (the API) or to the `edge_router_upstream` upstream (the
//!   probes);
//! - every `proxy_pass` of a routed location goes to the
//!   `edge_router_upstream` upstream.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{edge_conf, EdgeOpts};
use rtmp_live_testkit::nginx_conf::{parse, walk, Directive};
use rtmp_live_testkit::workspace_root;

/// Directives of an internal location that decide what is asked, and of
/// whom.
const MEANING: &[&str] = &[
    "internal",
    "rewrite",
    "proxy_pass",
    "proxy_method",
    "proxy_pass_request_headers",
    "proxy_pass_request_body",
    "proxy_next_upstream",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap()
}

fn template() -> Vec<Directive> {
    parse(&read("nginx/edge.conf.template")).expect("template parses")
}

/// The module README's directives with their allowed contexts.
fn documented() -> BTreeMap<String, Vec<String>> {
    let text = read("ngx-edge-router/README.md");
    let mut out = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("### ") {
            current = Some(name.trim().to_string());
        } else if let Some(ctx) = line.trim().strip_prefix("Context:") {
            if let Some(name) = current.take() {
                let ctx = ctx.split(',').map(|c| c.trim().to_string()).collect();
                out.insert(name, ctx);
            }
        }
    }
    assert!(
        out.contains_key("edge_router"),
        "README directives: {out:?}"
    );
    out
}

/// The ```nginx blocks of a markdown file.
fn nginx_blocks(path: &str) -> Vec<String> {
    let text = read(path);
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        match (&mut cur, line.trim()) {
            (None, "```nginx") => cur = Some(String::new()),
            (Some(_), "```") => out.push(cur.take().unwrap()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// Names of the upstreams whose peers the module chooses.
fn router_upstreams(conf: &[Directive]) -> Vec<String> {
    walk(conf)
        .into_iter()
        .filter(|(_, d)| d.name == "upstream")
        .filter(|(_, d)| {
            d.children()
                .iter()
                .any(|c| c.name == "edge_router_upstream")
        })
        .filter_map(|(_, d)| d.args.first().cloned())
        .collect()
}

/// A directive's arguments with `proxy_pass` targets made comparable: the
/// router's upstream, or any other host (the API's address differs per
/// config), followed by the path.
fn meaning(d: &Directive, upstreams: &[String]) -> String {
    if d.name != "proxy_pass" {
        return format!("{} {}", d.name, d.args.join(" "))
            .trim()
            .to_string();
    }
    let url = d.args.first().map(String::as_str).unwrap_or("");
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = if upstreams.iter().any(|u| u == host) {
        "<edge_router_upstream>"
    } else {
        "<host>"
    };
    format!("proxy_pass {host}{path}")
}

/// The `location ^~ <prefix>/` block.
fn internal_location<'a>(conf: &'a [Directive], prefix: &str) -> Option<&'a Directive> {
    let want = format!("{}/", prefix.trim_end_matches('/'));
    walk(conf)
        .into_iter()
        .map(|(_, d)| d)
        .find(|d| d.name == "location" && d.args == ["^~", want.as_str()])
}

/// The argument of the first `name` directive.
fn arg_of(conf: &[Directive], name: &str) -> Option<String> {
    walk(conf)
        .into_iter()
        .find(|(_, d)| d.name == name)
        .and_then(|(_, d)| d.args.first().cloned())
}

/// Differences between `loc` and the template's `tmpl_loc` in [`MEANING`].
fn same_request(
    what: &str,
    loc: &Directive,
    ups: &[String],
    tmpl_loc: &Directive,
    tmpl_ups: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    let ours: Vec<String> = loc.children().iter().map(|d| meaning(d, ups)).collect();
    for t in tmpl_loc.children() {
        if !MEANING.contains(&t.name.as_str()) {
            continue;
        }
        let want = meaning(t, tmpl_ups);
        // `rewrite` differs only by the location's prefix.
        let found = ours.iter().any(|o| o == &want)
            || (t.name == "rewrite" && ours.iter().any(|o| o.starts_with("rewrite ")));
        if !found {
            problems.push(format!("{what}: missing `{want}` (has {ours:?})"));
        }
    }
    problems
}

/// Everything in `conf` that does not mean what the template means.
fn check(conf: &[Directive], ups: &[String]) -> Vec<String> {
    let docs = documented();
    let tmpl = template();
    let tmpl_ups = router_upstreams(&tmpl);
    let mut problems = Vec::new();
    for (path, d) in walk(conf) {
        if !d.name.starts_with("edge_router") {
            continue;
        }
        let Some(ctx) = docs.get(&d.name) else {
            problems.push(format!("{} is not a documented directive", d.name));
            continue;
        };
        let parent = path
            .iter()
            .rev()
            .find(|p| ["http", "server", "location", "upstream"].contains(p))
            .copied()
            .unwrap_or("location"); // a location snippet
        if !ctx.iter().any(|c| c == parent) {
            problems.push(format!("{} in {parent} (allowed: {ctx:?})", d.name));
        }
    }
    for (directive, tmpl_prefix) in [
        ("edge_router_api", "/_edge_router_api"),
        ("edge_router_probe", "/_edge_router_probe"),
    ] {
        let Some(prefix) = arg_of(conf, directive) else {
            continue;
        };
        let tmpl_loc = internal_location(&tmpl, tmpl_prefix).expect("template location");
        match internal_location(conf, &prefix) {
            Some(loc) => problems.extend(same_request(directive, loc, ups, tmpl_loc, &tmpl_ups)),
            None => problems.push(format!("no `location ^~ {prefix}/` for {directive}")),
        }
    }
    for (_, d) in walk(conf) {
        let routed = d.name == "location" && d.children().iter().any(|c| c.name == "edge_router");
        if !routed {
            continue;
        }
        for (_, p) in walk(d.children()) {
            if p.name == "proxy_pass" && meaning(p, ups) != "proxy_pass <edge_router_upstream>" {
                problems.push(format!("routed location: {}", meaning(p, ups)));
            }
        }
    }
    problems
}

fn check_full(what: &str, text: &str) {
    let conf = parse(text).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
    assert!(
        walk(&conf).iter().any(|(_, d)| d.name == "edge_router"),
        "{what}: no edge_router"
    );
    let problems = check(&conf, &router_upstreams(&conf));
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
}

#[test]
fn the_template_means_what_the_module_documents() {
    let t = template();
    let problems = check(&t, &router_upstreams(&t));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_tests_edge_config_means_what_the_template_means() {
    let dir = tempfile::tempdir().unwrap();
    for probe in [false, true] {
        let mut o = EdgeOpts::new("127.0.0.1:9");
        o.probe = probe;
        check_full(
            &format!("tests (probe {probe})"),
            &edge_conf(dir.path(), 1, &o),
        );
    }
}

#[test]
fn the_benchmarks_edge_config_means_what_the_template_means() {
    let out = Command::new(workspace_root().join("scripts/bench-edge.sh"))
        .env("PRINT_EDGE_CONF", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_full(
        "scripts/bench-edge.sh",
        &String::from_utf8_lossy(&out.stdout),
    );
}

#[test]
fn the_readme_examples_mean_what_the_template_means() {
    let blocks = nginx_blocks("ngx-edge-router/README.md");
    let full: Vec<&String> = blocks.iter().filter(|b| b.contains("http {")).collect();
    assert!(!full.is_empty(), "no full example in the README");
    for b in &full {
        check_full("ngx-edge-router/README.md", b);
    }
    // Location snippets, with the example's upstreams.
    let ups = router_upstreams(&parse(full[0]).unwrap());
    let tmpl = template();
    let tmpl_ups = router_upstreams(&tmpl);
    let mut snippets = 0;
    for b in blocks.iter().filter(|b| !b.contains("http {")) {
        let conf = parse(b).unwrap_or_else(|e| panic!("README snippet: {e}\n{b}"));
        assert!(check(&conf, &ups).is_empty(), "{b}");
        for loc in conf.iter().filter(|d| d.name == "location") {
            let prefix = loc.args.last().cloned().unwrap_or_default();
            if let Some(t) = internal_location(&tmpl, &prefix) {
                let problems = same_request(&prefix, loc, &ups, t, &tmpl_ups);
                assert!(problems.is_empty(), "{}", problems.join("\n"));
                snippets += 1;
            }
        }
    }
    assert!(snippets >= 1, "the probe location snippet was not found");
}

#[test]
fn a_config_that_means_something_else_is_caught() {
    let t = template();
    let ups = router_upstreams(&t);
    let bad = parse(
        "http { edge_router_zone z 1m; upstream u { edge_router_upstream; }
         server { location / { edge_router $1; edge_router_api /_a; proxy_pass http://other; }
                  location ^~ /_a/ { internal; proxy_pass http://api/lookup/; }
                  location = /m { edge_router_zone y 1m; edge_router_nonsense; } } }",
    )
    .unwrap();
    let problems = check(&bad, &router_upstreams(&bad));
    let text = problems.join("\n");
    for expected in [
        "edge_router_zone in location",
        "edge_router_nonsense is not a documented directive",
        "missing `proxy_pass <host>/streams/`",
        "missing `proxy_pass_request_body off`",
        "routed location: proxy_pass <host>",
    ] {
        assert!(text.contains(expected), "{expected} not in:\n{text}");
    }
    assert!(!ups.is_empty());
}
