//! One viewer's HTTP/1.1 connection, kept alive like a player's, from a
//! chosen loopback source address. Written on `httparse` rather than with
//! reqwest: thousands of viewers share this machine's two cores with the
//! edge under test, and a request here costs a fraction of a pooled
//! client's, which keeps the load generator's own time out of the delays.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use url::Url;

/// Largest response head or body read.
const MAX_BODY: usize = 8 << 20;
const MAX_HEAD: usize = 16 << 10;

/// A connection to one server (reconnected after an error or a close).
pub struct Conn {
    server: SocketAddr,
    host: String,
    local: Option<IpAddr>,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    /// A connection to `url`'s server (an IP address and port).
    pub fn new(url: &Url, local: Option<IpAddr>) -> Result<Conn, String> {
        let server = url
            .socket_addrs(|| Some(80))
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or("no address")?;
        Ok(Conn {
            server,
            host: url[url::Position::BeforeHost..url::Position::AfterPort].to_string(),
            local,
            stream: None,
            buf: Vec::with_capacity(4096),
        })
    }

    async fn connect(&mut self) -> std::io::Result<TcpStream> {
        let s = TcpSocket::new_v4()?;
        if let Some(ip) = self.local {
            s.bind(SocketAddr::new(ip, 0))?;
        }
        let stream = s.connect(self.server).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// GET `url` (its path and query) with an optional `Range`: the status
    /// and the body; "error" when the exchange failed or took longer than
    /// `timeout`.
    pub async fn get(
        &mut self,
        url: &Url,
        range: Option<(u64, u64)>,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), String> {
        match tokio::time::timeout(timeout, self.exchange(url, range)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                Err("timeout".into())
            }
        }
    }

    async fn exchange(
        &mut self,
        url: &Url,
        range: Option<(u64, u64)>,
    ) -> Result<(u16, Vec<u8>), String> {
        let mut req = format!("GET {}", url.path());
        if let Some(q) = url.query() {
            req.push('?');
            req.push_str(q);
        }
        req.push_str(" HTTP/1.1\r\nHost: ");
        req.push_str(&self.host);
        if let Some((a, b)) = range {
            req.push_str(&format!("\r\nRange: bytes={a}-{b}"));
        }
        req.push_str("\r\n\r\n");
        let mut stream = match self.stream.take() {
            Some(s) => s,
            None => self.connect().await.map_err(|_| "error".to_string())?,
        };
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|_| "error".to_string())?;
        self.buf.clear();
        // the head
        let (status, head_len, length, close) = loop {
            let mut chunk = [0u8; 8192];
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|_| "error".to_string())?;
            if n == 0 {
                return Err("error".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let header = |name: &str| {
                        resp.headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
                    };
                    if header("transfer-encoding").is_some() {
                        return Err("chunked answer".into());
                    }
                    let length =
                        header("content-length").and_then(|v| v.trim().parse::<usize>().ok());
                    let close = header("connection").is_some_and(|v| v.contains("close"));
                    break (resp.code.unwrap_or(0), len, length, close);
                }
                Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD => {}
                _ => return Err("bad answer".into()),
            }
        };
        let mut body = self.buf.split_off(head_len);
        match length {
            Some(len) if len > MAX_BODY => return Err("too large".into()),
            Some(len) => {
                if body.len() < len {
                    let have = body.len();
                    body.resize(len, 0);
                    stream
                        .read_exact(&mut body[have..])
                        .await
                        .map_err(|_| "error".to_string())?;
                } else {
                    body.truncate(len);
                }
            }
            None => {
                stream
                    .read_to_end(&mut body)
                    .await
                    .map_err(|_| "error".to_string())?;
            }
        }
        if !close && length.is_some() {
            self.stream = Some(stream);
        }
        Ok((status, body))
    }
}
