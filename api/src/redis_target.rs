//! Where Redis is and how to reach its master: one server (`REDIS_URL`), or
//! the master that Redis Sentinel names (`REDIS_SENTINELS`).
//!
//! A [`Connector`] holds one shared connection (redis-rs's
//! `ConnectionManager`, which reconnects by itself to the address it was
//! made for). With Sentinel the address can change: after an error that
//! says the master may have moved (connection lost or refused, a timeout,
//! `READONLY` from a demoted master, `MASTERDOWN`), the connection is
//! dropped and the next call asks the sentinels again. redis-rs's sentinel
//! client checks with `ROLE` that the server it names is a master.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, IntoConnectionInfo, RedisError, ServerErrorKind};

/// How to find Redis (from the API's flags).
#[derive(Debug, Clone)]
pub struct RedisTarget {
    pub url: String,
    pub password: Option<String>,
    /// `host:port` of each sentinel; empty: `url` is the server.
    pub sentinels: Vec<String>,
    /// The master's name in the sentinels' configuration.
    pub master_name: String,
    pub sentinel_password: Option<String>,
}

impl RedisTarget {
    /// `host:port` of each sentinel from a comma-separated list.
    pub fn parse_sentinels(list: &str) -> Result<Vec<String>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                let (host, port) = s
                    .rsplit_once(':')
                    .ok_or_else(|| format!("sentinel {s:?}: expected host:port"))?;
                port.parse::<u16>()
                    .map_err(|_| format!("sentinel {s:?}: bad port"))?;
                if host.is_empty() {
                    return Err(format!("sentinel {s:?}: no host"));
                }
                Ok(s.to_string())
            })
            .collect()
    }

    /// Where the log may say Redis is (no credentials).
    pub fn describe(&self) -> String {
        if self.sentinels.is_empty() {
            self.url
                .as_str()
                .into_connection_info()
                .map(|i| i.addr().to_string())
                .unwrap_or_else(|_| "?".into())
        } else {
            format!(
                "master {:?} of sentinels {}",
                self.master_name,
                self.sentinels.join(",")
            )
        }
    }

    /// A connector of its own (each holds one connection).
    pub fn connector(&self, timeout: Duration) -> Result<Connector, String> {
        let source = if self.sentinels.is_empty() {
            let mut info = self
                .url
                .as_str()
                .into_connection_info()
                .map_err(|e| e.to_string())?;
            if let Some(p) = self.password.as_deref().filter(|p| !p.is_empty()) {
                let settings = info.redis_settings().clone().set_password(p);
                info = info.set_redis_settings(settings);
            }
            Source::Direct(redis::Client::open(info).map_err(|e| e.to_string())?)
        } else {
            let addrs = self.sentinels.iter().map(|s| {
                let (host, port) = s.rsplit_once(':').unwrap_or((s, "26379"));
                ConnectionAddr::Tcp(host.to_string(), port.parse().unwrap_or(26379))
            });
            let mut b =
                SentinelClientBuilder::new(addrs, &self.master_name, SentinelServerType::Master)
                    .map_err(|e| e.to_string())?;
            if let Some(p) = self.password.as_deref().filter(|p| !p.is_empty()) {
                b = b.set_client_to_redis_password(p);
            }
            if let Some(p) = self.sentinel_password.as_deref().filter(|p| !p.is_empty()) {
                b = b.set_client_to_sentinel_password(p);
            }
            Source::Sentinel(tokio::sync::Mutex::new(
                b.build().map_err(|e| e.to_string())?,
            ))
        };
        Ok(Connector {
            source,
            timeout,
            current: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
        })
    }
}

enum Source {
    Direct(redis::Client),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// One shared connection to the master, made on first use.
pub struct Connector {
    source: Source,
    timeout: Duration,
    current: RwLock<Option<(u64, ConnectionManager)>>,
    /// One attempt to connect at a time; the others wait for its result.
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
}

/// A connection and the generation to name in [`Connector::failed`].
pub struct Conn {
    pub generation: u64,
    pub conn: ConnectionManager,
}

impl Connector {
    fn cached(&self) -> Option<Conn> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(generation, conn)| Conn {
                generation: *generation,
                conn: conn.clone(),
            })
    }

    /// The current connection, or a new one (to the master the sentinels
    /// name now). Bounded by the timeout.
    pub async fn get(&self) -> Result<Conn, String> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let conn = tokio::time::timeout(self.timeout, self.connect())
            .await
            .map_err(|_| format!("connecting timed out after {:?}", self.timeout))??;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some((generation, conn.clone()));
        Ok(Conn { generation, conn })
    }

    async fn connect(&self) -> Result<ConnectionManager, String> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let client = match &self.source {
            Source::Direct(c) => c.clone(),
            Source::Sentinel(s) => {
                let client = s
                    .lock()
                    .await
                    .async_get_client()
                    .await
                    .map_err(|e| format!("no master from the sentinels: {e}"))?;
                tracing::info!(
                    master = %client.get_connection_info().addr(),
                    "redis master from the sentinels"
                );
                client
            }
        };
        client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| e.to_string())
    }

    /// After a failed call on generation `generation`: with Sentinel, an
    /// error that may mean the master moved drops the connection, so the
    /// next call asks the sentinels again (`None`: the call timed out).
    /// True when this call dropped it (the caller may try once more).
    pub fn failed(&self, generation: u64, err: Option<&RedisError>) -> bool {
        if matches!(self.source, Source::Direct(_)) || !err.is_none_or(master_may_have_moved) {
            return false;
        }
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        if cur.as_ref().is_some_and(|(g, _)| *g == generation) {
            *cur = None;
            tracing::warn!("redis master may have moved: asking the sentinels again");
            return true;
        }
        false
    }
}

impl Connector {
    /// With Sentinel, the next call asks the sentinels for the master: after
    /// a call timed out (a master that hangs, or a network that drops its
    /// packets), or when another connection found the master gone.
    pub fn reset(&self) {
        if matches!(self.source, Source::Sentinel(_)) {
            self.current
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .take();
        }
    }
}

fn master_may_have_moved(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_lists() {
        assert_eq!(
            RedisTarget::parse_sentinels(" a:26379, 10.0.0.2:1 ,").unwrap(),
            vec!["a:26379", "10.0.0.2:1"]
        );
        assert!(RedisTarget::parse_sentinels("a").is_err());
        assert!(RedisTarget::parse_sentinels("a:x").is_err());
        assert!(RedisTarget::parse_sentinels(":1").is_err());
        assert!(RedisTarget::parse_sentinels("").unwrap().is_empty());
    }
}
