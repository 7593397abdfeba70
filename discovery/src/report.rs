//! Talking to the API: one worker task per stream, so a stream whose reports
//! fail (or are rejected) never delays another's. A worker follows the
//! stream's desired state: while live it reports at once and then every
//! heartbeat, retrying failures with exponential backoff and jitter (never
//! more than a heartbeat apart, and at once when another worker sees the API
//! come back); when the stream is gone it deregisters and ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use reqwest::StatusCode;
use rtmp_live_types::StreamReport;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::apis::Apis;
use crate::metrics::Metrics;
use crate::owners::Owners;

/// What a stream should look like at the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Desired {
    Live { manifest: String },
    Gone,
}

/// API client settings shared by all workers.
#[derive(Clone)]
pub struct Reporter {
    http: reqwest::Client,
    apis: Arc<Apis>,
    token: Option<String>,
    host: String,
    heartbeat: Duration,
    metrics: Arc<Metrics>,
    /// Signalled when a report lands after failures: the API is back.
    api_back: Arc<Notify>,
    /// Who started each stream (sent with its reports).
    owners: Arc<Owners>,
}

#[derive(Debug)]
enum Failure {
    /// Network error, timeout or 5xx: worth retrying soon.
    Retry(String),
    /// 4xx: the API refuses this report; retrying fast will not help.
    Rejected(StatusCode, String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Retry(e) => f.write_str(e),
            Failure::Rejected(status, body) => write!(f, "{status}: {body}"),
        }
    }
}

/// Where a stream's reports stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// No report has landed yet.
    New,
    /// The last report was accepted.
    Registered,
    /// Reports fail (network, timeout, 5xx): retried with backoff.
    Failing,
    /// The API refuses the reports (4xx): retried every heartbeat.
    Rejected,
}

impl Reporter {
    pub fn new(
        apis: Arc<Apis>,
        token: Option<String>,
        host: String,
        heartbeat: Duration,
        metrics: Arc<Metrics>,
        api_back: Arc<Notify>,
        owners: Arc<Owners>,
    ) -> Reporter {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2))
            .build()
            .expect("HTTP client");
        Reporter {
            http,
            apis,
            token,
            host,
            heartbeat,
            metrics,
            api_back,
            owners,
        }
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends one report attempt of `op`, counted in the metrics.
    async fn send(
        &self,
        op: &'static str,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<(), Failure> {
        let start = Instant::now();
        let result = self.attempt(make).await;
        let label = match &result {
            Ok(()) => "ok",
            Err(Failure::Retry(_)) => "failed",
            Err(Failure::Rejected(..)) => "rejected",
        };
        self.metrics
            .report(op, label, start.elapsed().as_secs_f64());
        result
    }

    async fn attempt(&self, make: impl Fn(&str) -> reqwest::RequestBuilder) -> Result<(), Failure> {
        let resp = self
            .apis
            .send(|base| self.auth(make(base)))
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        if status.is_client_error()
            && status != StatusCode::REQUEST_TIMEOUT
            && status != StatusCode::TOO_MANY_REQUESTS
        {
            Err(Failure::Rejected(status, body))
        } else {
            Err(Failure::Retry(format!("{status}: {body}")))
        }
    }

    async fn register(&self, name: &str, manifest: &str) -> Result<(), Failure> {
        let report = StreamReport {
            name: name.into(),
            manifest: manifest.into(),
            host: self.host.clone(),
            owner: self.owners.get(name),
        };
        self.send("register", |base| {
            self.http.post(format!("{base}/streams")).json(&report)
        })
        .await
    }

    async fn deregister(&self, name: &str) -> Result<(), Failure> {
        self.send("deregister", |base| {
            self.http
                .delete(format!("{base}/streams/{name}"))
                .query(&[("host", &self.host)])
        })
        .await
    }

    /// Delays between attempts: exponential with jitter, from 100 ms up to
    /// one heartbeat (jitter included), so that a stream whose reports fail
    /// while the API is down is registered within a heartbeat of its return.
    fn backoff(&self) -> impl Iterator<Item = Duration> + Send + Sync + Unpin {
        let cap = self.heartbeat;
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100).min(cap))
            .with_max_delay(cap)
            .with_jitter()
            .without_max_times()
            .build()
            .map(move |d| d.min(cap))
    }

    /// Starts the worker of stream `name`. `previous` is the worker of an
    /// earlier life of the same stream, awaited first so that its
    /// deregistration cannot land after this life's first report.
    pub fn spawn(
        &self,
        name: String,
        desired: watch::Receiver<Desired>,
        previous: Option<JoinHandle<()>>,
    ) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            if let Some(p) = previous {
                let _ = p.await;
            }
            me.work(name, desired).await;
        })
    }

    async fn work(&self, name: String, mut desired: watch::Receiver<Desired>) {
        let mut standing = Standing::New;
        loop {
            let want = desired.borrow_and_update().clone();
            let Desired::Live { manifest } = want else {
                self.finish(&name, standing).await;
                return;
            };
            let before = standing;
            let failed = AtomicBool::new(false);
            let api_back = self.api_back.clone();
            // One report, retried with backoff until it lands or is rejected.
            // A retry waits out its delay, or less when another worker saw the
            // API come back.
            let report = (|| self.register(&name, &manifest))
                .retry(self.backoff())
                .sleep(move |d| {
                    let back = api_back.clone();
                    async move {
                        tokio::select! {
                            _ = tokio::time::sleep(d) => {}
                            _ = back.notified() => {}
                        }
                    }
                })
                .when(|f| matches!(f, Failure::Retry(_)))
                .notify(|f, _| {
                    if !failed.swap(true, Ordering::Relaxed) && before != Standing::Failing {
                        tracing::warn!(stream = %name, error = %f, "report failed; retrying with backoff");
                    }
                });
            let outcome = tokio::select! {
                r = report => Some(r),
                changed = desired.changed() => {
                    if changed.is_err() {
                        // The registry dropped the sender: shutting down.
                        self.finish(&name, standing).await;
                        return;
                    }
                    None
                }
            };
            if failed.load(Ordering::Relaxed) {
                standing = Standing::Failing;
            }
            match outcome {
                // The desired state changed mid-report: follow it at once.
                None => continue,
                Some(Ok(())) => {
                    if standing != Standing::Registered {
                        tracing::info!(stream = %name, %manifest, host = %self.host, "registered");
                    }
                    if standing == Standing::Failing {
                        // The API is back: wake the other workers' retries.
                        self.api_back.notify_waiters();
                    }
                    standing = Standing::Registered;
                }
                Some(Err(Failure::Rejected(status, body))) => {
                    if standing != Standing::Rejected {
                        tracing::warn!(stream = %name, %status, %body, "report rejected by the API; retrying every heartbeat");
                    }
                    standing = Standing::Rejected;
                }
                // Not reached: failures are retried without limit.
                Some(Err(Failure::Retry(_))) => standing = Standing::Failing,
            }
            tokio::select! {
                _ = tokio::time::sleep(self.heartbeat) => {}
                changed = desired.changed() => {
                    if changed.is_err() {
                        self.finish(&name, standing).await;
                        return;
                    }
                }
            }
        }
    }

    /// Deregisters (three attempts; the API's TTL removes it anyway if all fail).
    async fn finish(&self, name: &str, standing: Standing) {
        let done = (|| self.deregister(name))
            .retry(self.backoff().take(2))
            .when(|f| matches!(f, Failure::Retry(_)))
            .await;
        match done {
            Ok(()) => {
                if standing != Standing::New {
                    tracing::info!(stream = %name, host = %self.host, "deregistered");
                }
            }
            Err(Failure::Rejected(..)) => {}
            Err(e) => {
                tracing::warn!(stream = %name, error = %e, "deregistration failed; the API's TTL will expire it");
            }
        }
    }
}
