//! The module's in-memory subrequests (API lookups and origin probes):
//! creating them (the URI and the post-subrequest handler in the main
//! request's pool, a fake request body, the subrequest's own context) and
//! the post-subrequest handler, which hands each back to its owner through
//! [`Owner`]: this file does not know its callers.

use ngx::ffi::{
    ngx_http_post_subrequest_t, ngx_http_request_body_t, ngx_http_request_t, ngx_http_subrequest,
    ngx_int_t, ngx_str_t, NGX_HTTP_SUBREQUEST_BACKGROUND, NGX_HTTP_SUBREQUEST_IN_MEMORY,
    NGX_HTTP_SUBREQUEST_WAITED, NGX_OK,
};
use ngx::http::Request;

use crate::ctx;
use crate::ffi::guard;
use crate::state::ReqCtx;

/// What started a subrequest, told when it ends.
pub trait Owner {
    /// The subrequest `sr` ended with `rc`; `state` is the context it was
    /// spawned with.
    fn finished(sr: &Request, state: &mut ReqCtx, rc: ngx_int_t);
}

/// Starts an in-memory subrequest of main request `r` for `prefix` + `path`,
/// with `state` as its context; `O` is told when it ends. `background`: the
/// main request does not wait for it (`NGX_HTTP_SUBREQUEST_BACKGROUND`).
pub fn spawn<O: Owner>(
    r: &mut Request,
    prefix: &[u8],
    path: &[u8],
    state: ReqCtx,
    background: bool,
) -> Result<(), ()> {
    let prefix = prefix.strip_suffix(b"/").unwrap_or(prefix);
    let len = prefix.len() + path.len();
    let pool = r.pool();
    let uri_p = pool.alloc(len).cast::<u8>();
    let ps = pool.calloc_type::<ngx_http_post_subrequest_t>();
    let state = ctx::alloc(r, state);
    if uri_p.is_null() || ps.is_null() || state.is_null() {
        return Err(());
    }
    // SAFETY: `uri_p` has room for `len` bytes; `ps` is zeroed memory of the
    // right type; both from the request pool.
    let mut uri = unsafe {
        core::ptr::copy_nonoverlapping(prefix.as_ptr(), uri_p, prefix.len());
        core::ptr::copy_nonoverlapping(path.as_ptr(), uri_p.add(prefix.len()), path.len());
        (*ps).handler = Some(post_handler::<O>);
        (*ps).data = state.cast();
        ngx_str_t { len, data: uri_p }
    };
    let mut flags = NGX_HTTP_SUBREQUEST_IN_MEMORY | NGX_HTTP_SUBREQUEST_WAITED;
    if background {
        flags |= NGX_HTTP_SUBREQUEST_BACKGROUND;
    }
    let mut sr: *mut ngx_http_request_t = core::ptr::null_mut();
    let raw: *mut ngx_http_request_t = (&mut *r).into();
    // SAFETY: `raw` is the live main request; URI and handler live in its
    // pool.
    let rc = unsafe {
        ngx_http_subrequest(
            raw,
            &mut uri,
            core::ptr::null_mut(),
            &mut sr,
            ps,
            flags as _,
        )
    };
    if rc != NGX_OK as ngx_int_t || sr.is_null() {
        return Err(());
    }
    // SAFETY: nginx returned a live subrequest sharing the main request's
    // pool.
    let sr = unsafe { Request::from_ngx_http_request(sr) };
    // A fake body keeps the subrequest from reading the client's body.
    let body = pool.calloc_type::<ngx_http_request_body_t>();
    if body.is_null() {
        return Err(());
    }
    sr.as_mut().request_body = body;
    ctx::attach(sr, state);
    Ok(())
}

/// `post_subrequest` handler of the subrequests [`spawn`] made for `O`.
unsafe extern "C" fn post_handler<O: Owner>(
    sr: *mut ngx_http_request_t,
    data: *mut core::ffi::c_void,
    rc: ngx_int_t,
) -> ngx_int_t {
    guard(rc, || {
        // SAFETY: nginx passes the live, finishing subrequest.
        let sr: &Request = unsafe { Request::from_ngx_http_request(sr) };
        // The state comes from `data`, not from the subrequest's context
        // slot, which an internal redirect of the subrequest clears.
        // SAFETY: `data` is the state `spawn` allocated in the main
        // request's pool, which outlives the subrequest.
        if let Some(mut state) = unsafe { ctx::from_data(data) } {
            O::finished(sr, &mut state, rc);
        }
        rc
    })
}
