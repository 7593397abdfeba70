//! Every environment variable a service reads (`#[arg(env = "...")]` in the
//! API, discovery, LL-HLS, ABR ladder and platform sources) is documented: in
//! `docs/configuration.md`, or for the LL-HLS component's own tuning in
//! `llhls/README.md`. A variable added without its line fails here.

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
}

/// The `env = "NAME"` of every `.rs` file under `dir`.
fn variables(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            variables(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("a source file");
            for rest in text.split("env = \"").skip(1) {
                if let Some(name) = rest.split('"').next() {
                    out.insert(name.to_string());
                }
            }
        }
    }
}

#[test]
fn every_service_variable_is_documented() {
    let mut vars = BTreeSet::new();
    for crate_dir in [
        "api/src",
        "discovery/src",
        "llhls/src",
        "abr/src",
        "platform/src",
    ] {
        variables(&root().join(crate_dir), &mut vars);
    }
    assert!(
        vars.len() > 40,
        "found only {} variables: the scan is broken",
        vars.len()
    );
    let docs = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap()
        + &std::fs::read_to_string(root().join("llhls/README.md")).unwrap();
    let missing: Vec<&String> = vars
        .iter()
        .filter(|v| !docs.contains(&format!("`{v}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/configuration.md (or llhls/README.md): {missing:?}"
    );
}
