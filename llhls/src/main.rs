use std::time::Duration;

use clap::Parser;
use rtmp_live_llhls::registry::Registry;
use rtmp_live_llhls::{server, watch, Config};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cfg = Config::parse();
    if !(0.1..=2.0).contains(&cfg.part_target) {
        return Err("--part-target must be between 0.1 and 2 seconds".into());
    }
    std::fs::create_dir_all(&cfg.hls_path)?;
    let reg = Registry::new(cfg.hls_path.clone(), cfg.settings());
    let _watcher = watch(reg.clone(), Duration::from_millis(cfg.rescan_ms.max(50)))?;
    let listener = tokio::net::TcpListener::bind(&cfg.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, hls = %cfg.hls_path.display(), "serving LL-HLS playlists");
    axum::serve(listener, server::router(reg))
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await?;
    Ok(())
}
