//! The registry in Redis. Redis does the expiry, the API keeps no state:
//!
//! - `rl:origin:{name}:{host}` = manifest, `EX ttl`: one origin of a stream,
//!   refreshed by each report, gone `ttl` seconds after the last one;
//! - `rl:stream:{name}`: set of hosts that reported the stream (expires with
//!   its newest origin; members whose origin key expired are pruned on read);
//! - `rl:streams`: set of names, pruned the same way.

use std::sync::RwLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use rtmp_live_types::{Origin, StreamInfo, StreamReport};
use tokio::sync::Mutex;

use crate::error::ApiError;

const STREAMS: &str = "rl:streams";

fn stream_key(name: &str) -> String {
    format!("rl:stream:{name}")
}

fn origin_prefix(name: &str) -> String {
    format!("rl:origin:{name}:")
}

/// Live origins of one stream, pruning dead set members as it goes.
/// KEYS[1] = rl:stream:{name}, KEYS[2] = rl:streams; ARGV[1] = origin key
/// prefix, ARGV[2] = name. Returns host, manifest, host, manifest...
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

pub struct Store {
    client: redis::Client,
    /// The shared connection once made; read without waiting on the hot path.
    conn: RwLock<Option<ConnectionManager>>,
    /// Serializes (re)connection attempts.
    connecting: Mutex<()>,
    ttl_secs: u64,
    timeout: Duration,
    live_origins: Script,
}

impl Store {
    /// Does not connect: the API starts (and `/readyz` says 503) while
    /// Redis is down, and connects on first use.
    pub fn new(url: &str, ttl_secs: u64, timeout: Duration) -> Result<Store, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        Ok(Store {
            client,
            conn: RwLock::new(None),
            connecting: Mutex::new(()),
            ttl_secs,
            timeout,
            live_origins: Script::new(LIVE_ORIGINS),
        })
    }

    /// A connection, created on first use. The manager reconnects by itself
    /// after Redis restarts; every use is bounded by the timeout.
    async fn conn(&self) -> Result<ConnectionManager, ApiError> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let made = tokio::time::timeout(
            self.timeout,
            self.client.get_connection_manager_with_config(config),
        )
        .await;
        match made {
            Ok(Ok(c)) => {
                tracing::info!("connected to redis");
                *self.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
                Ok(c)
            }
            Ok(Err(e)) => {
                tracing::warn!("redis unavailable: {e}");
                Err(ApiError::RedisUnavailable)
            }
            Err(_) => {
                tracing::warn!("redis connection timed out");
                Err(ApiError::RedisUnavailable)
            }
        }
    }

    fn current(&self) -> Option<ConnectionManager> {
        self.conn.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `f` on a connection within the timeout; errors become 503.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn().await?;
        match tokio::time::timeout(self.timeout, f(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::warn!("redis error: {e}");
                Err(ApiError::RedisUnavailable)
            }
            Err(_) => {
                tracing::warn!("redis call timed out after {:?}", self.timeout);
                Err(ApiError::RedisUnavailable)
            }
        }
    }

    pub async fn ping(&self) -> Result<(), ApiError> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }

    /// Registers (or refreshes) `r.host` as an origin of `r.name`.
    pub async fn report(&self, r: &StreamReport) -> Result<(), ApiError> {
        let ttl = self.ttl_secs;
        let okey = format!("{}{}", origin_prefix(&r.name), r.host);
        let skey = stream_key(&r.name);
        self.run(|mut c| async move {
            redis::pipe()
                .atomic()
                .set_ex(&okey, &r.manifest, ttl)
                .ignore()
                .sadd(&skey, &r.host)
                .ignore()
                .expire(&skey, ttl as i64)
                .ignore()
                .sadd(STREAMS, &r.name)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
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

    /// Every live stream.
    pub async fn list(&self) -> Result<Vec<StreamInfo>, ApiError> {
        let names: Vec<String> = self
            .run(|mut c| async move { c.smembers(STREAMS).await })
            .await?;
        let mut out = Vec::new();
        for name in names {
            if let Some(info) = self.lookup(&name).await? {
                out.push(info);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
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
        // Drops the name from rl:streams if nothing is left.
        self.lookup(name).await.map(|_| ())
    }
}

fn info_from_flat(name: &str, flat: Vec<String>) -> Option<StreamInfo> {
    let mut origins: Vec<Origin> = flat
        .chunks_exact(2)
        .map(|p| Origin {
            host: p[0].clone(),
            manifest: p[1].clone(),
            since: 0,
        })
        .collect();
    origins.sort_by(|a, b| a.host.cmp(&b.host));
    let first = origins.first()?.clone();
    Some(StreamInfo {
        name: name.to_string(),
        manifest: first.manifest,
        host: first.host,
        origins,
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
            ["b:2", "i.m3u8", "a:1", "m.m3u8"]
                .map(String::from)
                .to_vec(),
        )
        .unwrap();
        assert_eq!(i.host, "a:1");
        assert_eq!(i.manifest, "m.m3u8");
        assert_eq!(i.origins.len(), 2);
        assert_eq!(i.origins[1].host, "b:2");
    }
}
