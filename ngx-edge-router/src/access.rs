//! The access-phase handler: the lookup state machine of a viewer request.
//!
//! ```text
//! New ──zone: fresh/usable route──────────────────────────────► Routed
//!  │   (expired but usable: serve it, refresh in the background)
//!  ├──zone: "not found"────────────────────────────────────────► 404
//!  ├──no route, lookup of this name in flight──► Waiting ──woken──► Resolved / New
//!  └──no route────────────────────────────────► Leading ──answer──► Resolved
//! Resolved ──found──► Routed   ──not found──► 404   ──failed──► 502
//! ```
//!
//! Nothing here blocks: waiting requests return `NGX_AGAIN` and are resumed
//! by a posted write event (see [`crate::coalesce`]).

use edge_router_policy::metrics::Event;
use std::rc::Rc;

use edge_router_policy::{
    healthy_first, is_valid_stream_name, rank_grouped, CacheStatus, Decision, Outcome, Prepared,
    Route,
};
use ngx::core::Status;
use ngx::ffi::{
    ngx_http_request_t, ngx_int_t, NGX_DECLINED, NGX_HTTP_BAD_GATEWAY, NGX_HTTP_BAD_REQUEST,
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_FOUND, NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_ERR,
    NGX_LOG_INFO, NGX_LOG_WARN,
};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, Request};
use ngx::{ngx_log_debug_http, ngx_log_error};

use crate::coalesce;
use crate::collapse::{self, Collapse};
use crate::conf::LocConf;
use crate::ctx::{self, Peer, Peers, PoolBytes, ReqCtx, State, Viewer};
use crate::ffi::{guard, now_ms};
use crate::lookup;
use crate::probe;
use crate::query;
use crate::resolve;
use crate::targets::{allowed_targets, Targets};
use crate::waitlist;
use crate::zone::Zone;
use crate::EdgeRouter;

/// The access-phase handler (`NGX_HTTP_ACCESS_PHASE`).
pub unsafe extern "C" fn access_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    guard(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t, || {
        // SAFETY: nginx calls phase handlers with a live request.
        let req = unsafe { Request::from_ngx_http_request(r) };
        handle(req)
    })
}

fn status(code: u32) -> ngx_int_t {
    code as ngx_int_t
}

fn handle(r: &mut Request) -> ngx_int_t {
    let Some(lcf) = EdgeRouter::location_conf(r.as_ref()) else {
        return NGX_DECLINED as ngx_int_t;
    };
    if lcf.name.is_null() || !r.is_main() {
        return NGX_DECLINED as ngx_int_t;
    }
    // First visit: the query is settled before anything is looked up.
    if ctx::viewer(r).is_none() {
        if let Err(rc) = query::canonicalize(r, lcf) {
            return rc;
        }
    }
    let rc = route(r, lcf);
    // Routed: wait for a request of this worker already fetching the same
    // object, if any (`edge_router_collapse`).
    if rc == NGX_DECLINED as ngx_int_t && ctx::viewer(r).is_some_and(|v| v.state == State::Routed) {
        return collapse::gate(r, lcf);
    }
    rc
}

/// The lookup state machine (see the module documentation).
fn route(r: &mut Request, lcf: &LocConf) -> ngx_int_t {
    let raw: *mut ngx_http_request_t = (&mut *r).into();
    if ctx::viewer(r).is_none() {
        match new_viewer(r, lcf) {
            Ok(()) => {}
            Err(rc) => return rc,
        }
    }
    let Some(v) = ctx::viewer(r) else {
        return status(NGX_HTTP_INTERNAL_SERVER_ERROR);
    };
    match v.state {
        State::Routed => return NGX_DECLINED as ngx_int_t,
        State::Leading | State::Waiting | State::Probing | State::Naming => {
            return Status::NGX_AGAIN.0
        }
        State::Resolved => return finish(r, lcf),
        State::Named => {
            return match v.pending_route.take() {
                Some((route, st)) => route_to(r, lcf, route, st),
                None => status(NGX_HTTP_INTERNAL_SERVER_ERROR),
            }
        }
        State::New => {}
    }
    let Some(zone) = v.zone else {
        ngx_log_error!(
            NGX_LOG_ERR,
            r.log(),
            "edge_router: the route zone is not available"
        );
        return status(NGX_HTTP_INTERNAL_SERVER_ERROR);
    };
    let t = lcf.timing();
    let (decision, route) = zone.consult(&v.name, now_ms(), &t);
    ngx_log_debug_http!(
        r,
        "edge_router: \"{}\": {decision:?}",
        String::from_utf8_lossy(&v.name)
    );
    match decision {
        Decision::Serve(CacheStatus::Hit) => zone.count(Event::FreshHit),
        Decision::Serve(CacheStatus::Stale) => zone.count(Event::StaleHit),
        Decision::Serve(_) | Decision::ServeAndRefresh => zone.count(Event::Updating),
        Decision::NotFound => zone.count(Event::NegativeHit),
        // Counted below: a wait, a refusal or a miss.
        Decision::Lookup => {}
    }
    match (decision, route) {
        (Decision::Serve(st), Some(route)) => route_to(r, lcf, route, st),
        (Decision::ServeAndRefresh, Some(route)) => {
            let name = v.name;
            if coalesce::in_flight() >= lookup_limit(lcf) || lookup::start(r, &name, None).is_err()
            {
                zone.release_refresh(&name, now_ms(), &t);
            } else if let Some(v) = ctx::viewer(r) {
                // nginx keeps a connection busy until its background
                // subrequests end: this viewer's next request must not wait
                // for the API on it, so this answer closes the connection.
                v.close_connection = true;
            }
            route_to(r, lcf, route, CacheStatus::Updating)
        }
        // `decide` serves only from a route it was given.
        (Decision::Serve(_) | Decision::ServeAndRefresh, None) => {
            status(NGX_HTTP_INTERNAL_SERVER_ERROR)
        }
        (Decision::NotFound, _) => {
            v.cache_status = Some(CacheStatus::Hit);
            status(NGX_HTTP_NOT_FOUND)
        }
        (Decision::Lookup, _) => {
            if coalesce::join(&v.name, raw) {
                zone.count(Event::CoalescedWait);
                v.state = State::Waiting;
                ngx_log_debug_http!(r, "edge_router: waiting for the lookup in flight");
                waitlist::park(r);
                return Status::NGX_AGAIN.0;
            }
            if coalesce::in_flight() >= lookup_limit(lcf) {
                zone.count(Event::Refused);
                ngx_log_error!(
                    NGX_LOG_WARN,
                    r.log(),
                    "edge_router: {} lookups in flight (edge_router_lookups), \"{}\" refused",
                    coalesce::in_flight(),
                    String::from_utf8_lossy(&v.name)
                );
                return status(NGX_HTTP_SERVICE_UNAVAILABLE);
            }
            zone.count(Event::Miss);
            let name = v.name;
            let vp: *mut Viewer = v;
            // SAFETY: `vp` is this request's context, in its pool; no other
            // reference to it is used while `start` runs.
            if lookup::start(r, &name, Some(unsafe { &mut *vp })).is_err() {
                ngx_log_error!(
                    NGX_LOG_ERR,
                    r.log(),
                    "edge_router: cannot create the API subrequest for \"{}\"",
                    String::from_utf8_lossy(&name)
                );
                return status(NGX_HTTP_BAD_GATEWAY);
            }
            coalesce::lead(&name);
            // SAFETY: as above.
            unsafe { (*vp).state = State::Leading };
            Status::NGX_AGAIN.0
        }
    }
}

fn lookup_limit(lcf: &LocConf) -> usize {
    usize::try_from(lcf.lookups.max(1)).unwrap_or(1)
}

/// Validates the stream name and creates the request's context.
fn new_viewer(r: &mut Request, lcf: &LocConf) -> Result<(), ngx_int_t> {
    // SAFETY: a non-null complex value compiled at configuration time.
    let cv = unsafe { &*lcf.name };
    let Some(value) = r.get_complex_value(cv) else {
        return Err(status(NGX_HTTP_INTERNAL_SERVER_ERROR));
    };
    // SAFETY: nginx evaluated the value into the request pool (or it is the
    // configuration's constant), which outlives the context it goes into.
    let name = unsafe { PoolBytes::new(value) };
    if !is_valid_stream_name(&name) {
        ngx_log_error!(
            NGX_LOG_INFO,
            r.log(),
            "edge_router: invalid stream name \"{}\"",
            String::from_utf8_lossy(&name[..name.len().min(80)]).escape_default()
        );
        return Err(status(NGX_HTTP_BAD_REQUEST));
    }
    let zone = EdgeRouter::main_conf(r.as_ref()).and_then(|m| Zone::new(m.zone));
    let v = Viewer {
        r: (&mut *r).into(),
        name,
        state: State::New,
        outcome: None,
        peers: Peers::new(),
        cache_status: None,
        zone,
        fail_policy: lcf.fail_policy(),
        close_connection: false,
        probes_pending: 0,
        probed: Vec::new(),
        probe_done: false,
        resolving: Vec::new(),
        names_pending: 0,
        pending_route: None,
        collapse: Collapse::default(),
        collapse_key: None,
    };
    match ctx::set(r, ReqCtx::Viewer(v)) {
        Some(_) => Ok(()),
        None => Err(status(NGX_HTTP_INTERNAL_SERVER_ERROR)),
    }
}

/// Turns a finished foreground lookup into the request's route or status.
fn finish(r: &mut Request, lcf: &LocConf) -> ngx_int_t {
    let Some(v) = ctx::viewer(r) else {
        return status(NGX_HTTP_INTERNAL_SERVER_ERROR);
    };
    let name = String::from_utf8_lossy(&v.name).into_owned();
    match v.outcome.take() {
        Some(Outcome::Found(origins)) => {
            let st = if v.probe_done {
                if let Some(z) = v.zone {
                    z.count(Event::Probed);
                }
                CacheStatus::Probed
            } else {
                CacheStatus::Miss
            };
            let route = Rc::new(Prepared::new(Route::found(origins, 0)));
            route_to(r, lcf, route, st)
        }
        Some(Outcome::NotFound) => {
            v.cache_status = Some(CacheStatus::Miss);
            status(NGX_HTTP_NOT_FOUND)
        }
        Some(Outcome::Failed(why)) if !v.probe_done && !lcf.probe_targets().is_empty() => {
            let targets = lcf.probe_targets();
            ngx_log_error!(
                NGX_LOG_WARN,
                r.log(),
                "edge_router: route lookup for stream \"{name}\" failed: {why}; no cached route, probing {} origin(s)",
                targets.len()
            );
            let vp: *mut Viewer = v;
            let started = probe::start(r, vp, &targets);
            // SAFETY: `vp` is this request's context, in its pool.
            let v = unsafe { &mut *vp };
            if started == 0 {
                v.probe_done = true;
                coalesce::wake(&v.name, Some(&Outcome::Failed(why)));
                return status(NGX_HTTP_BAD_GATEWAY);
            }
            v.probes_pending = started;
            v.state = State::Probing;
            Status::NGX_AGAIN.0
        }
        Some(Outcome::Failed(why)) => {
            ngx_log_error!(
                NGX_LOG_ERR,
                r.log(),
                "edge_router: route lookup for stream \"{name}\" failed: {why}; no cached route"
            );
            status(NGX_HTTP_BAD_GATEWAY)
        }
        None => {
            ngx_log_error!(
                NGX_LOG_ERR,
                r.log(),
                "edge_router: lookup for stream \"{name}\" ended without a result"
            );
            status(NGX_HTTP_BAD_GATEWAY)
        }
    }
}

/// Orders the allowed `origins` for this viewer (sticky rendezvous choice,
/// origins that failed recently last) and lets the request go on.
fn route_to(r: &mut Request, lcf: &LocConf, route: Rc<Prepared>, st: CacheStatus) -> ngx_int_t {
    // Only a choice between origins needs to know who the viewer is.
    let viewer_key: Vec<u8> = if route.route.origins.len() < 2 {
        Vec::new()
    } else if lcf.viewer_key.is_null() {
        // SAFETY: the connection of a live request is live.
        unsafe { (*r.connection()).addr_text.as_bytes().to_vec() }
    } else {
        // SAFETY: a non-null complex value compiled at configuration time.
        let cv = unsafe { &*lcf.viewer_key };
        match r.get_complex_value(cv) {
            Some(s) => s.as_bytes().to_vec(),
            None => return status(NGX_HTTP_INTERNAL_SERVER_ERROR),
        }
    };
    let log = r.log();
    let Some(v) = ctx::viewer(r) else {
        return status(NGX_HTTP_INTERNAL_SERVER_ERROR);
    };
    let allowed = match allowed_targets(v, lcf, log, &route) {
        Targets::Ready(t) => t,
        Targets::Resolve => {
            v.pending_route = Some((route, st));
            let vp: *mut Viewer = v;
            return match resolve::start(r, vp) {
                // Answered from nginx's cache (or failed at once): go on.
                Ok(0) => {
                    // SAFETY: `vp` is this request's context, in its pool.
                    let v = unsafe { &mut *vp };
                    match v.pending_route.take() {
                        Some((route, st)) => route_to(r, lcf, route, st),
                        None => status(NGX_HTTP_INTERNAL_SERVER_ERROR),
                    }
                }
                Ok(_) => {
                    // The resolver's handler wakes the request in this state
                    // only: answers that came during `start` need no wake-up.
                    // SAFETY: as above.
                    unsafe { (*vp).state = State::Naming };
                    ngx_log_debug_http!(r, "edge_router: resolving origin names");
                    Status::NGX_AGAIN.0
                }
                Err(e) => {
                    // SAFETY: as above.
                    let v = unsafe { &*vp };
                    ngx_log_error!(
                        NGX_LOG_ERR,
                        r.log(),
                        "edge_router: the route of \"{}\" names hosts, but they cannot be resolved: {}",
                        String::from_utf8_lossy(&v.name),
                        match e {
                            resolve::StartError::NoResolver => "no \"resolver\" is defined",
                            resolve::StartError::NoMemory => "out of memory",
                        }
                    );
                    status(NGX_HTTP_BAD_GATEWAY)
                }
            };
        }
    };
    let peer =
        |&(addr, origin): &(std::net::SocketAddr, usize)| Peer::of_route(addr, &route, origin);
    v.peers = match allowed.len() {
        0 => {
            ngx_log_error!(
                NGX_LOG_ERR,
                log,
                "edge_router: the route of \"{}\" has no usable origin",
                String::from_utf8_lossy(&v.name)
            );
            return status(NGX_HTTP_BAD_GATEWAY);
        }
        // One address (most streams): nothing to choose or reorder.
        1 => smallvec::smallvec![peer(&allowed[0])],
        _ => {
            let names: Vec<&str> = allowed
                .iter()
                .map(|&(_, i)| route.route.origins[i].addr.as_str())
                .collect();
            // One rank per origin, not per address: a name's addresses
            // stay together, in the resolver's order.
            let ranked: Vec<usize> = rank_grouped(&v.name, &viewer_key, &names);
            let down = match v.zone {
                Some(z) => {
                    let keys: Vec<&[u8]> = ranked.iter().map(|&i| names[i].as_bytes()).collect();
                    z.down(&keys, now_ms())
                }
                None => vec![false; ranked.len()],
            };
            let order: Vec<(usize, bool)> = ranked.into_iter().zip(down).collect();
            healthy_first(order, |&(_, d)| d)
                .into_iter()
                .map(|(i, _)| peer(&allowed[i]))
                .collect()
        }
    };
    v.cache_status = Some(st);
    v.state = State::Routed;
    ngx_log_debug_http!(
        r,
        "edge_router: routed to {} ({})",
        String::from_utf8_lossy(v.peers[0].name()),
        st.as_str()
    );
    NGX_DECLINED as ngx_int_t
}
