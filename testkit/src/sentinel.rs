//! Redis with Sentinel, as a platform would run it: one master, replicas,
//! and three sentinels (`redis-server --sentinel`, what Debian's
//! `redis-sentinel` runs), all private on free loopback ports, each with a
//! password. Nodes can be killed, stopped and started again.

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::{free_port, wait_port, Proc};

/// The master's name in the sentinels' configuration (the API's default
/// `REDIS_SENTINEL_MASTER`).
pub const MASTER_NAME: &str = "rtmp-live";

pub struct RedisHa {
    pub password: String,
    /// Node ports; node 0 starts as the master.
    pub ports: Vec<u16>,
    pub sentinel_ports: Vec<u16>,
    nodes: Vec<Option<Proc>>,
    sentinels: Vec<Option<Proc>>,
    dir: tempfile::TempDir,
}

impl RedisHa {
    /// A master, `replicas` replicas of it, and three sentinels that agree
    /// (quorum 2) a master is down after `down_after_ms` without answers.
    pub fn start(replicas: usize, down_after_ms: u64) -> RedisHa {
        let ports: Vec<u16> = (0..=replicas).map(|_| free_port()).collect();
        let sentinel_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut ha = RedisHa {
            password: format!("testkit-ha-{}-{:x}", ports[0], std::process::id()),
            nodes: (0..ports.len()).map(|_| None).collect(),
            sentinels: (0..3).map(|_| None).collect(),
            ports,
            sentinel_ports,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        for i in 0..ha.ports.len() {
            ha.start_node(i);
        }
        for i in 0..3 {
            let conf = ha.dir.path().join(format!("sentinel-{i}.conf"));
            // sentinels rewrite their file as they learn the topology
            fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndaemonize no\nrequirepass {pw}\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n\
                     sentinel auth-pass {MASTER_NAME} {pw}\n\
                     sentinel sentinel-pass {pw}\n\
                     sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n\
                     sentinel failover-timeout {MASTER_NAME} 10000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n{known}",
                    port = ha.sentinel_ports[i],
                    pw = ha.password,
                    master = ha.ports[0],
                    known = ha.ports[1..]
                        .iter()
                        .map(|p| format!("sentinel known-replica {MASTER_NAME} 127.0.0.1 {p}\n"))
                        .collect::<String>(),
                ),
            )
            .expect("sentinel.conf");
            let mut cmd = Command::new("redis-server");
            cmd.arg(&conf).arg("--sentinel");
            let p = Proc::spawn(&format!("redis-sentinel-{i}"), cmd);
            assert!(
                wait_port(ha.sentinel_ports[i], Duration::from_secs(10)),
                "sentinel {i} did not start:\n{}",
                p.log()
            );
            ha.sentinels[i] = Some(p);
        }
        ha
    }

    /// Starts node `i` (again): the first time node 0 as the master and
    /// the others as its replicas; a node started again comes back as a
    /// master with no data, until the sentinels make it a replica.
    pub fn start_node(&mut self, i: usize) {
        self.stop_node(i);
        let conf = self.dir.path().join(format!("node-{i}.conf"));
        let node_dir = self.dir.path().join(format!("node-{i}"));
        fs::create_dir_all(&node_dir).expect("node dir");
        let mut text = format!(
            "requirepass {pw}\nmasterauth {pw}\nport {port}\nbind 127.0.0.1\n\
             save \"\"\nappendonly no\ndaemonize no\nrepl-diskless-sync-delay 0\n\
             dir {dir}\n",
            pw = self.password,
            port = self.ports[i],
            // a replica's first sync goes through a file in its folder
            dir = node_dir.display(),
        );
        if i > 0 && !conf.exists() {
            text.push_str(&format!("replicaof 127.0.0.1 {}\n", self.ports[0]));
        }
        fs::write(&conf, text).expect("node conf");
        let mut cmd = Command::new("redis-server");
        cmd.arg(&conf);
        let p = Proc::spawn(&format!("redis-node-{i}"), cmd);
        assert!(
            wait_port(self.ports[i], Duration::from_secs(10)),
            "redis node {i} did not start:\n{}",
            p.log()
        );
        self.nodes[i] = Some(p);
    }

    pub fn stop_node(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].take() {
            p.stop();
        }
    }

    /// SIGKILL, as when the machine dies.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].take() {
            p.kill();
        }
    }

    /// Sends `sig` to node `i` (SIGSTOP: a master that hangs, as behind a
    /// network that drops its packets; SIGCONT: back).
    pub fn signal_node(&self, i: usize, sig: nix::sys::signal::Signal) {
        if let Some(p) = &self.nodes[i] {
            p.signal(sig);
        }
    }

    pub fn node(&self, i: usize) -> Option<&Proc> {
        self.nodes[i].as_ref()
    }

    /// `REDIS_SENTINELS` for the API.
    pub fn sentinels(&self) -> String {
        self.sentinel_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `redis-cli` for node `i` (authenticated through the environment).
    pub fn cli(&self, i: usize) -> Command {
        let mut c = Command::new("redis-cli");
        c.args(["-p", &self.ports[i].to_string()])
            .env("REDISCLI_AUTH", &self.password);
        c
    }

    /// The port of the master the sentinels name now (asks each in turn).
    pub fn master_port(&self) -> Option<u16> {
        self.sentinel_ports.iter().find_map(|p| {
            let out = Command::new("redis-cli")
                .args(["-p", &p.to_string()])
                .env("REDISCLI_AUTH", &self.password)
                .args(["SENTINEL", "get-master-addr-by-name", MASTER_NAME])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .nth(1)
                .and_then(|l| l.trim().parse().ok())
        })
    }

    /// The index of the node on `port`.
    pub fn index_of(&self, port: u16) -> Option<usize> {
        self.ports.iter().position(|p| *p == port)
    }

    /// What a process printed, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .chain(self.sentinels.iter())
            .flatten()
            .map(|p| format!("----- {} -----\n{}", p.name(), p.log()))
            .collect()
    }
}
