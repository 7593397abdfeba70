//! One description of the platform's topology: which processes run, on
//! which ports, with which environment and which rendered nginx configs.
//! `make up` runs it (`rtmp-live-up`, with the fixed default ports); the
//! end-to-end tests run the same binary on free ports they pick through
//! [`Ports::pick`], and read every address back from [`Ports`].
//!
//! Adding a component: give it its ports in [`ports`] (a field, its row in
//! [`Ports::table`], and for a per-origin one a field of [`OriginPorts`]) and
//! its process in [`components`] (one function, one line in
//! [`Topology::processes`]).

pub mod components;
pub mod edge_origins;
pub mod ports;
pub mod render;
pub mod signals;
pub mod topology;

pub use ports::{OriginPorts, Ports};

/// The state folder when `STATE_DIR` is not given:
/// `${XDG_STATE_HOME:-~/.local/state}/rtmp-live`, or `/var/lib/rtmp-live`
/// for root (whose home is private: the nginx workers, which run as
/// another user then, must reach the HLS folders inside).
pub fn default_state_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    if nix::unistd::Uid::effective().is_root() {
        return PathBuf::from("/var/lib/rtmp-live");
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/state")
        });
    base.join("rtmp-live")
}
pub use render::{render, template_vars, RenderError};
pub use topology::{Config, Process, Settings, Topology};
