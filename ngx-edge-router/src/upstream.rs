//! `edge_router_upstream`: the peer selector of an `upstream {}` block. The
//! peers of each request are the origins its route lists, in the viewer's
//! rendezvous order: the first is the sticky choice, the others are tried
//! only when it fails (`proxy_next_upstream`). Connections stay reusable by
//! the `keepalive` directive, which wraps this selector.

use core::ffi::c_void;

use ngx::ffi::{
    ngx_conf_t, ngx_http_request_t, ngx_http_upstream_srv_conf_t, ngx_int_t, ngx_peer_connection_t,
    ngx_uint_t, sockaddr, NGX_BUSY, NGX_ERROR, NGX_LOG_ERR, NGX_LOG_WARN, NGX_OK,
};
use ngx::{ngx_conf_log_error, ngx_log_error};

use crate::ffi::{guard, request_ctx};
use crate::lookup::Ctx;

/// `peer.init_upstream`: called once per upstream block at configuration.
pub unsafe extern "C" fn init_upstream(
    cf: *mut ngx_conf_t,
    us: *mut ngx_http_upstream_srv_conf_t,
) -> ngx_int_t {
    guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx passes the upstream block being initialized.
        let us = unsafe { &mut *us };
        // SAFETY: `servers` is null or an array owned by the block.
        if unsafe { us.servers.as_ref() }.is_some_and(|a| a.nelts > 1) {
            ngx_conf_log_error!(
                NGX_LOG_WARN,
                cf,
                "\"server\" directives are ignored in an upstream with \"edge_router_upstream\""
            );
        }
        us.peer.init = Some(init_peer);
        NGX_OK as ngx_int_t
    })
}

#[derive(Clone, Copy)]
struct PeerData {
    ctx: *mut Ctx,
    next: usize,
}

/// `peer.init`: per request, before the first connection attempt.
unsafe extern "C" fn init_peer(
    r: *mut ngx_http_request_t,
    _us: *mut ngx_http_upstream_srv_conf_t,
) -> ngx_int_t {
    guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx passes the live request being proxied.
        unsafe {
            let mut ctx = request_ctx::<Ctx>(r);
            if ctx.is_null() {
                ctx = request_ctx::<Ctx>((*r).main);
            }
            let peers = ctx.as_ref().map_or(0, |c| c.peers.len());
            if peers == 0 {
                ngx_log_error!(
                    NGX_LOG_ERR,
                    (*(*r).connection).log,
                    "edge_router_upstream: request has no route; \"edge_router\" must be set in the proxying location"
                );
                return NGX_ERROR as ngx_int_t;
            }
            let pool = ngx::core::Pool::from_ngx_pool((*r).pool);
            let pd = pool.alloc_type::<PeerData>();
            if pd.is_null() {
                return NGX_ERROR as ngx_int_t;
            }
            pd.write(PeerData { ctx, next: 0 });
            let u = &mut *(*r).upstream;
            u.peer.data = pd.cast::<c_void>();
            u.peer.get = Some(get_peer);
            u.peer.free = Some(free_peer);
            u.peer.tries = peers as ngx_uint_t;
            NGX_OK as ngx_int_t
        }
    })
}

unsafe extern "C" fn get_peer(pc: *mut ngx_peer_connection_t, data: *mut c_void) -> ngx_int_t {
    guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: `data` is the PeerData set in init_peer; its Ctx lives in
        // the same request pool.
        unsafe {
            let pd = &*data.cast::<PeerData>();
            let ctx = &*pd.ctx;
            let Some(peer) = ctx.peers.get(pd.next) else {
                return NGX_BUSY as ngx_int_t;
            };
            let pc = &mut *pc;
            pc.sockaddr = peer.addr.as_ptr().cast::<sockaddr>().cast_mut();
            pc.socklen = peer.addr.len();
            pc.name = (&peer.name_str as *const ngx::ffi::ngx_str_t).cast_mut();
            pc.connection = core::ptr::null_mut();
            pc.set_cached(0);
            NGX_OK as ngx_int_t
        }
    })
}

unsafe extern "C" fn free_peer(
    pc: *mut ngx_peer_connection_t,
    data: *mut c_void,
    _state: ngx_uint_t,
) {
    guard((), || {
        // SAFETY: as in get_peer.
        unsafe {
            let pd = &mut *data.cast::<PeerData>();
            pd.next += 1;
            let pc = &mut *pc;
            if pc.tries > 0 {
                pc.tries -= 1;
            }
        }
    })
}
