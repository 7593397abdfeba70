//! The module's per-request context. A viewer request carries its routing
//! state ([`Viewer`]); an API subrequest carries what it captured
//! ([`Lookup`]). Both live in the main request's pool and are dropped with
//! it.

use std::rc::Rc;

use edge_router_policy::{CacheStatus, FailPolicy, Outcome, Prepared, Timing};
use ngx::ffi::{ngx_http_request_t, ngx_str_t};
use ngx::http::{HttpModule, Request};

use crate::coalesce;
use crate::collapse::{self, Collapse};
use crate::zone::Zone;
use crate::EdgeRouter;

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
    /// The route names hosts: nginx's resolver is asked for their addresses.
    Naming,
    /// The names are resolved (or failed); `pending_route` is routed now.
    Named,
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
    pub close_connection: bool,
    /// Probes still running, and the origins that had the stream.
    pub probes_pending: usize,
    pub probed: Vec<edge_router_policy::RouteOrigin>,
    /// Probing is over (it runs at most once per request).
    pub probe_done: bool,
    /// The host names of the route and their addresses (see [`crate::resolve`]).
    pub resolving: Vec<crate::resolve::Resolution>,
    pub names_pending: usize,
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

impl Drop for Viewer {
    fn drop(&mut self) {
        for r in &mut self.resolving {
            r.cancel();
        }
        collapse::on_free(&self.collapse, self.r);
        match self.state {
            State::Waiting => coalesce::leave(&self.name, self.r),
            // The request went away with its lookup unfinished: let the
            // waiters decide again (one of them leads a new lookup).
            State::Leading | State::Probing => coalesce::wake(&self.name, None),
            _ => {}
        }
    }
}

/// An API subrequest's state: what it has captured so far.
pub struct Lookup {
    pub name: Vec<u8>,
    /// The viewer waiting for this lookup; null for a background refresh.
    pub leader: *mut Viewer,
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
}

impl Lookup {
    pub fn new(name: &[u8], leader: *mut Viewer, timing: Timing, probes_follow: bool) -> Lookup {
        coalesce::lookup_started();
        Lookup {
            name: name.to_vec(),
            leader,
            body: Vec::new(),
            too_big: false,
            done: false,
            started_ms: crate::ffi::now_ms(),
            timing,
            probes_follow,
        }
    }

    pub fn is_background(&self) -> bool {
        self.leader.is_null()
    }
}

impl Drop for Lookup {
    fn drop(&mut self) {
        coalesce::lookup_ended();
    }
}

/// A probe subrequest's state: which origin it asks.
pub struct Probe {
    pub leader: *mut Viewer,
    pub origin: edge_router_policy::RouteOrigin,
    /// The one peer of the probe's upstream request.
    pub peers: Vec<Peer>,
    pub done: bool,
    /// The viewer location's route timing (see [`Lookup::timing`]).
    pub timing: Timing,
}

impl Drop for Probe {
    fn drop(&mut self) {
        coalesce::lookup_ended();
    }
}

/// What the module's context slot of a request holds. Viewers, the common
/// case, carry their first peer inline; boxing them would allocate per
/// request.
#[allow(clippy::large_enum_variant)]
pub enum ReqCtx {
    Viewer(Viewer),
    Lookup(Lookup),
    Probe(Probe),
}

fn slot(r: &Request) -> *mut *mut core::ffi::c_void {
    let raw: *const ngx_http_request_t = r.into();
    // SAFETY: `r` is a live request; our ctx_index is valid.
    unsafe { crate::ffi::ctx_slot(raw.cast_mut(), EdgeRouter::module().ctx_index) }
}

/// The context of request `r`, if the module set one.
///
/// The context is not part of the `Request` borrowed here: it lives in the
/// request pool, reached through a pointer, and nginx runs one handler of a
/// worker at a time; hence a mutable context from a shared request.
#[allow(clippy::mut_from_ref)]
pub fn get(r: &Request) -> Option<&mut ReqCtx> {
    // SAFETY: the slot is null or points at a `ReqCtx` in the request pool
    // (only this module writes it); nginx runs one request at a time in a
    // worker, so no other reference is in use.
    unsafe { (*slot(r)).cast::<ReqCtx>().as_mut() }
}

/// The viewer state of main request `r` (see [`get`]).
#[allow(clippy::mut_from_ref)]
pub fn viewer(r: &Request) -> Option<&mut Viewer> {
    match get(r)? {
        ReqCtx::Viewer(v) => Some(v),
        ReqCtx::Lookup(_) | ReqCtx::Probe(_) => None,
    }
}

/// The viewer state of the main request of `r` (for variables and the
/// upstream, which may run in subrequests too).
#[allow(clippy::mut_from_ref)]
pub fn main_viewer(r: &Request) -> Option<&mut Viewer> {
    // SAFETY: `main` of a live request is live.
    let main = unsafe { Request::from_ngx_http_request(r.as_ref().main) };
    viewer(main)
}

/// Allocates `value` in `r`'s pool and makes it `r`'s context.
#[allow(clippy::mut_from_ref)]
pub fn set(r: &Request, value: ReqCtx) -> Option<&mut ReqCtx> {
    let p = r.pool().allocate(value);
    if p.is_null() {
        return None;
    }
    // SAFETY: see `get`.
    unsafe { *slot(r) = p.cast() };
    // SAFETY: just allocated and initialized.
    Some(unsafe { &mut *p })
}

/// Makes `value` (already in the main request's pool) the context of
/// subrequest `sr`.
pub fn set_raw(sr: &Request, value: *mut ReqCtx) {
    // SAFETY: see `get`.
    unsafe { *slot(sr) = value.cast() };
}
