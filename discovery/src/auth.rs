//! Publish authorization for the origin's nginx-rtmp (`on_publish`), kept
//! working through API outages: each request is forwarded to the API with a
//! short timeout and its answer relayed. Allow answers are remembered, keyed
//! by a salted SHA-256 of the stream key (never the key itself), so that
//! while the API does not answer (timeout, connection error, 5xx) a key the
//! API allowed recently is still allowed, and every other key refused. A
//! definite refusal by the API forgets the key.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::apis::Apis;
use crate::metrics::{AuthSource, Metrics};
use crate::owners::Owners;

/// The file, inside the state folder, holding the remembered decisions.
pub const MEMORY_FILE: &str = "authorize-memory.json";

/// The fields of nginx-rtmp's `on_publish` form used here (`name` is the
/// stream key; the others are only logged).
#[derive(Debug, Default, Deserialize)]
struct PublishForm {
    name: Option<String>,
    addr: Option<String>,
    app: Option<String>,
}

/// What nginx-rtmp is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    /// `Location` of an allow (nginx-rtmp renames or relays the stream).
    pub location: Option<String>,
}

impl Answer {
    fn deny() -> Answer {
        Answer {
            status: StatusCode::FORBIDDEN,
            location: None,
        }
    }
}

/// A remembered allow decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    status: u16,
    location: Option<String>,
    /// When the API gave it, in milliseconds since the Unix epoch.
    decided_ms: u64,
}

/// The on-disk form of [`Memory`] (hex strings).
#[derive(Serialize, Deserialize)]
struct Saved {
    salt: String,
    entries: HashMap<String, Entry>,
}

struct Memory {
    salt: [u8; 16],
    entries: HashMap<[u8; 32], Entry>,
    file: Option<PathBuf>,
}

/// How the API answered.
enum ApiAnswer {
    Allow(Answer),
    /// A definite refusal of this key.
    Deny(StatusCode),
    /// A refusal that says nothing about the key (e.g. 429, 400, 404):
    /// relayed, the memory is left alone.
    Other(StatusCode),
    /// No usable answer: timeout, connection error, 5xx, 408.
    Unavailable(String),
}

pub struct Authorizer {
    http: reqwest::Client,
    apis: Arc<Apis>,
    /// This origin's token (`API_REPORT_TOKEN`): the API answers
    /// `/authorize` only to origins.
    token: Option<String>,
    max_age: Duration,
    memory: Mutex<Memory>,
    metrics: Arc<Metrics>,
    api_back: Arc<Notify>,
    /// Who started each stream, for the reports (`owners.rs`).
    owners: Arc<Owners>,
}

impl Authorizer {
    /// `state_dir`: where remembered decisions survive a restart (None:
    /// memory only).
    pub fn new(
        apis: Arc<Apis>,
        token: Option<String>,
        timeout: Duration,
        max_age: Duration,
        state_dir: Option<&Path>,
        metrics: Arc<Metrics>,
        api_back: Arc<Notify>,
    ) -> Authorizer {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        let memory = Memory::load(state_dir, max_age);
        metrics.auth_remembered.set(memory.entries.len() as i64);
        Authorizer {
            http,
            apis,
            token,
            max_age,
            memory: Mutex::new(memory),
            metrics,
            api_back,
            owners: Arc::default(),
        }
    }

    /// Shares what it learns of streams' owners with the reports.
    pub fn with_owners(mut self, owners: Arc<Owners>) -> Authorizer {
        self.owners = owners;
        self
    }

    /// Answers one `on_publish` request (its raw form body).
    pub async fn authorize(&self, body: Bytes) -> Answer {
        let form: PublishForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
        let key = form.name.clone().unwrap_or_default();
        let client = form.addr.as_deref().unwrap_or("-");
        let app = form.app.as_deref().unwrap_or("-");
        let hash = self.lock().hash(&key);
        let tag = hex(&hash[..4]);
        match self.ask_api(body).await {
            ApiAnswer::Allow(answer) => {
                self.api_back.notify_waiters();
                self.metrics.authorize(AuthSource::Api, true);
                self.owners.allowed(&key, answer.location.as_deref());
                self.remember(
                    hash,
                    Entry {
                        status: answer.status.as_u16(),
                        location: answer.location.clone(),
                        decided_ms: now_ms(),
                    },
                );
                tracing::debug!(%client, %app, key = %tag, "publish allowed by the API");
                answer
            }
            ApiAnswer::Deny(status) => {
                self.api_back.notify_waiters();
                self.metrics.authorize(AuthSource::Api, false);
                self.forget(&hash);
                tracing::debug!(%client, %app, key = %tag, "publish denied by the API");
                Answer {
                    status,
                    location: None,
                }
            }
            ApiAnswer::Other(status) if status == StatusCode::UNAUTHORIZED => {
                self.metrics.authorize(AuthSource::Api, false);
                tracing::error!(%client, %app, key = %tag, %status,
                    "publish refused: the API does not accept this origin's token (API_REPORT_TOKEN)");
                Answer {
                    status: StatusCode::FORBIDDEN,
                    location: None,
                }
            }
            ApiAnswer::Other(status) => {
                self.metrics.authorize(AuthSource::Api, false);
                tracing::warn!(%client, %app, key = %tag, %status, "publish refused by the API");
                Answer {
                    status,
                    location: None,
                }
            }
            ApiAnswer::Unavailable(error) => {
                let answer = self.fallback(&hash, &tag, client, app, &error);
                if answer.location.is_some() {
                    self.owners.allowed(&key, answer.location.as_deref());
                }
                answer
            }
        }
    }

    /// The decision while the API does not answer.
    fn fallback(&self, hash: &[u8; 32], tag: &str, client: &str, app: &str, error: &str) -> Answer {
        let remembered = self.lock().entries.get(hash).cloned();
        let age = remembered
            .as_ref()
            .map(|e| Duration::from_millis(now_ms().saturating_sub(e.decided_ms)));
        match (remembered, age) {
            (Some(e), Some(age)) if age < self.max_age => {
                self.metrics.authorize(AuthSource::Cache, true);
                tracing::warn!(%client, %app, key = %tag, %error, age_secs = age.as_secs(),
                    "API unavailable: publish allowed from the remembered decision");
                Answer {
                    status: StatusCode::from_u16(e.status).unwrap_or(StatusCode::FOUND),
                    location: e.location,
                }
            }
            (Some(_), Some(age)) => {
                self.metrics.authorize(AuthSource::Refused, false);
                tracing::warn!(%client, %app, key = %tag, %error, age_secs = age.as_secs(),
                    "API unavailable: publish refused, the remembered decision is too old");
                self.forget(hash);
                Answer::deny()
            }
            _ => {
                self.metrics.authorize(AuthSource::Refused, false);
                tracing::warn!(%client, %app, key = %tag, %error,
                    "API unavailable: publish refused, no remembered decision for this key");
                Answer::deny()
            }
        }
    }

    async fn ask_api(&self, body: Bytes) -> ApiAnswer {
        let make = |base: &str| {
            let req = self
                .http
                .post(format!("{base}/authorize"))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body.clone());
            match &self.token {
                Some(t) => req.bearer_auth(t),
                None => req,
            }
        };
        let resp = match self.apis.send(make).await {
            Ok(r) => r,
            Err(e) => return ApiAnswer::Unavailable(error_chain(&e)),
        };
        let status = resp.status();
        if status.is_success() || status.is_redirection() {
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            ApiAnswer::Allow(Answer { status, location })
        } else if status == StatusCode::FORBIDDEN {
            ApiAnswer::Deny(status)
        } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            // The API could not decide (e.g. its Redis is down).
            ApiAnswer::Unavailable(format!("API answered {status}"))
        } else if status.is_client_error() {
            // 429 included: a publisher the API throttles for failed
            // attempts must not be able to test keys against the memory.
            // 401 (this origin's token refused) too: the memory is for
            // outages, not for a misconfigured origin.
            ApiAnswer::Other(status)
        } else {
            ApiAnswer::Unavailable(format!("API answered {status}"))
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remember(&self, hash: [u8; 32], entry: Entry) {
        let mut m = self.lock();
        let max_age_ms = self.max_age.as_millis() as u64;
        let now = now_ms();
        m.entries
            .retain(|_, e| now.saturating_sub(e.decided_ms) < max_age_ms);
        m.entries.insert(hash, entry);
        self.metrics.auth_remembered.set(m.entries.len() as i64);
        m.save();
    }

    fn forget(&self, hash: &[u8; 32]) {
        let mut m = self.lock();
        if m.entries.remove(hash).is_some() {
            self.metrics.auth_remembered.set(m.entries.len() as i64);
            m.save();
        }
    }
}

impl Memory {
    fn hash(&self, key: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(key.as_bytes());
        h.finalize().into()
    }

    /// Reads the saved memory (dropping expired entries), or starts empty
    /// with a fresh salt.
    fn load(state_dir: Option<&Path>, max_age: Duration) -> Memory {
        let file = state_dir.map(|d| d.join(MEMORY_FILE));
        let fresh = |file: Option<PathBuf>| Memory {
            salt: random_salt(),
            entries: HashMap::new(),
            file,
        };
        let Some(path) = file.clone() else {
            return fresh(None);
        };
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return fresh(file),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the authorization memory; starting empty");
                return fresh(file);
            }
        };
        let parsed = serde_json::from_str::<Saved>(&text)
            .ok()
            .and_then(|s| Some((unhex::<16>(&s.salt)?, s.entries)));
        let Some((salt, saved)) = parsed else {
            tracing::warn!(path = %path.display(), "authorization memory unreadable; starting empty");
            return fresh(file);
        };
        let now = now_ms();
        let max_age_ms = max_age.as_millis() as u64;
        let entries: HashMap<[u8; 32], Entry> = saved
            .into_iter()
            .filter(|(_, e)| now.saturating_sub(e.decided_ms) < max_age_ms)
            .filter_map(|(h, e)| Some((unhex::<32>(&h)?, e)))
            .collect();
        tracing::info!(path = %path.display(), remembered = entries.len(), "authorization memory loaded");
        Memory {
            salt,
            entries,
            file,
        }
    }

    /// Writes the memory to its file (mode 0600, replaced atomically).
    fn save(&self) {
        let Some(path) = &self.file else {
            return;
        };
        let saved = Saved {
            salt: hex(&self.salt),
            entries: self
                .entries
                .iter()
                .map(|(h, e)| (hex(h), e.clone()))
                .collect(),
        };
        if let Err(e) = write_private(path, &serde_json::to_vec(&saved).unwrap_or_default()) {
            tracing::warn!(path = %path.display(), error = %e, "cannot save the authorization memory");
        }
    }
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

fn random_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    match fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut salt))
    {
        Ok(()) => salt,
        Err(e) => {
            // Not secret-grade, but still unique per process and start time.
            tracing::warn!(error = %e, "no /dev/urandom; salting with the time and PID");
            let seed = format!("{}:{}", now_ms(), std::process::id());
            let d: [u8; 32] = Sha256::digest(seed.as_bytes()).into();
            salt.copy_from_slice(&d[..16]);
            salt
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A reqwest error with its causes ("error sending request: connection refused").
fn error_chain(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&b), "0001abff");
        assert_eq!(unhex::<4>("0001abff"), Some(b));
        assert_eq!(unhex::<4>("0001abf"), None);
        assert_eq!(unhex::<2>("zz00"), None);
    }

    #[test]
    fn memory_persists_hashed_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mut m = Memory::load(Some(&state), Duration::from_secs(60));
        let h = m.hash("s3cret-key");
        assert_ne!(h, m.hash("other"));
        m.entries.insert(
            h,
            Entry {
                status: 302,
                location: Some("show".into()),
                decided_ms: now_ms(),
            },
        );
        m.save();
        let path = state.join(MEMORY_FILE);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret-key"), "{text}");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let again = Memory::load(Some(&state), Duration::from_secs(60));
        assert_eq!(again.hash("s3cret-key"), h, "the salt is kept");
        assert_eq!(again.entries[&h].location.as_deref(), Some("show"));
        // Expired entries are dropped on load.
        let expired = Memory::load(Some(&state), Duration::from_millis(0));
        assert!(expired.entries.is_empty());
        // Garbage starts empty.
        fs::write(&path, "not json").unwrap();
        assert!(Memory::load(Some(&state), Duration::from_secs(60))
            .entries
            .is_empty());
    }
}
