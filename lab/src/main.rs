//! `rtmp-live-lab`: the platform as many network hosts on one machine
//! (podman containers on a bridge network of their own: three Redis nodes
//! and three sentinels, two API instances, two origins, three edges), fed
//! by real ffmpeg encoders and watched by player-like viewers on every
//! edge, then put through one fault per kind of node (`chaos`). `make lab`
//! runs `scripts/lab.sh`, which builds the images and runs this.

mod chaos;
mod faults;
mod nodes;
mod podman;
mod report;
mod traffic;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "The multi-node lab: the platform as separate network hosts, with chaos")]
struct Args {
    /// The first three octets of the lab's /24 network.
    #[arg(long, env = "LAB_NET", default_value = "10.231.7")]
    net: String,
    /// Where env files and the report go.
    #[arg(long, env = "LAB_WORK", default_value = "target/lab")]
    work: PathBuf,
    /// How long each fault is held before it is healed.
    #[arg(long, env = "LAB_HOLD_SECS", default_value_t = 15)]
    hold_secs: u64,
    /// Packets dropped on every link between nodes in the loss fault, in
    /// percent.
    #[arg(long, env = "LAB_LOSS_PERCENT", default_value_t = 3.0)]
    loss_percent: f64,
    /// Only these faults (comma-separated names; `chaos --help` lists them).
    #[arg(long, env = "LAB_FAULTS", value_delimiter = ',')]
    only: Vec<String>,
    /// Leave the lab running when done.
    #[arg(long)]
    keep: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the lab, publish, inject every fault in turn, print the report
    /// (faults: redis-master-killed, redis-master-hangs,
    /// redis-master-cut-off, api-killed, api-hangs, api-cut-from-redis,
    /// edge-killed, edge-hangs, edge-cut-from-apis, origin-killed,
    /// origin-hangs, origin-cut-from-edges, packet-loss).
    Chaos,
    /// Start the lab and publish; stop it with Enter.
    Up,
    /// Remove every container and network a lab left.
    Down,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    if matches!(args.command, Cmd::Down) {
        podman::Podman {
            prefix: String::new(),
        }
        .remove(true);
        return Ok(());
    }
    let mut r = up::Running::start(&args.net, args.work.clone(), args.keep)?;
    r.publish()?;
    let edges = r.lab.edge_urls().join(" ");
    match args.command {
        Cmd::Up => {
            up::say(&format!(
                "edges: {edges} (e.g. {}/golive/index.m3u8); Enter stops the lab",
                r.lab.edge_urls()[0]
            ));
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            Ok(())
        }
        Cmd::Chaos => {
            let list: Vec<_> = faults::all(args.loss_percent / 100.0)
                .into_iter()
                .filter(|f| args.only.is_empty() || args.only.iter().any(|o| o == f.name))
                .collect();
            let hold = Duration::from_secs(args.hold_secs);
            let outcomes = chaos::run(&r, &list, hold)?;
            let table = report::table(&outcomes);
            println!("{table}");
            let file = args.work.join("report.md");
            std::fs::write(&file, &table).map_err(|e| format!("{}: {e}", file.display()))?;
            up::say(&format!("report: {}", file.display()));
            Ok(())
        }
        Cmd::Down => unreachable!("handled above"),
    }
}
