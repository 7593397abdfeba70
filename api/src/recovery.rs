//! Noticing that the registry was lost, and protecting names while the
//! origins bring it back.
//!
//! A failover to a replica that had not received the newest writes, a
//! restart of Redis without persistence, or `FLUSHALL` leave a registry
//! without the live streams and their owner records. The origins report
//! every stream again within one heartbeat, but in between a name looks
//! free, and another key mapped to it could claim it.
//!
//! `rl:epoch` names the registry: the first API to find it missing writes a
//! new one. An API that had seen an epoch and finds it gone (or finds
//! another) knows the registry was lost, and sets `rl:recovering` for
//! `REGISTRY_RECOVERY_SECS`: while it exists, a name without an owner
//! record cannot be claimed (`/authorize` answers 503, and the origin's
//! discovery falls back to the decisions it remembers). An API started
//! after the loss cannot tell it from a new platform; any other API of the
//! platform that saw the old epoch still can.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

pub const EPOCH_KEY: &str = "rl:epoch";
pub const RECOVERING_KEY: &str = "rl:recovering";

/// Lua: `registry_epoch(epoch key, recovering key, known epoch or '',
/// recovery secs, a fresh epoch)` returns the registry's epoch, writing a
/// fresh one (and, when the caller knew another, the recovering mark) when
/// it is missing. Prepended to the scripts that use it.
pub const EPOCH_LUA: &str = r"
local function registry_epoch(ekey, rkey, known, secs, fresh)
  local e = redis.call('GET', ekey)
  if not e then
    redis.call('SET', ekey, fresh)
    e = fresh
  end
  if known ~= '' and known ~= e and tonumber(secs) > 0 then
    redis.call('SET', rkey, '1', 'EX', secs, 'NX')
  end
  return e
end
local epoch = registry_epoch(KEYS[4], KEYS[5], ARGV[5], ARGV[6], ARGV[7])
";

/// The check alone (`Store::check_epoch`): KEYS[4], KEYS[5] and ARGV[5..7]
/// as in the prelude, the others unused; returns {epoch, recovering seconds
/// left or -2}.
const CHECK_BODY: &str = r"
return {epoch, redis.call('TTL', KEYS[5])}
";

/// What this API knows of the registry's epoch.
pub struct Recovery {
    known: Mutex<Option<String>>,
    secs: u64,
    fresh: AtomicU64,
    pub(crate) check: redis::Script,
}

impl Recovery {
    pub fn new(secs: u64) -> Recovery {
        Recovery {
            known: Mutex::new(None),
            secs,
            fresh: AtomicU64::new(0),
            check: redis::Script::new(&format!("{EPOCH_LUA}{CHECK_BODY}")),
        }
    }

    /// ARGV[5..7] of a script with the prelude: the known epoch, the
    /// recovery time, a fresh epoch.
    pub fn args(&self) -> Vec<String> {
        let known = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default();
        vec![known, self.secs.to_string(), self.fresh_epoch()]
    }

    fn fresh_epoch(&self) -> String {
        let n = self.fresh.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let h = Sha256::digest(format!("{now} {} {n}", std::process::id()));
        h[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Records the epoch a script returned; logs when it changed.
    pub fn seen(&self, epoch: &str) {
        let mut k = self.known.lock().unwrap_or_else(|e| e.into_inner());
        match k.as_deref() {
            Some(old) if old != epoch => {
                tracing::warn!(
                    old, new = epoch, recovery_secs = self.secs,
                    "the registry was lost (new epoch): names without an owner wait for the origins' reports"
                );
            }
            None => tracing::info!(epoch, "registry epoch"),
            _ => {}
        }
        *k = Some(epoch.to_string());
    }
}
