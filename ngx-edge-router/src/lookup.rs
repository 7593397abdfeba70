//! The access-phase handler: finds the stream's route in the shared cache or
//! asks the API with an in-memory subrequest (the way `auth_request` does),
//! then orders the route's origins for this viewer.
//!
//! Concurrent misses for one stream inside a worker share one subrequest: the
//! first request leads, later ones wait (or use a stale route at once) and are
//! woken with the leader's outcome. Nothing here blocks: waiting requests
//! return `NGX_AGAIN` and are resumed by a posted write event.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;

use edge_router_policy::{
    decide, freshness::on_lookup_failure, is_valid_stream_name, parse_api_body, rank, CacheStatus,
    Decision, Route,
};
use ngx::ffi::{
    ngx_http_complex_value, ngx_http_complex_value_t, ngx_http_post_subrequest_t,
    ngx_http_request_body_t, ngx_http_request_t, ngx_http_subrequest, ngx_int_t, ngx_str_t,
    NGX_AGAIN, NGX_DECLINED, NGX_ERROR, NGX_HTTP_BAD_GATEWAY, NGX_HTTP_BAD_REQUEST,
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_FOUND, NGX_HTTP_SPECIAL_RESPONSE,
    NGX_HTTP_SUBREQUEST_IN_MEMORY, NGX_HTTP_SUBREQUEST_WAITED, NGX_LOG_ERR, NGX_LOG_INFO,
    NGX_LOG_WARN, NGX_OK,
};
use ngx::ngx_log_error;

use crate::cache::{Cache, StoreError};
use crate::conf::LocConf;
use crate::ffi::{
    guard, loc_conf, main_conf, now_ms, pool_str, request_ctx, set_request_ctx, str_bytes,
};

/// What a finished lookup found.
#[derive(Debug, Clone)]
pub enum Outcome {
    Found(Vec<String>),
    NotFound,
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not decided yet (or woken after the leader went away).
    New,
    /// This request's subrequest asks the API.
    Leading,
    /// Another request of this worker asks the API for the same stream.
    Waiting,
    /// A lookup finished; `outcome` holds its result.
    Resolved,
    /// Origins chosen; the request goes on to the content phase.
    Routed,
}

/// One upstream candidate, in the viewer's preference order.
pub struct Peer {
    pub addr: socket2::SockAddr,
    name: Box<[u8]>,
    pub name_str: ngx_str_t,
}

/// Per-request state, allocated in the request pool (dropped with it).
pub struct Ctx {
    r: *mut ngx_http_request_t,
    name: Vec<u8>,
    state: State,
    outcome: Option<Outcome>,
    stale: Option<Vec<String>>,
    /// The API subrequest while leading, and the body it returned so far.
    sr: *mut ngx_http_request_t,
    body: Vec<u8>,
    body_too_big: bool,
    pub peers: Vec<Peer>,
    pub cache_status: Option<CacheStatus>,
}

impl Ctx {
    pub fn origin(&self) -> Option<&[u8]> {
        self.peers.first().map(|p| &*p.name)
    }
}

thread_local! {
    /// Streams with a lookup in flight in this worker → requests waiting.
    static IN_FLIGHT: RefCell<HashMap<Vec<u8>, Vec<*mut ngx_http_request_t>>> =
        RefCell::new(HashMap::new());
}

impl Drop for Ctx {
    fn drop(&mut self) {
        match self.state {
            State::Waiting => IN_FLIGHT.with(|m| {
                if let Some(list) = m.borrow_mut().get_mut(&self.name) {
                    list.retain(|&w| w != self.r);
                }
            }),
            // The request went away with its lookup unfinished: let the
            // waiters decide again (one of them leads a new lookup).
            State::Leading => wake(&self.name, None),
            _ => {}
        }
    }
}

/// Ends the lookup of `name`: hands `outcome` to every waiting request (or
/// lets them start over with `None`) and resumes them.
fn wake(name: &[u8], outcome: Option<&Outcome>) {
    let waiters = IN_FLIGHT
        .with(|m| m.borrow_mut().remove(name))
        .unwrap_or_default();
    for w in waiters {
        // SAFETY: waiting requests remove themselves from the list when they
        // are freed (Ctx::drop), so every pointer here is a live request
        // whose context is a `Ctx`.
        unsafe {
            let wctx = request_ctx::<Ctx>(w);
            if let Some(wctx) = wctx.as_mut() {
                match outcome {
                    Some(o) => {
                        wctx.state = State::Resolved;
                        wctx.outcome = Some(o.clone());
                    }
                    None => wctx.state = State::New,
                }
            }
            // The write event runs the request's phases again.
            ngx::ffi::ngx_post_event(
                (*(*w).connection).write,
                core::ptr::addr_of_mut!(ngx::ffi::ngx_posted_events),
            );
        }
    }
}

/// The access-phase handler.
pub unsafe extern "C" fn access_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    guard(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t, || {
        // SAFETY: nginx calls phase handlers with a live request.
        unsafe { handle(r) }
    })
}

unsafe fn complex_value<'a>(
    r: *mut ngx_http_request_t,
    cv: *mut ngx_http_complex_value_t,
) -> Option<&'a [u8]> {
    let mut s = ngx_str_t {
        len: 0,
        data: core::ptr::null_mut(),
    };
    // SAFETY: `cv` was compiled at configuration time; the result lives in
    // the request pool.
    unsafe {
        if ngx_http_complex_value(r, cv, &mut s) != NGX_OK as ngx_int_t {
            return None;
        }
        Some(str_bytes(&s))
    }
}

unsafe fn handle(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: `r` is live for the whole call.
    unsafe {
        let lcf = loc_conf(r);
        if lcf.name.is_null() || r != (*r).main {
            return NGX_DECLINED as ngx_int_t;
        }
        let log = (*(*r).connection).log;

        let mut ctx = request_ctx::<Ctx>(r);
        if ctx.is_null() {
            let Some(name) = complex_value(r, lcf.name) else {
                return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
            };
            if !is_valid_stream_name(name) {
                ngx_log_error!(
                    NGX_LOG_INFO,
                    log,
                    "edge_router: invalid stream name \"{}\"",
                    String::from_utf8_lossy(&name[..name.len().min(80)])
                );
                return NGX_HTTP_BAD_REQUEST as ngx_int_t;
            }
            let pool = ngx::core::Pool::from_ngx_pool((*r).pool);
            ctx = pool.allocate(Ctx {
                r,
                name: name.to_vec(),
                state: State::New,
                outcome: None,
                stale: None,
                sr: core::ptr::null_mut(),
                body: Vec::new(),
                body_too_big: false,
                peers: Vec::new(),
                cache_status: None,
            });
            if ctx.is_null() {
                return NGX_ERROR as ngx_int_t;
            }
            set_request_ctx(r, ctx);
        }
        let ctx = &mut *ctx;

        match ctx.state {
            State::Routed => return NGX_DECLINED as ngx_int_t,
            State::Leading | State::Waiting => return NGX_AGAIN as ngx_int_t,
            State::Resolved => return finish(r, lcf, ctx),
            State::New => {}
        }

        let cache = Cache::new(main_conf(r).zone);
        match decide(cache.get(&ctx.name).as_ref(), now_ms(), &lcf.timing()) {
            Decision::Serve(origins, status) => route(r, lcf, ctx, origins, status),
            Decision::NotFound => {
                ctx.cache_status = Some(CacheStatus::Hit);
                NGX_HTTP_NOT_FOUND as ngx_int_t
            }
            Decision::Lookup { stale } => {
                let joined = IN_FLIGHT.with(|m| match m.borrow_mut().get_mut(&ctx.name) {
                    Some(list) if stale.is_none() => {
                        list.push(r);
                        Some(true)
                    }
                    Some(_) => Some(false),
                    None => None,
                });
                match joined {
                    Some(true) => {
                        ctx.state = State::Waiting;
                        NGX_AGAIN as ngx_int_t
                    }
                    // Someone refreshes this route: use the old one meanwhile.
                    Some(false) => route(
                        r,
                        lcf,
                        ctx,
                        stale.unwrap_or_default(),
                        CacheStatus::Updating,
                    ),
                    None => start_lookup(r, lcf, ctx, stale),
                }
            }
        }
    }
}

unsafe fn start_lookup(
    r: *mut ngx_http_request_t,
    lcf: &LocConf,
    ctx: &mut Ctx,
    stale: Option<Vec<String>>,
) -> ngx_int_t {
    // SAFETY: `r` is live; every allocation comes from its pool.
    unsafe {
        let prefix = str_bytes(&lcf.api);
        let prefix = prefix.strip_suffix(b"/").unwrap_or(prefix);
        let mut uri = Vec::with_capacity(prefix.len() + 1 + ctx.name.len());
        uri.extend_from_slice(prefix);
        uri.push(b'/');
        uri.extend_from_slice(&ctx.name);
        let Some(mut uri) = pool_str(r, &uri) else {
            return NGX_ERROR as ngx_int_t;
        };

        let pool = ngx::core::Pool::from_ngx_pool((*r).pool);
        let ps = pool.calloc_type::<ngx_http_post_subrequest_t>();
        if ps.is_null() {
            return NGX_ERROR as ngx_int_t;
        }
        (*ps).handler = Some(lookup_done);
        (*ps).data = (ctx as *mut Ctx).cast();

        let mut sr: *mut ngx_http_request_t = core::ptr::null_mut();
        let flags = NGX_HTTP_SUBREQUEST_IN_MEMORY | NGX_HTTP_SUBREQUEST_WAITED;
        let rc = ngx_http_subrequest(r, &mut uri, core::ptr::null_mut(), &mut sr, ps, flags as _);
        if rc != NGX_OK as ngx_int_t || sr.is_null() {
            ctx.stale = stale;
            ctx.outcome = Some(Outcome::Failed("cannot create the API subrequest".into()));
            return finish(r, lcf, ctx);
        }
        // A fake body keeps the subrequest from reading the client's body.
        (*sr).request_body = pool.calloc_type::<ngx_http_request_body_t>();
        if (*sr).request_body.is_null() {
            return NGX_ERROR as ngx_int_t;
        }

        IN_FLIGHT.with(|m| m.borrow_mut().insert(ctx.name.clone(), Vec::new()));
        ctx.sr = sr;
        ctx.stale = stale;
        ctx.state = State::Leading;
        NGX_AGAIN as ngx_int_t
    }
}

/// `post_subrequest` handler: turns the API answer into an outcome, stores
/// it in the shared cache and wakes the requests that waited for it.
unsafe extern "C" fn lookup_done(
    sr: *mut ngx_http_request_t,
    data: *mut core::ffi::c_void,
    rc: ngx_int_t,
) -> ngx_int_t {
    guard(rc, || {
        // SAFETY: `data` is the leader's Ctx, which lives in the parent
        // request's pool (shared with the subrequest); `sr` is live.
        unsafe {
            let Some(ctx) = data.cast::<Ctx>().as_mut() else {
                return rc;
            };
            if ctx.state != State::Leading {
                return rc;
            }
            let outcome = outcome_of(sr, rc, ctx);
            ctx.sr = core::ptr::null_mut();
            ctx.body = Vec::new();
            let lcf = loc_conf(ctx.r);
            let t = lcf.timing();
            let cache = Cache::new(main_conf(ctx.r).zone);
            let now = now_ms();
            let stored = match &outcome {
                Outcome::Found(origins) => Some(Route::found(origins.clone(), now)),
                Outcome::NotFound => Some(Route::not_found(now)),
                Outcome::Failed(_) => on_lookup_failure(cache.get(&ctx.name).as_ref(), now, &t),
            };
            if let Some(route) = stored {
                if let Err(StoreError::Full) = cache.put(&ctx.name, &route, &t) {
                    ngx_log_error!(
                        NGX_LOG_WARN,
                        (*(*sr).connection).log,
                        "edge_router: zone is full, route of \"{}\" not cached",
                        String::from_utf8_lossy(&ctx.name)
                    );
                }
            }
            ctx.state = State::Resolved;
            wake(&ctx.name, Some(&outcome));
            ctx.outcome = Some(outcome);
            rc
        }
    })
}

unsafe fn outcome_of(sr: *mut ngx_http_request_t, rc: ngx_int_t, ctx: &Ctx) -> Outcome {
    // SAFETY: `sr` is the finished, live subrequest.
    let status = unsafe { (*sr).headers_out.status };
    if ctx.body_too_big {
        return Outcome::Failed(format!("API response larger than {MAX_API_BODY} bytes"));
    }
    if rc == NGX_ERROR as ngx_int_t || rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
        return Outcome::Failed(format!("API request failed (rc {rc}, status {status})"));
    }
    match status {
        200 => match parse_api_body(&String::from_utf8_lossy(&ctx.name), &ctx.body) {
            Ok(origins) => Outcome::Found(origins),
            Err(e) => Outcome::Failed(e.to_string()),
        },
        // Only the API's own JSON 404 means "no such stream"; a plain 404
        // is nginx's (a misconfigured edge_router_api location), not an
        // answer about the stream.
        // SAFETY: `sr` is live; its content type lives in its pool.
        404 if unsafe { is_json(sr) } => Outcome::NotFound,
        404 => Outcome::Failed(
            "404 without a JSON body: does the edge_router_api location proxy to the API?".into(),
        ),
        s => Outcome::Failed(format!("API answered status {s}")),
    }
}

/// Whether the subrequest's answer is JSON (`application/json[; ...]`).
unsafe fn is_json(sr: *mut ngx_http_request_t) -> bool {
    // SAFETY: per the caller, `sr` is live.
    let ct = unsafe { str_bytes(&(*sr).headers_out.content_type) };
    ct.len() >= 16 && ct[..16].eq_ignore_ascii_case(b"application/json")
}

/// Largest API answer accepted; larger ones are a failed lookup.
pub const MAX_API_BODY: usize = 64 * 1024;

static mut NEXT_BODY_FILTER: ngx::ffi::ngx_http_output_body_filter_pt = None;

/// Installs [`body_filter`] at the top of the body filter chain.
///
/// # Safety
/// Only from postconfiguration.
pub unsafe fn install_body_filter() {
    // SAFETY: filter chains are only modified during configuration.
    unsafe {
        NEXT_BODY_FILTER = ngx::ffi::ngx_http_top_body_filter;
        ngx::ffi::ngx_http_top_body_filter = Some(body_filter);
    }
}

/// Captures the body of the module's own API subrequests (up to
/// [`MAX_API_BODY`]) and passes everything else on. Capturing here, instead
/// of letting the in-memory subrequest buffer it, turns an oversized answer
/// into a failed lookup rather than an aborted client connection.
unsafe extern "C" fn body_filter(
    r: *mut ngx_http_request_t,
    mut chain: *mut ngx::ffi::ngx_chain_t,
) -> ngx_int_t {
    // SAFETY: nginx passes a live request and chain; the context, if any, is
    // our Ctx in the main request's pool.
    unsafe {
        let ctx = request_ctx::<Ctx>((*r).main);
        let ours = r != (*r).main && !ctx.is_null() && (*ctx).sr == r;
        if !ours {
            return match NEXT_BODY_FILTER {
                Some(next) => next(r, chain),
                None => NGX_ERROR as ngx_int_t,
            };
        }
        let captured = guard(false, || {
            let ctx = &mut *ctx;
            while let Some(link) = chain.as_ref() {
                if let Some(b) = link.buf.as_mut() {
                    if b.last > b.pos && !b.pos.is_null() {
                        let len = b.last.offset_from(b.pos) as usize;
                        if ctx.body.len() + len > MAX_API_BODY {
                            ctx.body_too_big = true;
                        } else {
                            ctx.body
                                .extend_from_slice(core::slice::from_raw_parts(b.pos, len));
                        }
                        b.pos = b.last;
                    }
                }
                chain = link.next;
            }
            true
        });
        if captured {
            NGX_OK as ngx_int_t
        } else {
            NGX_ERROR as ngx_int_t
        }
    }
}

/// Turns a finished lookup into the request's route or error status.
unsafe fn finish(r: *mut ngx_http_request_t, lcf: &LocConf, ctx: &mut Ctx) -> ngx_int_t {
    // SAFETY: `r` is live.
    let log = unsafe { (*(*r).connection).log };
    let name = String::from_utf8_lossy(&ctx.name).into_owned();
    match ctx.outcome.take() {
        // SAFETY: `r` is live.
        Some(Outcome::Found(origins)) => unsafe { route(r, lcf, ctx, origins, CacheStatus::Miss) },
        Some(Outcome::NotFound) => {
            ctx.cache_status = Some(CacheStatus::Miss);
            NGX_HTTP_NOT_FOUND as ngx_int_t
        }
        Some(Outcome::Failed(why)) => match ctx.stale.take() {
            Some(stale) => {
                ngx_log_error!(
                    NGX_LOG_WARN,
                    log,
                    "edge_router: route lookup for stream \"{name}\" failed: {why}; serving the cached route"
                );
                // SAFETY: `r` is live.
                unsafe { route(r, lcf, ctx, stale, CacheStatus::Stale) }
            }
            None => {
                ngx_log_error!(
                    NGX_LOG_ERR,
                    log,
                    "edge_router: route lookup for stream \"{name}\" failed: {why}; no cached route"
                );
                NGX_HTTP_BAD_GATEWAY as ngx_int_t
            }
        },
        None => {
            ngx_log_error!(
                NGX_LOG_ERR,
                log,
                "edge_router: lookup for stream \"{name}\" ended without a result"
            );
            NGX_HTTP_BAD_GATEWAY as ngx_int_t
        }
    }
}

/// Orders `origins` for this viewer and lets the request go on.
unsafe fn route(
    r: *mut ngx_http_request_t,
    lcf: &LocConf,
    ctx: &mut Ctx,
    origins: Vec<String>,
    status: CacheStatus,
) -> ngx_int_t {
    // SAFETY: `r` is live.
    let viewer: &[u8] = unsafe {
        if lcf.viewer_key.is_null() {
            str_bytes(&(*(*r).connection).addr_text)
        } else {
            match complex_value(r, lcf.viewer_key) {
                Some(v) => v,
                None => return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t,
            }
        }
    };
    let mut peers: Vec<Peer> = rank(&ctx.name, viewer, &origins)
        .into_iter()
        .filter_map(|i| {
            let addr: SocketAddr = origins[i].parse().ok()?;
            let name: Box<[u8]> = origins[i].as_bytes().into();
            Some(Peer {
                addr: addr.into(),
                name,
                name_str: ngx_str_t {
                    len: 0,
                    data: core::ptr::null_mut(),
                },
            })
        })
        .collect();
    for p in &mut peers {
        p.name_str = ngx_str_t {
            len: p.name.len(),
            data: p.name.as_ptr().cast_mut(),
        };
    }
    if peers.is_empty() {
        // SAFETY: `r` is live.
        let log = unsafe { (*(*r).connection).log };
        ngx_log_error!(
            NGX_LOG_ERR,
            log,
            "edge_router: cached route of \"{}\" has no usable origin",
            String::from_utf8_lossy(&ctx.name)
        );
        return NGX_HTTP_BAD_GATEWAY as ngx_int_t;
    }
    ctx.peers = peers;
    ctx.cache_status = Some(status);
    ctx.state = State::Routed;
    NGX_DECLINED as ngx_int_t
}
