//! Bounded HTTP GETs: every request has a time limit and a size limit, so a
//! hostile or stuck server cannot hang or exhaust the checker.

use std::time::{Duration, Instant};

use url::Url;

use crate::error::Error;

/// A response, read to the end (or to the size limit).
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// Seconds from sending the request to the last byte.
    pub secs: f64,
    pub content_range: Option<String>,
}

/// Why there is no response.
#[derive(Clone, Debug, PartialEq)]
pub enum FetchError {
    Timeout(f64),
    Transport(String),
    TooLarge(usize),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Timeout(s) => write!(f, "no complete answer within {s:.1} s"),
            FetchError::Transport(e) => write!(f, "{e}"),
            FetchError::TooLarge(n) => write!(f, "body larger than {n} bytes"),
        }
    }
}

/// The HTTP client (one per run, shared; keep-alive connections).
#[derive(Clone, Debug)]
pub struct Http {
    client: reqwest::Client,
}

/// The end of an open byte range (RFC 8673 / RFC 8216bis 4.4.5.3).
pub const OPEN_END: u64 = 9_007_199_254_740_991;

impl Http {
    pub fn new() -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .user_agent(concat!("rtmp-live-conform/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|e| Error::Client(e.to_string()))?;
        Ok(Http { client })
    }

    /// GET `url` (with `Range: bytes=first-last` if `range`), at most `max`
    /// bytes, within `timeout`.
    pub async fn get(
        &self,
        url: &Url,
        range: Option<(u64, u64)>,
        max: usize,
        timeout: Duration,
    ) -> Result<Response, FetchError> {
        let start = Instant::now();
        let fetch = async {
            let mut req = self.client.get(url.clone());
            if let Some((a, b)) = range {
                req = req.header(reqwest::header::RANGE, format!("bytes={a}-{b}"));
            }
            let mut resp = req
                .send()
                .await
                .map_err(|e| FetchError::Transport(describe(&e)))?;
            let status = resp.status().as_u16();
            let content_range = resp
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut body = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| FetchError::Transport(describe(&e)))?
            {
                if body.len() + chunk.len() > max {
                    return Err(FetchError::TooLarge(max));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Response {
                status,
                body,
                secs: start.elapsed().as_secs_f64(),
                content_range,
            })
        };
        match tokio::time::timeout(timeout, fetch).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(timeout.as_secs_f64())),
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// `url` with `query` added to its query string.
pub fn with_query(url: &Url, query: &str) -> Url {
    let mut u = url.clone();
    let q = match url.query() {
        Some(q) if !q.is_empty() => format!("{q}&{query}"),
        _ => query.to_string(),
    };
    u.set_query(Some(&q));
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_appended() {
        let u = Url::parse("http://h/s/index.m3u8").unwrap();
        assert_eq!(
            with_query(&u, "_HLS_msn=3").as_str(),
            "http://h/s/index.m3u8?_HLS_msn=3"
        );
        let u = Url::parse("http://h/s/index.m3u8?token=a").unwrap();
        assert_eq!(
            with_query(&u, "_HLS_skip=YES").as_str(),
            "http://h/s/index.m3u8?token=a&_HLS_skip=YES"
        );
    }
}
