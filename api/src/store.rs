//! The registry in Redis. Redis does the expiry, the API keeps no state:
//!
//! - `rl:origin:{name}:{host}` = `"{since} {manifest}"`, `EX ttl`: one origin
//!   of a stream, refreshed by each report, gone `ttl` seconds after the last
//!   one. `since` (unix ms) is set when the key is created and kept by the
//!   reports that refresh it, so it names the origin's publish session;
//! - `rl:stream:{name}`: set of hosts that reported the stream (expires with
//!   its newest origin; members whose origin key expired are pruned on read);
//! - `rl:streams`: set of names, pruned the same way;
//! - `rl:owner:{name}` = SHA-256 (hex) of the stream key that last started a
//!   publish of `name`, `EX ttl + OWNER_GRACE_SECS`, refreshed by reports;
//! - `rl:pending:{name}` = the same hash for `min(ttl, MAX_PENDING_SECS)`
//!   after an allowed publish: the name counts as taken before its first
//!   report arrives (gone when its registrations are deleted).
//!
//! The edges' viewer reports (`rl:viewers:{edge}`, `rl:viewer-edges`) are
//! described in `viewers.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use rtmp_live_types::{Origin, StreamInfo, StreamReport};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::recovery::{Recovery, EPOCH_KEY, RECOVERING_KEY};
use crate::redis_target::{Connector, RedisTarget};
use crate::scripts::{CLAIM_BODY, COUNT, LIVE_ORIGINS, REPORT};

pub(crate) const STREAMS: &str = "rl:streams";
const STREAM_PREFIX: &str = "rl:stream:";
const ORIGIN_PREFIX: &str = "rl:origin:";

/// The owner record outlives the stream's registration by this much, so a
/// slow first report after `/authorize` never finds it gone.
pub const OWNER_GRACE_SECS: u64 = 60;

/// How long an allowed publish holds its name before its first report.
pub const MAX_PENDING_SECS: u64 = 15;

fn stream_key(name: &str) -> String {
    format!("{STREAM_PREFIX}{name}")
}

fn origin_prefix(name: &str) -> String {
    format!("{ORIGIN_PREFIX}{name}:")
}

fn owner_key(name: &str) -> String {
    format!("rl:owner:{name}")
}

fn pending_key(name: &str) -> String {
    format!("rl:pending:{name}")
}

/// Whether `/authorize` may start a publish of a name with a given key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The name is free, or already owned by this key.
    Granted,
    /// The name is live under another key.
    Taken,
    /// The registry was just lost and the name has no owner record yet:
    /// its live origins' heartbeats may still bring one back.
    Recovering,
}

/// Why a Redis call failed.
enum Failed {
    Connect(String),
    Call(redis::RedisError),
    TimedOut,
}

/// What [`Store::count`] finds.
#[derive(Debug, Clone, Default)]
pub struct Census {
    pub streams: i64,
    pub origins: i64,
    /// The live streams' names (bounded by the registry: only registry
    /// writers add names).
    pub names: Vec<String>,
}

pub struct Store {
    /// The shared connection for everything but claims.
    conn: Connector,
    /// Claims on a connection of their own: `WAIT` holds the connection it
    /// is sent on until the replicas answer.
    claims: Connector,
    ttl_secs: u64,
    timeout: Duration,
    /// Replicas that must hold a claim before it is granted (`WAIT`).
    wait_replicas: u32,
    metrics: Arc<Metrics>,
    pub(crate) recovery: Recovery,
    live_origins: Script,
    report: Script,
    claim: Script,
    count: Script,
}

impl Store {
    /// Does not connect: the API starts (and `/readyz` says 503) while
    /// Redis is down, and connects on first use.
    pub fn new(
        target: &RedisTarget,
        ttl_secs: u64,
        timeout: Duration,
        wait_replicas: u32,
        recovery_secs: u64,
        metrics: Arc<Metrics>,
    ) -> Result<Store, String> {
        Ok(Store {
            conn: target.connector(timeout)?,
            claims: target.connector(timeout)?,
            ttl_secs,
            timeout,
            wait_replicas,
            metrics,
            recovery: Recovery::new(recovery_secs),
            live_origins: Script::new(LIVE_ORIGINS),
            report: Script::new(REPORT),
            claim: Script::new(&format!("{}{CLAIM_BODY}", crate::recovery::EPOCH_LUA)),
            count: Script::new(COUNT),
        })
    }

    /// How long a registration lasts without a report.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    pub fn owner_ttl_secs(&self) -> u64 {
        self.ttl_secs + OWNER_GRACE_SECS
    }

    /// Runs `f` on the shared connection within the timeout; errors become
    /// 503.
    pub(crate) async fn run<T, F, Fut>(&self, f: F) -> Result<T, ApiError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.run_on(&self.conn, f).await
    }

    /// With Sentinel, a call that finds the master gone (its connection
    /// broken, `READONLY`) is made once more on the master the sentinels
    /// name now, within the same time budget: every command here is safe to
    /// repeat (scripts that set the same values, reads).
    async fn run_on<T, F, Fut>(&self, on: &Connector, f: F) -> Result<T, ApiError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let started = Instant::now();
        let res = tokio::time::timeout(self.timeout, async {
            let mut retried = false;
            loop {
                let c = on.get().await.map_err(Failed::Connect)?;
                match f(c.conn).await {
                    Ok(v) => return Ok(v),
                    Err(e) => {
                        if on.failed(c.generation, Some(&e)) {
                            // the other connection points at the same
                            // master: it asks the sentinels too
                            self.conn.reset();
                            self.claims.reset();
                            if !retried {
                                retried = true;
                                continue;
                            }
                        }
                        return Err(Failed::Call(e));
                    }
                }
            }
        })
        .await;
        self.metrics
            .redis_latency
            .observe(started.elapsed().as_secs_f64());
        let e = match res {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => e,
            Err(_) => Failed::TimedOut,
        };
        match &e {
            Failed::Connect(e) => tracing::warn!("redis unavailable: {e}"),
            Failed::Call(e) => tracing::warn!("redis error: {e}"),
            Failed::TimedOut => {
                tracing::warn!("redis call timed out after {:?}", self.timeout);
                // a master that hangs: every connection asks the sentinels
                // again (with one server, nothing changes)
                self.conn.reset();
                self.claims.reset();
            }
        }
        self.metrics.redis_errors.inc();
        Err(ApiError::RedisUnavailable)
    }

    /// Reads (or writes) the registry's epoch, so an API that only serves
    /// lookups notices a lost registry too (claims check it as they go).
    pub async fn check_epoch(&self) -> Result<(), ApiError> {
        let args = self.recovery.args();
        let args = &args;
        let (epoch, _left): (String, i64) = self
            .run(|mut c| async move {
                self.recovery
                    .check
                    .key("-")
                    .key("-")
                    .key("-")
                    .key(EPOCH_KEY)
                    .key(RECOVERING_KEY)
                    .arg(["-", "-", "-", "-"].as_slice())
                    .arg(args)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        self.recovery.seen(&epoch);
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), ApiError> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }

    /// Registers (or refreshes) `r.host` as an origin of `r.name`; returns
    /// the registration's `since` and refreshes the name's owner record.
    pub async fn report(&self, r: &StreamReport) -> Result<u64, ApiError> {
        let okey = format!("{}{}", origin_prefix(&r.name), r.host);
        let skey = stream_key(&r.name);
        let wkey = owner_key(&r.name);
        let now = now_ms();
        let (ttl, owner_ttl) = (self.ttl_secs, self.owner_ttl_secs());
        let okey = &okey;
        let skey = &skey;
        let wkey = &wkey;
        let since: String = self
            .run(|mut c| async move {
                self.report
                    .key(okey)
                    .key(skey)
                    .key(STREAMS)
                    .key(wkey)
                    .arg(&r.manifest)
                    .arg(ttl)
                    .arg(&r.host)
                    .arg(&r.name)
                    .arg(now)
                    .arg(owner_ttl)
                    .arg(r.owner.as_deref().unwrap_or(""))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(since.parse().unwrap_or(now))
    }

    /// Records `key_hash` as the owner of `name` unless `name` is live under
    /// another key (or the registry is recovering, see [`Claim`]). With
    /// `wait_replicas`, a granted claim counts only once that many replicas
    /// hold it (503 otherwise: the encoder retries, and its own key is
    /// granted again).
    pub async fn claim(&self, name: &str, key_hash: &str) -> Result<Claim, ApiError> {
        let wkey = owner_key(name);
        let skey = stream_key(name);
        let pkey = pending_key(name);
        let prefix = origin_prefix(name);
        let ttl = self.owner_ttl_secs();
        let pending_ttl = self.ttl_secs.min(MAX_PENDING_SECS);
        let epoch = self.recovery.args();
        let wait = self.wait_replicas;
        // half the call's budget for the replicas, the rest for the claim
        let wait_ms = u64::try_from(self.timeout.as_millis() / 2).unwrap_or(250);
        let wkey = &wkey;
        let skey = &skey;
        let pkey = &pkey;
        let prefix = &prefix;
        let epoch = &epoch;
        let (granted, seen, acked): (i64, String, i64) = self
            .run_on(&self.claims, |mut c| async move {
                let (granted, seen): (i64, String) = self
                    .claim
                    .key(wkey)
                    .key(skey)
                    .key(pkey)
                    .key(EPOCH_KEY)
                    .key(RECOVERING_KEY)
                    .arg(prefix)
                    .arg(key_hash)
                    .arg(ttl)
                    .arg(pending_ttl)
                    .arg(epoch)
                    .invoke_async(&mut c)
                    .await?;
                let acked = if granted == 1 && wait > 0 {
                    redis::cmd("WAIT")
                        .arg(wait)
                        .arg(wait_ms)
                        .query_async(&mut c)
                        .await?
                } else {
                    i64::from(wait)
                };
                Ok((granted, seen, acked))
            })
            .await?;
        self.recovery.seen(&seen);
        match granted {
            1 if acked < i64::from(wait) => {
                tracing::warn!(
                    stream = %name, acked, wanted = wait,
                    "claim not confirmed by enough replicas: publish refused for now"
                );
                self.metrics.redis_errors.inc();
                // A master that lost its replicas may be one the sentinels
                // have replaced while the API could still reach it (a
                // partition between them): the next call asks them again.
                self.conn.reset();
                self.claims.reset();
                Err(ApiError::Unavailable(
                    "the stream's owner record is not on enough replicas yet: retry",
                ))
            }
            1 => Ok(Claim::Granted),
            2 => Ok(Claim::Recovering),
            _ => Ok(Claim::Taken),
        }
    }

    /// The live origins of `name`, sorted by host; `None` when there is none.
    pub async fn lookup(&self, name: &str) -> Result<Option<StreamInfo>, ApiError> {
        let skey = stream_key(name);
        let prefix = origin_prefix(name);
        let skey = &skey;
        let prefix = &prefix;
        let flat: Vec<String> = self
            .run(|mut c| async move {
                self.live_origins
                    .key(skey)
                    .key(STREAMS)
                    .arg(prefix)
                    .arg(name)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(info_from_flat(name, flat))
    }

    /// Live streams in name order, starting after `after`, at most `limit`.
    /// The second value is the cursor of the next page when there may be more.
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<StreamInfo>, Option<String>), ApiError> {
        let mut names: Vec<String> = self
            .run(|mut c| async move { c.smembers(STREAMS).await })
            .await?;
        names.sort_unstable();
        let start = match after {
            Some(a) => names.partition_point(|n| n.as_str() <= a),
            None => 0,
        };
        let mut out = Vec::new();
        for name in &names[start..] {
            if out.len() == limit {
                // More names follow (some may turn out dead).
                let next = out.last().map(|s: &StreamInfo| s.name.clone());
                return Ok((out, next));
            }
            if let Some(info) = self.lookup(name).await? {
                out.push(info);
            }
        }
        Ok((out, None))
    }

    /// Live streams and origins, for the metrics.
    pub async fn count(&self) -> Result<Census, ApiError> {
        let (streams, origins, names): (i64, i64, Vec<String>) = self
            .run(|mut c| async move {
                self.count
                    .key(STREAMS)
                    .arg(STREAM_PREFIX)
                    .arg(ORIGIN_PREFIX)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(Census {
            streams,
            origins,
            names,
        })
    }

    /// Removes one origin of `name`, or all of them.
    pub async fn remove(&self, name: &str, host: Option<&str>) -> Result<(), ApiError> {
        let skey = stream_key(name);
        let prefix = origin_prefix(name);
        let hosts: Vec<String> = match host {
            Some(h) => vec![h.to_string()],
            None => {
                self.run(|mut c| {
                    let skey = skey.clone();
                    async move { c.smembers(skey).await }
                })
                .await?
            }
        };
        let whole = host.is_none();
        let hosts = &hosts;
        let prefix = &prefix;
        let skey = &skey;
        self.run(|mut c| async move {
            let mut p = redis::pipe();
            p.atomic();
            for h in hosts {
                p.del(format!("{prefix}{h}"))
                    .ignore()
                    .srem(skey, h)
                    .ignore();
            }
            if whole {
                p.del(skey).ignore();
            }
            p.query_async::<()>(&mut c).await
        })
        .await?;
        // Drops the name from rl:streams if nothing is left; a deregistered
        // name no longer holds a pending publish either.
        if self.lookup(name).await?.is_none() {
            let pkey = pending_key(name);
            let pkey = &pkey;
            self.run(|mut c| async move { c.del::<_, ()>(pkey).await })
                .await?;
        }
        Ok(())
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `"{since} {manifest}"`; a bare manifest (written before `since`
/// existed) has since 0.
fn parse_origin_value(v: &str) -> (u64, &str) {
    match v.split_once(' ') {
        Some((s, m)) => match s.parse() {
            Ok(since) => (since, m),
            Err(_) => (0, v),
        },
        None => (0, v),
    }
}

fn info_from_flat(name: &str, flat: Vec<String>) -> Option<StreamInfo> {
    let mut origins: Vec<Origin> = flat
        .chunks_exact(2)
        .map(|p| {
            let (since, manifest) = parse_origin_value(&p[1]);
            Origin {
                host: p[0].clone(),
                manifest: manifest.to_string(),
                since,
            }
        })
        .collect();
    origins.sort_by(|a, b| a.host.cmp(&b.host));
    let first = origins.first()?.clone();
    Some(StreamInfo {
        name: name.to_string(),
        manifest: first.manifest,
        host: first.host,
        origins,
        signed: false,
        viewers: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_reply_to_info() {
        assert_eq!(info_from_flat("a", vec![]), None);
        let i = info_from_flat(
            "a",
            ["b:2", "17 i.m3u8", "a:1", "m.m3u8"]
                .map(String::from)
                .to_vec(),
        )
        .unwrap();
        assert_eq!(i.host, "a:1");
        assert_eq!(i.manifest, "m.m3u8");
        assert_eq!(i.origins.len(), 2);
        assert_eq!(i.origins[0].since, 0);
        assert_eq!(i.origins[1].host, "b:2");
        assert_eq!(i.origins[1].manifest, "i.m3u8");
        assert_eq!(i.origins[1].since, 17);
    }
}
