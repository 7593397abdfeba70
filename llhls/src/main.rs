use std::time::Duration;

use clap::Parser;
use rtmp_live_llhls::registry::Registry;
use rtmp_live_llhls::{server, watch, Config};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cfg = Config::parse();
    if !(0.1..=2.0).contains(&cfg.part_target) {
        return Err("--part-target must be between 0.1 and 2 seconds".into());
    }
    std::fs::create_dir_all(&cfg.hls_path)?;
    let settings = cfg.settings();
    if let Some(rec) = settings.recordings.clone() {
        std::fs::create_dir_all(rec.root())?;
        let n = rec.recover();
        tracing::info!(path = %rec.root().display(), finished = n, "recordings");
        rtmp_live_llhls::record::keep_swept(rec);
    }
    let reg = Registry::new(cfg.hls_path.clone(), settings);
    watch(
        reg.clone(),
        Duration::from_millis(cfg.tick_ms.clamp(1, 1000)),
        Duration::from_millis(cfg.rescan_ms.max(50)),
    )?;
    let peers: Vec<String> = cfg
        .peers
        .iter()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect();
    if !peers.is_empty() {
        tracing::info!(?peers, "agreeing on labels with the other origins");
    }
    rtmp_live_llhls::sync::spawn(reg.clone(), peers);
    let listener = tokio::net::TcpListener::bind(&cfg.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, hls = %cfg.hls_path.display(), "serving LL-HLS playlists");
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = stop_tx.send(true);
    });
    let mut stopping = stop_rx.clone();
    let server = axum::serve(listener, server::router_with(reg, cfg.limits()))
        .with_graceful_shutdown(async move {
            let _ = stopping.wait_for(|s| *s).await;
        });
    // Blocking reloads are held for up to 6 s: give them 1 s after the
    // signal, then leave (players retry; the origin serves the files).
    tokio::select! {
        r = server => r?,
        _ = async {
            let _ = stop_rx.wait_for(|s| *s).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        } => tracing::info!("stopping with blocked playlist requests still held"),
    }
    Ok(())
}
