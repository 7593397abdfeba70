//! The lab's nodes: every process group of the platform as its own network
//! host on one bridge network, with the images `docker-compose.yml` uses.
//! Three Redis nodes (a master and two replicas) and three sentinels, two
//! API instances, two origins, three edges. Addresses are fixed (`<net>.N`)
//! so that a fault can name a peer.

use std::fmt::Write as _;

/// The master's name in the sentinels (the API's default).
pub const MASTER_NAME: &str = "rtmp-live";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Redis,
    Sentinel,
    Api,
    Origin,
    Edge,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub role: Role,
    pub ip: String,
    pub image: String,
    pub env: Vec<(String, String)>,
    /// The command, if not the image's own.
    pub cmd: Vec<String>,
    /// Started again by podman when it dies (as systemd or Kubernetes
    /// would); Redis nodes are not: the lab brings a lost one back, as an
    /// operator would, so that the sentinels' failover is what is measured.
    pub restart: bool,
}

/// The secrets and names of one lab run.
#[derive(Clone, Debug)]
pub struct Secrets {
    pub redis_password: String,
    pub report_token: String,
    pub edge_token: String,
    /// (key, stream name)
    pub keys: Vec<(String, String)>,
}

impl Secrets {
    pub fn generate(names: &[&str]) -> Secrets {
        Secrets {
            redis_password: random_hex(),
            report_token: random_hex(),
            edge_token: random_hex(),
            keys: names
                .iter()
                .map(|n| (random_hex(), (*n).to_string()))
                .collect(),
        }
    }

    pub fn key(&self, name: &str) -> &str {
        &self
            .keys
            .iter()
            .find(|(_, n)| n == name)
            .expect("a key for every stream of the lab")
            .0
    }
}

fn random_hex() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("/dev/urandom");
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

pub struct Lab {
    /// The first three octets of the lab's /24 (`10.231.7`).
    pub net: String,
    pub secrets: Secrets,
    pub nodes: Vec<Node>,
}

impl Lab {
    pub fn new(net: &str, secrets: Secrets) -> Lab {
        let ip = |n: u8| format!("{net}.{n}");
        let pw = secrets.redis_password.clone();
        let mut nodes = Vec::new();
        let redis_ips: Vec<String> = (0..3).map(|i| ip(11 + i)).collect();
        let sentinel_ips: Vec<String> = (0..3).map(|i| ip(21 + i)).collect();
        let api_urls: Vec<String> = (0..2)
            .map(|i| format!("http://{}:9090", ip(31 + i)))
            .collect();
        let origin_ips: Vec<String> = (0..2).map(|i| ip(41 + i)).collect();
        let shell = |script: String| vec!["sh".into(), "-c".into(), script];
        // A Redis node asks the sentinels for the master when it starts,
        // and replicates it unless that is itself (as the Kubernetes
        // manifests' start script does): a node that comes back after a
        // crash must not come back as a second, empty master. On the first
        // start the sentinels name redis-1.
        let ask: String = sentinel_ips
            .iter()
            .map(|s| {
                format!(
                    "[ -n \"$m\" ] || m=$(timeout 2 redis-cli -h {s} -p 26379 --raw \
                     sentinel get-master-addr-by-name {MASTER_NAME} 2>/dev/null | head -n1 || true)\n"
                )
            })
            .collect();
        for (i, rip) in redis_ips.iter().enumerate() {
            // the config on standard input: the password is on no command
            // line
            nodes.push(Node {
                name: format!("redis-{}", i + 1),
                role: Role::Redis,
                ip: rip.clone(),
                image: "docker.io/library/redis:7-bookworm".into(),
                env: vec![
                    ("REDIS_PASSWORD".into(), pw.clone()),
                    ("REDISCLI_AUTH".into(), pw.clone()),
                ],
                cmd: shell(format!(
                    "m=\n{ask}[ -n \"$m\" ] || m={first}\n\
                     r=; [ \"$m\" = {rip} ] || r=\"replicaof $m 6379\"\n\
                     exec redis-server --save '' --appendonly no --protected-mode no - <<EOF\n\
                     requirepass $REDIS_PASSWORD\nmasterauth $REDIS_PASSWORD\n\
                     repl-diskless-sync-delay 0\n$r\nEOF",
                    first = redis_ips[0]
                )),
                restart: false,
            });
        }
        let known: String = redis_ips[1..]
            .iter()
            .map(|r| format!("sentinel known-replica {MASTER_NAME} {r} 6379\n"))
            .collect();
        for (i, sip) in sentinel_ips.iter().enumerate() {
            // sentinels rewrite their file: written fresh at each start
            nodes.push(Node {
                name: format!("sentinel-{}", i + 1),
                role: Role::Sentinel,
                ip: sip.clone(),
                image: "docker.io/library/redis:7-bookworm".into(),
                env: vec![("REDIS_PASSWORD".into(), pw.clone())],
                cmd: shell(format!(
                    "cat >/tmp/sentinel.conf <<EOF\nport 26379\nprotected-mode no\n\
                     requirepass $REDIS_PASSWORD\nsentinel sentinel-pass $REDIS_PASSWORD\n\
                     sentinel monitor {MASTER_NAME} {master} 6379 2\n\
                     sentinel auth-pass {MASTER_NAME} $REDIS_PASSWORD\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 2000\n\
                     sentinel failover-timeout {MASTER_NAME} 10000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n{known}EOF\n\
                     exec redis-server /tmp/sentinel.conf --sentinel",
                    master = redis_ips[0]
                )),
                restart: false,
            });
        }
        let stream_keys = secrets
            .keys
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
            .join(",");
        for i in 0..2 {
            nodes.push(Node {
                name: format!("api-{}", i + 1),
                role: Role::Api,
                ip: ip(31 + i),
                image: "localhost/rtmp-live-api".into(),
                env: pairs(&[
                    (
                        "REDIS_SENTINELS",
                        sentinel_ips
                            .iter()
                            .map(|s| format!("{s}:26379"))
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    ("REDIS_SENTINEL_MASTER", MASTER_NAME.into()),
                    ("REDIS_SENTINEL_PASSWORD", pw.clone()),
                    ("REDIS_PASSWORD", pw.clone()),
                    ("REDIS_WAIT_REPLICAS", "1".into()),
                    ("STREAM_KEYS", stream_keys.clone()),
                    ("API_REPORT_TOKEN", secrets.report_token.clone()),
                    ("API_EDGE_TOKEN", secrets.edge_token.clone()),
                    ("PUBLISH_REDIRECT", "{name}".into()),
                    ("STREAM_TTL_SECS", "30".into()),
                ]),
                cmd: Vec::new(),
                restart: true,
            });
        }
        for (i, oip) in origin_ips.iter().enumerate() {
            nodes.push(Node {
                name: format!("origin-{}", i + 1),
                role: Role::Origin,
                ip: oip.clone(),
                image: "localhost/rtmp-live-origin".into(),
                env: pairs(&[
                    ("API_URL", api_urls.join(",")),
                    ("API_REPORT_TOKEN", secrets.report_token.clone()),
                    ("ABR", "0".into()),
                    ("LLHLS", "1".into()),
                    ("DVR_WINDOW", "2m".into()),
                    ("RECORDING_RETENTION", "0".into()),
                ]),
                cmd: Vec::new(),
                restart: true,
            });
        }
        for i in 0..3 {
            nodes.push(Node {
                name: format!("edge-{}", i + 1),
                role: Role::Edge,
                ip: ip(51 + i),
                image: "localhost/rtmp-live-edge".into(),
                env: pairs(&[
                    ("API_URL", api_urls.join(",")),
                    (
                        "EDGE_ORIGINS",
                        origin_ips
                            .iter()
                            .map(|o| format!("{o}:8080"))
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                    ("API_EDGE_TOKEN", secrets.edge_token.clone()),
                ]),
                cmd: Vec::new(),
                restart: true,
            });
        }
        Lab {
            net: net.to_string(),
            secrets,
            nodes,
        }
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name} in the lab"))
    }

    pub fn of(&self, role: Role) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(move |n| n.role == role)
    }

    pub fn subnet(&self) -> String {
        format!("{}.0/24", self.net)
    }

    /// The host's address on the lab's network (publishers and viewers
    /// come from here).
    pub fn gateway(&self) -> String {
        format!("{}.1", self.net)
    }

    pub fn edge_urls(&self) -> Vec<String> {
        self.of(Role::Edge)
            .map(|e| format!("http://{}:8081", e.ip))
            .collect()
    }

    pub fn rtmp_url(&self, origin: &str, name: &str) -> String {
        format!(
            "rtmp://{}:1935/stream/{}",
            self.node(origin).ip,
            self.secrets.key(name)
        )
    }
}

fn pairs(p: &[(&str, String)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Lab {
        Lab::new("10.231.7", Secrets::generate(&["golive", "second"]))
    }

    #[test]
    fn every_node_has_its_own_address_on_the_lab_network() {
        let l = lab();
        assert_eq!(l.nodes.len(), 13);
        let mut ips: Vec<&str> = l.nodes.iter().map(|n| n.ip.as_str()).collect();
        ips.sort_unstable();
        ips.dedup();
        assert_eq!(ips.len(), 13);
        assert!(l
            .nodes
            .iter()
            .all(|n| n.ip.starts_with("10.231.7.") && n.ip != l.gateway()));
        assert_eq!(l.of(Role::Edge).count(), 3);
        assert_eq!(l.of(Role::Origin).count(), 2);
        assert_eq!(l.of(Role::Api).count(), 2);
        assert_eq!(l.of(Role::Redis).count(), 3);
        assert_eq!(l.of(Role::Sentinel).count(), 3);
    }

    #[test]
    fn secrets_travel_in_the_environment_not_on_command_lines() {
        let l = lab();
        let pw = &l.secrets.redis_password;
        for n in &l.nodes {
            assert!(!n.cmd.iter().any(|c| c.contains(pw.as_str())), "{}", n.name);
            for (_, name) in &l.secrets.keys {
                let key = l.secrets.key(name);
                assert!(!n.cmd.iter().any(|c| c.contains(key)), "{}", n.name);
            }
        }
        let api = l.node("api-1");
        let keys = &api.env.iter().find(|(k, _)| k == "STREAM_KEYS").unwrap().1;
        assert!(keys.contains(&format!("{}=golive", l.secrets.key("golive"))));
    }

    #[test]
    fn replicas_and_sentinels_follow_the_first_redis_node() {
        let l = lab();
        let master = &l.node("redis-1").ip;
        for r in ["redis-1", "redis-2", "redis-3"] {
            let cmd = &l.node(r).cmd[2];
            // asks every sentinel, then falls back to redis-1
            assert_eq!(cmd.matches("get-master-addr-by-name").count(), 3, "{cmd}");
            assert!(cmd.contains(&format!("m={master}\n")), "{cmd}");
            assert!(
                cmd.contains(&format!("[ \"$m\" = {} ]", l.node(r).ip)),
                "{cmd}"
            );
        }
        let s = &l.node("sentinel-2").cmd[2];
        assert!(s.contains(&format!("sentinel monitor {MASTER_NAME} {master} 6379 2")));
        assert!(s.contains(&format!(
            "known-replica {MASTER_NAME} {} 6379",
            l.node("redis-3").ip
        )));
        // the API finds the master through all three sentinels
        let api = l.node("api-2");
        let sentinels = &api
            .env
            .iter()
            .find(|(k, _)| k == "REDIS_SENTINELS")
            .unwrap()
            .1;
        assert_eq!(sentinels.split(',').count(), 3);
        // only Redis nodes are left for the lab to bring back
        assert!(l
            .nodes
            .iter()
            .all(|n| n.restart != matches!(n.role, Role::Redis | Role::Sentinel)));
    }

    #[test]
    fn edges_and_origins_know_every_api_instance() {
        let l = lab();
        let urls = "http://10.231.7.31:9090,http://10.231.7.32:9090";
        for n in l.of(Role::Edge).chain(l.of(Role::Origin)) {
            assert!(
                n.env.contains(&("API_URL".into(), urls.into())),
                "{}",
                n.name
            );
        }
        let origins = &l
            .node("edge-3")
            .env
            .iter()
            .find(|(k, _)| k == "EDGE_ORIGINS")
            .unwrap()
            .1;
        assert_eq!(origins, "10.231.7.41:8080 10.231.7.42:8080");
        assert_eq!(
            l.rtmp_url("origin-2", "second"),
            format!("rtmp://10.231.7.42:1935/stream/{}", l.secrets.key("second"))
        );
    }
}
