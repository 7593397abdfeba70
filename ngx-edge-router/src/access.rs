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
//!
//! [`handle`] takes the viewer's state through the door ([`crate::ctx`])
//! once and hands `&mut Viewer` down; the collapse gate runs after it lets
//! go (its key reads this module's variables).

use edge_router_policy::metrics::Event;
use std::rc::Rc;

use edge_router_policy::{is_valid_playback_name, CacheStatus, Decision, Outcome, Prepared, Route};
use ngx::core::Status;
use ngx::ffi::{
    ngx_http_request_t, ngx_int_t, NGX_DECLINED, NGX_HTTP_BAD_GATEWAY, NGX_HTTP_BAD_REQUEST,
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_FOUND, NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_ERR,
    NGX_LOG_INFO, NGX_LOG_WARN,
};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, Request};
use ngx::{ngx_log_debug_http, ngx_log_error};
use smallvec::SmallVec;

use crate::audience;
use crate::coalesce;
use crate::collapse;
use crate::conf::LocConf;
use crate::ctx;
use crate::ffi::{guard, now_ms};
use crate::inflight;
use crate::lookup;
use crate::playback;
use crate::probe;
use crate::query;
use crate::resolve;
use crate::state::{Collapse, Peers, PoolBytes, State, Viewer};
use crate::targets::{allowed_targets, order_peers, Targets};
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
    let Some(rc) = ctx::enter(r, |r| new_viewer(r, lcf), |r, v| route(r, lcf, v)) else {
        return status(NGX_HTTP_INTERNAL_SERVER_ERROR);
    };
    // Routed (the only way to `NGX_DECLINED`): wait for a request of this
    // worker already fetching the same object, if any
    // (`edge_router_collapse`).
    if rc == NGX_DECLINED as ngx_int_t {
        return collapse::gate(r, lcf);
    }
    rc
}

/// The lookup state machine (see the module documentation).
fn route(r: &mut Request, lcf: &LocConf, v: &mut Viewer) -> ngx_int_t {
    let found = match v.state {
        State::Routed => return NGX_DECLINED as ngx_int_t,
        State::Leading | State::Waiting | State::Probing => return Status::NGX_AGAIN.0,
        State::Naming if v.names.as_ref().is_some_and(|n| n.in_flight() > 0) => {
            return Status::NGX_AGAIN.0
        }
        State::Naming => v
            .pending_route
            .take()
            .ok_or(status(NGX_HTTP_INTERNAL_SERVER_ERROR)),
        State::Resolved => finish(r, lcf, v),
        State::New => consult(r, lcf, v),
    };
    match found {
        Ok((route, st)) => route_to(r, lcf, v, route, st),
        Err(rc) => rc,
    }
}

/// A route and how it was found.
type Found = (Rc<Prepared>, CacheStatus);

/// A new viewer asks the zone: a route to take, or the handler's answer
/// (a wait for a lookup, a status).
fn consult(r: &mut Request, lcf: &LocConf, v: &mut Viewer) -> Result<Found, ngx_int_t> {
    let Some(zone) = v.zone else {
        ngx_log_error!(
            NGX_LOG_ERR,
            r.log(),
            "edge_router: the route zone is not available"
        );
        return Err(status(NGX_HTTP_INTERNAL_SERVER_ERROR));
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
        (Decision::Serve(st), Some(route)) => Ok((route, st)),
        (Decision::ServeAndRefresh, Some(route)) => {
            if inflight::count() >= lookup_limit(lcf) || lookup::ask_api(r, &v.name, false).is_err()
            {
                zone.release_refresh(&v.name, now_ms(), &t);
            } else {
                // nginx keeps a connection busy until its background
                // subrequests end: this viewer's next request must not wait
                // for the API on it, so this answer closes the connection.
                v.close_connection = true;
            }
            Ok((route, CacheStatus::Updating))
        }
        // `decide` serves only from a route it was given.
        (Decision::Serve(_) | Decision::ServeAndRefresh, None) => {
            Err(status(NGX_HTTP_INTERNAL_SERVER_ERROR))
        }
        (Decision::NotFound, _) => {
            v.cache_status = Some(CacheStatus::Hit);
            Err(status(NGX_HTTP_NOT_FOUND))
        }
        (Decision::Lookup, _) => {
            if coalesce::join(&v.name, v.r) {
                zone.count(Event::CoalescedWait);
                v.state = State::Waiting;
                ngx_log_debug_http!(r, "edge_router: waiting for the lookup in flight");
                waitlist::park(r);
                return Err(Status::NGX_AGAIN.0);
            }
            if inflight::count() >= lookup_limit(lcf) {
                zone.count(Event::Refused);
                ngx_log_error!(
                    NGX_LOG_WARN,
                    r.log(),
                    "edge_router: {} lookups in flight (edge_router_lookups), \"{}\" refused",
                    inflight::count(),
                    String::from_utf8_lossy(&v.name)
                );
                return Err(status(NGX_HTTP_SERVICE_UNAVAILABLE));
            }
            zone.count(Event::Miss);
            if lookup::ask_api(r, &v.name, true).is_err() {
                ngx_log_error!(
                    NGX_LOG_ERR,
                    r.log(),
                    "edge_router: cannot create the API subrequest for \"{}\"",
                    String::from_utf8_lossy(&v.name)
                );
                return Err(status(NGX_HTTP_BAD_GATEWAY));
            }
            coalesce::lead(&v.name);
            v.state = State::Leading;
            Err(Status::NGX_AGAIN.0)
        }
    }
}

fn lookup_limit(lcf: &LocConf) -> usize {
    usize::try_from(lcf.lookups.max(1)).unwrap_or(1)
}

/// A request's first visit: settles its query (before anything is looked
/// up), validates the stream name and the playback token, and makes the
/// viewer's state.
fn new_viewer(r: &mut Request, lcf: &LocConf) -> Result<Viewer, ngx_int_t> {
    query::canonicalize(r, lcf)?;
    // SAFETY: a non-null complex value compiled at configuration time.
    let cv = unsafe { &*lcf.name };
    let Some(value) = r.get_complex_value(cv) else {
        return Err(status(NGX_HTTP_INTERNAL_SERVER_ERROR));
    };
    // SAFETY: nginx evaluated the value into the request pool (or it is the
    // configuration's constant), which outlives the context it goes into.
    let name = unsafe { PoolBytes::new(value) };
    if !is_valid_playback_name(&name) {
        ngx_log_error!(
            NGX_LOG_INFO,
            r.log(),
            "edge_router: invalid stream name \"{}\"",
            String::from_utf8_lossy(&name[..name.len().min(80)]).escape_default()
        );
        return Err(status(NGX_HTTP_BAD_REQUEST));
    }
    let token = playback::check(r, lcf, &name)?;
    let zone = EdgeRouter::main_conf(r.as_ref()).and_then(|m| Zone::new(m.zone));
    Ok(Viewer {
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
        names: None,
        pending_route: None,
        collapse: Collapse::default(),
        collapse_key: None,
        token_valid: token == playback::Token::Valid,
    })
}

/// Turns a finished foreground lookup into the request's route or status.
fn finish(r: &mut Request, lcf: &LocConf, v: &mut Viewer) -> Result<Found, ngx_int_t> {
    let name = String::from_utf8_lossy(&v.name).into_owned();
    match v.outcome.take() {
        Some(Outcome::Found(origins, signed)) => {
            let st = if v.probe_done {
                if let Some(z) = v.zone {
                    z.count(Event::Probed);
                }
                CacheStatus::Probed
            } else {
                CacheStatus::Miss
            };
            let route = Rc::new(Prepared::new(Route::found(origins, 0).with_signed(signed)));
            Ok((route, st))
        }
        Some(Outcome::NotFound) => {
            v.cache_status = Some(CacheStatus::Miss);
            Err(status(NGX_HTTP_NOT_FOUND))
        }
        Some(Outcome::Failed(why)) if !v.probe_done && !lcf.probe_targets().is_empty() => {
            let targets = lcf.probe_targets();
            ngx_log_error!(
                NGX_LOG_WARN,
                r.log(),
                "edge_router: route lookup for stream \"{name}\" failed: {why}; no cached route, probing {} origin(s)",
                targets.len()
            );
            let started = probe::ask_origins(r, &targets);
            if started == 0 {
                v.probe_done = true;
                coalesce::wake(&v.name, Some(&Outcome::Failed(why)));
                return Err(status(NGX_HTTP_BAD_GATEWAY));
            }
            v.probes_pending = started;
            v.state = State::Probing;
            Err(Status::NGX_AGAIN.0)
        }
        Some(Outcome::Failed(why)) => {
            ngx_log_error!(
                NGX_LOG_ERR,
                r.log(),
                "edge_router: route lookup for stream \"{name}\" failed: {why}; no cached route"
            );
            Err(status(NGX_HTTP_BAD_GATEWAY))
        }
        None => {
            ngx_log_error!(
                NGX_LOG_ERR,
                r.log(),
                "edge_router: lookup for stream \"{name}\" ended without a result"
            );
            Err(status(NGX_HTTP_BAD_GATEWAY))
        }
    }
}

/// Orders the allowed origins of `route` for this viewer (sticky
/// rendezvous choice, origins that failed recently last) and lets the
/// request go on; first resolves the route's host names if it names any.
fn route_to(
    r: &mut Request,
    lcf: &LocConf,
    v: &mut Viewer,
    route: Rc<Prepared>,
    st: CacheStatus,
) -> ngx_int_t {
    let log = r.log();
    let allowed = loop {
        match allowed_targets(v, lcf, log, &route) {
            Targets::Ready(t) => break t,
            Targets::Resolve => match resolve_names(r, v) {
                // Answered from nginx's cache (or failed at once): go on.
                Ok(0) => continue,
                Ok(_) => {
                    v.pending_route = Some((route, st));
                    v.state = State::Naming;
                    return Status::NGX_AGAIN.0;
                }
                Err(rc) => return rc,
            },
        }
    };
    if allowed.is_empty() {
        ngx_log_error!(
            NGX_LOG_ERR,
            log,
            "edge_router: the route of \"{}\" has no usable origin",
            String::from_utf8_lossy(&v.name)
        );
        return status(NGX_HTTP_BAD_GATEWAY);
    }
    if route.route.signed && !v.token_valid {
        return playback::refuse_unsigned(r, &v.name);
    }
    // Who the viewer is: their origin among several, and their count.
    let viewer_key: SmallVec<[u8; 64]> = if lcf.viewer_key.is_null() {
        // SAFETY: the connection of a live request is live.
        unsafe { (*r.connection()).addr_text.as_bytes().into() }
    } else {
        // SAFETY: a non-null complex value compiled at configuration time.
        let cv = unsafe { &*lcf.viewer_key };
        match r.get_complex_value(cv) {
            Some(s) => s.as_bytes().into(),
            None => return status(NGX_HTTP_INTERNAL_SERVER_ERROR),
        }
    };
    v.peers = order_peers(v, &route, &allowed, &viewer_key);
    v.cache_status = Some(st);
    v.state = State::Routed;
    audience::see(r, lcf, v, &viewer_key);
    ngx_log_debug_http!(
        r,
        "edge_router: routed to {} ({})",
        String::from_utf8_lossy(v.peers[0].name()),
        st.as_str()
    );
    NGX_DECLINED as ngx_int_t
}

/// Starts resolving the route's names: how many are still in flight, or
/// the handler's answer.
fn resolve_names(r: &mut Request, v: &mut Viewer) -> Result<usize, ngx_int_t> {
    let Some(names) = v.names.clone() else {
        return Err(status(NGX_HTTP_INTERNAL_SERVER_ERROR));
    };
    match resolve::ask_resolver(r, &names) {
        Ok(0) => Ok(0),
        Ok(n) => {
            names.park();
            ngx_log_debug_http!(r, "edge_router: resolving origin names");
            Ok(n)
        }
        Err(e) => {
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
            Err(status(NGX_HTTP_BAD_GATEWAY))
        }
    }
}
