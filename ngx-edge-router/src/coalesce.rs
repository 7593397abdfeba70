//! Per-worker lookup coalescing: concurrent misses for one stream share one
//! API subrequest. The first request leads; later ones wait (without
//! blocking: they return `NGX_AGAIN`) and are resumed by a posted write
//! event with the leader's outcome, or with none if the leader went away, in
//! which case one of them leads a new lookup. Also counts the lookups in
//! flight, bounded by `edge_router_lookups`.

use std::cell::Cell;

use edge_router_policy::Outcome;
use ngx::ffi::ngx_http_request_t;
use ngx::http::Request;

use crate::ctx::{self, State};
use crate::waitlist::{self, Waitlist};

thread_local! {
    /// Streams with a foreground lookup in flight → requests waiting.
    static WAITING: Waitlist = Waitlist::default();
    /// API subrequests in flight (foreground and background).
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
}

/// Registers the caller as the leader of `name`'s lookup.
pub fn lead(name: &[u8]) {
    WAITING.with(|w| w.lead(name));
}

/// Adds `r` to the waiters of `name`'s lookup; false if none is in flight.
pub fn join(name: &[u8], r: *mut ngx_http_request_t) -> bool {
    WAITING.with(|w| w.join(name, r)).is_some()
}

/// Removes `r` from the waiters of `name` (it is being freed).
pub fn leave(name: &[u8], r: *mut ngx_http_request_t) {
    WAITING.with(|w| w.leave(name, r));
}

/// Ends the lookup of `name`: hands `outcome` to every waiting request (or
/// lets them start over with `None`) and resumes them.
pub fn wake(name: &[u8], outcome: Option<&Outcome>) {
    for w in WAITING.with(|l| l.take(name)) {
        // SAFETY: waiting requests remove themselves from the list when they
        // are freed (`Viewer::drop`), so every pointer here is live.
        let req = unsafe { Request::from_ngx_http_request(w) };
        if let Some(v) = ctx::viewer(req) {
            match outcome {
                Some(o) => {
                    v.state = State::Resolved;
                    v.outcome = Some(o.clone());
                }
                None => v.state = State::New,
            }
        }
        waitlist::resume(req);
    }
}

pub fn lookup_started() {
    IN_FLIGHT.with(|c| c.set(c.get() + 1));
}

pub fn lookup_ended() {
    IN_FLIGHT.with(|c| c.set(c.get().saturating_sub(1)));
}

/// API subrequests in flight in this worker.
pub fn in_flight() -> usize {
    IN_FLIGHT.with(Cell::get)
}
