//! The API instances this origin talks to (`DISCOVERY_API_URL`: one base
//! URL, or several comma-separated). A request goes to the instance that
//! answered last; on a connection error, a timeout or a 5xx answer it goes
//! to each other instance in turn, once. An instance behind a load
//! balancer or a DNS name with several addresses works as one entry.

use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
pub struct Apis {
    bases: Vec<String>,
    /// The instance that answered last.
    preferred: AtomicUsize,
}

impl Apis {
    /// `http(s)://host[:port][/path]`, comma-separated.
    pub fn parse(list: &str) -> Result<Apis, String> {
        let bases: Vec<String> = list
            .split(',')
            .map(|s| s.trim().trim_end_matches('/'))
            .filter(|s| !s.is_empty())
            .map(|s| {
                let url = reqwest::Url::parse(s).map_err(|e| format!("{s:?}: {e}"))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(format!("{s:?}: expected http(s)://host[:port]"));
                }
                Ok(s.to_string())
            })
            .collect::<Result<_, _>>()?;
        if bases.is_empty() {
            return Err("no API URL".into());
        }
        Ok(Apis {
            bases,
            preferred: AtomicUsize::new(0),
        })
    }

    /// For the log.
    pub fn describe(&self) -> String {
        self.bases.join(",")
    }

    /// Sends what `make` builds for an instance's base URL, failing over
    /// as described above. Returns the answer that ended it, or the last
    /// error.
    pub async fn send(
        &self,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let first = self.preferred.load(Ordering::Relaxed) % self.bases.len();
        let mut last = None;
        for i in 0..self.bases.len() {
            let k = (first + i) % self.bases.len();
            let res = make(&self.bases[k]).send().await;
            let failed = match &res {
                Ok(r) => r.status().is_server_error(),
                Err(_) => true,
            };
            if !failed {
                if k != first {
                    tracing::info!(api = %self.bases[k], "using another API instance");
                    self.preferred.store(k, Ordering::Relaxed);
                }
                return res;
            }
            last = Some(res);
        }
        last.expect("at least one base")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        let a = Apis::parse(" http://a:9090/ ,https://b ").unwrap();
        assert_eq!(a.describe(), "http://a:9090,https://b");
        assert!(Apis::parse("").is_err());
        assert!(Apis::parse("a:9090").is_err());
        assert!(Apis::parse("ftp://a").is_err());
    }
}
