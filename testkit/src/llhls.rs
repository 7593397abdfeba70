//! The LL-HLS playlist component (`rtmp-live-llhls`) on a free port,
//! watching an HLS folder the way it runs beside an origin.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::{artifact, free_port, wait_port, Proc};

pub struct Llhls {
    pub port: u16,
    pub proc: Proc,
}

impl Llhls {
    /// Starts the component on `hls_path` (nginx-rtmp's `hls_path`).
    pub fn start(hls_path: &Path) -> Llhls {
        let port = free_port();
        let mut cmd = Command::new(artifact("rtmp-live-llhls"));
        cmd.env("HLS_PATH", hls_path)
            .env("LLHLS_LISTEN", format!("127.0.0.1:{port}"))
            // nothing recorded (the default folder is the machine's)
            .env("RECORDING_RETENTION", "0")
            .env("RUST_LOG", "info");
        let proc = Proc::spawn("rtmp-live-llhls", cmd);
        assert!(
            wait_port(port, Duration::from_secs(10)),
            "rtmp-live-llhls did not start:\n{}",
            proc.log()
        );
        Llhls { port, proc }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
