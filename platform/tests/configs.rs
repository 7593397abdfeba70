//! The topology's configs: the containers' renderer (`rtmp-live-render`,
//! variables from its environment) writes exactly what `make up` writes,
//! and `nginx -t` (Debian's nginx, nginx-rtmp, the built edge module)
//! accepts them.

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
        replicas: 2,
        redis_replicas: 0,
        apis: 1,
        abr,
        llhls,
        dvr_window: std::time::Duration::from_secs(1200),
        recording_retention: std::time::Duration::from_secs(3600),
        recording_max_bytes: 1 << 30,
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
            edge_token: "edge-test-token".into(),
            operator_token: "operator-test-token".into(),
            playback_secret_file: state.join("playback-secret"),
        },
    })
}

/// `rtmp-live-render` with `args` and exactly `vars` in its environment.
fn render_bin(args: &[&std::ffi::OsStr], vars: &[(String, String)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rtmp-live-render"))
        .args(args)
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

#[test]
fn the_containers_renderer_writes_what_make_up_writes() {
    let mut seen = std::collections::BTreeSet::new();
    for (abr, llhls) in [(false, false), (false, true), (true, false), (true, true)] {
        let state = tempfile::tempdir().unwrap();
        let t = topology(state.path(), 2, abr, llhls);
        for p in t.processes() {
            for c in &p.configs {
                let text = std::fs::read_to_string(&c.template).unwrap();
                let ours = render(&text, &c.vars).unwrap();
                assert!(!ours.contains("${"), "{}", c.template.display());
                seen.insert(c.template.file_name().unwrap().to_owned());
                // one template, as the edge container renders its config
                let out = state.path().join("file.conf");
                let o = render_bin(
                    &["file".as_ref(), c.template.as_os_str(), out.as_os_str()],
                    &c.vars,
                );
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                let theirs = std::fs::read_to_string(&out).unwrap();
                assert_eq!(ours, theirs, "{} ({})", c.template.display(), p.name);
            }
            // a whole origin, as the origin container renders it: the same
            // templates chosen, the same bytes in the same files
            if let Some(k) = p.name.strip_prefix("origin") {
                let dir = state.path().join(format!("container{k}"));
                let mut vars = p.configs[0].vars.clone();
                vars.push(("ABR".into(), if abr { "1" } else { "0" }.into()));
                vars.push(("LLHLS".into(), if llhls { "1" } else { "0" }.into()));
                vars.push(("DVR_WINDOW".into(), "20m".into()));
                let templates = root().join("nginx");
                let o = render_bin(
                    &["origin".as_ref(), templates.as_os_str(), dir.as_os_str()],
                    &vars,
                );
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                let origin_dir = p
                    .configs
                    .last()
                    .unwrap()
                    .out
                    .parent()
                    .unwrap()
                    .to_path_buf();
                let mut written: Vec<_> = walk(&dir)
                    .into_iter()
                    .map(|f| f.strip_prefix(&dir).unwrap().to_path_buf())
                    .collect();
                let mut want: Vec<_> = p
                    .configs
                    .iter()
                    .map(|c| c.out.strip_prefix(&origin_dir).unwrap().to_path_buf())
                    .collect();
                written.sort();
                want.sort();
                assert_eq!(written, want, "origin{k} abr={abr} llhls={llhls}");
                // the DVR window is nginx-rtmp's playlist only without
                // the LL-HLS component (which keeps it otherwise)
                let hls = if abr {
                    "renditions.conf"
                } else {
                    "packaging.conf"
                };
                let packaging = std::fs::read_to_string(dir.join(hls)).unwrap();
                let length = if llhls { "8s" } else { "1200s" };
                let wanted = format!("hls_playlist_length {length};");
                assert!(packaging.contains(&wanted), "{packaging}");
                for c in &p.configs {
                    let rel = c.out.strip_prefix(&origin_dir).unwrap();
                    let text = std::fs::read_to_string(&c.template).unwrap();
                    assert_eq!(
                        std::fs::read_to_string(dir.join(rel)).unwrap(),
                        render(&text, &c.vars).unwrap(),
                        "{}",
                        rel.display()
                    );
                }
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

/// The files under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
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
    let out = state.path().join("x.conf");
    let o = render_bin(
        &["file".as_ref(), c.template.as_os_str(), out.as_os_str()],
        &vars,
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not set: EDGE_PORT"));
    assert!(!out.exists());
}

#[test]
fn every_config_of_the_topology_passes_nginx_t() {
    for (abr, llhls) in [(false, false), (false, true), (true, false), (true, true)] {
        let state = tempfile::tempdir().unwrap();
        let t = topology(state.path(), 2, abr, llhls);
        // written by `rtmp-live-up` before anything starts
        std::fs::write(
            &t.settings.credentials.playback_secret_file,
            "0123456789abcdef0123456789abcdef",
        )
        .unwrap();
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
