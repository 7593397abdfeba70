//! Routing policy of the edge module, free of nginx: what a cached route is,
//! when it is fresh, how an API answer becomes a route, which origins may be
//! contacted, which origin a viewer sticks to, which origins are skipped
//! after failures, which routes leave a full zone, and how many viewers
//! a stream has. Everything here is
//! unit-tested without a server.

pub mod allow;
pub mod api;
pub mod audience;
pub mod classify;
pub mod evict;
pub mod freshness;
pub mod health;
pub mod metrics;
pub mod prepared;
pub mod query;
pub mod rendezvous;
pub mod route;
pub mod target;

pub use allow::{AllowList, Allowed};
pub use api::{parse_api_body, ApiError, MAX_ORIGINS};
pub use audience::Audience;
pub use classify::{classify, is_json_content_type, ApiAnswer, LookupError, Outcome, MAX_API_BODY};
pub use freshness::{after_lookup, claim_refresh, decide, CacheStatus, Decision, Timing};
pub use health::{healthy_first, FailPolicy, Health};
pub use prepared::Prepared;
pub use query::{upstream_query, QueryRule};
pub use rendezvous::{rank, rank_grouped};
pub use route::{Route, RouteKind, RouteOrigin};
pub use rtmp_live_types::delivery::BadQuery;
pub use target::socket_addr;
pub use target::Target;

/// Whether `name` is a live stream's name (`[A-Za-z0-9_-]{1,64}`).
pub fn is_valid_stream_name(name: &[u8]) -> bool {
    rtmp_live_types::is_valid_name_bytes(name)
}

/// Whether `name` may be looked up at all: a live stream's name or a
/// recording's (`<name>~<start>`, `rtmp_live_types::recording`).
pub fn is_valid_playback_name(name: &[u8]) -> bool {
    rtmp_live_types::recording::is_valid_playback_name_bytes(name)
}
