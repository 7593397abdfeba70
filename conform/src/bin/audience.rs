//! `rtmp-live-audience`: simulated viewers of one stream spread over edges,
//! the edges' and the API's viewer counts against the truth, and how long
//! a viewer who left is still counted. Prints one JSON report on stdout
//! and a summary on stderr (see `rtmp_live_conform::audience`).

use clap::Parser;
use rtmp_live_conform::audience::{run, Identity, Key, Options};
use url::Url;

#[derive(Parser, Debug)]
#[command(
    name = "rtmp-live-audience",
    about = "Simulated viewers over edges; their viewer counts against the truth"
)]
struct Args {
    /// The stream's media playlist through an edge (repeat for each edge;
    /// viewers are spread over them round-robin).
    #[arg(long = "edge", required = true)]
    edges: Vec<Url>,
    /// Each edge's metrics (`/metrics`), in the order of --edge.
    #[arg(long = "metrics")]
    metrics: Vec<Url>,
    /// The stream at the API (`http://<api>/streams/<name>`).
    #[arg(long, env = "AUDIENCE_API")]
    api: Option<Url>,
    /// The stream's name in the edges' metrics [default: the playlist
    /// path's first segment].
    #[arg(long)]
    stream: Option<String>,
    #[arg(long, env = "AUDIENCE_VIEWERS", default_value_t = 1000)]
    viewers: usize,
    #[arg(long, value_enum, env = "AUDIENCE_IDENTITY", default_value = "mixed")]
    identity: Identity,
    /// Viewers per shared source address.
    #[arg(long, env = "AUDIENCE_GROUP", default_value_t = 10)]
    group: usize,
    /// What the edges count viewers by: `addr` ($remote_addr) or
    /// `addr-session` ($remote_addr/$http_x_playback_session_id).
    #[arg(long, value_enum, env = "AUDIENCE_KEY", default_value = "addr-session")]
    key: Key,
    /// Seconds between a viewer's playlist reloads (±10 %).
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Also fetch each new segment (as a player does).
    #[arg(long)]
    segments: bool,
    /// Seconds over which the viewers start.
    #[arg(long, default_value_t = 5.0)]
    ramp: f64,
    /// Least seconds measured after the ramp.
    #[arg(long, env = "AUDIENCE_SECONDS", default_value_t = 20.0)]
    seconds: f64,
    /// Seconds the API's count must hold still (within 1 %).
    #[arg(long, default_value_t = 10.0)]
    settle: f64,
    /// Most seconds waited beyond --seconds for it to settle.
    #[arg(long, default_value_t = 60.0)]
    settle_timeout: f64,
    /// Fraction of the viewers that stay after the measurement; the others
    /// leave and the drop-out time is measured (1: nobody leaves).
    #[arg(long, env = "AUDIENCE_KEEP", default_value_t = 1.0)]
    keep: f64,
    /// Most seconds the counts are followed after the others left.
    #[arg(long, default_value_t = 60.0)]
    linger: f64,
    /// Goal: counts within this many percent of the truth.
    #[arg(long, default_value_t = 5.0)]
    tolerance: f64,
    /// Goal: a viewer who left is out of the API's count within this.
    #[arg(long, default_value_t = 30.0)]
    dropout_goal: f64,
    /// Seed of the session ids [default: the clock].
    #[arg(long)]
    seed: Option<u64>,
}

fn main() {
    let a = Args::parse();
    let stream = a.stream.clone().unwrap_or_else(|| {
        a.edges[0]
            .path_segments()
            .and_then(|mut s| s.next())
            .unwrap_or_default()
            .to_string()
    });
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let report = rt.block_on(run(Options {
        edges: a.edges,
        metrics: a.metrics,
        api: a.api,
        stream,
        viewers: a.viewers,
        identity: a.identity,
        group: a.group,
        key: a.key,
        interval: a.interval,
        segments: a.segments,
        ramp: a.ramp,
        seconds: a.seconds,
        settle: a.settle,
        settle_timeout: a.settle_timeout,
        keep: a.keep,
        linger: a.linger,
        tolerance_pct: a.tolerance,
        dropout_goal_s: a.dropout_goal,
        seed,
    }));
    match report {
        Ok(r) => {
            eprint!("{}", r.summary());
            println!(
                "{}",
                serde_json::to_string(&r).expect("a report serializes")
            );
        }
        Err(e) => {
            eprintln!("rtmp-live-audience: {e}");
            std::process::exit(2);
        }
    }
}
