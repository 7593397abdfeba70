//! Thin shims between nginx and the module's Rust code that the `ngx` crate
//! does not provide: the panic guard of every `extern "C"` entry point, the
//! registration of a phase handler, nginx's cached clock, and the raw slot
//! of a module context.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ngx::ffi::{
    ngx_conf_t, ngx_http_handler_pt, ngx_http_phases, ngx_http_request_t, ngx_int_t, NGX_ERROR,
    NGX_OK,
};
use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule};

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
    // SAFETY: per the contract, `cf` is valid during postconfiguration.
    let Some(cmcf) = NgxHttpCoreModule::main_conf_mut(unsafe { &*cf }) else {
        return NGX_ERROR as ngx_int_t;
    };
    // SAFETY: the phase arrays hold `ngx_http_handler_pt` elements.
    let slot = unsafe { ngx::ffi::ngx_array_push(&mut cmcf.phases[phase as usize].handlers) }
        .cast::<ngx_http_handler_pt>();
    if slot.is_null() {
        return NGX_ERROR as ngx_int_t;
    }
    // SAFETY: `slot` is a fresh element of that array.
    unsafe { *slot = Some(h) };
    NGX_OK as ngx_int_t
}

/// nginx's cached millisecond clock (monotonic, shared by all workers).
pub fn now_ms() -> u64 {
    // SAFETY: a plain integer updated by this process's event loop.
    unsafe { ngx::ffi::ngx_current_msec as u64 }
}

/// The raw module-context slot `index` of request `r`.
///
/// # Safety
/// `r` must be a live request and `index` a module's `ctx_index`.
pub unsafe fn ctx_slot(r: *mut ngx_http_request_t, index: usize) -> *mut *mut core::ffi::c_void {
    // SAFETY: `r->ctx` has one slot per HTTP module.
    unsafe { (*r).ctx.add(index) }
}
