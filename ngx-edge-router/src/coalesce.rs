//! Per-worker lookup coalescing: concurrent misses for one stream share one
//! API subrequest. The first request leads; later ones wait (without
//! blocking: they return `NGX_AGAIN`) and are resumed by a posted write
//! event with the leader's outcome, or with none if the leader went away, in
//! which case one of them leads a new lookup.

use edge_router_policy::Outcome;
use ngx::ffi::ngx_http_request_t;
use ngx::http::Request;

use crate::ctx;
use crate::state::State;
use crate::waitlist::{self, Waitlist};

thread_local! {
    /// Streams with a foreground lookup in flight → requests waiting.
    static WAITING: Waitlist = Waitlist::default();
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
        // are freed (see `release`), so every pointer here is live.
        let req = unsafe { Request::from_ngx_http_request(w) };
        if let Some(mut v) = ctx::viewer(req) {
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
