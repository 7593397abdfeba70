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

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, IntoConnectionInfo, Script};
use rtmp_live_types::{Origin, StreamInfo, StreamReport};
use tokio::sync::OnceCell;

use crate::error::ApiError;
use crate::metrics::Metrics;

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

/// Live origins of one stream, pruning dead set members as it goes.
/// KEYS[1] = rl:stream:{name}, KEYS[2] = rl:streams; ARGV[1] = origin key
/// prefix, ARGV[2] = name. Returns host, value, host, value...
const LIVE_ORIGINS: &str = r"
local hosts = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, h in ipairs(hosts) do
  local m = redis.call('GET', ARGV[1] .. h)
  if m then
    table.insert(out, h)
    table.insert(out, m)
  else
    redis.call('SREM', KEYS[1], h)
  end
end
if #out == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
end
return out
";

/// Registers or refreshes one origin, keeping the `since` of a registration
/// that is still alive. KEYS[1] = origin key, KEYS[2] = rl:stream:{name},
/// KEYS[3] = rl:streams, KEYS[4] = owner key; ARGV = manifest, ttl, host,
/// name, now (unix ms), owner ttl. Returns the registration's since.
const REPORT: &str = r"
local since = ARGV[5]
local cur = redis.call('GET', KEYS[1])
if cur then
  local s = string.match(cur, '^(%d+) ')
  if s then since = s end
end
redis.call('SET', KEYS[1], since .. ' ' .. ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('EXPIRE', KEYS[4], ARGV[6])
return since
";

/// Claims the owner record of a name for a key hash unless the name is
/// live, or was just allowed to start, under another key.
/// KEYS[1] = owner key, KEYS[2] = rl:stream:{name}, KEYS[3] = pending key;
/// ARGV = origin key prefix, key hash, owner ttl, pending ttl.
/// Returns 1 (claimed) or 0.
const CLAIM: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[2] then
  local pending = redis.call('GET', KEYS[3])
  if pending and pending ~= ARGV[2] then
    return 0
  end
  for _, h in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if redis.call('EXISTS', ARGV[1] .. h) == 1 then
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[4])
return 1
";

/// Counts live streams and origins without changing anything, and names the
/// live streams. KEYS[1] = rl:streams; ARGV = stream key prefix, origin key
/// prefix. Returns {streams, origins, {name...}}.
const COUNT: &str = r"
local streams, origins, names = 0, 0, {}
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local live = 0
  for _, h in ipairs(redis.call('SMEMBERS', ARGV[1] .. n)) do
    if redis.call('EXISTS', ARGV[2] .. n .. ':' .. h) == 1 then
      live = live + 1
    end
  end
  if live > 0 then
    streams = streams + 1
    origins = origins + live
    table.insert(names, n)
  end
end
return {streams, origins, names}
";

/// Whether `/authorize` may start a publish of a name with a given key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The name is free, or already owned by this key.
    Granted,
    /// The name is live under another key.
    Taken,
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
    client: redis::Client,
    /// The shared connection, made on first use. A failed attempt leaves the
    /// cell empty, so the next call tries again (Redis may be down at start).
    conn: OnceCell<ConnectionManager>,
    ttl_secs: u64,
    timeout: Duration,
    metrics: Arc<Metrics>,
    live_origins: Script,
    report: Script,
    claim: Script,
    count: Script,
}

impl Store {
    /// Does not connect: the API starts (and `/readyz` says 503) while
    /// Redis is down, and connects on first use.
    /// `password`: sent with AUTH on every connection (overrides one in
    /// `url`).
    pub fn new(
        url: &str,
        password: Option<&str>,
        ttl_secs: u64,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Store, String> {
        let mut info = url.into_connection_info().map_err(|e| e.to_string())?;
        if let Some(p) = password.filter(|p| !p.is_empty()) {
            let settings = info.redis_settings().clone().set_password(p);
            info = info.set_redis_settings(settings);
        }
        let client = redis::Client::open(info).map_err(|e| e.to_string())?;
        Ok(Store {
            client,
            conn: OnceCell::new(),
            ttl_secs,
            timeout,
            metrics,
            live_origins: Script::new(LIVE_ORIGINS),
            report: Script::new(REPORT),
            claim: Script::new(CLAIM),
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

    /// The connection, created on first use (concurrent first uses wait for
    /// one attempt). The manager reconnects by itself after Redis restarts.
    async fn conn(&self) -> Result<ConnectionManager, ApiError> {
        self.conn
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                match tokio::time::timeout(
                    self.timeout,
                    self.client.get_connection_manager_with_config(config),
                )
                .await
                {
                    Ok(Ok(c)) => {
                        tracing::info!("connected to redis");
                        Ok(c)
                    }
                    Ok(Err(e)) => {
                        tracing::warn!("redis unavailable: {e}");
                        self.metrics.redis_errors.inc();
                        Err(ApiError::RedisUnavailable)
                    }
                    Err(_) => {
                        tracing::warn!("redis connection timed out");
                        self.metrics.redis_errors.inc();
                        Err(ApiError::RedisUnavailable)
                    }
                }
            })
            .await
            .cloned()
    }

    /// The client, for connections of their own (the viewer counts'
    /// background reader, which must not queue behind lookups).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Runs `f` on a connection within the timeout; errors become 503.
    pub(crate) async fn run<T, F, Fut>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn().await?;
        let started = Instant::now();
        let res = tokio::time::timeout(self.timeout, f(conn)).await;
        self.metrics
            .redis_latency
            .observe(started.elapsed().as_secs_f64());
        match res {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::warn!("redis error: {e}");
                self.metrics.redis_errors.inc();
                Err(ApiError::RedisUnavailable)
            }
            Err(_) => {
                tracing::warn!("redis call timed out after {:?}", self.timeout);
                self.metrics.redis_errors.inc();
                Err(ApiError::RedisUnavailable)
            }
        }
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
        let since: String = self
            .run(|mut c| async move {
                self.report
                    .key(&okey)
                    .key(&skey)
                    .key(STREAMS)
                    .key(&wkey)
                    .arg(&r.manifest)
                    .arg(ttl)
                    .arg(&r.host)
                    .arg(&r.name)
                    .arg(now)
                    .arg(owner_ttl)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(since.parse().unwrap_or(now))
    }

    /// Records `key_hash` as the owner of `name` unless `name` is live under
    /// another key.
    pub async fn claim(&self, name: &str, key_hash: &str) -> Result<Claim, ApiError> {
        let wkey = owner_key(name);
        let skey = stream_key(name);
        let pkey = pending_key(name);
        let prefix = origin_prefix(name);
        let ttl = self.owner_ttl_secs();
        let pending_ttl = self.ttl_secs.min(MAX_PENDING_SECS);
        let granted: i64 = self
            .run(|mut c| async move {
                self.claim
                    .key(&wkey)
                    .key(&skey)
                    .key(&pkey)
                    .arg(&prefix)
                    .arg(key_hash)
                    .arg(ttl)
                    .arg(pending_ttl)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(if granted == 1 {
            Claim::Granted
        } else {
            Claim::Taken
        })
    }

    /// The live origins of `name`, sorted by host; `None` when there is none.
    pub async fn lookup(&self, name: &str) -> Result<Option<StreamInfo>, ApiError> {
        let skey = stream_key(name);
        let prefix = origin_prefix(name);
        let flat: Vec<String> = self
            .run(|mut c| async move {
                self.live_origins
                    .key(&skey)
                    .key(STREAMS)
                    .arg(&prefix)
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
        self.run(|mut c| async move {
            let mut p = redis::pipe();
            p.atomic();
            for h in &hosts {
                p.del(format!("{prefix}{h}"))
                    .ignore()
                    .srem(&skey, h)
                    .ignore();
            }
            if whole {
                p.del(&skey).ignore();
            }
            p.query_async::<()>(&mut c).await
        })
        .await?;
        // Drops the name from rl:streams if nothing is left; a deregistered
        // name no longer holds a pending publish either.
        if self.lookup(name).await?.is_none() {
            let pkey = pending_key(name);
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
