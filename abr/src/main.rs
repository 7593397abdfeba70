//! `rtmp-live-abr`: one stream's ABR ladder (see the library's docs).

use std::collections::HashSet;
use std::process::ExitCode;

use clap::Parser;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::signal::unix::{signal, SignalKind};

use rtmp_live_abr::keeper::{self, Folder};
use rtmp_live_abr::ladder::{ffmpeg_args, parse_ladder, plan, Encode};
use rtmp_live_abr::{master, Config};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // nginx-rtmp passes its stderr on: plain lines, no colour
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let cfg = Config::parse();
    if let Err(e) = cfg.check() {
        tracing::error!("{e}");
        return ExitCode::from(2);
    }
    let Some(name) = cfg.stream_name() else {
        tracing::error!(input = %cfg.input, output = %cfg.output.display(), "refusing stream name");
        return ExitCode::from(2);
    };
    let rungs = match parse_ladder(&cfg.ladder) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let folder = Folder {
        root: cfg.output.clone(),
    };
    // nginx-rtmp creates only the last folder of `<name>/<rendition>`
    if let Err(e) = std::fs::create_dir_all(&folder.root) {
        tracing::error!(folder = %folder.root.display(), error = %e, "cannot create the stream's folder");
        return ExitCode::from(1);
    }
    let listed: HashSet<String> = std::fs::read_to_string(folder.master())
        .map(|m| master::listed(&m).into_iter().collect())
        .unwrap_or_default();
    let planned = plan(&rungs, &listed);
    let args = ffmpeg_args(
        &Encode {
            input: &cfg.input,
            name: &name,
            app_url: &cfg.app_url,
            fragment_secs: cfg.fragment_secs,
            preset: &cfg.preset,
            stall_secs: cfg.stall_secs,
            loglevel: &cfg.loglevel,
        },
        &planned,
    );
    // each rendition's playlist file before this ladder's first fragment
    let before: Vec<Option<u64>> = rungs
        .iter()
        .map(|r| folder.playlist_inode(&r.name))
        .collect();

    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            tracing::error!("cannot handle signals");
            return ExitCode::from(1);
        }
    };
    let mut ffmpeg = match Command::new(&cfg.ffmpeg)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(ffmpeg = %cfg.ffmpeg, error = %e, "cannot start ffmpeg");
            return ExitCode::from(1);
        }
    };
    tracing::info!(stream = %name, renditions = rungs.len(), "ladder started");
    let keeper = tokio::spawn(keeper::keep(folder, rungs, before, cfg.ffprobe.clone()));

    let status = tokio::select! {
        s = ffmpeg.wait() => s,
        _ = term.recv() => stop(&mut ffmpeg).await,
        _ = int.recv() => stop(&mut ffmpeg).await,
        _ = hup.recv() => stop(&mut ffmpeg).await,
    };
    keeper.abort();
    match status {
        Ok(s) => {
            tracing::info!(stream = %name, status = %s, "ladder stopped");
            let code = s
                .code()
                .or_else(|| std::os::unix::process::ExitStatusExt::signal(&s).map(|n| 128 + n))
                .unwrap_or(1);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Err(e) => {
            tracing::error!(error = %e, "lost ffmpeg");
            ExitCode::from(1)
        }
    }
}

/// Asks ffmpeg to finish (SIGTERM: it closes its RTMP outputs, and
/// nginx-rtmp closes each rendition's last fragment) and waits for it.
async fn stop(ffmpeg: &mut tokio::process::Child) -> std::io::Result<std::process::ExitStatus> {
    if let Some(pid) = ffmpeg.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    ffmpeg.wait().await
}
