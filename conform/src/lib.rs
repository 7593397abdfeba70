//! RTMP Live's LL-HLS conformance checker: follows a live stream as a strict
//! RFC 8216bis client would, and reports every violation of the rules
//! players depend on. The rules are pure functions (`rules`) over the
//! parsed playlists (`m3u8`) and media (`media`); `follow` fetches.

pub mod audience;
pub mod config;
pub mod error;
pub mod external;
pub mod fanout;
pub mod findings;
pub mod follow;
pub mod m3u8;
pub mod media;
pub mod report;
pub mod rules;
