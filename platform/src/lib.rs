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
pub mod ports;
pub mod render;
pub mod topology;

pub use ports::{OriginPorts, Ports};
pub use render::{render, template_vars, RenderError};
pub use topology::{Config, Process, Settings, Topology};
