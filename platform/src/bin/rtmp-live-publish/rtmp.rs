//! The publishing side of RTMP, as much as a live encoder needs: the
//! (unsigned) handshake, chunked messages both ways, AMF0 commands
//! (`connect`, `createStream`, `publish`), and the protocol control
//! messages a server sends (chunk size, acknowledgement window, pings).
//! nginx-rtmp accepts it as it accepts ffmpeg's or OBS's.

use std::collections::HashMap;
use std::io::{Read, Write};

use crate::Error;

/// `rtmp://host[:port]/app`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    pub app: String,
    /// `rtmp://host:port/app`, sent in `connect`.
    pub tc_url: String,
}

impl Url {
    /// The application is the whole path: the stream name (the key) is
    /// never part of the URL.
    pub fn parse(s: &str) -> Result<Url, Error> {
        let bad = |why: &str| Error::Url(format!("{s:?}: {why} (expected rtmp://host[:port]/app)"));
        let rest = s
            .strip_prefix("rtmp://")
            .ok_or_else(|| bad("not rtmp://"))?;
        let (authority, app) = rest.split_once('/').ok_or_else(|| bad("no application"))?;
        let app = app.trim_end_matches('/');
        if app.is_empty() || app.contains(['?', '#', ' ']) {
            return Err(bad("invalid application"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| bad("invalid port"))?,
            ),
            _ => (authority, 1935),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Url {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            app: app.to_string(),
            tc_url: format!("rtmp://{host}:{port}/{app}"),
        })
    }
}

/// An AMF0 value (the kinds RTMP commands use).
#[derive(Debug, Clone, PartialEq)]
pub enum Amf {
    Number(f64),
    Bool(bool),
    Str(String),
    Object(Vec<(String, Amf)>),
    Null,
}

impl Amf {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Amf::Number(n) => {
                out.push(0x00);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Amf::Bool(b) => out.extend_from_slice(&[0x01, u8::from(*b)]),
            Amf::Str(s) => {
                out.push(0x02);
                put_str(out, s);
            }
            Amf::Object(fields) => {
                out.push(0x03);
                for (k, v) in fields {
                    put_str(out, k);
                    v.encode(out);
                }
                out.extend_from_slice(&[0x00, 0x00, 0x09]);
            }
            Amf::Null => out.push(0x05),
        }
    }

    /// A property of an object.
    pub fn get(&self, key: &str) -> Option<&Amf> {
        match self {
            Amf::Object(f) => f.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf::Number(n) => Some(*n),
            _ => None,
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(0xffff)];
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

/// Decodes the AMF0 values of a command; stops at the first kind it does
/// not know (what follows is not needed here).
pub fn decode_all(mut b: &[u8]) -> Vec<Amf> {
    let mut out = Vec::new();
    while !b.is_empty() {
        match decode(&mut b) {
            Some(v) => out.push(v),
            None => break,
        }
    }
    out
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if b.len() < n {
        return None;
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Some(head)
}

fn get_str(b: &mut &[u8]) -> Option<String> {
    let n = take(b, 2)?;
    let n = usize::from(u16::from_be_bytes([n[0], n[1]]));
    Some(String::from_utf8_lossy(take(b, n)?).into_owned())
}

fn decode_fields(b: &mut &[u8]) -> Option<Vec<(String, Amf)>> {
    let mut fields = Vec::new();
    loop {
        let key = get_str(b)?;
        if key.is_empty() && b.first() == Some(&0x09) {
            take(b, 1)?;
            return Some(fields);
        }
        fields.push((key, decode(b)?));
    }
}

fn decode(b: &mut &[u8]) -> Option<Amf> {
    let kind = take(b, 1)?[0];
    Some(match kind {
        0x00 => {
            let n = take(b, 8)?;
            Amf::Number(f64::from_be_bytes(n.try_into().ok()?))
        }
        0x01 => Amf::Bool(take(b, 1)?[0] != 0),
        0x02 => Amf::Str(get_str(b)?),
        0x03 => Amf::Object(decode_fields(b)?),
        0x05 | 0x06 => Amf::Null,
        // ECMA array: a count, then like an object.
        0x08 => {
            take(b, 4)?;
            Amf::Object(decode_fields(b)?)
        }
        _ => return None,
    })
}

/// Message types.
pub const SET_CHUNK_SIZE: u8 = 1;
pub const ACK: u8 = 3;
pub const USER_CONTROL: u8 = 4;
pub const WINDOW_ACK_SIZE: u8 = 5;
pub const AUDIO: u8 = 8;
pub const VIDEO: u8 = 9;
pub const DATA_AMF0: u8 = 18;
pub const COMMAND_AMF0: u8 = 20;

/// The chunk size this side sends with (announced first).
pub const OUT_CHUNK_SIZE: usize = 4096;

/// One message received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: u8,
    pub stream_id: u32,
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

/// Encodes `payload` as one message in chunks of `chunk_size` (a full
/// header first, then continuation headers on the same chunk stream).
pub fn chunks(
    csid: u8,
    kind: u8,
    stream_id: u32,
    timestamp: u32,
    payload: &[u8],
    chunk_size: usize,
) -> Vec<u8> {
    debug_assert!((2..64).contains(&csid));
    let extended = timestamp >= 0xff_ffff;
    let mut out = Vec::with_capacity(payload.len() + 16 + payload.len() / chunk_size * 5);
    out.push(csid);
    let ts = if extended { 0xff_ffff } else { timestamp };
    out.extend_from_slice(&ts.to_be_bytes()[1..]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.extend_from_slice(&stream_id.to_le_bytes());
    if extended {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    for (i, part) in payload.chunks(chunk_size).enumerate() {
        if i > 0 {
            out.push(0xc0 | csid);
            if extended {
                out.extend_from_slice(&timestamp.to_be_bytes());
            }
        }
        out.extend_from_slice(part);
    }
    out
}

/// A command message's payload: name, transaction id, values.
pub fn command(name: &str, transaction: f64, args: &[Amf]) -> Vec<u8> {
    let mut out = Vec::new();
    Amf::Str(name.into()).encode(&mut out);
    Amf::Number(transaction).encode(&mut out);
    for a in args {
        a.encode(&mut out);
    }
    out
}

/// The state of one chunk stream being read.
#[derive(Default)]
struct InChunkStream {
    timestamp: u32,
    delta: u32,
    len: usize,
    kind: u8,
    stream_id: u32,
    extended: bool,
    buf: Vec<u8>,
}

/// Reassembles messages from the server's chunks.
pub struct ChunkReader<R> {
    inner: R,
    chunk_size: usize,
    streams: HashMap<u32, InChunkStream>,
    /// Bytes read so far (for acknowledgements).
    pub received: u64,
}

impl<R: Read> ChunkReader<R> {
    pub fn new(inner: R) -> ChunkReader<R> {
        ChunkReader {
            inner,
            chunk_size: 128,
            streams: HashMap::new(),
            received: 0,
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        self.inner.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Closed
            } else {
                Error::Io(e)
            }
        })?;
        self.received += buf.len() as u64;
        Ok(())
    }

    fn read_u24(&mut self) -> Result<u32, Error> {
        let mut b = [0u8; 3];
        self.read_exact(&mut b)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    /// The next complete message. A chunk size message changes how the
    /// following chunks are read (and is returned too).
    pub fn next(&mut self) -> Result<Message, Error> {
        loop {
            let mut b = [0u8; 1];
            self.read_exact(&mut b)?;
            let fmt = b[0] >> 6;
            let csid = match b[0] & 0x3f {
                0 => {
                    self.read_exact(&mut b)?;
                    64 + u32::from(b[0])
                }
                1 => {
                    let mut w = [0u8; 2];
                    self.read_exact(&mut w)?;
                    64 + u32::from(w[0]) + 256 * u32::from(w[1])
                }
                n => u32::from(n),
            };
            let mut st = self.streams.remove(&csid).unwrap_or_default();
            let starting = st.buf.is_empty();
            if fmt <= 2 {
                let ts = self.read_u24()?;
                if fmt <= 1 {
                    st.len = self.read_u24()? as usize;
                    let mut k = [0u8; 1];
                    self.read_exact(&mut k)?;
                    st.kind = k[0];
                    if fmt == 0 {
                        let mut sid = [0u8; 4];
                        self.read_exact(&mut sid)?;
                        st.stream_id = u32::from_le_bytes(sid);
                    }
                }
                st.extended = ts == 0xff_ffff;
                let ts = if st.extended {
                    let mut e = [0u8; 4];
                    self.read_exact(&mut e)?;
                    u32::from_be_bytes(e)
                } else {
                    ts
                };
                if fmt == 0 {
                    st.timestamp = ts;
                    st.delta = 0;
                } else {
                    st.delta = ts;
                    st.timestamp = st.timestamp.wrapping_add(ts);
                }
            } else {
                if st.extended {
                    let mut e = [0u8; 4];
                    self.read_exact(&mut e)?;
                }
                if starting {
                    st.timestamp = st.timestamp.wrapping_add(st.delta);
                }
            }
            if st.len > 16 * 1024 * 1024 {
                return Err(Error::Protocol(format!("message of {} bytes", st.len)));
            }
            let n = (st.len - st.buf.len()).min(self.chunk_size);
            let start = st.buf.len();
            st.buf.resize(start + n, 0);
            let mut part = std::mem::take(&mut st.buf);
            let r = self.read_exact(&mut part[start..]);
            st.buf = part;
            r?;
            if st.buf.len() == st.len {
                let m = Message {
                    kind: st.kind,
                    stream_id: st.stream_id,
                    timestamp: st.timestamp,
                    payload: std::mem::take(&mut st.buf),
                };
                self.streams.insert(csid, st);
                if m.kind == SET_CHUNK_SIZE && m.payload.len() >= 4 {
                    let size = u32::from_be_bytes(m.payload[..4].try_into().unwrap_or_default())
                        & 0x7fff_ffff;
                    self.chunk_size = (size as usize).clamp(1, 16 * 1024 * 1024);
                }
                return Ok(m);
            }
            self.streams.insert(csid, st);
        }
    }
}

/// The client side of the simple handshake: C0+C1, S0+S1+S2, C2 (= S1).
pub fn handshake(s: &mut (impl Read + Write)) -> Result<(), Error> {
    let mut c0c1 = vec![0u8; 1 + 1536];
    c0c1[0] = 3;
    // time 0, zero version (the simple handshake), then random bytes
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut c0c1[9..]))
        .map_err(Error::Io)?;
    s.write_all(&c0c1).map_err(Error::Io)?;
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    s.read_exact(&mut s0s1s2).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Closed
        } else {
            Error::Io(e)
        }
    })?;
    if s0s1s2[0] != 3 {
        return Err(Error::Protocol(format!("RTMP version {}", s0s1s2[0])));
    }
    s.write_all(&s0s1s2[1..1 + 1536]).map_err(Error::Io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("rtmp://127.0.0.1:1936/stream").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.app.as_str()),
            ("127.0.0.1", 1936, "stream")
        );
        assert_eq!(u.tc_url, "rtmp://127.0.0.1:1936/stream");
        let u = Url::parse("rtmp://live.example/stream/").unwrap();
        assert_eq!((u.port, u.app.as_str()), (1935, "stream"));
        assert_eq!(Url::parse("rtmp://[::1]:19/a").unwrap().host, "::1");
        for bad in [
            "http://x/a",
            "rtmp://x",
            "rtmp://x/",
            "rtmp://:1/a",
            "rtmp://x:0/a",
            "rtmp://x/a?k=1",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amf_round_trip() {
        let v = vec![
            Amf::Str("_result".into()),
            Amf::Number(1.0),
            Amf::Null,
            Amf::Object(vec![
                ("level".into(), Amf::Str("status".into())),
                ("code".into(), Amf::Str("NetStream.Publish.Start".into())),
                ("ok".into(), Amf::Bool(true)),
            ]),
        ];
        let mut b = Vec::new();
        for a in &v {
            a.encode(&mut b);
        }
        let back = decode_all(&b);
        assert_eq!(back, v);
        assert_eq!(
            back[3].get("code").and_then(Amf::as_str),
            Some("NetStream.Publish.Start")
        );
        // an unknown kind ends the decoding, keeping what came before
        b.push(0x0b);
        assert_eq!(decode_all(&b).len(), 4);
    }

    #[test]
    fn messages_are_chunked_and_reassembled() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        // a chunk size message first: the rest is read with it
        wire.extend(chunks(2, SET_CHUNK_SIZE, 0, 0, &1000u32.to_be_bytes(), 128));
        wire.extend(chunks(6, VIDEO, 1, 40, &payload, 1000));
        wire.extend(chunks(4, AUDIO, 1, 0x0100_0000, b"late", 1000));
        let mut r = ChunkReader::new(&wire[..]);
        assert_eq!(r.next().unwrap().kind, SET_CHUNK_SIZE);
        let m = r.next().unwrap();
        assert_eq!((m.kind, m.stream_id, m.timestamp), (VIDEO, 1, 40));
        assert_eq!(m.payload, payload);
        let m = r.next().unwrap();
        assert_eq!(
            (m.kind, m.timestamp, m.payload.as_slice()),
            (AUDIO, 0x0100_0000, &b"late"[..])
        );
        assert!(matches!(r.next(), Err(Error::Closed)));
        assert_eq!(r.received, wire.len() as u64);
    }

    #[test]
    fn interleaved_and_compressed_headers() {
        // Two chunk streams interleaved; fmt 1/2/3 headers reuse the last
        // header of their chunk stream (as nginx-rtmp sends them).
        let mut wire = Vec::new();
        wire.extend(chunks(3, COMMAND_AMF0, 0, 0, &[1u8; 200], 128)[..140].to_vec());
        wire.extend(chunks(5, USER_CONTROL, 0, 0, &[0, 6, 0, 0, 0, 9], 128));
        // the rest of the first message: a continuation chunk
        wire.push(0xc3);
        wire.extend_from_slice(&[1u8; 72]);
        // fmt 2 on stream 5: same length and kind, timestamp delta 10
        wire.extend_from_slice(&[0x85, 0, 0, 10]);
        wire.extend_from_slice(&[0, 7, 0, 0, 0, 9]);
        let mut r = ChunkReader::new(&wire[..]);
        let first = r.next().unwrap();
        assert_eq!((first.kind, first.payload.len()), (USER_CONTROL, 6));
        let second = r.next().unwrap();
        assert_eq!(
            (second.kind, second.payload),
            (COMMAND_AMF0, vec![1u8; 200])
        );
        let third = r.next().unwrap();
        assert_eq!(
            (third.kind, third.timestamp, third.payload[1]),
            (USER_CONTROL, 10, 7)
        );
    }
}
