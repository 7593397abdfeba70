//! `rtmp-live-api`: the platform's registry. Authorizes ingest (nginx-rtmp
//! `on_publish`), records which origin holds which live stream in Redis with
//! per-origin TTLs, and tells edges where a stream is. It also issues signed
//! playback links and sums the viewer counts the edges report.

mod auth;
mod config;
mod error;
mod extract;
mod limiter;
mod metrics;
mod playback;
mod recordings;
mod recovery;
mod redis_target;
mod roles;
mod routes;
mod scripts;
mod secret;
mod server;
mod state;
mod store;
mod viewer_snapshot;
mod viewers;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::roles::RoleToken;
use crate::secret::PlaybackSecret;

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

const INSECURE_HINT: &str =
    "(or start with --insecure-no-auth / API_INSECURE_NO_AUTH=1 for local development only)";

/// Stream keys and registry tokens, refusing an unsafe configuration
/// unless the insecure switch is given (then warning loudly).
fn credentials(config: &Config) -> Result<(auth::StreamKeys, auth::Tokens), String> {
    let keys_given = config
        .stream_keys
        .as_deref()
        .is_some_and(|k| !k.split(',').all(|e| e.trim().is_empty()));
    let keys = if keys_given {
        auth::StreamKeys::parse(config.stream_keys.as_deref().unwrap_or_default())
            .map_err(|e| format!("STREAM_KEYS: {e}"))?
    } else if config.insecure_no_auth {
        tracing::warn!("INSECURE: STREAM_KEYS is not set: every publish is refused");
        auth::StreamKeys::default()
    } else {
        return Err(format!(
            "STREAM_KEYS is required: comma-separated `key=name` entries, each key a secret of \
             at least {} characters (e.g. 32 hex characters from /dev/urandom) {INSECURE_HINT}",
            auth::MIN_KEY_LEN
        ));
    };
    let tokens = auth::Tokens::parse(
        config.report_token.as_deref(),
        config.origin_tokens.as_deref(),
    )
    .map_err(|e| format!("API_ORIGIN_TOKENS: {e}"))?;
    if tokens.is_open() {
        if !config.insecure_no_auth {
            return Err(format!(
                "API_REPORT_TOKEN or API_ORIGIN_TOKENS is required: registry writes need a \
                 bearer token {INSECURE_HINT}"
            ));
        }
        for _ in 0..3 {
            tracing::warn!(
                "INSECURE: no API_REPORT_TOKEN / API_ORIGIN_TOKENS: ANYONE who can reach this \
                 API can register, redirect or delete streams (--insecure-no-auth)"
            );
        }
    } else if tokens.shortest().is_some_and(|n| n < auth::MIN_KEY_LEN) {
        tracing::warn!(
            "a registry token is shorter than {} characters: use long random tokens",
            auth::MIN_KEY_LEN
        );
    }
    Ok((keys, tokens))
}

/// The operator and edge tokens and the playback secret, refusing a weak
/// or shared token and an unreadable or short secret; warns about what the
/// configuration leaves open or unusable.
fn audience_credentials(
    config: &Config,
    keys: &auth::StreamKeys,
    tokens: &auth::Tokens,
) -> Result<(RoleToken, RoleToken, Option<PlaybackSecret>), String> {
    let insecure = config.insecure_no_auth;
    let operator = RoleToken::parse(
        "API_OPERATOR_TOKEN",
        config.operator_token.as_deref(),
        insecure,
    )?;
    let edge = RoleToken::parse("API_EDGE_TOKEN", config.edge_token.as_deref(), insecure)?;
    roles::distinct(&operator, &edge, tokens)?;
    let secret = match (&config.playback_secret_file, &config.playback_secret) {
        (Some(f), _) => {
            Some(PlaybackSecret::load(f).map_err(|e| format!("API_PLAYBACK_SECRET_FILE: {e}"))?)
        }
        (None, Some(v)) if !v.is_empty() => Some(PlaybackSecret::from_value(v)?),
        (None, _) => None,
    };
    match (&operator, &secret) {
        (RoleToken::Open, Some(_)) => tracing::warn!(
            "INSECURE: no API_OPERATOR_TOKEN: ANYONE who can reach this API can issue playback \
             tokens (--insecure-no-auth)"
        ),
        (RoleToken::Unset, Some(_)) => tracing::warn!(
            "API_PLAYBACK_SECRET_FILE is set but API_OPERATOR_TOKEN is not: issuing playback \
             tokens answers 503"
        ),
        _ => {}
    }
    match &edge {
        RoleToken::Open => tracing::warn!(
            "INSECURE: no API_EDGE_TOKEN: ANYONE who can reach this API can report viewer \
             counts (--insecure-no-auth)"
        ),
        RoleToken::Unset => tracing::info!(
            "API_EDGE_TOKEN is not set: viewer reports answer 503 and every count is 0"
        ),
        RoleToken::Token(_) => {}
    }
    if keys.any_signed() && secret.is_none() {
        tracing::info!(
            "STREAM_KEYS marks names :signed but API_PLAYBACK_SECRET_FILE is not set: this API \
             cannot issue their playback tokens"
        );
    }
    Ok((operator, edge, secret))
}

async fn run(config: Config) -> Result<(), String> {
    let (keys, tokens) = credentials(&config)?;
    let (operator, edge, playback_secret) = audience_credentials(&config, &keys, &tokens)?;
    if !config.publish_redirect.contains("{name}") {
        tracing::warn!(
            "PUBLISH_REDIRECT has no {{name}} placeholder: every publish goes to the same name"
        );
    }
    let metrics = Arc::new(metrics::Metrics::new());
    let redis = config.redis_target()?;
    let store = store::Store::new(
        &redis,
        config.stream_ttl_secs,
        config.redis_timeout(),
        config.redis_wait_replicas,
        config.registry_recovery_secs,
        metrics.clone(),
    )
    .map_err(|e| format!("REDIS_URL: {e}"))?;
    let viewers = Arc::new(viewer_snapshot::ViewerCounts::new(Duration::from_secs(
        config.viewer_report_ttl_secs,
    )));
    viewer_snapshot::spawn_refresher(
        viewers.clone(),
        redis
            .connector(config.redis_timeout())
            .map_err(|e| format!("REDIS_URL: {e}"))?,
        metrics.clone(),
    );
    let state = Arc::new(state::AppState {
        store,
        keys,
        tokens,
        limiter: limiter::FailureLimiter::new(
            config.authorize_max_failures_per_min,
            usize::try_from(config.authorize_max_tracked_clients).unwrap_or(usize::MAX),
            Duration::from_secs(60),
        ),
        publish_redirect: config.publish_redirect.clone(),
        metrics,
        operator,
        edge,
        playback_secret,
        viewers,
    });
    // every second: a lost registry is noticed by APIs that only serve
    // lookups too (claims check it as they go)
    let watch = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let _ = watch.store.check_epoch().await;
        }
    });
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    tracing::info!(listen = %config.listen, redis = %redis.describe(), ttl = config.stream_ttl_secs, "API listening");
    let app = routes::router(state, Duration::from_secs(config.request_timeout_secs));
    server::serve(
        listener,
        app,
        server::Limits {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
            body_timeout: Duration::from_secs(config.body_timeout_secs),
            max_connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
            shutdown_grace: Duration::from_secs(3),
        },
        shutdown(),
    )
    .await;
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
