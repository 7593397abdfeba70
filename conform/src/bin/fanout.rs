//! `rtmp-live-fanout`: N LL-HLS viewers through an edge and a probe at the
//! origin; prints one JSON report (see `rtmp_live_conform::fanout`).

use clap::Parser;
use rtmp_live_conform::fanout::{burst, run, BurstOptions, Options};
use url::Url;

#[derive(Parser, Debug)]
#[command(
    name = "rtmp-live-fanout",
    about = "LL-HLS viewers through an edge, delays measured against the origin"
)]
struct Args {
    /// The stream's media playlist through the edge.
    #[arg(long, env = "FANOUT_EDGE", required_unless_present = "burst")]
    edge: Option<Url>,
    /// The same playlist at the origin (followed by the probe).
    #[arg(long, env = "FANOUT_ORIGIN", required_unless_present = "burst")]
    origin: Option<Url>,
    /// Instead: the floor measurement (`fanout::burst`) against this URL,
    /// every viewer asking at the same instant, `--rounds` times.
    #[arg(long, env = "FANOUT_BURST")]
    burst: Option<Url>,
    #[arg(long, env = "FANOUT_ROUNDS", default_value_t = 20)]
    rounds: usize,
    /// Viewers.
    #[arg(long, env = "FANOUT_VIEWERS", default_value_t = 100)]
    viewers: usize,
    /// Seconds measured, after the ramp.
    #[arg(long, env = "FANOUT_SECONDS", default_value_t = 20.0)]
    seconds: f64,
    /// Seconds over which the viewers start.
    #[arg(long, env = "FANOUT_RAMP", default_value_t = 5.0)]
    ramp: f64,
    /// Viewers per loopback source address (the edge allows 64 held
    /// requests per address).
    #[arg(long, env = "FANOUT_PER_ADDRESS", default_value_t = 20)]
    per_address: usize,
}

fn main() {
    let a = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let json = if let Some(url) = a.burst {
        let report = rt.block_on(burst(BurstOptions {
            url,
            viewers: a.viewers,
            rounds: a.rounds,
            per_address: a.per_address,
        }));
        serde_json::to_string(&report)
    } else {
        let (Some(edge), Some(origin)) = (a.edge, a.origin) else {
            unreachable!("clap requires both without --burst")
        };
        let report = rt.block_on(run(Options {
            edge,
            origin,
            viewers: a.viewers,
            seconds: a.seconds,
            ramp: a.ramp,
            per_address: a.per_address,
        }));
        serde_json::to_string(&report)
    };
    println!("{}", json.expect("a report serializes"));
}
