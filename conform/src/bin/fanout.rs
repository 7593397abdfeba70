//! `rtmp-live-fanout`: N LL-HLS viewers through an edge and a probe at the
//! origin; prints one JSON report (see `rtmp_live_conform::fanout`).

use clap::Parser;
use rtmp_live_conform::fanout::{run, Options};
use url::Url;

#[derive(Parser, Debug)]
#[command(
    name = "rtmp-live-fanout",
    about = "LL-HLS viewers through an edge, delays measured against the origin"
)]
struct Args {
    /// The stream's media playlist through the edge.
    #[arg(long, env = "FANOUT_EDGE")]
    edge: Url,
    /// The same playlist at the origin (followed by the probe).
    #[arg(long, env = "FANOUT_ORIGIN")]
    origin: Url,
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
    let report = rt.block_on(run(Options {
        edge: a.edge,
        origin: a.origin,
        viewers: a.viewers,
        seconds: a.seconds,
        ramp: a.ramp,
        per_address: a.per_address,
    }));
    println!(
        "{}",
        serde_json::to_string(&report).expect("a report serializes")
    );
}
