//! Routing policy of the edge module, free of nginx: what a cached route is,
//! when it is fresh, how an API answer becomes a route, and which origin a
//! viewer sticks to. Everything here is unit-tested without a server.

pub mod api;
pub mod freshness;
pub mod rendezvous;
pub mod route;

pub use api::{parse_api_body, ApiError, MAX_ORIGINS};
pub use freshness::{decide, CacheStatus, Decision, Timing};
pub use rendezvous::rank;
pub use route::{Route, RouteKind};

/// Whether `name` may be looked up at all (`[A-Za-z0-9_-]{1,64}`).
pub fn is_valid_stream_name(name: &[u8]) -> bool {
    rtmp_live_types::is_valid_name_bytes(name)
}
