//! Thin unsafe shims between nginx's C structures and the module's Rust code.

use core::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ngx::ffi::{
    ngx_conf_t, ngx_http_core_main_conf_t, ngx_http_handler_pt, ngx_http_phases,
    ngx_http_request_t, ngx_int_t, ngx_str_t, NGX_ERROR,
};
use ngx::http::{HttpModule, HttpModuleMainConf, NgxHttpCoreModule};

use crate::EdgeRouter;

/// Runs `f`, turning a panic into `on_panic`: no panic may unwind into nginx.
/// The panic message itself goes to stderr (nginx's error log) via the
/// default hook.
pub fn guard<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// Appends `h` to the handlers of phase `phase`.
///
/// # Safety
/// `cf` must be the configuration being parsed, in postconfiguration.
pub unsafe fn add_phase_handler(
    cf: *mut ngx_conf_t,
    phase: ngx_http_phases,
    h: unsafe extern "C" fn(*mut ngx_http_request_t) -> ngx_int_t,
) -> ngx_int_t {
    // SAFETY: the core module's main configuration exists during
    // postconfiguration and its phase arrays hold `ngx_http_handler_pt`.
    unsafe {
        let Some(cmcf) = NgxHttpCoreModule::main_conf_mut(&*cf) else {
            return NGX_ERROR as ngx_int_t;
        };
        let cmcf: &mut ngx_http_core_main_conf_t = cmcf;
        let slot = ngx::ffi::ngx_array_push(&mut cmcf.phases[phase as usize].handlers)
            .cast::<ngx_http_handler_pt>();
        if slot.is_null() {
            return NGX_ERROR as ngx_int_t;
        }
        *slot = Some(h);
    }
    ngx::ffi::NGX_OK as ngx_int_t
}

/// The module's per-request context, if set.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn request_ctx<T>(r: *mut ngx_http_request_t) -> *mut T {
    let idx = EdgeRouter::module().ctx_index;
    // SAFETY: `r->ctx` has one slot per HTTP module.
    unsafe { (*(*r).ctx.add(idx)).cast() }
}

/// Sets the module's per-request context.
///
/// # Safety
/// `r` must be a live request; `ctx` must live as long as it.
pub unsafe fn set_request_ctx<T>(r: *mut ngx_http_request_t, ctx: *mut T) {
    let idx = EdgeRouter::module().ctx_index;
    // SAFETY: as in `request_ctx`.
    unsafe { *(*r).ctx.add(idx) = ctx.cast::<c_void>() };
}

/// The module's location configuration of request `r`.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn loc_conf<'a>(r: *mut ngx_http_request_t) -> &'a crate::conf::LocConf {
    let idx = EdgeRouter::module().ctx_index;
    // SAFETY: every location has our (merged) configuration at our index.
    unsafe { &*(*(*r).loc_conf.add(idx)).cast::<crate::conf::LocConf>() }
}

/// The module's main configuration of request `r`.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn main_conf<'a>(r: *mut ngx_http_request_t) -> &'a crate::conf::MainConf {
    let idx = EdgeRouter::module().ctx_index;
    // SAFETY: the http block has our main configuration at our index.
    unsafe { &*(*(*r).main_conf.add(idx)).cast::<crate::conf::MainConf>() }
}

/// Bytes of an `ngx_str_t` (empty for a null pointer).
///
/// # Safety
/// `s` must describe `len` readable bytes that outlive the returned slice.
pub unsafe fn str_bytes<'a>(s: &ngx_str_t) -> &'a [u8] {
    if s.data.is_null() || s.len == 0 {
        &[]
    } else {
        // SAFETY: per the function contract.
        unsafe { core::slice::from_raw_parts(s.data, s.len) }
    }
}

/// Copies `bytes` into the request pool as an `ngx_str_t`.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn pool_str(r: *mut ngx_http_request_t, bytes: &[u8]) -> Option<ngx_str_t> {
    // SAFETY: the pool belongs to the live request.
    let p = unsafe { ngx::ffi::ngx_pnalloc((*r).pool, bytes.len().max(1)) }.cast::<u8>();
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` has room for `bytes.len()` bytes.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
    Some(ngx_str_t {
        len: bytes.len(),
        data: p,
    })
}

/// nginx's cached millisecond clock (monotonic, shared by all workers).
pub fn now_ms() -> u64 {
    // SAFETY: a plain integer updated by the event loop of this process.
    unsafe { ngx::ffi::ngx_current_msec as u64 }
}
