//! `$edge_router_origin` (the viewer's origin, `ip:port`),
//! `$edge_router_cache` (`HIT`, `MISS`, `STALE`, `UPDATING`) and
//! `$edge_router_session` (the origin's registration time: part of cache
//! keys, so that a new publish session never gets an older one's objects),
//! `$edge_router_collapse_key` and `$edge_router_viewer_report` (the body
//! of the viewer report to the API, see [`crate::audience`]).

use ngx::core::Status;
use ngx::ffi::{
    ngx_conf_t, ngx_http_add_variable, ngx_http_request_t, ngx_http_variable_value_t, ngx_int_t,
    ngx_str_t, ngx_uint_t, NGX_ERROR, NGX_HTTP_VAR_NOCACHEABLE, NGX_OK,
};
use ngx::http::{HttpModuleLocationConf, Request};
use ngx::{http_variable_get, ngx_string};

use crate::ctx;
use crate::ffi::guard;
use crate::state::Viewer;
use crate::EdgeRouter;

type Getter = unsafe extern "C" fn(
    *mut ngx_http_request_t,
    *mut ngx_http_variable_value_t,
    usize,
) -> ngx_int_t;

/// Adds the module's variables (preconfiguration).
///
/// # Safety
/// `cf` must be the configuration being parsed.
pub unsafe fn register(cf: *mut ngx_conf_t) -> ngx_int_t {
    if !check_layout() {
        // SAFETY: per the contract, `cf` is the configuration being parsed.
        let log = unsafe { (*cf).log };
        ngx::ngx_log_error!(
            ngx::ffi::NGX_LOG_EMERG,
            log,
            "edge_router: unexpected bit-field layout of ngx_variable_value_t"
        );
        return NGX_ERROR as ngx_int_t;
    }
    let vars: [(ngx_str_t, Getter, u32); 6] = [
        (
            ngx_string!("edge_router_origin"),
            get_origin,
            NGX_HTTP_VAR_NOCACHEABLE,
        ),
        (
            ngx_string!("edge_router_cache"),
            get_cache,
            NGX_HTTP_VAR_NOCACHEABLE,
        ),
        (
            ngx_string!("edge_router_session"),
            get_session,
            NGX_HTTP_VAR_NOCACHEABLE,
        ),
        (
            ngx_string!("edge_router_collapse_key"),
            get_collapse_key,
            NGX_HTTP_VAR_NOCACHEABLE,
        ),
        (
            ngx_string!("edge_router_viewer_report"),
            get_viewer_report,
            NGX_HTTP_VAR_NOCACHEABLE,
        ),
        // Set by `playback::take_prefix` before any location is chosen, and
        // kept (cacheable: a complex value's flush would forget it).
        (ngx_string!("edge_router_token"), get_no_token, 0),
    ];
    for (mut name, get, flags) in vars {
        // SAFETY: per the contract, `cf` is the configuration being parsed.
        let v = unsafe { ngx_http_add_variable(cf, &mut name, flags as ngx_uint_t) };
        // SAFETY: nginx returned a valid variable or null.
        let Some(v) = (unsafe { v.as_mut() }) else {
            return NGX_ERROR as ngx_int_t;
        };
        v.get_handler = Some(get);
    }
    NGX_OK as ngx_int_t
}

/// The bit-fields of an `ngx_variable_value_t` (`len:28, valid:1,
/// no_cacheable:1, not_found:1, escape:1`) written in one store. bindgen's
/// setters move one bit at a time (`set_len` is a 28-step loop): with three
/// variables in every playlist's cache key, collapse key and log line they
/// were 2.6 % of an edge worker's time (BENCHMARKS.md, "The edge as `make
/// up` renders it"). C compilers on the targets nginx supports allocate these fields
/// from the lowest bit of a little-endian word; [`check_layout`] verifies it
/// against bindgen's getters when the configuration loads.
fn bits(len: usize, valid: bool, not_found: bool) -> ngx::ffi::__BindgenBitfieldUnit<[u8; 4]> {
    bits_cacheable(len, valid, not_found, false)
}

fn bits_cacheable(
    len: usize,
    valid: bool,
    not_found: bool,
    cacheable: bool,
) -> ngx::ffi::__BindgenBitfieldUnit<[u8; 4]> {
    const LEN_MASK: u32 = (1 << 28) - 1;
    // `set` refuses longer values (nginx's `len` has 28 bits)
    let word = (len as u32 & LEN_MASK)
        | u32::from(valid) << 28
        | u32::from(!cacheable) << 29 // no_cacheable
        | u32::from(not_found) << 30;
    ngx::ffi::__BindgenBitfieldUnit::new(word.to_le_bytes())
}

/// Sets `v`, a cacheable variable's value, to `bytes` (which outlive the
/// request).
pub fn set_kept(v: *mut ngx_http_variable_value_t, bytes: &[u8]) -> Status {
    // SAFETY: the caller passes a valid variable value to fill.
    let Some(v) = (unsafe { v.as_mut() }) else {
        return Status::NGX_ERROR;
    };
    if bytes.len() >= 1 << 28 {
        return Status::NGX_ERROR;
    }
    v._bitfield_1 = bits_cacheable(bytes.len(), true, false, true);
    v.data = bytes.as_ptr().cast_mut();
    Status::NGX_OK
}

/// Sets `v` to `bytes` (which outlive the request) or to "not found".
fn set(v: *mut ngx_http_variable_value_t, bytes: Option<&[u8]>) -> Status {
    // SAFETY: nginx passes a valid variable value to fill.
    let Some(v) = (unsafe { v.as_mut() }) else {
        return Status::NGX_ERROR;
    };
    match bytes {
        Some(b) if b.len() >= 1 << 28 => return Status::NGX_ERROR,
        Some(b) => {
            v._bitfield_1 = bits(b.len(), true, false);
            v.data = b.as_ptr().cast_mut();
        }
        None => v._bitfield_1 = bits(0, false, true),
    }
    Status::NGX_OK
}

/// False if [`bits`] does not write what bindgen's getters read (another
/// bit-field layout): the module then refuses to load rather than hand
/// nginx garbled values.
pub fn check_layout() -> bool {
    // SAFETY: a plain C struct: all zeroes is a valid value.
    let mut v: ngx_http_variable_value_t = unsafe { core::mem::zeroed() };
    [
        (0x0abc_def1usize, true, false),
        (5, true, false),
        (0, false, true),
    ]
    .into_iter()
    .all(|(len, valid, not_found)| {
        v._bitfield_1 = bits_cacheable(len, valid, not_found, true);
        if v.no_cacheable() != 0 || v.len() as usize != len {
            return false;
        }
        v._bitfield_1 = bits(len, valid, not_found);
        v.len() as usize == len
            && (v.valid() == 1) == valid
            && v.no_cacheable() == 1
            && (v.not_found() == 1) == not_found
            && v.escape() == 0
    })
}

fn variable(
    r: &mut Request,
    v: *mut ngx_http_variable_value_t,
    pick: fn(&Viewer) -> Option<&[u8]>,
) -> Status {
    guard(Status::NGX_ERROR, || {
        // The bytes live in the request's context (or are static), which
        // stays where it is until the request's pool goes. While the state
        // machine has the context borrowed, the value is "not found".
        let viewer = ctx::main_viewer(r);
        set(v, viewer.as_deref().and_then(pick))
    })
}

http_variable_get!(get_origin, |r: &mut Request, v, _| variable(
    r,
    v,
    Viewer::origin
));
http_variable_get!(get_cache, |r: &mut Request, v, _| variable(r, v, |c| c
    .cache_status
    .map(|s| s.as_str().as_bytes())));
http_variable_get!(get_session, |r: &mut Request, v, _| variable(r, v, |c| {
    Some(c.session()).filter(|s| !s.is_empty())
}));

/// `$edge_router_collapse_key`: the `edge_router_collapse` key of this
/// request, as the gate evaluated it, or evaluated now where the gate did
/// not (a subrequest, a location without collapsing: "not found").
fn collapse_key(r: &mut Request, v: *mut ngx_http_variable_value_t) -> Status {
    guard(Status::NGX_ERROR, || {
        if let Some(k) = ctx::viewer(r).and_then(|c| c.collapse_key) {
            // the bytes live in the request's pool
            return set(v, Some(&k));
        }
        let Some(lcf) = EdgeRouter::location_conf(r.as_ref()) else {
            return set(v, None);
        };
        if lcf.collapse.is_null() {
            return set(v, None);
        }
        // SAFETY: a non-null complex value compiled at configuration time.
        let cv = unsafe { &*lcf.collapse };
        match r.get_complex_value(cv) {
            // evaluated into the request's pool
            Some(k) => set(v, Some(k.as_bytes())),
            None => Status::NGX_ERROR,
        }
    })
}

http_variable_get!(get_collapse_key, |r: &mut Request, v, _| collapse_key(r, v));

/// `$edge_router_viewer_report`: rendered now, into the request's pool.
fn viewer_report(r: &mut Request, v: *mut ngx_http_variable_value_t) -> Status {
    guard(Status::NGX_ERROR, || {
        let body = crate::audience::report_body(r);
        let p = r.pool().alloc(body.len().max(1)).cast::<u8>();
        if p.is_null() {
            return Status::NGX_ERROR;
        }
        // SAFETY: `p` has room for `body.len()` bytes, from the request's
        // pool, which outlives the variable's use.
        let bytes = unsafe {
            core::ptr::copy_nonoverlapping(body.as_ptr(), p, body.len());
            core::slice::from_raw_parts(p, body.len())
        };
        set(v, Some(bytes))
    })
}

http_variable_get!(get_viewer_report, |r: &mut Request, v, _| viewer_report(
    r, v
));

// `$edge_router_token` of a request whose path had no token: empty.
http_variable_get!(get_no_token, |_r: &mut Request, v, _| guard(
    Status::NGX_ERROR,
    || set_kept(v, b"")
));
