//! The faults the lab injects, one kind of node at a time, and how each is
//! healed: a crash (SIGKILL; podman's restart policy brings the node back,
//! or the lab does for Redis), a hang (every process frozen), a partition
//! (the node's packets to and from some peers dropped), and packet loss on
//! every link between nodes.
//!
//! Packet loss uses iptables' `statistic` match: this kernel has no
//! `sch_netem`, so no delay is added (see docs/lab.md).

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::nodes::{Lab, Role, MASTER_NAME};
use crate::podman::{Podman, Result};

#[derive(Clone, Debug)]
pub enum Target {
    Node(&'static str),
    /// Whichever Redis node the sentinels name the master when the fault
    /// starts.
    RedisMaster,
}

#[derive(Clone, Debug)]
pub enum Action {
    Crash(Target),
    Freeze(Target),
    /// The node's traffic to and from every node of these roles dropped.
    Cut(Target, &'static [Role]),
    /// This share of the packets on every link between nodes dropped
    /// (not between the host's publishers and viewers and the nodes).
    Loss(f64),
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub name: &'static str,
    pub action: Action,
    /// The origin the new-publish probe uses meanwhile (index into the
    /// origins): not the one the fault is about.
    pub probe_origin: usize,
}

/// Every fault of a chaos run, in order.
pub fn all(loss: f64) -> Vec<Fault> {
    use Action::*;
    use Target::*;
    let f = |name, action, probe_origin| Fault {
        name,
        action,
        probe_origin,
    };
    vec![
        f("redis-master-killed", Crash(RedisMaster), 0),
        f("redis-master-hangs", Freeze(RedisMaster), 0),
        // the master cut off from the sentinels and replicas, not from the
        // APIs: they can go on writing to a master that has been replaced
        f(
            "redis-master-cut-off",
            Cut(RedisMaster, &[Role::Redis, Role::Sentinel]),
            0,
        ),
        f("api-killed", Crash(Node("api-1")), 0),
        f("api-hangs", Freeze(Node("api-1")), 0),
        f(
            "api-cut-from-redis",
            Cut(Node("api-1"), &[Role::Redis, Role::Sentinel]),
            0,
        ),
        f("edge-killed", Crash(Node("edge-1")), 0),
        f("edge-hangs", Freeze(Node("edge-1")), 0),
        f("edge-cut-from-apis", Cut(Node("edge-1"), &[Role::Api]), 0),
        f("origin-killed", Crash(Node("origin-1")), 1),
        f("origin-hangs", Freeze(Node("origin-2")), 0),
        f(
            "origin-cut-from-edges",
            Cut(Node("origin-1"), &[Role::Edge]),
            1,
        ),
        f("packet-loss", Loss(loss), 0),
    ]
}

/// A fault in progress: what to undo.
pub struct Injected {
    pub node: Option<String>,
    undo: Undo,
}

enum Undo {
    /// Restarted by podman's policy; nothing to do.
    Nothing,
    Start(String),
    Thaw(String),
    Flush(Vec<String>),
}

pub fn master(p: &Podman, lab: &Lab) -> Result<String> {
    let pw = lab.secrets.redis_password.clone();
    for s in lab.of(Role::Sentinel) {
        let answer = p.exec(
            &s.name,
            &[("REDISCLI_AUTH", &pw)],
            &[
                "redis-cli",
                "-p",
                "26379",
                "--raw",
                "sentinel",
                "get-master-addr-by-name",
                MASTER_NAME,
            ],
        );
        if let Ok(a) = answer {
            if let Some(ip) = a.lines().next() {
                if let Some(n) = lab.of(Role::Redis).find(|n| n.ip == ip.trim()) {
                    return Ok(n.name.clone());
                }
            }
        }
    }
    Err("no sentinel names a master".into())
}

fn resolve(p: &Podman, lab: &Lab, t: &Target) -> Result<String> {
    match t {
        Target::Node(n) => Ok((*n).to_string()),
        Target::RedisMaster => master(p, lab),
    }
}

pub fn inject(p: &Podman, lab: &Lab, f: &Fault) -> Result<Injected> {
    Ok(match &f.action {
        Action::Crash(t) => {
            let node = resolve(p, lab, t)?;
            p.crash(&node)?;
            let undo = if lab.node(&node).restart {
                Undo::Nothing
            } else {
                Undo::Start(node.clone())
            };
            Injected {
                node: Some(node),
                undo,
            }
        }
        Action::Freeze(t) => {
            let node = resolve(p, lab, t)?;
            p.freeze(&node)?;
            Injected {
                node: Some(node.clone()),
                undo: Undo::Thaw(node),
            }
        }
        Action::Cut(t, roles) => {
            let node = resolve(p, lab, t)?;
            let peers = lab
                .nodes
                .iter()
                .filter(|n| roles.contains(&n.role) && n.name != node);
            for peer in peers {
                p.iptables(&node, &["-A", "INPUT", "-s", &peer.ip, "-j", "DROP"])?;
                p.iptables(&node, &["-A", "OUTPUT", "-d", &peer.ip, "-j", "DROP"])?;
            }
            Injected {
                node: Some(node.clone()),
                undo: Undo::Flush(vec![node]),
            }
        }
        Action::Loss(share) => {
            let gw = lab.gateway();
            let subnet = lab.subnet();
            let p_str = format!("{share:.4}");
            let mut all = Vec::new();
            for n in &lab.nodes {
                p.iptables(&n.name, &["-A", "INPUT", "-s", &gw, "-j", "ACCEPT"])?;
                p.iptables(
                    &n.name,
                    &[
                        "-A",
                        "INPUT",
                        "-s",
                        &subnet,
                        "-m",
                        "statistic",
                        "--mode",
                        "random",
                        "--probability",
                        &p_str,
                        "-j",
                        "DROP",
                    ],
                )?;
                all.push(n.name.clone());
            }
            Injected {
                node: None,
                undo: Undo::Flush(all),
            }
        }
    })
}

impl Injected {
    /// Whether the node comes back by itself (podman's restart policy),
    /// so that its return is timed from the fault's start, not its heal.
    pub fn self_healing(&self) -> bool {
        matches!(self.undo, Undo::Nothing)
    }
}

pub fn heal(p: &Podman, i: &Injected) -> Result<()> {
    match &i.undo {
        Undo::Nothing => Ok(()),
        Undo::Start(n) => p.start(n),
        Undo::Thaw(n) => p.thaw(n),
        Undo::Flush(nodes) => {
            for n in nodes {
                p.iptables(n, &["-F", "INPUT"])?;
                p.iptables(n, &["-F", "OUTPUT"])?;
            }
            Ok(())
        }
    }
}

/// Whether a node does its job again, as its clients would see it.
pub fn healthy(p: &Podman, lab: &Lab, node: &str) -> bool {
    let n = lab.node(node);
    if !p.running(node) {
        return false;
    }
    let tcp = |port: u16| {
        let addr: SocketAddr = format!("{}:{port}", n.ip).parse().expect("an address");
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
    };
    let http = |port: u16, path: &str| {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .ok()
            .and_then(|c| c.get(format!("http://{}:{port}{path}", n.ip)).send().ok())
            .is_some_and(|r| r.status().is_success())
    };
    let pw = lab.secrets.redis_password.as_str();
    let ping = |port: &str| {
        p.exec(
            node,
            &[("REDISCLI_AUTH", pw)],
            &["redis-cli", "-p", port, "ping"],
        )
        .is_ok_and(|a| a.contains("PONG"))
    };
    match n.role {
        Role::Redis => ping("6379"),
        Role::Sentinel => ping("26379"),
        Role::Api => http(9090, "/readyz"),
        Role::Origin => tcp(1935) && tcp(8080),
        Role::Edge => http(8081, "/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_node_is_hit_and_names_are_unique() {
        let list = all(0.03);
        let mut names: Vec<&str> = list.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), list.len());
        for kind in ["redis", "api", "edge", "origin"] {
            assert!(names.iter().any(|n| n.starts_with(kind)), "{kind}");
        }
        assert!(list.iter().any(|f| matches!(f.action, Action::Cut(Target::Node("api-1"), r) if r.contains(&Role::Redis))));
        // the new-publish probe never uses the origin a fault is about
        for f in &list {
            if let Action::Crash(Target::Node(n))
            | Action::Freeze(Target::Node(n))
            | Action::Cut(Target::Node(n), _) = f.action
            {
                if let Some(i) = n.strip_prefix("origin-") {
                    assert_ne!(
                        f.probe_origin + 1,
                        i.parse::<usize>().unwrap(),
                        "{}",
                        f.name
                    );
                }
            }
        }
    }
}
