//! `$edge_router_origin` (the viewer's origin, `ip:port`),
//! `$edge_router_cache` (`HIT`, `MISS`, `STALE`, `UPDATING`) and
//! `$edge_router_session` (the origin's registration time: part of cache
//! keys, so that a new publish session never gets an older one's objects).

use ngx::core::Status;
use ngx::ffi::{
    ngx_conf_t, ngx_http_add_variable, ngx_http_request_t, ngx_http_variable_value_t, ngx_int_t,
    ngx_str_t, ngx_uint_t, NGX_ERROR, NGX_HTTP_VAR_NOCACHEABLE, NGX_OK,
};
use ngx::http::Request;
use ngx::{http_variable_get, ngx_string};

use crate::ctx::{self, Viewer};
use crate::ffi::guard;

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
    let vars: [(ngx_str_t, Getter); 3] = [
        (ngx_string!("edge_router_origin"), get_origin),
        (ngx_string!("edge_router_cache"), get_cache),
        (ngx_string!("edge_router_session"), get_session),
    ];
    for (mut name, get) in vars {
        // SAFETY: per the contract, `cf` is the configuration being parsed.
        let v =
            unsafe { ngx_http_add_variable(cf, &mut name, NGX_HTTP_VAR_NOCACHEABLE as ngx_uint_t) };
        // SAFETY: nginx returned a valid variable or null.
        let Some(v) = (unsafe { v.as_mut() }) else {
            return NGX_ERROR as ngx_int_t;
        };
        v.get_handler = Some(get);
    }
    NGX_OK as ngx_int_t
}

/// Sets `v` to `bytes` (which outlive the request) or to "not found".
fn set(v: *mut ngx_http_variable_value_t, bytes: Option<&[u8]>) -> Status {
    // SAFETY: nginx passes a valid variable value to fill.
    let Some(v) = (unsafe { v.as_mut() }) else {
        return Status::NGX_ERROR;
    };
    match bytes {
        Some(b) => {
            v.set_len(b.len() as _);
            v.data = b.as_ptr().cast_mut();
            v.set_valid(1);
            v.set_no_cacheable(1);
            v.set_not_found(0);
        }
        None => v.set_not_found(1),
    }
    Status::NGX_OK
}

fn variable(
    r: &mut Request,
    v: *mut ngx_http_variable_value_t,
    pick: fn(&Viewer) -> Option<&[u8]>,
) -> Status {
    guard(Status::NGX_ERROR, || {
        // The bytes live in the request's context (or are static).
        set(v, ctx::main_viewer(r).and_then(|c| pick(c)))
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
