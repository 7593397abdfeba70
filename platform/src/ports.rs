//! The platform's ports: one base per kind, given by flag or environment
//! variable (the names `make up` documents). Per-origin kinds step by a
//! fixed stride: origin *k* (1-based) listens on `base + stride * (k - 1)`.

/// Stride between origins of the per-origin HTTP-style ports (origin 2's
/// HTTP port is `ORIGIN_HTTP_PORT + 10`); RTMP steps by 1.
pub const ORIGIN_STRIDE: u16 = 10;

/// Redis's port and, with `REDIS_REPLICAS`, its replicas' (`REDIS_PORT`+1..)
/// and the three sentinels' (`REDIS_PORT`+10..): offsets from `REDIS_PORT`,
/// reserved together when tests pick free ports.
pub const REDIS_OFFSETS: [u16; 7] = [0, 1, 2, 3, 10, 11, 12];
/// API instances at most (`APIS`): on `API_PORT`, `API_PORT`+1, ...
pub const MAX_APIS: usize = 3;
/// Replicas at most (`REDIS_REPLICAS`).
pub const MAX_REDIS_REPLICAS: usize = 3;

/// The base ports of a run.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct Ports {
    /// Redis (loopback only).
    #[arg(long = "redis-port", env = "REDIS_PORT", default_value_t = 6379)]
    pub redis: u16,
    /// The API.
    #[arg(long = "api-port", env = "API_PORT", default_value_t = 9090)]
    pub api: u16,
    /// The edge (viewers).
    #[arg(long = "edge-port", env = "EDGE_PORT", default_value_t = 8081)]
    pub edge: u16,
    /// RTMP ingest of origin 1 (origin k: +k-1).
    #[arg(long = "rtmp-port", env = "RTMP_PORT", default_value_t = 1935)]
    pub rtmp: u16,
    /// HLS over HTTP of origin 1 (origin k: +10*(k-1)).
    #[arg(
        long = "origin-http-port",
        env = "ORIGIN_HTTP_PORT",
        default_value_t = 8080
    )]
    pub origin_http: u16,
    /// nginx-rtmp statistics of origin 1, loopback (origin k: +10*(k-1)).
    #[arg(
        long = "rtmp-stat-port",
        env = "RTMP_STAT_PORT",
        default_value_t = 8088
    )]
    pub rtmp_stat: u16,
    /// Discovery of origin 1, loopback (origin k: +10*(k-1)).
    #[arg(
        long = "discovery-port",
        env = "DISCOVERY_PORT",
        default_value_t = 9091
    )]
    pub discovery: u16,
    /// The LL-HLS playlist component of origin 1, loopback (origin k:
    /// +10*(k-1)).
    #[arg(long = "llhls-port", env = "LLHLS_PORT", default_value_t = 9092)]
    pub llhls: u16,
    /// nginx-rtmp's packaging applications of origin 1, loopback (origin
    /// k: +10*(k-1)): what the ingest relays into, and the ABR ladder.
    #[arg(
        long = "rtmp-packaging-port",
        env = "RTMP_PACKAGING_PORT",
        default_value_t = 8089
    )]
    pub rtmp_packaging: u16,
}

/// The ports of origin *k* and the processes beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OriginPorts {
    pub rtmp: u16,
    pub http: u16,
    pub stat: u16,
    pub discovery: u16,
    pub llhls: u16,
    pub packaging: u16,
}

/// One row of [`Ports::table`]: environment name, the base, and its stride
/// per origin (0: one port for the whole platform).
pub struct PortRow<'a> {
    pub var: &'static str,
    pub base: &'a mut u16,
    pub stride: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            redis: 6379,
            api: 9090,
            edge: 8081,
            rtmp: 1935,
            origin_http: 8080,
            rtmp_stat: 8088,
            discovery: 9091,
            llhls: 9092,
            rtmp_packaging: 8089,
        }
    }
}

impl Ports {
    /// Every kind of port with its variable and stride: what
    /// [`Ports::env`], [`Ports::pick`] and [`Ports::all`] go through.
    pub fn table(&mut self) -> [PortRow<'_>; 9] {
        let row = |var, base, stride| PortRow { var, base, stride };
        [
            row("REDIS_PORT", &mut self.redis, 0),
            row("API_PORT", &mut self.api, 0),
            row("EDGE_PORT", &mut self.edge, 0),
            row("RTMP_PORT", &mut self.rtmp, 1),
            row("ORIGIN_HTTP_PORT", &mut self.origin_http, ORIGIN_STRIDE),
            row("RTMP_STAT_PORT", &mut self.rtmp_stat, ORIGIN_STRIDE),
            row("DISCOVERY_PORT", &mut self.discovery, ORIGIN_STRIDE),
            row("LLHLS_PORT", &mut self.llhls, ORIGIN_STRIDE),
            row(
                "RTMP_PACKAGING_PORT",
                &mut self.rtmp_packaging,
                ORIGIN_STRIDE,
            ),
        ]
    }

    /// Ports for `origins` origins where `free(offsets)` returns a base `b`
    /// with `b + o` free for every offset (tests pass
    /// `rtmp_live_testkit::free_port_with`).
    pub fn pick(origins: usize, mut free: impl FnMut(&[u16]) -> u16) -> Ports {
        let mut p = Ports::default();
        for row in p.table() {
            let n = if row.stride == 0 { 1 } else { origins.max(1) };
            let offsets: Vec<u16> = if row.var == "REDIS_PORT" {
                REDIS_OFFSETS.to_vec()
            } else if row.var == "API_PORT" {
                (0..MAX_APIS as u16).collect()
            } else {
                (0..n as u16).map(|k| k * row.stride).collect()
            };
            *row.base = free(&offsets);
        }
        p
    }

    /// API instance `k` (1-based, up to [`MAX_APIS`]).
    pub fn api_instance(&self, k: usize) -> u16 {
        self.api + k.saturating_sub(1) as u16
    }

    /// Redis replica `i` (1-based, up to [`MAX_REDIS_REPLICAS`]).
    pub fn redis_replica(&self, i: usize) -> u16 {
        self.redis + i as u16
    }

    /// Sentinel `i` (0..3).
    pub fn sentinel(&self, i: usize) -> u16 {
        self.redis + 10 + i as u16
    }

    /// The variables that give a run these ports (for `rtmp-live-up`).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut p = self.clone();
        p.table()
            .into_iter()
            .map(|r| (r.var, r.base.to_string()))
            .collect()
    }

    /// Every port a run with `origins` origins listens on, with its
    /// variable (for the "already in use" check).
    pub fn all(&self, origins: usize) -> Vec<(&'static str, u16)> {
        let mut p = self.clone();
        let mut out = Vec::new();
        for r in p.table() {
            let n = if r.stride == 0 { 1 } else { origins as u16 };
            out.extend((0..n).map(|k| (r.var, *r.base + k * r.stride)));
        }
        out
    }

    /// The ports of origin `k` (1-based).
    pub fn origin(&self, k: usize) -> OriginPorts {
        assert!(k >= 1, "origins are numbered from 1");
        let i = k as u16 - 1;
        OriginPorts {
            rtmp: self.rtmp + i,
            http: self.origin_http + ORIGIN_STRIDE * i,
            stat: self.rtmp_stat + ORIGIN_STRIDE * i,
            discovery: self.discovery + ORIGIN_STRIDE * i,
            llhls: self.llhls + ORIGIN_STRIDE * i,
            packaging: self.rtmp_packaging + ORIGIN_STRIDE * i,
        }
    }

    /// `127.0.0.1:<port>` of origin `k`'s HTTP server: the host its
    /// discovery advertises and the edge proxies to with the default
    /// `INTERNAL_BIND` (see `Topology::origin_host`).
    pub fn origin_host(&self, k: usize) -> String {
        format!("127.0.0.1:{}", self.origin(k).http)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        ports: Ports,
    }

    #[test]
    fn defaults_are_the_documented_ones_and_the_table_names_the_flags_env() {
        let parsed = Cli::try_parse_from(["x"]).unwrap().ports;
        assert_eq!(parsed, Ports::default());
        let cmd = Cli::command();
        let mut clap_env: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        let mut table: Vec<String> = Ports::default()
            .env()
            .into_iter()
            .map(|(k, _)| k.to_string())
            .collect();
        clap_env.sort();
        table.sort();
        assert_eq!(clap_env, table);
    }

    #[test]
    fn origin_k_steps_by_its_stride() {
        let p = Ports::default();
        assert_eq!(
            p.origin(2),
            OriginPorts {
                rtmp: 1936,
                http: 8090,
                stat: 8098,
                discovery: 9101,
                llhls: 9102,
                packaging: 8099,
            }
        );
        let all = p.all(2);
        assert_eq!(all.len(), 3 + 6 * 2);
        for k in [1, 2] {
            let o = p.origin(k);
            for port in [o.rtmp, o.http, o.stat, o.discovery, o.llhls, o.packaging] {
                assert!(all.iter().any(|&(_, q)| q == port), "{port} missing");
            }
        }
    }

    #[test]
    fn pick_asks_for_every_origins_port_of_each_kind() {
        let mut asked = Vec::new();
        let mut next = 20_000;
        let p = Ports::pick(3, |offs| {
            asked.push(offs.to_vec());
            next += 100;
            next
        });
        assert!(asked.contains(&vec![0]));
        assert!(asked.contains(&REDIS_OFFSETS.to_vec()));
        assert!(asked.contains(&vec![0, 1, 2]));
        assert!(asked.contains(&vec![0, 1, 2]));
        assert!(asked.contains(&vec![0, 10, 20]));
        let mut all: Vec<u16> = p.all(3).into_iter().map(|(_, q)| q).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 3 + 6 * 3, "ports overlap: {p:?}");
    }
}
