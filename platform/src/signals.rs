//! SIGINT and SIGTERM for the platform's supervisors (`rtmp-live-up`, the
//! edge container's `rtmp-live-render edge`): received on a channel, never
//! in a handler, and given back to their children.

use std::process::Command;
use std::sync::mpsc;

use nix::sys::signal::{SigSet, Signal};

/// Lets the child of `cmd` receive SIGINT and SIGTERM: without this it
/// would inherit the supervisor's blocked mask and ignore its SIGTERM
/// (graceful shutdowns lost).
pub fn unblocked(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: runs in the forked child before exec; `pthread_sigmask` is
    // async-signal-safe and nothing else is touched.
    unsafe {
        cmd.pre_exec(|| {
            let mut set = SigSet::empty();
            set.add(Signal::SIGINT);
            set.add(Signal::SIGTERM);
            set.thread_unblock().map_err(std::io::Error::from)
        });
    }
}

/// Blocks SIGINT and SIGTERM in this process and reports each one on the
/// returned channel. Children inherit a blocked mask across exec (std does
/// not reset it): [`unblocked`] gives them a clean one.
pub fn signals() -> mpsc::Receiver<Signal> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().expect("block signals");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || loop {
        match set.wait() {
            Ok(sig) => {
                if tx.send(sig).is_err() {
                    return;
                }
            }
            Err(_) => continue,
        }
    });
    rx
}
