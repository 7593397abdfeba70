//! `$edge_router_origin` (the viewer's origin, `ip:port`) and
//! `$edge_router_cache` (`HIT`, `MISS`, `STALE`, `UPDATING`).

use ngx::ffi::{
    ngx_conf_t, ngx_http_add_variable, ngx_http_request_t, ngx_http_variable_value_t, ngx_int_t,
    ngx_str_t, ngx_uint_t, NGX_ERROR, NGX_HTTP_VAR_NOCACHEABLE, NGX_OK,
};
use ngx::ngx_string;

use crate::ffi::{guard, request_ctx};
use crate::lookup::Ctx;

type Getter = unsafe extern "C" fn(
    *mut ngx_http_request_t,
    *mut ngx_http_variable_value_t,
    usize,
) -> ngx_int_t;

/// Adds the module's variables (preconfiguration).
pub fn register(cf: *mut ngx_conf_t) -> ngx_int_t {
    let vars: [(ngx_str_t, Getter); 2] = [
        (ngx_string!("edge_router_origin"), get_origin),
        (ngx_string!("edge_router_cache"), get_cache),
    ];
    for (mut name, get) in vars {
        // SAFETY: `cf` is the configuration being parsed.
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

/// Sets `v` to `bytes` (which must outlive the request) or to "not found".
unsafe fn set(v: *mut ngx_http_variable_value_t, bytes: Option<&[u8]>) -> ngx_int_t {
    // SAFETY: nginx passes a valid variable value to fill.
    let v = unsafe { &mut *v };
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
    NGX_OK as ngx_int_t
}

unsafe fn ctx_of<'a>(r: *mut ngx_http_request_t) -> Option<&'a Ctx> {
    // SAFETY: `r` is live; the context is ours or null.
    unsafe { request_ctx::<Ctx>((*r).main).as_ref() }
}

unsafe extern "C" fn get_origin(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: the origin bytes live in the request's context.
        unsafe { set(v, ctx_of(r).and_then(Ctx::origin)) }
    })
}

unsafe extern "C" fn get_cache(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: the status strings are static.
        unsafe {
            set(
                v,
                ctx_of(r)
                    .and_then(|c| c.cache_status)
                    .map(|s| s.as_str().as_bytes()),
            )
        }
    })
}
