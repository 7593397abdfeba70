//! The limit on failed `/authorize` attempts per publisher address: fixed
//! one-minute windows in memory, for a bounded number of addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ApiError;

/// Counts failed `/authorize` attempts per client address in fixed
/// one-minute windows. Memory is bounded: at most `cap` addresses are
/// tracked; when full, expired windows are dropped first, then the oldest.
pub struct FailureLimiter {
    max_failures: u32,
    cap: usize,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

/// IPv6 clients are counted per /64 (one host usually has a whole /64);
/// IPv4-mapped IPv6 addresses as IPv4.
fn client_bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl FailureLimiter {
    /// `max_failures` 0 disables the limit.
    pub fn new(max_failures: u32, cap: usize, window: Duration) -> FailureLimiter {
        FailureLimiter {
            max_failures,
            cap: cap.max(1),
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(429)` while `ip` has used up its failures in the current window.
    pub fn check(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.check_at(ip, Instant::now())
    }

    pub fn record_failure(&self, ip: IpAddr) {
        self.record_failure_at(ip, Instant::now())
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), ApiError> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get(&client_bucket(ip)) {
            Some(w) if w.failures >= self.max_failures => {
                let left = self
                    .window
                    .saturating_sub(now.saturating_duration_since(w.start));
                if left.is_zero() {
                    Ok(())
                } else {
                    Err(ApiError::TooManyRequests {
                        retry_after_secs: left.as_secs() + 1,
                    })
                }
            }
            _ => Ok(()),
        }
    }

    fn record_failure_at(&self, ip: IpAddr, now: Instant) {
        if self.max_failures == 0 {
            return;
        }
        let ip = client_bucket(ip);
        let window = self.window;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.contains_key(&ip) && seen.len() >= self.cap {
            seen.retain(|_, w| now.saturating_duration_since(w.start) < window);
            if seen.len() >= self.cap {
                let oldest = seen.iter().min_by_key(|(_, w)| w.start).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    seen.remove(&k);
                }
            }
        }
        let w = seen.entry(ip).or_insert(Window {
            start: now,
            failures: 0,
        });
        if now.saturating_duration_since(w.start) >= window {
            *w = Window {
                start: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_windows_and_cap() {
        let l = FailureLimiter::new(3, 4, Duration::from_secs(60));
        let ip: IpAddr = "10.1.1.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at(ip, t0).is_ok());
            l.record_failure_at(ip, t0);
        }
        assert!(matches!(
            l.check_at(ip, t0 + Duration::from_secs(59)),
            Err(ApiError::TooManyRequests { .. })
        ));
        assert!(l.check_at(ip, t0 + Duration::from_secs(60)).is_ok());
        // Another /64 neighbour shares the IPv6 bucket.
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        for _ in 0..3 {
            l.record_failure_at(a, t0);
        }
        assert!(l.check_at(b, t0).is_err());
        // Never more than `cap` addresses, however many fail.
        for i in 0..100u8 {
            l.record_failure_at(IpAddr::from([192, 168, 0, i]), t0 + Duration::from_secs(1));
        }
        assert!(l.tracked() <= 4);
        let off = FailureLimiter::new(0, 4, Duration::from_secs(60));
        for _ in 0..100 {
            off.record_failure_at(ip, t0);
        }
        assert!(off.check_at(ip, t0).is_ok());
    }
}
