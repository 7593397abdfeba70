//! The one door into a request's module state ([`ReqCtx`], in
//! [`crate::state`]). The state lives in the request pool behind a
//! `RefCell`: a handler borrows it for as long as it works on it, and a
//! second borrow while the first is alive (a variable of this module
//! evaluated in the middle of the state machine, say) finds `None` instead
//! of aliasing the first. Nothing else in the module reads the context slot.
//!
//! [`with_viewer`] lends the state machine the request and its viewer
//! state together, both `&mut`: the state is not part of the request
//! structure (it is in the pool), and the `RefCell` keeps the request from
//! reaching it a second time meanwhile. Code that changes the request goes
//! through `&mut Request`: nginx's structures hold no `UnsafeCell`, so a
//! write through a shared reference is one the compiler may drop.

use core::ffi::c_void;
use std::cell::{RefCell, RefMut};

use ngx::ffi::ngx_http_request_t;
use ngx::http::{HttpModule, Request};

use crate::state::{ReqCtx, Viewer};
use crate::EdgeRouter;

/// A request's state as the pool holds it.
pub type Slot = RefCell<ReqCtx>;

fn slot(r: &Request) -> *mut *mut c_void {
    let raw: *const ngx_http_request_t = r.into();
    // SAFETY: `r` is a live request; our ctx_index is valid.
    unsafe { crate::ffi::ctx_slot(raw.cast_mut(), EdgeRouter::module().ctx_index) }
}

fn cell(r: &Request) -> Option<&Slot> {
    // SAFETY: the slot is null or points at a `Slot` in the request pool
    // (only `set`, `attach` write it), which outlives every borrow of the
    // request a handler holds.
    unsafe { (*slot(r)).cast::<Slot>().as_ref() }
}

/// Whether the module gave `r` a context.
pub fn has(r: &Request) -> bool {
    cell(r).is_some()
}

/// The state of `r`, borrowed; `None` if it has none or it is borrowed.
pub fn get(r: &Request) -> Option<RefMut<'_, ReqCtx>> {
    cell(r)?.try_borrow_mut().ok()
}

/// Runs `f` with main request `r` and its viewer state, borrowed; `None`
/// if `r` has none or it is borrowed. `f` must not free the request (no
/// module code does: nginx frees requests after their handlers return).
pub fn with_viewer<T>(
    r: &mut Request,
    f: impl FnOnce(&mut Request, &mut Viewer) -> T,
) -> Option<T> {
    let p: *const Slot = {
        let shared: &Request = r;
        // SAFETY: see `cell`: null or a `Slot` in the request pool.
        unsafe { (*slot(shared)).cast::<Slot>().cast_const() }
    };
    // SAFETY: the `Slot` lives until the request's pool goes, after every
    // handler has returned (see above); it does not overlap the request
    // structure lent to `f` alongside it.
    let cell = unsafe { p.as_ref() }?;
    let mut state = cell.try_borrow_mut().ok()?;
    match &mut *state {
        ReqCtx::Viewer(v) => Some(f(r, v)),
        ReqCtx::Lookup(_) | ReqCtx::Probe(_) | ReqCtx::Report => None,
    }
}

/// [`with_viewer`] for the access phase: on the request's first visit
/// `init` makes its viewer state (or answers for it with `Err`). `None`:
/// out of memory, or the state is borrowed.
pub fn enter<T>(
    r: &mut Request,
    init: impl FnOnce(&mut Request) -> Result<Viewer, T>,
    f: impl FnOnce(&mut Request, &mut Viewer) -> T,
) -> Option<T> {
    if !has(r) {
        match init(r) {
            Ok(v) => {
                if !set(r, ReqCtx::Viewer(v)) {
                    return None;
                }
            }
            Err(answer) => return Some(answer),
        }
    }
    with_viewer(r, f)
}

/// The viewer state of main request `r` (see [`get`]).
pub fn viewer(r: &Request) -> Option<RefMut<'_, Viewer>> {
    RefMut::filter_map(get(r)?, |c| match c {
        ReqCtx::Viewer(v) => Some(v),
        ReqCtx::Lookup(_) | ReqCtx::Probe(_) | ReqCtx::Report => None,
    })
    .ok()
}

/// The viewer state of the main request of `r` (for variables, the
/// upstream and subrequests' handlers, which may run in subrequests).
pub fn main_viewer(r: &Request) -> Option<RefMut<'_, Viewer>> {
    // SAFETY: `main` of a live request is live at least as long as `r`
    // (subrequests end before their main request); only a shared view of
    // it is made here.
    let main: &Request = unsafe { Request::from_ngx_http_request(r.as_ref().main) };
    viewer(main)
}

/// Allocates `value` in `r`'s pool (dropped with it); null if out of memory.
pub fn alloc(r: &Request, value: ReqCtx) -> *mut Slot {
    r.pool().allocate(RefCell::new(value))
}

/// Makes `state` (from [`alloc`], in the pool of `r`'s main request) the
/// context of `r`.
pub fn attach(r: &Request, state: *mut Slot) {
    // SAFETY: see `cell`; `state` lives in the pool `r` shares.
    unsafe { *slot(r) = state.cast() };
}

/// Makes `value` the context of `r`; false if out of memory.
pub fn set(r: &Request, value: ReqCtx) -> bool {
    let p = alloc(r, value);
    if p.is_null() {
        return false;
    }
    attach(r, p);
    true
}

/// The state a subrequest's handler was given as `data` (see
/// [`crate::subrequest`]), borrowed.
///
/// # Safety
/// `data` must be null or a pointer [`alloc`] returned, whose pool is live
/// for `'a`.
pub unsafe fn from_data<'a>(data: *mut c_void) -> Option<RefMut<'a, ReqCtx>> {
    // SAFETY: per the contract.
    let cell = unsafe { data.cast::<Slot>().as_ref() }?;
    cell.try_borrow_mut().ok()
}
