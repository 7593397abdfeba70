//! Shared pieces of the edge module's integration tests: origins (plain
//! nginx serving files), the edge nginx with the module, an HTTP client, and
//! a small fault-injecting HTTP server standing in for a broken API.

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rtmp_live_testkit::{free_port, http_common, main_block, metrics, Nginx};

/// A plain nginx serving `/<stream>/index.m3u8` and `/<stream>/1.ts`, whose
/// bodies name the origin, so responses tell which origin served them.
pub struct Origin {
    pub id: String,
    pub port: u16,
    pub nginx: Nginx,
}

impl Origin {
    pub fn start(id: &str, streams: &[&str]) -> Origin {
        let port = free_port();
        let streams: Vec<String> = streams.iter().map(|s| s.to_string()).collect();
        let id_owned = id.to_string();
        let nginx = Nginx::start(&format!("origin-{id}"), &[port], |dir| {
            for s in &streams {
                let d = dir.join("html").join(s);
                fs::create_dir_all(&d).unwrap();
                fs::write(
                    d.join("index.m3u8"),
                    format!("#EXTM3U\n# origin {id_owned}\n"),
                )
                .unwrap();
                fs::write(
                    d.join("1.ts"),
                    format!("segment from origin {id_owned}").repeat(1000),
                )
                .unwrap();
            }
            format!(
                "{}http {{\n{}\nserver {{ listen 127.0.0.1:{port}; root {}/html; }}\n}}\n",
                main_block(dir, 1, false),
                http_common(dir),
                dir.display()
            )
        });
        Origin {
            id: id.to_string(),
            port,
            nginx,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Options of the edge under test.
pub struct EdgeOpts {
    pub workers: usize,
    pub api: String,
    pub valid: &'static str,
    pub negative: &'static str,
    pub api_read_timeout: &'static str,
    /// `edge_router_origins`.
    pub origins: String,
    /// Extra directives of the routed location.
    pub extra: String,
    /// Extra directives of the http block (`{dir}` is the edge's folder).
    pub http_extra: String,
    /// Probe the allowed origins when the API cannot answer.
    pub probe: bool,
}

impl EdgeOpts {
    pub fn new(api: &str) -> EdgeOpts {
        EdgeOpts {
            workers: 1,
            api: api.to_string(),
            valid: "5s",
            negative: "1s",
            api_read_timeout: "3s",
            origins: "127.0.0.0/8".into(),
            extra: String::new(),
            http_extra: String::new(),
            probe: false,
        }
    }
}

pub struct Edge {
    pub port: u16,
    pub nginx: Nginx,
}

/// The edge's configuration: the module's documented example, with the API
/// lookups logged to `api.log` (one line per lookup that reached the API).
pub fn edge_conf(dir: &Path, port: u16, o: &EdgeOpts) -> String {
    let d = dir.display();
    format!(
        r#"{main}
http {{
    {common}
    edge_router_zone edge_routes 1m;
    {http_extra}
    upstream edge_origins {{
        edge_router_upstream;
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location ~ "^/([^/]+)/[^/]+$" {{
            edge_router $1;
            edge_router_api /_edge_router_api;
            edge_router_valid {valid};
            edge_router_negative {negative};
            edge_router_viewer_key $http_x_viewer;
            {origins}
            {probe}
            {extra}
            proxy_pass http://edge_origins;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 1s;
            proxy_next_upstream error timeout http_502 http_503;
            add_header X-Edge-Origin $edge_router_origin always;
            add_header X-Edge-Route $edge_router_cache always;
        }}
        location ^~ /_edge_router_api/ {{
            internal;
            proxy_pass http://{api}/streams/;
            proxy_pass_request_headers off;
            proxy_pass_request_body off;
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_connect_timeout 1s;
            proxy_read_timeout {rt};
            log_subrequest on;
            access_log {d}/api.log;
        }}
        location ^~ /_edge_router_probe/ {{
            internal;
            rewrite ^/_edge_router_probe(/.*)$ $1 break;
            proxy_pass http://edge_origins;
            proxy_method HEAD;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_connect_timeout 500ms;
            proxy_read_timeout 1s;
            proxy_next_upstream off;
            log_subrequest on;
            access_log {d}/probe.log;
        }}
        location = /metrics {{ edge_router_metrics; }}
        location / {{ return 404; }}
    }}
}}
"#,
        main = rtmp_live_testkit::main_block(dir, o.workers, true),
        common = http_common(dir),
        valid = o.valid,
        negative = o.negative,
        api = o.api,
        rt = o.api_read_timeout,
        origins = if o.origins.is_empty() {
            String::new()
        } else {
            format!("edge_router_origins {};", o.origins)
        },
        extra = o.extra,
        probe = if o.probe {
            "edge_router_probe /_edge_router_probe;"
        } else {
            ""
        },
        http_extra = o.http_extra.replace("{dir}", &d.to_string()),
    )
}

impl Edge {
    pub fn start(o: &EdgeOpts) -> Edge {
        let port = free_port();
        let nginx = Nginx::start("edge", &[port], |dir| edge_conf(dir, port, o));
        Edge { port, nginx }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The module's metrics as (series, value) samples.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        metrics::parse(&metrics::scrape(&self.url("/metrics")))
    }

    /// One metric's value (0 when absent).
    pub fn metric(&self, series: &str) -> f64 {
        metrics::value(&metrics::scrape(&self.url("/metrics")), series).unwrap_or(0.0)
    }

    /// Origin probes so far.
    pub fn probes(&self) -> usize {
        fs::read_to_string(self.nginx.dir().join("probe.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// Lookups that went to the API so far.
    pub fn lookups(&self) -> usize {
        fs::read_to_string(self.nginx.dir().join("api.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

pub struct Resp {
    pub status: u16,
    pub origin: String,
    pub route: String,
    pub body: String,
}

/// The tests' HTTP client (the testkit's: 10 s timeout).
pub fn client() -> reqwest::blocking::Client {
    rtmp_live_testkit::http::client()
}

pub fn get(c: &reqwest::blocking::Client, url: &str, viewer: &str) -> Resp {
    let r = c
        .get(url)
        .header("X-Viewer", viewer)
        .send()
        .expect("request");
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (origin, route) = (h("x-edge-origin"), h("x-edge-route"));
    let status = r.status().as_u16();
    Resp {
        status,
        origin,
        route,
        body: r.text().unwrap_or_default(),
    }
}

/// Registers `host` as an origin of `name` at the real API.
pub fn register(c: &reqwest::blocking::Client, api: &str, name: &str, host: &str) {
    let body = serde_json::json!({"name": name, "manifest": "index.m3u8", "host": host});
    let r = c
        .post(format!("{api}/streams"))
        .json(&body)
        .send()
        .expect("POST /streams");
    assert!(
        r.status().is_success(),
        "register {name}@{host}: {}",
        r.status()
    );
}

pub fn deregister(c: &reqwest::blocking::Client, api: &str, name: &str, host: &str) {
    let r = c
        .delete(format!("{api}/streams/{name}?host={host}"))
        .send()
        .expect("DELETE");
    assert!(r.status().is_success(), "deregister: {}", r.status());
}

/// What the fault-injecting API does for a path.
pub type Behaviour = Arc<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

/// A minimal HTTP/1.0-style server for fault injection: each connection gets
/// the raw bytes `behaviour(path)` returns, then is closed. Counts requests.
pub struct FaultApi {
    pub addr: String,
    pub hits: Arc<AtomicUsize>,
}

impl FaultApi {
    pub fn start(behaviour: Behaviour) -> FaultApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let b = behaviour.clone();
                let h = h.clone();
                std::thread::spawn(move || serve(&mut conn, &b, &h));
            }
        });
        FaultApi { addr, hits }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn serve(conn: &mut TcpStream, b: &Behaviour, hits: &AtomicUsize) {
    let mut buf = [0u8; 4096];
    let mut req = Vec::new();
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let line = String::from_utf8_lossy(&req);
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let _ = conn.write_all(&b(&path));
}

/// A complete HTTP response with a JSON body.
pub fn http_response(status: u16, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

pub fn stream_json(name: &str, hosts: &[&str]) -> Vec<u8> {
    let origins: Vec<_> = hosts
        .iter()
        .map(|h| serde_json::json!({"host": h, "manifest": "index.m3u8"}))
        .collect();
    serde_json::json!({"name": name, "manifest": "index.m3u8", "host": hosts[0], "origins": origins})
        .to_string()
        .into_bytes()
}
