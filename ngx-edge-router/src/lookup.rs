//! The API lookup: an in-memory subrequest to the internal location named by
//! `edge_router_api` (the way `auth_request` asks its authorizer), the body
//! filter that captures its answer, and the post-subrequest handler that
//! classifies the answer, stores it in the zone and wakes the requests that
//! waited for it.
//!
//! A foreground lookup is led by a viewer request that has no usable route;
//! a background lookup (`NGX_HTTP_SUBREQUEST_BACKGROUND`, like
//! `proxy_cache_background_update`) refreshes an expired route while the
//! viewer is already served from it.

use edge_router_policy::metrics::Event;
use edge_router_policy::{classify, is_json_content_type, ApiAnswer, Outcome, MAX_API_BODY};
use ngx::core::Status;
use ngx::ffi::{
    ngx_chain_t, ngx_connection_tcp_nopush_e_NGX_TCP_NOPUSH_DISABLED,
    ngx_connection_tcp_nopush_e_NGX_TCP_NOPUSH_UNSET, ngx_http_output_body_filter_pt,
    ngx_http_output_header_filter_pt, ngx_http_request_t, ngx_int_t, NGX_ERROR,
    NGX_HTTP_SPECIAL_RESPONSE, NGX_LOG_WARN,
};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, Request};
use ngx::{ngx_log_debug_http, ngx_log_error};

use crate::coalesce;
use crate::ctx;
use crate::ffi::{guard, now_ms};
use crate::inflight::InFlight;
use crate::state::{Lookup, ReqCtx, State};
use crate::subrequest;
use crate::zone::{StoreError, Zone};
use crate::EdgeRouter;

/// Starts the lookup of `name` as a subrequest of viewer request `r`:
/// `leads`, the viewer waits for the answer (foreground); otherwise a
/// background refresh.
pub fn ask_api(r: &mut Request, name: &[u8], leads: bool) -> Result<(), ()> {
    let Some(lcf) = EdgeRouter::location_conf(r.as_ref()) else {
        return Err(());
    };
    let background = !leads;
    let mut path = Vec::with_capacity(1 + name.len());
    path.push(b'/');
    path.extend_from_slice(name);
    let probes_follow = !lcf.probe_targets().is_empty();
    let state = ReqCtx::Lookup(Lookup {
        name: name.to_vec(),
        leads,
        body: Vec::new(),
        too_big: false,
        done: false,
        started_ms: now_ms(),
        timing: lcf.timing(),
        probes_follow,
        _in_flight: InFlight::start(),
    });
    subrequest::spawn::<ApiLookup>(r, lcf.api.as_bytes(), &path, state, background)?;
    ngx_log_debug_http!(
        r,
        "edge_router: lookup of \"{}\" started ({})",
        String::from_utf8_lossy(name),
        if background {
            "background"
        } else {
            "foreground"
        }
    );
    Ok(())
}

/// The API subrequests' owner.
struct ApiLookup;

impl subrequest::Owner for ApiLookup {
    fn finished(sr: &Request, state: &mut ReqCtx, rc: ngx_int_t) {
        if let ReqCtx::Lookup(lk) = state {
            finished(sr, lk, rc);
        }
    }
}

/// The API subrequest ended.
fn finished(sr: &Request, lk: &mut Lookup, rc: ngx_int_t) {
    if lk.done {
        return;
    }
    lk.done = true;
    // The main configuration is the same in every location; the route
    // timing was taken when the lookup started (see `Lookup::timing`).
    let t = lk.timing;
    let zone = EdgeRouter::main_conf(sr.as_ref()).and_then(|m| Zone::new(m.zone));
    let name = String::from_utf8_lossy(&lk.name).into_owned();
    let now = now_ms();

    let h = &sr.as_ref().headers_out;
    let answer = ApiAnswer {
        transport_failed: rc == NGX_ERROR as ngx_int_t
            || rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t,
        status: u16::try_from(h.status).unwrap_or(0),
        json: is_json_content_type(h.content_type.as_bytes()),
        body: &lk.body,
        too_big: lk.too_big,
    };
    // SAFETY: the connection of a live request is live.
    let client_gone = unsafe { (*sr.connection()).error() } != 0;
    if client_gone && answer.transport_failed {
        // The viewer hung up and the lookup was cut short with it: not an
        // API failure. Nothing is stored; a background claim is released,
        // waiters start over. (An answer that arrived whole is used even
        // when the viewer has gone: a background refresh usually outlives
        // the answer it was started beside.)
        ngx_log_debug_http!(
            sr,
            "edge_router: lookup of \"{name}\" cut short by a client abort"
        );
        if !lk.leads {
            if let Some(z) = zone {
                z.release_refresh(&lk.name, now, &t);
            }
        } else {
            if let Some(mut leader) = ctx::main_viewer(sr) {
                leader.state = State::Resolved;
            }
            coalesce::wake(&lk.name, None);
        }
        return;
    }

    let outcome = classify(&name, &answer);
    if let Some(z) = zone {
        z.observe_lookup(now.saturating_sub(lk.started_ms));
        if matches!(outcome, Outcome::Failed(_)) {
            z.count(Event::ApiError);
        }
    }
    ngx_log_debug_http!(sr, "edge_router: lookup of \"{name}\" ended: {outcome:?}");
    lk.body = Vec::new();

    if let Outcome::Failed(why) = &outcome {
        if !lk.leads {
            ngx_log_error!(
                NGX_LOG_WARN,
                sr.log(),
                "edge_router: refreshing the route of stream \"{name}\" failed: {why}; serving the cached route"
            );
        }
    }
    if let Some(z) = zone {
        if let Err(StoreError::Full) = z.store_outcome(&lk.name, &outcome, now, &t) {
            ngx_log_error!(
                NGX_LOG_WARN,
                sr.log(),
                "edge_router: zone is full, route of \"{name}\" not cached"
            );
        }
    }
    if !lk.leads {
        return;
    }
    if let Some(mut leader) = ctx::main_viewer(sr) {
        leader.state = State::Resolved;
        leader.outcome = Some(outcome.clone());
    }
    // With origins to probe, the leader probes next (see `access`); its
    // waiters keep waiting for that result.
    if !matches!(outcome, Outcome::Failed(_)) || !lk.probes_follow {
        coalesce::wake(&lk.name, Some(&outcome));
    }
}

static mut NEXT_BODY_FILTER: ngx_http_output_body_filter_pt = None;
static mut NEXT_HEADER_FILTER: ngx_http_output_header_filter_pt = None;

/// Installs [`header_filter`] and [`body_filter`] at the top of the filter
/// chains.
///
/// # Safety
/// Only from postconfiguration.
pub unsafe fn install_filters() {
    // SAFETY: filter chains are only modified during configuration, in one
    // thread.
    unsafe {
        NEXT_BODY_FILTER = ngx::ffi::ngx_http_top_body_filter;
        ngx::ffi::ngx_http_top_body_filter = Some(body_filter);
        NEXT_HEADER_FILTER = ngx::ffi::ngx_http_top_header_filter;
        ngx::ffi::ngx_http_top_header_filter = Some(header_filter);
    }
}

/// nginx keeps a client connection until the background subrequests of its
/// request end, so the next request on it would wait for the API. The answer
/// of a request that started a background refresh therefore says
/// `Connection: close`: the viewer's next request comes on a new connection.
/// Its bytes must not wait either: with `tcp_nopush`, nginx corks the socket
/// and uncorks it only when the connection goes idle or closes, which a
/// pending background subrequest delays (the kernel then flushes after
/// 200 ms); so this answer is sent uncorked.
unsafe extern "C" fn header_filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx passes a live request.
    let req = unsafe { Request::from_ngx_http_request(r) };
    if req.is_main() {
        let close = guard(false, || {
            ctx::viewer(req).is_some_and(|v| v.close_connection)
        });
        if close {
            req.as_mut().set_keepalive(0);
            // SAFETY: the connection of a live request is live.
            let c = unsafe { &mut *req.connection() };
            if c.tcp_nopush() == ngx_connection_tcp_nopush_e_NGX_TCP_NOPUSH_UNSET {
                c.set_tcp_nopush(ngx_connection_tcp_nopush_e_NGX_TCP_NOPUSH_DISABLED);
            }
        }
    }
    // SAFETY: the next filter was set at configuration time.
    match unsafe { NEXT_HEADER_FILTER } {
        // SAFETY: same argument nginx gave us.
        Some(next) => unsafe { next(r) },
        None => NGX_ERROR as ngx_int_t,
    }
}

/// Captures the body of the module's own API subrequests (up to
/// [`MAX_API_BODY`]) and passes everything else on. Capturing here turns an
/// oversized answer into a failed lookup rather than an aborted client
/// connection.
unsafe extern "C" fn body_filter(r: *mut ngx_http_request_t, chain: *mut ngx_chain_t) -> ngx_int_t {
    // SAFETY: nginx passes a live request.
    let req = unsafe { Request::from_ngx_http_request(r) };
    if !req.is_main() {
        if let Some(mut state) = ctx::get(req) {
            match &mut *state {
                ReqCtx::Lookup(lk) => return guard(Status::NGX_ERROR, || capture(lk, chain)).0,
                ReqCtx::Probe(_) | ReqCtx::Report => {
                    return guard(Status::NGX_ERROR, || discard(chain)).0
                }
                ReqCtx::Viewer(_) => {}
            }
        }
    }
    // SAFETY: the next filter was set at configuration time; static reads
    // happen in the worker's only thread.
    match unsafe { NEXT_BODY_FILTER } {
        // SAFETY: same arguments nginx gave us.
        Some(next) => unsafe { next(r, chain) },
        None => NGX_ERROR as ngx_int_t,
    }
}

/// A probe's body is not needed: consumed and dropped.
fn discard(mut chain: *mut ngx_chain_t) -> Status {
    // SAFETY: a chain from nginx: each link is valid or null.
    while let Some(link) = unsafe { chain.as_ref() } {
        // SAFETY: a link's buffer is valid or null.
        if let Some(b) = unsafe { link.buf.as_mut() } {
            b.pos = b.last;
        }
        chain = link.next;
    }
    Status::NGX_OK
}

fn capture(lk: &mut Lookup, mut chain: *mut ngx_chain_t) -> Status {
    // SAFETY: a chain from nginx: each link is valid or null.
    while let Some(link) = unsafe { chain.as_ref() } {
        // SAFETY: a link's buffer is valid or null.
        if let Some(b) = unsafe { link.buf.as_mut() } {
            if !b.pos.is_null() && b.last > b.pos {
                // SAFETY: `pos` and `last` point into the same buffer.
                let len = unsafe { b.last.offset_from(b.pos) } as usize;
                if lk.body.len() + len > MAX_API_BODY {
                    lk.too_big = true;
                } else {
                    // SAFETY: `pos..last` is readable memory of the buffer.
                    let bytes = unsafe { core::slice::from_raw_parts(b.pos, len) };
                    lk.body.extend_from_slice(bytes);
                }
                b.pos = b.last;
            }
        }
        chain = link.next;
    }
    Status::NGX_OK
}
