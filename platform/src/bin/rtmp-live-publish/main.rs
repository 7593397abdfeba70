//! `rtmp-live-publish` (`make stream`): publishes an FLV stream to an RTMP
//! server with a stream key that is never on a command line.
//!
//! ffmpeg takes its RTMP output URL, key included, from its arguments,
//! which every local user reads in `ps` (`/proc/<pid>/cmdline`). Here
//! ffmpeg only encodes (`-f flv -`, to a pipe) and this program speaks RTMP
//! itself, with the key read from a file (mode 0600, `make up`'s
//! `STATE_DIR/stream-key` by default) or from `STREAM_KEY` in its
//! environment (readable by its own user and root only). The server
//! authorizes the key exactly as it authorizes OBS's.
//!
//! ```text
//! ffmpeg ... -f flv - | rtmp-live-publish [--url rtmp://host:1935/stream]
//! rtmp-live-publish [--url ...] -- ffmpeg ... -f flv -     (runs the encoder itself)
//! ```

mod rtmp;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use nix::sys::signal::{SigSet, Signal};

use rtmp::{Amf, ChunkReader, Url};

/// Publishes an FLV stream (standard input, or the standard output of the
/// command after `--`) to an RTMP server. The stream key comes from
/// STREAM_KEY in the environment, else from --key-file: never from the
/// command line.
#[derive(Parser, Debug)]
#[command(name = "rtmp-live-publish")]
struct Args {
    /// The server's application (the key is sent as the stream name).
    #[arg(long, env = "RTMP_URL", default_value = "rtmp://127.0.0.1:1935/stream")]
    url: String,
    /// File holding the stream key [default: STATE_DIR/stream-key, where
    /// `make up` keeps the key it generated].
    #[arg(long, env = "STREAM_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// `make up`'s state folder [default: ${XDG_STATE_HOME:-~/.local/state}/rtmp-live;
    /// as root /var/lib/rtmp-live].
    #[arg(long, env = "STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// The encoder to run, writing FLV to its standard output (e.g. `ffmpeg
    /// ... -f flv -`); without it, FLV is read from standard input.
    #[arg(last = true)]
    command: Vec<String>,
}

/// Everything that ends a publish.
#[derive(Debug)]
pub enum Error {
    Url(String),
    Key(String),
    Io(std::io::Error),
    /// The server closed the connection.
    Closed,
    /// The server refused (an `_error` or a failing `onStatus`).
    Refused(String),
    Protocol(String),
    Input(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Url(e) => write!(f, "URL {e}"),
            Error::Key(e) => write!(f, "stream key: {e}"),
            Error::Io(e) => write!(f, "{e}"),
            Error::Closed => f.write_str("the server closed the connection"),
            Error::Refused(e) => write!(f, "refused: {e}"),
            Error::Protocol(e) => write!(f, "RTMP: {e}"),
            Error::Input(e) => write!(f, "input: {e}"),
        }
    }
}

fn say(msg: &str) {
    eprintln!("rtmp-live-publish: {msg}");
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Signals are taken by one thread (before any other starts); the
    // encoder gets a clean mask (see `spawn`).
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    if let Err(e) = set.thread_block() {
        say(&format!("cannot block signals: {e}"));
        return ExitCode::FAILURE;
    }
    let child: Arc<Mutex<Option<Child>>> = Arc::new(Mutex::new(None));
    {
        let child = child.clone();
        std::thread::spawn(move || {
            if let Ok(sig) = set.wait() {
                stop_child(&child);
                say(&format!("{sig}: stopped"));
                std::process::exit(0);
            }
        });
    }
    match run(&args, &child) {
        Ok(()) => {
            // The input ended: the encoder's status is ours.
            let status = child
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
                .and_then(|c| c.wait().ok());
            match status {
                Some(s) if !s.success() => {
                    say(&format!("the encoder ended: {s}"));
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            stop_child(&child);
            say(&format!("error: {e}"));
            if matches!(e, Error::Closed) {
                say("(a refused stream key closes the connection: check the key and the origin's log)");
            }
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM to the encoder, SIGKILL if it is still there 2 s later.
fn stop_child(child: &Mutex<Option<Child>>) {
    let mut guard = child.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = guard.as_mut() else {
        return;
    };
    let pid = nix::unistd::Pid::from_raw(c.id() as i32);
    let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
    for _ in 0..20 {
        if matches!(c.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// The stream key: `STREAM_KEY` from the environment, else the key file.
fn stream_key(args: &Args) -> Result<String, Error> {
    if let Some(k) = std::env::var("STREAM_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
    {
        return check_key(k.trim().to_string());
    }
    let file = args.key_file.clone().unwrap_or_else(|| {
        args.state_dir
            .clone()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(rtmp_live_platform::default_state_dir)
            .join("stream-key")
    });
    let text = std::fs::read_to_string(&file).map_err(|e| {
        Error::Key(format!(
            "{}: {e} (set STREAM_KEY or STREAM_KEY_FILE, or start `make up` first: it generates one)",
            file.display()
        ))
    })?;
    check_key(text.trim().to_string())
}

fn check_key(key: String) -> Result<String, Error> {
    if key.is_empty() || key.len() > 256 || key.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(Error::Key("empty, too long, or not printable ASCII".into()));
    }
    Ok(key)
}

/// Runs `command` with its standard output piped to us.
fn spawn(command: &[String]) -> Result<Child, Error> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..])
        .env_remove("STREAM_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    // SAFETY: runs in the forked child before exec; only the
    // async-signal-safe `pthread_sigmask` is called.
    unsafe {
        cmd.pre_exec(|| {
            let mut set = SigSet::empty();
            for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
                set.add(s);
            }
            set.thread_unblock().map_err(std::io::Error::from)
        });
    }
    cmd.spawn()
        .map_err(|e| Error::Input(format!("{}: {e}", command[0])))
}

fn run(args: &Args, child: &Arc<Mutex<Option<Child>>>) -> Result<(), Error> {
    let url = Url::parse(&args.url)?;
    let key = stream_key(args)?;
    let input: Box<dyn Read + Send> = if args.command.is_empty() {
        Box::new(std::io::stdin())
    } else {
        let mut c = spawn(&args.command)?;
        let out = c.stdout.take().expect("piped stdout");
        *child.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
        Box::new(out)
    };
    let sock = TcpStream::connect((url.host.as_str(), url.port)).map_err(|e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("{}:{}: {e}", url.host, url.port),
        ))
    })?;
    sock.set_nodelay(true).map_err(Error::Io)?;
    let mut session = Session::start(sock, &url, &key, child.clone())?;
    say(&format!(
        "publishing to {} (key from {})",
        url.tc_url,
        key_source(args)
    ));
    session.stream_flv(BufReader::with_capacity(64 * 1024, input))
}

fn key_source(args: &Args) -> String {
    if std::env::var("STREAM_KEY").is_ok_and(|k| !k.trim().is_empty()) {
        "STREAM_KEY".into()
    } else {
        match &args.key_file {
            Some(f) => f.display().to_string(),
            None => "the state folder".into(),
        }
    }
}

/// Writes chunks; shared with the reader thread (ping answers,
/// acknowledgements).
struct Out {
    sock: TcpStream,
}

impl Out {
    fn send(
        &mut self,
        csid: u8,
        kind: u8,
        stream_id: u32,
        ts: u32,
        payload: &[u8],
    ) -> Result<(), Error> {
        let bytes = rtmp::chunks(csid, kind, stream_id, ts, payload, rtmp::OUT_CHUNK_SIZE);
        self.sock.write_all(&bytes).map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => Error::Closed,
            _ => Error::Io(e),
        })
    }
}

struct Session {
    out: Arc<Mutex<Out>>,
    stream_id: u32,
}

/// Chunk streams: protocol control, commands, and the media.
const CS_CONTROL: u8 = 2;
const CS_COMMAND: u8 = 3;
const CS_AUDIO: u8 = 4;
const CS_VIDEO: u8 = 6;
const CS_DATA: u8 = 5;

impl Session {
    /// Handshake, `connect`, `createStream`, `publish`: returns once the
    /// server said `NetStream.Publish.Start`.
    fn start(
        sock: TcpStream,
        url: &Url,
        key: &str,
        child: Arc<Mutex<Option<Child>>>,
    ) -> Result<Session, Error> {
        let mut sock = sock;
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(Error::Io)?;
        rtmp::handshake(&mut sock)?;
        let mut reader = ChunkReader::new(sock.try_clone().map_err(Error::Io)?);
        let out = Arc::new(Mutex::new(Out { sock }));
        let send = |csid, kind, sid, payload: &[u8]| {
            out.lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(csid, kind, sid, 0, payload)
        };
        send(
            CS_CONTROL,
            rtmp::SET_CHUNK_SIZE,
            0,
            &(rtmp::OUT_CHUNK_SIZE as u32).to_be_bytes(),
        )?;
        let connect = Amf::Object(vec![
            ("app".into(), Amf::Str(url.app.clone())),
            ("type".into(), Amf::Str("nonprivate".into())),
            (
                "flashVer".into(),
                Amf::Str("FMLE/3.0 (compatible; rtmp-live-publish)".into()),
            ),
            ("tcUrl".into(), Amf::Str(url.tc_url.clone())),
        ]);
        send(
            CS_COMMAND,
            rtmp::COMMAND_AMF0,
            0,
            &rtmp::command("connect", 1.0, &[connect]),
        )?;
        wait_result(&mut reader, &out, 1.0)?;
        send(
            CS_COMMAND,
            rtmp::COMMAND_AMF0,
            0,
            &rtmp::command("createStream", 2.0, &[Amf::Null]),
        )?;
        let created = wait_result(&mut reader, &out, 2.0)?;
        let stream_id = created
            .iter()
            .skip(3)
            .find_map(Amf::as_number)
            .filter(|n| *n >= 0.0 && *n < f64::from(u32::MAX))
            .ok_or_else(|| Error::Protocol("createStream answered without a stream id".into()))?
            as u32;
        let publish = rtmp::command(
            "publish",
            3.0,
            &[
                Amf::Null,
                Amf::Str(key.to_string()),
                Amf::Str("live".into()),
            ],
        );
        send(CS_COMMAND, rtmp::COMMAND_AMF0, stream_id, &publish)?;
        // nginx-rtmp asks its on_publish hook here: a refused key closes
        // the connection.
        loop {
            let m = next_handled(&mut reader, &out)?;
            if m.kind != rtmp::COMMAND_AMF0 {
                continue;
            }
            let v = rtmp::decode_all(&m.payload);
            if v.first().and_then(Amf::as_str) != Some("onStatus") {
                continue;
            }
            let code = v
                .iter()
                .find_map(|a| a.get("code"))
                .and_then(Amf::as_str)
                .unwrap_or("");
            if code == "NetStream.Publish.Start" {
                break;
            }
            if code.contains("Publish") || code.contains("Failed") || code.contains("Rejected") {
                let desc = v
                    .iter()
                    .find_map(|a| a.get("description"))
                    .and_then(Amf::as_str);
                return Err(Error::Refused(format!(
                    "{code} {}",
                    desc.unwrap_or_default()
                )));
            }
        }
        // From now on the server's messages are read by a thread of their
        // own (pings, acknowledgements); a closed connection ends the run.
        {
            let out = out.clone();
            let _ = reader_timeout_off(&out);
            std::thread::spawn(move || loop {
                match next_handled(&mut reader, &out) {
                    Ok(m) if m.kind == rtmp::COMMAND_AMF0 => {
                        let v = rtmp::decode_all(&m.payload);
                        if let Some(code) =
                            v.iter().find_map(|a| a.get("code")).and_then(Amf::as_str)
                        {
                            if code.contains("Error")
                                || code.contains("Failed")
                                || code.contains("BadName")
                            {
                                say(&format!("server: {code}"));
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // The main thread may be blocked on its input.
                        stop_child(&child);
                        say(&format!("error: {e}"));
                        std::process::exit(1);
                    }
                }
            });
        }
        Ok(Session { out, stream_id })
    }

    /// Sends every FLV tag of `input` as a message, until the input ends.
    fn stream_flv(&mut self, mut input: impl Read) -> Result<(), Error> {
        let mut header = [0u8; 9];
        if let Err(e) = input.read_exact(&mut header) {
            return Err(Error::Input(format!("no FLV header: {e}")));
        }
        if &header[..3] != b"FLV" {
            return Err(Error::Input("not FLV (give the encoder `-f flv`)".into()));
        }
        let offset = u32::from_be_bytes(header[5..9].try_into().unwrap_or_default()) as usize;
        let mut skip = vec![0u8; offset.saturating_sub(9) + 4];
        input
            .read_exact(&mut skip)
            .map_err(|e| Error::Input(e.to_string()))?;
        let mut tag = [0u8; 11];
        let mut data = Vec::new();
        loop {
            match input.read_exact(&mut tag) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(Error::Input(e.to_string())),
            }
            let kind = tag[0] & 0x1f;
            let len = u32::from_be_bytes([0, tag[1], tag[2], tag[3]]) as usize;
            let ts = u32::from_be_bytes([tag[7], tag[4], tag[5], tag[6]]);
            data.resize(len + 4, 0);
            input
                .read_exact(&mut data)
                .map_err(|e| Error::Input(format!("a tag cut short: {e}")))?;
            let body = &data[..len];
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            match kind {
                rtmp::AUDIO => out.send(CS_AUDIO, rtmp::AUDIO, self.stream_id, ts, body)?,
                rtmp::VIDEO => out.send(CS_VIDEO, rtmp::VIDEO, self.stream_id, ts, body)?,
                rtmp::DATA_AMF0 => {
                    // Metadata goes to the server as @setDataFrame, as
                    // encoders send it (the server keeps it for players).
                    let mut p = Vec::with_capacity(body.len() + 16);
                    Amf::Str("@setDataFrame".into()).encode(&mut p);
                    p.extend_from_slice(body);
                    out.send(CS_DATA, rtmp::DATA_AMF0, self.stream_id, ts, &p)?;
                }
                _ => {}
            }
        }
    }
}

fn reader_timeout_off(out: &Mutex<Out>) -> std::io::Result<()> {
    out.lock()
        .unwrap_or_else(|e| e.into_inner())
        .sock
        .set_read_timeout(None)
}

/// The next message, after answering what the protocol asks of a client:
/// pings, acknowledgements of the window the server set.
fn next_handled(
    reader: &mut ChunkReader<TcpStream>,
    out: &Mutex<Out>,
) -> Result<rtmp::Message, Error> {
    static WINDOW: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(2_500_000);
    static ACKED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    use std::sync::atomic::Ordering::Relaxed;
    let m = reader.next()?;
    let lock = || out.lock().unwrap_or_else(|e| e.into_inner());
    match m.kind {
        rtmp::WINDOW_ACK_SIZE if m.payload.len() >= 4 => {
            let w = u32::from_be_bytes(m.payload[..4].try_into().unwrap_or_default());
            WINDOW.store(u64::from(w.max(1)), Relaxed);
        }
        // Ping request: answered with the same timestamp.
        rtmp::USER_CONTROL if m.payload.len() >= 6 && m.payload[..2] == [0, 6] => {
            let mut pong = vec![0, 7];
            pong.extend_from_slice(&m.payload[2..6]);
            lock().send(CS_CONTROL, rtmp::USER_CONTROL, 0, 0, &pong)?;
        }
        _ => {}
    }
    if reader.received - ACKED.load(Relaxed) >= WINDOW.load(Relaxed) {
        ACKED.store(reader.received, Relaxed);
        let seq = (reader.received & 0xffff_ffff) as u32;
        lock().send(CS_CONTROL, rtmp::ACK, 0, 0, &seq.to_be_bytes())?;
    }
    Ok(m)
}

/// Reads until the `_result` of `transaction` (answering control messages
/// meanwhile); `_error` is a refusal.
fn wait_result(
    reader: &mut ChunkReader<TcpStream>,
    out: &Mutex<Out>,
    transaction: f64,
) -> Result<Vec<Amf>, Error> {
    loop {
        let m = next_handled(reader, out)?;
        if m.kind != rtmp::COMMAND_AMF0 {
            continue;
        }
        let v = rtmp::decode_all(&m.payload);
        let name = v.first().and_then(Amf::as_str).unwrap_or("");
        let txn = v.get(1).and_then(Amf::as_number);
        if txn != Some(transaction) {
            continue;
        }
        match name {
            "_result" => return Ok(v),
            "_error" => {
                let desc = v
                    .iter()
                    .find_map(|a| a.get("description").or_else(|| a.get("code")))
                    .and_then(Amf::as_str)
                    .unwrap_or("_error");
                return Err(Error::Refused(desc.to_string()));
            }
            _ => {}
        }
    }
}
