//! podman, driven as an operator would from a shell: run, kill, pause and
//! remove containers, and reach into a container's network namespace
//! (iptables) from the host. Secrets go to containers through env files
//! (mode 0600), never on a command line.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::nodes::Node;

pub type Result<T> = std::result::Result<T, String>;

fn run_cmd(mut cmd: Command) -> Result<String> {
    let what = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub fn podman(args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("podman");
    cmd.args(args);
    run_cmd(cmd)
}

/// The containers and network of one lab, by its prefix.
pub struct Podman {
    pub prefix: String,
}

impl Podman {
    pub fn network(&self) -> String {
        format!("{}-net", self.prefix)
    }

    pub fn container(&self, node: &str) -> String {
        format!("{}-{node}", self.prefix)
    }

    pub fn create_network(&self, subnet: &str, gateway: &str) -> Result<()> {
        podman(&[
            "network",
            "create",
            "--subnet",
            subnet,
            "--gateway",
            gateway,
            "--label",
            &format!("rtmp-live.lab={}", self.prefix),
            &self.network(),
        ])
        .map(drop)
    }

    /// Starts `node` on the lab's network at its address.
    pub fn run(&self, node: &Node, work: &Path) -> Result<()> {
        let env_file = work.join(format!("{}.env", node.name));
        let text: String = node.env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&env_file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|e| format!("{}: {e}", env_file.display()))?;
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--name",
            &self.container(&node.name),
            "--hostname",
            &node.name,
            "--label",
            &format!("rtmp-live.lab={}", self.prefix),
            "--network",
            &self.network(),
            "--ip",
            &node.ip,
            "--env-file",
            &env_file.display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        if node.restart {
            args.extend(["--restart".into(), "always".into()]);
        }
        args.push(node.image.clone());
        args.extend(node.cmd.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        podman(&args).map(drop)
    }

    /// The host PID of the container's first process (0: not running).
    pub fn pid(&self, node: &str) -> Result<u32> {
        podman(&["inspect", "-f", "{{.State.Pid}}", &self.container(node)])?
            .parse()
            .map_err(|e| format!("pid of {node}: {e}"))
    }

    pub fn running(&self, node: &str) -> bool {
        podman(&["inspect", "-f", "{{.State.Status}}", &self.container(node)])
            .is_ok_and(|s| s == "running")
    }

    /// SIGKILL to the container's first process, as when it crashes or is
    /// OOM-killed: podman's restart policy applies (a `podman kill` would
    /// count as the operator's own stop).
    pub fn crash(&self, node: &str) -> Result<()> {
        let pid = self.pid(node)?;
        if pid == 0 {
            return Err(format!("{node} is not running"));
        }
        let mut cmd = Command::new("kill");
        cmd.args(["-KILL", &pid.to_string()]);
        run_cmd(cmd).map(drop)
    }

    /// Every process of the container stopped in place (cgroup freezer):
    /// a hung machine, its connections open and silent.
    pub fn freeze(&self, node: &str) -> Result<()> {
        podman(&["pause", &self.container(node)]).map(drop)
    }

    pub fn thaw(&self, node: &str) -> Result<()> {
        podman(&["unpause", &self.container(node)]).map(drop)
    }

    pub fn start(&self, node: &str) -> Result<()> {
        podman(&["start", &self.container(node)]).map(drop)
    }

    pub fn exec(&self, node: &str, env: &[(&str, &str)], args: &[&str]) -> Result<String> {
        let name = self.container(node);
        let mut all = vec!["exec".to_string()];
        for (k, v) in env {
            all.extend(["-e".into(), format!("{k}={v}")]);
        }
        all.push(name);
        all.extend(args.iter().map(|a| (*a).to_string()));
        podman(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// iptables in the node's network namespace (from the host: the
    /// containers have no capability to change their own rules).
    pub fn iptables(&self, node: &str, args: &[&str]) -> Result<()> {
        let pid = self.pid(node)?;
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &pid.to_string(), "-n", "iptables", "-w"])
            .args(args);
        run_cmd(cmd).map(drop)
    }

    pub fn logs(&self, node: &str, lines: u32) -> String {
        podman(&["logs", "--tail", &lines.to_string(), &self.container(node)]).unwrap_or_else(|e| e)
    }

    /// Removes every container and the network of this lab (and of labs
    /// an interrupted run left behind, with `all`).
    pub fn remove(&self, all: bool) {
        let filter = if all {
            "label=rtmp-live.lab".to_string()
        } else {
            format!("label=rtmp-live.lab={}", self.prefix)
        };
        if let Ok(ids) = podman(&["ps", "-aq", "--filter", &filter]) {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f", "-t", "0"];
                args.extend(ids);
                let _ = podman(&args);
            }
        }
        if let Ok(nets) = podman(&["network", "ls", "-q", "--filter", &filter]) {
            for n in nets.split_whitespace() {
                let _ = podman(&["network", "rm", "-f", n]);
            }
        }
    }
}
