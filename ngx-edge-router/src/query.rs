//! `edge_router_query`: one canonical upstream request per object.
//!
//! Before anything is looked up, cached or collapsed, a viewer request's
//! query becomes the one its location allows ([`upstream_query`]): nothing
//! for segments and parts, the canonical LL-HLS delivery directives for
//! playlists, a 400 for any other spelling. nginx then builds the upstream
//! request line from the decoded, normalized URI (`$uri`) and that query,
//! never from the bytes the viewer sent, so `$uri?$args` in a cache or
//! collapse key names exactly what the origin is asked.

use edge_router_policy::{upstream_query, QueryRule};
use ngx::ffi::{ngx_int_t, NGX_HTTP_BAD_REQUEST, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_LOG_INFO};
use ngx::http::Request;
use ngx::ngx_log_error;

use crate::conf::LocConf;

/// Rewrites the request's query for upstream, or the status to answer.
pub fn canonicalize(r: &mut Request, lcf: &LocConf) -> Result<(), ngx_int_t> {
    let rule = lcf.query_rule();
    let args = r.as_ref().args.as_bytes();
    match upstream_query(rule, args) {
        Ok(q) => {
            if set_upstream_target(r, &q) {
                Ok(())
            } else {
                Err(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t)
            }
        }
        Err(why) => {
            ngx_log_error!(
                NGX_LOG_INFO,
                r.log(),
                "edge_router: refused query \"{}\": {why}",
                String::from_utf8_lossy(&args[..args.len().min(120)]).escape_default()
            );
            debug_assert!(rule == QueryRule::Delivery);
            Err(NGX_HTTP_BAD_REQUEST as ngx_int_t)
        }
    }
}

/// Makes `args` (copied into the request pool unless the query already is
/// exactly that) the request's query, and makes nginx's proxy build the
/// upstream request line from `$uri` (escaped) and these args instead of
/// the client's raw request line. False when the pool is out of memory.
fn set_upstream_target(r: &mut Request, args: &[u8]) -> bool {
    let current = r.as_ref().args;
    let data = if args.is_empty() {
        core::ptr::null_mut()
    } else if current.as_bytes() == args {
        // already canonical (what players send): it stays where nginx
        // parsed it, in the request's buffer
        current.data
    } else {
        let p = r.pool().alloc_unaligned(args.len()).cast::<u8>();
        if p.is_null() {
            return false;
        }
        // SAFETY: `p` is a fresh allocation of `args.len()` bytes.
        unsafe { core::ptr::copy_nonoverlapping(args.as_ptr(), p, args.len()) };
        p
    };
    let raw: *mut ngx::ffi::ngx_http_request_t = r.into();
    // SAFETY: a live main request in the access phase; the new query lives
    // in its pool. nginx reads `valid_unparsed_uri` when it creates the
    // upstream request (content phase): 0 makes it use `r->uri` and
    // `r->args`, and `quoted_uri` makes it escape the URI (as it does after
    // a rewrite).
    unsafe {
        (*raw).args = ngx::ffi::ngx_str_t {
            len: args.len(),
            data,
        };
        (*raw).set_valid_unparsed_uri(0);
        (*raw).set_quoted_uri(1);
    }
    true
}
