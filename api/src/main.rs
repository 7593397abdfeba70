//! `rtmp-live-api`: the platform's registry. Authorizes ingest (nginx-rtmp
//! `on_publish`), records which origin holds which live stream in Redis with
//! per-origin TTLs, and tells edges where a stream is.

mod auth;
mod config;
mod error;
mod routes;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::config::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let config = Config::parse();
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    let keys =
        auth::StreamKeys::parse(&config.stream_keys).map_err(|e| format!("STREAM_KEYS: {e}"))?;
    if !config.publish_redirect.contains("{name}") {
        tracing::warn!(
            "PUBLISH_REDIRECT has no {{name}} placeholder: every publish goes to the same name"
        );
    }
    let token = config.report_token.clone().filter(|t| !t.is_empty());
    if token.is_none() {
        tracing::warn!(
            "API_REPORT_TOKEN is not set: anyone who can reach the API may register streams"
        );
    }
    let store = store::Store::new(
        &config.redis_url,
        config.stream_ttl_secs,
        config.redis_timeout(),
    )
    .map_err(|e| format!("REDIS_URL: {e}"))?;
    let state = Arc::new(routes::AppState {
        store,
        keys,
        token,
        publish_redirect: config.publish_redirect.clone(),
    });
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    tracing::info!(listen = %config.listen, redis = %config.redis_url, ttl = config.stream_ttl_secs, "API listening");
    axum::serve(
        listener,
        routes::router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("API stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}
