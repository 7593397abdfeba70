//! The Docker path uses the same nginx/ templates as the native one: they
//! render with the containers' settings and pass `nginx -t` (Debian's nginx,
//! nginx-rtmp, the built edge module); docker-compose.yml parses.

use std::path::Path;
use std::process::Command;

use rtmp_live_testkit::{edge_module, render_template, workspace_root};

fn nginx_t(dir: &Path, conf: &Path) {
    let out = Command::new("/usr/sbin/nginx")
        .args(["-t", "-p"])
        .arg(dir)
        .arg("-c")
        .arg(conf)
        .args(["-e", "stderr"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {text}", conf.display());
}

#[test]
fn origin_templates_render_and_pass_nginx_t() {
    let combos = ["origin-hls.conf.template", "origin-abr.conf.template"]
        .into_iter()
        .flat_map(|p| ["origin-files.conf.template", "origin-llhls.conf.template"].map(|h| (p, h)));
    for (packaging, hls_http) in combos {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let env = [
            (
                "RTMP_MODULE",
                "/usr/lib/nginx/modules/ngx_rtmp_module.so".to_string(),
            ),
            ("NGINX_USER", "root".to_string()),
            ("ORIGIN_DIR", dir.display().to_string()),
            (
                "ORIGIN_PACKAGING",
                dir.join("packaging.conf").display().to_string(),
            ),
            (
                "ORIGIN_HLS_HTTP",
                dir.join("hls-http.conf").display().to_string(),
            ),
            (
                "ORIGIN_RENDITIONS",
                dir.join("renditions.conf").display().to_string(),
            ),
            ("ABR_LADDER_BIN", "/usr/local/bin/rtmp-live-abr".to_string()),
            ("RTMP_PORT", "1935".to_string()),
            ("ORIGIN_HTTP_PORT", "8080".to_string()),
            ("RTMP_STAT_PORT", "8088".to_string()),
            ("RTMP_PACKAGING_PORT", "8089".to_string()),
            ("LLHLS_PORT", "9092".to_string()),
            ("API_URL", "http://127.0.0.1:9090".to_string()),
            (
                "AUTHORIZE_URL",
                "http://127.0.0.1:9091/authorize".to_string(),
            ),
            ("HLS_PATH", dir.join("hls").display().to_string()),
            ("HLS_PLAYLIST_LENGTH", "1800s".to_string()),
            (
                "RECORDINGS_PATH",
                dir.join("recordings").display().to_string(),
            ),
        ];
        render_template(packaging, &dir.join("packaging.conf"), &env);
        render_template(hls_http, &dir.join("hls-http.conf"), &env);
        if packaging == "origin-abr.conf.template" {
            std::fs::create_dir_all(dir.join("rtmp.d")).unwrap();
            render_template(
                "origin-hls.conf.template",
                &dir.join("renditions.conf"),
                &env,
            );
            render_template(
                "origin-abr-app.conf.template",
                &dir.join("rtmp.d/abr.conf"),
                &env,
            );
        }
        render_template("origin.conf.template", &dir.join("nginx.conf"), &env);
        nginx_t(dir, &dir.join("nginx.conf"));
        let text = std::fs::read_to_string(dir.join("nginx.conf")).unwrap();
        assert!(text.contains("rtmp.d/*.conf"), "{text}");
    }
}

#[test]
fn edge_template_renders_and_passes_nginx_t() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let env = [
        ("EDGE_MODULE", edge_module().display().to_string()),
        ("NGINX_USER", "root".to_string()),
        ("STATE_DIR", dir.display().to_string()),
        ("EDGE_PORT", "8081".to_string()),
        ("API_URL", "http://127.0.0.1:9090".to_string()),
        ("EDGE_WORKERS", "auto".to_string()),
        ("EDGE_VIEWER_KEY", "$remote_addr".to_string()),
        ("EDGE_ROUTE_VALID", "5s".to_string()),
        ("EDGE_ROUTE_NEGATIVE", "1s".to_string()),
        ("EDGE_ROUTE_STALE", "15m".to_string()),
        ("EDGE_ROUTE_GRACE", "8s".to_string()),
        ("EDGE_ORIGINS", "10.0.0.0/8 127.0.0.1:8080".to_string()),
        ("EDGE_DEBUG_HEADERS", "0".to_string()),
        ("EDGE_CORS_ORIGIN", "*".to_string()),
        (
            "PLAYER_DIR",
            workspace_root().join("player").display().to_string(),
        ),
        ("EDGE_PLAYBACK_SIGNED", "off".to_string()),
        (
            "EDGE_PLAYBACK_SECRET_FILE",
            dir.join("playback-secret").display().to_string(),
        ),
        ("EDGE_API_TOKEN", "configs-test-edge-token".to_string()),
    ];
    std::fs::write(
        dir.join("playback-secret"),
        "0123456789abcdef0123456789abcdef",
    )
    .unwrap();
    render_template("edge.conf.template", &dir.join("edge.conf"), &env);
    nginx_t(dir, &dir.join("edge.conf"));
}

#[test]
fn render_refuses_missing_variables() {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(rtmp_live_testkit::artifact("rtmp-live-render"))
        .arg("file")
        .arg(workspace_root().join("nginx/edge.conf.template"))
        .arg(d.path().join("x.conf"))
        .env_remove("EDGE_PORT")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not set: "));
}

#[test]
fn compose_file_parses_without_an_engine() {
    let compose = |creds: bool| {
        let mut cmd = Command::new("docker-compose");
        cmd.current_dir(workspace_root())
            .args(["-f", "docker-compose.yml", "config"])
            .env_remove("API_REPORT_TOKEN")
            .env_remove("REDIS_PASSWORD")
            .env_remove("STREAM_KEYS")
            .env_remove("API_EDGE_TOKEN");
        if creds {
            cmd.env("API_REPORT_TOKEN", "compose-test-token-0123456789")
                .env("REDIS_PASSWORD", "compose-test-redis-0123456789")
                .env("STREAM_KEYS", "compose-test-key-0123456789=golive")
                .env("API_EDGE_TOKEN", "compose-test-edge-0123456789");
        }
        cmd.output()
            .expect("docker-compose (Debian package docker-compose, installed by scripts/deps.sh)")
    };
    // No credentials in the environment (nor a local .env): refused.
    if !workspace_root().join(".env").exists() {
        let out = compose(false);
        assert!(
            !out.status.success(),
            "compose must refuse to start without credentials"
        );
    }
    let out = compose(true);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The services are the keys of the `services:` map (two-space indent),
    // not any line that happens to contain "api:" (URLs do).
    let mut in_services = false;
    let mut services = Vec::new();
    let mut published = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') {
            in_services = line == "services:";
            continue;
        }
        if in_services {
            if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
                if !name.starts_with(' ') {
                    services.push(name.to_string());
                }
            }
            if let Some(port) = line.trim().strip_prefix("- published: ") {
                published.push(port.trim_matches(|c| c == '\'' || c == '"').to_string());
            }
        }
    }
    services.sort();
    assert_eq!(services, ["api", "edge", "origin", "redis"]);
    // Only RTMP ingest and the edge are published; the API, Redis and the
    // origin's HTTP stay on the compose network.
    published.sort();
    assert_eq!(published, ["1935", "8081"], "{text}");
    // The edge contacts exactly the origins (their service name and port,
    // resolved to exact addresses by its entrypoint), never a network.
    assert!(text.contains("EDGE_ORIGINS: origin:8080"), "{text}");
    // Redis needs a password, and gets it on no command line.
    assert!(text.contains("requirepass $$REDIS_PASSWORD"), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.contains("redis-server") && l.contains("compose-test-redis")),
        "{text}"
    );
    // Without REDIS_PASSWORD compose refuses to start, like without the token.
    let mut cmd = Command::new("docker-compose");
    cmd.current_dir(workspace_root())
        .args(["-f", "docker-compose.yml", "config"])
        .env("API_REPORT_TOKEN", "compose-test-token-0123456789")
        .env("STREAM_KEYS", "compose-test-key-0123456789=golive")
        .env_remove("REDIS_PASSWORD");
    if !workspace_root().join(".env").exists() {
        let out = cmd.output().unwrap();
        assert!(
            !out.status.success(),
            "compose must refuse to start without REDIS_PASSWORD"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("REDIS_PASSWORD"));
    }
}
