//! Talking to the API: one worker task per stream, so a stream whose reports
//! fail (or are rejected) never delays another's. A worker follows the
//! stream's desired state: while live it reports at once and then every
//! heartbeat, retrying failures with exponential backoff and jitter; when the
//! stream is gone it deregisters and ends.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::StatusCode;
use rtmp_live_types::StreamReport;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
    api: String,
    token: Option<String>,
    host: String,
    heartbeat: Duration,
}

#[derive(Debug)]
enum Failure {
    /// Network error, timeout or 5xx: worth retrying soon.
    Retry(String),
    /// 4xx: the API refuses this report; retrying fast will not help.
    Rejected(StatusCode, String),
}

impl Reporter {
    pub fn new(api: &str, token: Option<String>, host: String, heartbeat: Duration) -> Reporter {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2))
            .build()
            .expect("HTTP client");
        Reporter {
            http,
            api: api.trim_end_matches('/').to_string(),
            token,
            host,
            heartbeat,
        }
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(), Failure> {
        let resp = self
            .auth(req)
            .send()
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
        };
        self.send(
            self.http
                .post(format!("{}/streams", self.api))
                .json(&report),
        )
        .await
    }

    async fn deregister(&self, name: &str) -> Result<(), Failure> {
        let req = self
            .http
            .delete(format!("{}/streams/{name}", self.api))
            .query(&[("host", &self.host)]);
        self.send(req).await
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(self.heartbeat)
            .with_jitter()
            .without_max_times()
            .build()
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
        let mut registered = false;
        let mut failing = false;
        let mut rejected = false;
        let mut backoff = self.backoff();
        loop {
            let want = desired.borrow_and_update().clone();
            let Desired::Live { manifest } = want else {
                self.finish(&name, registered).await;
                return;
            };
            let wait = match self.register(&name, &manifest).await {
                Ok(()) => {
                    if !registered || failing || rejected {
                        tracing::info!(stream = %name, %manifest, host = %self.host, "registered");
                    }
                    registered = true;
                    failing = false;
                    rejected = false;
                    backoff = self.backoff();
                    self.heartbeat
                }
                Err(Failure::Retry(e)) => {
                    if !failing {
                        tracing::warn!(stream = %name, error = %e, "report failed; retrying with backoff");
                    }
                    failing = true;
                    backoff.next().unwrap_or(self.heartbeat)
                }
                Err(Failure::Rejected(status, body)) => {
                    if !rejected {
                        tracing::warn!(stream = %name, %status, %body, "report rejected by the API; retrying every heartbeat");
                    }
                    rejected = true;
                    self.heartbeat
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                changed = desired.changed() => {
                    if changed.is_err() {
                        // The registry dropped the sender: shutting down.
                        self.finish(&name, registered).await;
                        return;
                    }
                }
            }
        }
    }

    /// Deregisters (a few attempts; the API's TTL removes it anyway if all fail).
    async fn finish(&self, name: &str, registered: bool) {
        let mut backoff = self.backoff();
        for attempt in 1..=3 {
            match self.deregister(name).await {
                Ok(()) => {
                    if registered {
                        tracing::info!(stream = %name, host = %self.host, "deregistered");
                    }
                    return;
                }
                Err(e) if attempt == 3 => {
                    tracing::warn!(stream = %name, error = ?e, "deregistration failed; the API's TTL will expire it");
                }
                Err(Failure::Rejected(..)) => return,
                Err(Failure::Retry(_)) => {
                    tokio::time::sleep(backoff.next().unwrap_or(self.heartbeat)).await
                }
            }
        }
    }
}
