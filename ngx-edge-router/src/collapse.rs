//! `edge_router_collapse`: per-worker collapsing of requests for the same
//! cacheable object, typically LL-HLS blocking playlist reloads for the same
//! part. While one request for a key is upstream, later ones with the same
//! key wait (returning `NGX_AGAIN`, nothing blocks) and are resumed the
//! moment it ends, to find its answer in the proxy cache.
//!
//! nginx's `proxy_cache_lock` collapses too, across workers, but its waiters
//! look at the lock every 500 ms: a viewer waiting for a part that appears
//! 0.1 s after it asked gets it up to 0.5 s late, longer than a part lasts.
//! Here the waiters run as soon as the leading request is freed (its answer
//! is in the cache by then). Each worker sends its own leading request, so
//! an origin sees at most one request per key per edge worker.
//!
//! `edge_router_collapse_max` bounds the leading requests one worker has
//! upstream at one origin (distinct keys: every held LL-HLS reload and part
//! of every stream). Past it a request gets a 503 with `Retry-After` at
//! once: a viewer cannot make the edge hold an unbounded number of
//! connections at an origin.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use foldhash::fast::RandomState;
use ngx::ffi::{
    ngx_http_request_t, ngx_int_t, NGX_DECLINED, NGX_HTTP_INTERNAL_SERVER_ERROR,
    NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_WARN,
};
use ngx::http::Request;
use ngx::{ngx_log_debug_http, ngx_log_error};

use crate::conf::LocConf;
use crate::ctx;
use crate::state::{Collapse, Counter, PoolBytes, Viewer};
use crate::waitlist::{self, Waitlist};

thread_local! {
    /// Keys with a leading request upstream → requests waiting for it.
    static WAITING: Waitlist = Waitlist::default();
    /// Origin → leading requests of this worker upstream there (a counter
    /// each leading request holds, so that leaving needs no lookup). An
    /// origin's entry stays at zero (the next request there allocates
    /// nothing) until the map holds more than [`KEEP_ORIGINS`] origins.
    static UPSTREAM: RefCell<HashMap<Box<[u8]>, Counter, RandomState>> = RefCell::default();
}

/// Origins whose idle (zero) entries [`UPSTREAM`] keeps.
const KEEP_ORIGINS: usize = 64;

/// The counter of leading requests of this worker at `origin`.
fn upstream_at(origin: &[u8]) -> Counter {
    UPSTREAM.with(|u| {
        let mut u = u.borrow_mut();
        if let Some(n) = u.get(origin) {
            return Rc::clone(n);
        }
        if u.len() >= KEEP_ORIGINS {
            u.retain(|_, n| n.get() > 0);
        }
        let n = Rc::new(Cell::new(0));
        u.insert(origin.into(), Rc::clone(&n));
        n
    })
}

/// Called once the request is routed: `NGX_DECLINED` to go on upstream (or
/// to the cache), `NGX_AGAIN` to wait for the request leading its key.
///
/// The key is evaluated with the viewer's state not borrowed: it names
/// this module's variables (`$edge_router_origin`), which read that state.
pub fn gate(r: &mut Request, lcf: &LocConf) -> ngx_int_t {
    match ctx::with_viewer(r, |_, v| settled(lcf, v)) {
        None => return NGX_DECLINED as ngx_int_t,
        Some(Some(rc)) => return rc,
        Some(None) => {}
    }
    // SAFETY: a non-null complex value compiled at configuration time.
    let cv = unsafe { &*lcf.collapse };
    let Some(key) = r.get_complex_value(cv) else {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    };
    // SAFETY: the key was evaluated into this request's pool, which
    // outlives its context.
    let key = unsafe { PoolBytes::new(key) };
    ctx::with_viewer(r, |r, v| decide(r, lcf, v, key))
        .unwrap_or(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t)
}

/// The gate's answer where it needs no key; `None`: the key decides.
fn settled(lcf: &LocConf, v: &mut Viewer) -> Option<ngx_int_t> {
    match v.collapse {
        Collapse::Undecided if lcf.collapse.is_null() => {
            v.collapse = Collapse::Off;
            Some(NGX_DECLINED as ngx_int_t)
        }
        Collapse::Undecided => None,
        Collapse::Waiting(_) => Some(ngx::core::Status::NGX_AGAIN.0),
        Collapse::Off | Collapse::Leading { .. } | Collapse::Released => {
            Some(NGX_DECLINED as ngx_int_t)
        }
    }
}

/// The gate with the key evaluated: lead, wait or go on alone.
fn decide(r: &mut Request, lcf: &LocConf, v: &mut Viewer, key: PoolBytes) -> ngx_int_t {
    v.collapse_key = Some(key);
    if key.is_empty() {
        v.collapse = Collapse::Off;
        return NGX_DECLINED as ngx_int_t;
    }
    if let Some(key) = WAITING.with(|w| w.join(&key, v.r)) {
        v.collapse = Collapse::Waiting(key);
        ngx_log_debug_http!(r, "edge_router: waiting for the request in flight");
        waitlist::park(r);
        return ngx::core::Status::NGX_AGAIN.0;
    }
    let origin = v.origin().unwrap_or_default();
    let upstream = upstream_at(origin);
    let max = usize::try_from(lcf.collapse_max).unwrap_or(0);
    if max > 0 && upstream.get() >= max {
        ngx_log_error!(
            NGX_LOG_WARN,
            r.log(),
            "edge_router: {max} collapsed requests of this worker upstream at {} (edge_router_collapse_max), request refused",
            String::from_utf8_lossy(origin)
        );
        v.collapse = Collapse::Off;
        return NGX_HTTP_SERVICE_UNAVAILABLE as ngx_int_t;
    }
    upstream.set(upstream.get() + 1);
    v.collapse = Collapse::Leading {
        key: WAITING.with(|w| w.lead(&key)),
        upstream,
    };
    NGX_DECLINED as ngx_int_t
}

/// A viewer request is being freed: a waiter leaves its list; a leader
/// resumes its waiters, which go on if it answered 200 (the answer is in
/// the cache) or decide again otherwise (one of them leads).
pub fn on_free(state: &Collapse, r: *mut ngx_http_request_t) {
    match state {
        Collapse::Waiting(key) => WAITING.with(|w| w.leave(key, r)),
        Collapse::Leading { key, upstream } => {
            upstream.set(upstream.get().saturating_sub(1));
            // SAFETY: called from the request's pool cleanup: the request
            // structure (allocated from that pool) is still intact.
            let answered = unsafe { (*r).headers_out.status } == 200;
            for w in WAITING.with(|l| l.take(key)) {
                // SAFETY: waiters leave the list when they are freed, so
                // every pointer here is a live request.
                let req = unsafe { Request::from_ngx_http_request(w) };
                if let Some(mut v) = ctx::viewer(req) {
                    v.collapse = if answered {
                        Collapse::Released
                    } else {
                        Collapse::Undecided
                    };
                }
                waitlist::resume(req);
            }
        }
        Collapse::Undecided | Collapse::Off | Collapse::Released => {}
    }
}
