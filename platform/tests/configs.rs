//! The topology's configs: rendered by the Rust renderer exactly as
//! `scripts/render-conf.sh` (the containers' renderer) renders them, and
//! accepted by `nginx -t` (Debian's nginx, nginx-rtmp, the built edge
//! module).

use std::path::{Path, PathBuf};
use std::process::Command;

use rtmp_live_platform::topology::{Credentials, EdgeSettings};
use rtmp_live_platform::{render, Ports, Settings, Topology};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `target/<profile>` of this test binary.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn topology(state: &Path, origins: usize, abr: bool, llhls: bool) -> Topology {
    Topology::new(Settings {
        ports: Ports::default(),
        internal_bind: "127.0.0.1".parse().unwrap(),
        origins,
        abr,
        llhls,
        root: root(),
        bin_dir: bin_dir(),
        state_dir: state.to_path_buf(),
        nginx: "/usr/sbin/nginx".into(),
        nginx_user: "root".into(),
        rtmp_module: "/usr/lib/nginx/modules/ngx_rtmp_module.so".into(),
        edge_module: bin_dir().join("libngx_edge_router.so"),
        player_dir: root().join("player"),
        edge: EdgeSettings::default(),
        credentials: Credentials {
            report_token: "t".into(),
            stream_keys: "k".into(),
            redis_password: "redis-test-password".into(),
        },
    })
}

/// `scripts/render-conf.sh template` with exactly `vars` in its environment.
fn render_with_script(template: &Path, vars: &[(String, String)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.conf");
    let st = Command::new(root().join("scripts/render-conf.sh"))
        .arg(template)
        .arg(&out)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .status()
        .unwrap();
    assert!(st.success(), "render-conf.sh {}", template.display());
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn both_renderers_agree_on_every_config_of_the_topology() {
    let mut seen = std::collections::BTreeSet::new();
    for (abr, llhls) in [(false, false), (false, true), (true, false), (true, true)] {
        let state = tempfile::tempdir().unwrap();
        let t = topology(state.path(), 2, abr, llhls);
        for p in t.processes() {
            for c in &p.configs {
                let text = std::fs::read_to_string(&c.template).unwrap();
                let ours = render(&text, &c.vars).unwrap();
                let script = render_with_script(&c.template, &c.vars);
                assert_eq!(ours, script, "{} ({})", c.template.display(), p.name);
                assert!(!ours.contains("${"), "{}", c.template.display());
                seen.insert(c.template.file_name().unwrap().to_owned());
            }
        }
    }
    // Every template of nginx/ belongs to the topology.
    let all: std::collections::BTreeSet<_> = std::fs::read_dir(root().join("nginx"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().ends_with(".template"))
        .collect();
    assert_eq!(seen, all);
}

#[test]
fn both_renderers_refuse_a_missing_variable() {
    let state = tempfile::tempdir().unwrap();
    let t = topology(state.path(), 1, false, false);
    let edge = t.processes().pop().unwrap();
    let c = &edge.configs[0];
    let vars: Vec<_> = c
        .vars
        .iter()
        .filter(|(k, _)| k != "EDGE_PORT")
        .cloned()
        .collect();
    let text = std::fs::read_to_string(&c.template).unwrap();
    assert_eq!(render(&text, &vars).unwrap_err().missing, ["EDGE_PORT"]);
    let out = Command::new(root().join("scripts/render-conf.sh"))
        .arg(&c.template)
        .arg(state.path().join("x.conf"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("EDGE_PORT is not set"));
}

#[test]
fn every_config_of_the_topology_passes_nginx_t() {
    for (abr, llhls) in [(false, false), (false, true), (true, false), (true, true)] {
        let state = tempfile::tempdir().unwrap();
        let t = topology(state.path(), 2, abr, llhls);
        let mut checked = 0;
        for p in t.processes() {
            for d in p.fresh_dirs.iter().chain(&p.dirs) {
                std::fs::create_dir_all(d).unwrap();
            }
            for c in &p.configs {
                let text = std::fs::read_to_string(&c.template).unwrap();
                std::fs::write(&c.out, render(&text, &c.vars).unwrap()).unwrap();
            }
            if let Some(check) = &p.check {
                let out = Command::new(&p.program).args(check).output().unwrap();
                assert!(
                    out.status.success(),
                    "{}: {}",
                    p.name,
                    String::from_utf8_lossy(&out.stderr)
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 3, "two origins and the edge");
    }
}

/// Only RTMP ingest and the edge listen beyond loopback by default; the
/// API and the origins' HTTP follow INTERNAL_BIND (edges and origins on
/// other hosts), and everything this run's parts connect to follows it.
/// Redis's password is on no command line.
#[test]
fn internal_services_listen_on_the_internal_address() {
    let state = tempfile::tempdir().unwrap();
    let t = topology(state.path(), 2, true, true);
    let env = |name: &str, var: &str| -> String {
        let p = t.processes().into_iter().find(|p| p.name == name).unwrap();
        p.env.iter().find(|(k, _)| k == var).unwrap().1.clone()
    };
    let conf = |name: &str| -> String {
        let p = t.processes().into_iter().find(|p| p.name == name).unwrap();
        let c = p.configs.last().unwrap();
        render(&std::fs::read_to_string(&c.template).unwrap(), &c.vars).unwrap()
    };
    assert_eq!(env("api", "API_LISTEN"), "127.0.0.1:9090");
    let origin = conf("origin2");
    assert!(origin.contains("listen 127.0.0.1:8090;"), "{origin}");
    assert!(origin.contains("listen 1936;"), "RTMP ingest is public");
    assert!(conf("edge").contains("listen 8081;"), "the edge is public");
    let redis = t
        .processes()
        .into_iter()
        .find(|p| p.name == "redis")
        .unwrap();
    assert!(
        !redis.args.iter().any(|a| a.contains("redis-test-password")),
        "{:?}",
        redis.args
    );
    assert_eq!(
        redis.private_files[0].1,
        "requirepass redis-test-password\n"
    );
    assert_eq!(env("api", "REDIS_PASSWORD"), "redis-test-password");

    let mut t = topology(state.path(), 1, false, false);
    t.settings.internal_bind = "10.1.2.3".parse().unwrap();
    let env = |name: &str, var: &str| -> String {
        let p = t.processes().into_iter().find(|p| p.name == name).unwrap();
        p.env.iter().find(|(k, _)| k == var).unwrap().1.clone()
    };
    assert_eq!(env("api", "API_LISTEN"), "10.1.2.3:9090");
    assert_eq!(
        env("discovery1", "DISCOVERY_API_URL"),
        "http://10.1.2.3:9090"
    );
    assert_eq!(env("discovery1", "ADVERTISE_HOST"), "10.1.2.3:8080");
    assert_eq!(env("discovery1", "DISCOVERY_LISTEN"), "127.0.0.1:9091");
    assert_eq!(t.edge_origins(), "10.1.2.3:8080");
    // Every interface: this run's parts still connect over loopback.
    t.settings.internal_bind = "0.0.0.0".parse().unwrap();
    assert_eq!(t.api_url(), "http://127.0.0.1:9090");
    assert_eq!(t.internal_listen(9090), "0.0.0.0:9090");
}
