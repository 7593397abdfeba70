//! Requests of this worker waiting for another request's work, by key: the
//! mechanics shared by lookup coalescing ([`crate::coalesce`]) and playlist
//! collapsing ([`crate::collapse`]). A waiting request returned `NGX_AGAIN`
//! from the access phase; [`resume`] runs its phases again.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use foldhash::fast::RandomState;
use ngx::ffi::ngx_http_request_t;
use ngx::http::Request;

/// Keys with work in flight → the requests waiting for it. A key is stored
/// once and shared (`Rc`) with the requests that lead or wait for it: one
/// allocation per leading request, none per waiter. Keys hold URIs viewers
/// choose: the hash is seeded per process (foldhash's `RandomState`).
#[derive(Default)]
pub struct Waitlist(RefCell<HashMap<Rc<[u8]>, Waiters, RandomState>>);

type Waiters = Vec<*mut ngx_http_request_t>;

impl Waitlist {
    /// Registers work in flight for `key` (nobody waits yet); the stored key.
    pub fn lead(&self, key: &[u8]) -> Rc<[u8]> {
        let key: Rc<[u8]> = key.into();
        self.0.borrow_mut().insert(Rc::clone(&key), Vec::new());
        key
    }

    /// Adds `r` to the waiters of `key`; the stored key, or `None` if no
    /// work is in flight.
    pub fn join(&self, key: &[u8], r: *mut ngx_http_request_t) -> Option<Rc<[u8]>> {
        let mut map = self.0.borrow_mut();
        let stored = Rc::clone(map.get_key_value(key)?.0);
        map.get_mut(key)?.push(r);
        Some(stored)
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
