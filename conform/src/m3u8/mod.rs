//! M3U8 parsing: strict, hand-written (see `media.rs` for why).

pub mod attrs;
pub mod date;
pub mod lines;
pub mod master;
pub mod media;
mod media_tags;
pub mod model;

pub use model::*;
