//! What the module keeps per request: a viewer request's routing state
//! ([`Viewer`]), an API lookup's capture ([`Lookup`]), an origin probe's
//! target ([`Probe`]). Plain data: the code that acts on it lives with each
//! concern, and requests reach it only through [`crate::ctx`].

use std::cell::Cell;
use std::rc::Rc;

use edge_router_policy::{CacheStatus, FailPolicy, Outcome, Prepared, RouteOrigin, Timing};
use ngx::ffi::{ngx_http_request_t, ngx_str_t};

use crate::inflight::InFlight;
use crate::resolve::Names;
use crate::zone::Zone;

/// Where a viewer request is in the access phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not decided yet (or woken after the lookup's leader went away).
    New,
    /// This request's subrequest asks the API; others may wait for it.
    Leading,
    /// Another request of this worker asks the API for the same stream.
    Waiting,
    /// The API could not answer and there is no route: this request probes
    /// the operator's origins; others may wait for it.
    Probing,
    /// A lookup finished; `outcome` holds its result.
    Resolved,
    /// The route names hosts: nginx's resolver is asked for their addresses;
    /// `pending_route` is routed once they are all answered.
    Naming,
    /// Origins chosen; the request goes on to the content phase.
    Routed,
}

/// One upstream candidate, in the viewer's preference order.
pub struct Peer {
    pub addr: socket2::SockAddr,
    name: PeerName,
    /// `name`'s bytes for nginx (`pc->name`); they do not move while the
    /// Peer lives (boxed, or inside the shared route).
    pub name_str: ngx_str_t,
}

/// Where a peer's name lives: in the route it came from (no copy per
/// request), or in the peer itself.
enum PeerName {
    Route(Rc<Prepared>, usize),
    Owned(Box<[u8]>),
}

impl Peer {
    /// A peer named `name` (an origin probe's).
    pub fn new(addr: std::net::SocketAddr, name: &str) -> Peer {
        Peer::with_name(addr, PeerName::Owned(name.as_bytes().into()))
    }

    /// A peer for origin `origin` of `route`.
    pub fn of_route(addr: std::net::SocketAddr, route: &Rc<Prepared>, origin: usize) -> Peer {
        Peer::with_name(addr, PeerName::Route(Rc::clone(route), origin))
    }

    fn with_name(addr: std::net::SocketAddr, name: PeerName) -> Peer {
        let mut p = Peer {
            addr: addr.into(),
            name,
            name_str: ngx_str_t {
                len: 0,
                data: core::ptr::null_mut(),
            },
        };
        let bytes = p.name();
        p.name_str = ngx_str_t {
            len: bytes.len(),
            data: bytes.as_ptr().cast_mut(),
        };
        p
    }

    pub fn name(&self) -> &[u8] {
        match &self.name {
            PeerName::Route(r, i) => r.route.origins[*i].addr.as_bytes(),
            PeerName::Owned(b) => b,
        }
    }

    /// The publish session of the peer's origin (decimal registration
    /// time; empty when unknown).
    pub fn session(&self) -> &[u8] {
        match &self.name {
            PeerName::Route(r, i) => &r.sessions[*i],
            PeerName::Owned(_) => b"",
        }
    }
}

/// Bytes of the request pool (the stream name, as nginx evaluated it):
/// read in place, no copy per request.
#[derive(Clone, Copy)]
pub struct PoolBytes {
    data: *const u8,
    len: usize,
}

impl PoolBytes {
    /// # Safety
    /// `s` must stay valid as long as this value is used: memory of the
    /// request pool that holds the context this value is stored in.
    pub unsafe fn new(s: &ngx::core::NgxStr) -> PoolBytes {
        let b = s.as_bytes();
        PoolBytes {
            data: b.as_ptr(),
            len: b.len(),
        }
    }
}

impl std::ops::Deref for PoolBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: see `new`: the bytes outlive the context holding them.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

/// A viewer's candidates: one origin for most streams, kept inline (no
/// allocation per request).
pub type Peers = smallvec::SmallVec<[Peer; 1]>;

/// A viewer request's routing state.
pub struct Viewer {
    /// The request itself, to be woken when a shared lookup ends.
    pub r: *mut ngx_http_request_t,
    pub name: PoolBytes,
    pub state: State,
    pub outcome: Option<Outcome>,
    pub peers: Peers,
    pub cache_status: Option<CacheStatus>,
    pub zone: Option<Zone>,
    pub fail_policy: FailPolicy,
    /// This request started a background refresh: its answer closes the
    /// connection (see [`crate::lookup::header_filter`]).
    /// The request showed a valid playback token for its stream.
    pub token_valid: bool,
    pub close_connection: bool,
    /// Probes still running, and the origins that had the stream.
    pub probes_pending: usize,
    pub probed: Vec<edge_router_policy::RouteOrigin>,
    /// Probing is over (it runs at most once per request).
    pub probe_done: bool,
    /// The host names of the route and their addresses, once a route names
    /// hosts (see [`crate::resolve`]).
    pub names: Option<Rc<Names>>,
    /// The route waiting for its names, and how it was found.
    pub pending_route: Option<(Rc<Prepared>, CacheStatus)>,
    /// Collapsing with other requests for the same object, once routed.
    pub collapse: Collapse,
    /// The collapse key as the gate evaluated it (in the request pool):
    /// `$edge_router_collapse_key`, so that the proxy cache key is not
    /// evaluated a second time.
    pub collapse_key: Option<PoolBytes>,
}

impl Viewer {
    pub fn origin(&self) -> Option<&[u8]> {
        self.peers.first().map(Peer::name)
    }

    /// The chosen origin's registration time (decimal), for cache keys.
    pub fn session(&self) -> &[u8] {
        self.peers.first().map_or(b"", Peer::session)
    }
}

/// Where a routed request stands with collapsing (see [`crate::collapse`]).
#[derive(Debug, Default)]
pub enum Collapse {
    /// Not decided yet (or woken after a leader whose answer was not a
    /// 200, which the cache may not hold: decide again).
    #[default]
    Undecided,
    /// No key here: the request goes upstream on its own.
    Off,
    /// This request goes upstream for `key`; `upstream` counts the leading
    /// requests of this worker at its origin. Others may wait for it.
    Leading { key: Rc<[u8]>, upstream: Counter },
    /// Another request of this worker is upstream for `key`.
    Waiting(Rc<[u8]>),
    /// The leader answered 200: go on (to the cached answer).
    Released,
}

/// Leading requests of this worker at one origin.
pub type Counter = Rc<Cell<usize>>;

/// An API subrequest's state: what it has captured so far.
pub struct Lookup {
    pub name: Vec<u8>,
    /// The viewer (the main request) waits for this lookup; false for a
    /// background refresh.
    pub leads: bool,
    pub body: Vec<u8>,
    pub too_big: bool,
    /// The post-subrequest handler ran.
    pub done: bool,
    /// When it started (nginx's clock, ms).
    pub started_ms: u64,
    /// The viewer location's route timing, taken when the lookup starts:
    /// by the time a background refresh ends, its main request may have
    /// moved to another location (an `error_page` redirect) whose
    /// configuration says nothing about routes.
    pub timing: Timing,
    /// A failed foreground lookup is followed by origin probes
    /// (`edge_router_probe` with origins to ask).
    pub probes_follow: bool,
    /// Counts against `edge_router_lookups` while it lives.
    pub _in_flight: InFlight,
}

/// A probe subrequest's state: which origin it asks for its main request.
pub struct Probe {
    pub origin: RouteOrigin,
    /// The one peer of the probe's upstream request.
    pub peers: Vec<Peer>,
    pub done: bool,
    /// The viewer location's route timing (see [`Lookup::timing`]).
    pub timing: Timing,
    /// Counts against `edge_router_lookups` while it lives.
    pub _in_flight: InFlight,
}

/// What the module's context slot of a request holds. Viewers, the common
/// case, carry their first peer inline; boxing them would allocate per
/// request.
#[allow(clippy::large_enum_variant)]
pub enum ReqCtx {
    Viewer(Viewer),
    Lookup(Lookup),
    Probe(Probe),
    /// The viewer report to the API (see `crate::audience`).
    Report,
}
