//! Requests of this worker waiting for another request's work, by key: the
//! mechanics shared by lookup coalescing ([`crate::coalesce`]) and playlist
//! collapsing ([`crate::collapse`]). A waiting request returned `NGX_AGAIN`
//! from the access phase; [`resume`] runs its phases again.

use std::cell::RefCell;
use std::collections::HashMap;

use ngx::ffi::ngx_http_request_t;
use ngx::http::Request;

/// Keys with work in flight → the requests waiting for it.
#[derive(Default)]
pub struct Waitlist(RefCell<HashMap<Box<[u8]>, Vec<*mut ngx_http_request_t>>>);

impl Waitlist {
    /// Registers work in flight for `key` (nobody waits yet).
    pub fn lead(&self, key: &[u8]) {
        self.0.borrow_mut().insert(key.into(), Vec::new());
    }

    /// Adds `r` to the waiters of `key`; false if no work is in flight.
    pub fn join(&self, key: &[u8], r: *mut ngx_http_request_t) -> bool {
        match self.0.borrow_mut().get_mut(key) {
            Some(list) => {
                list.push(r);
                true
            }
            None => false,
        }
    }

    /// Removes `r` from the waiters of `key` (it is being freed).
    pub fn leave(&self, key: &[u8], r: *mut ngx_http_request_t) {
        if let Some(list) = self.0.borrow_mut().get_mut(key) {
            list.retain(|&w| w != r);
        }
    }

    /// Ends the work for `key`: its waiters, to be resumed by the caller.
    pub fn take(&self, key: &[u8]) -> Vec<*mut ngx_http_request_t> {
        self.0.borrow_mut().remove(key).unwrap_or_default()
    }
}

/// Parks `r` (about to return `NGX_AGAIN` from the access phase): while it
/// waits, a client that closes its connection ends the request (499, as
/// nginx's `limit_req` does while it delays one) instead of holding it
/// until the work it waits for ends.
pub fn park(r: &mut Request) {
    let raw: *mut ngx_http_request_t = r.into();
    // SAFETY: a live request; nginx calls its read event handler on the
    // connection's read events, and `ngx_http_test_reading` finalizes it
    // (freeing its context, which leaves the waitlist) on a closed one.
    unsafe { (*raw).read_event_handler = Some(ngx::ffi::ngx_http_test_reading) };
}

/// Runs the phases of `r`, parked with `NGX_AGAIN`, again: its connection's
/// write event is posted (nginx runs it after the current handler).
pub fn resume(r: &mut Request) {
    let raw: *mut ngx_http_request_t = r.into();
    // SAFETY: the connection of a live request is live; for a request
    // parked in the access phase, its write event handler runs the phases.
    // Reading goes back to what nginx has while it runs them.
    unsafe {
        (*raw).read_event_handler = Some(ngx::ffi::ngx_http_block_reading);
        ngx::ffi::ngx_post_event(
            (*r.connection()).write,
            core::ptr::addr_of_mut!(ngx::ffi::ngx_posted_events),
        );
    }
}
