//! `edge_router_upstream`: the peer selector of an `upstream {}` block. The
//! peers of each request are the origins its route lists, in the viewer's
//! order: the sticky rendezvous choice first, origins that failed recently
//! last; the others are tried only when one fails (`proxy_next_upstream`).
//! Each attempt's result goes to the zone's failure memory, so that all
//! workers skip a dead, hung or black-holed origin for
//! `edge_router_fail_timeout`. Connections stay reusable through the
//! `keepalive` directive, which wraps this selector.

use core::ffi::c_void;

use ngx::ffi::{
    ngx_conf_t, ngx_http_request_t, ngx_http_upstream_srv_conf_t, ngx_int_t, ngx_peer_connection_t,
    ngx_uint_t, sockaddr, NGX_BUSY, NGX_ERROR, NGX_LOG_ERR, NGX_LOG_WARN, NGX_OK, NGX_PEER_FAILED,
};
use ngx::http::Request;
use ngx::{ngx_conf_log_error, ngx_log_error};

use edge_router_policy::FailPolicy;

use crate::ctx;
use crate::ffi::{guard, now_ms};
use crate::state::{Peer, ReqCtx};
use crate::zone::Zone;

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

/// Per-request selector state.
struct PeerData {
    /// The candidates, in order (the viewer's route, or a probe's origin),
    /// in the request pool.
    peers: *const [Peer],
    /// Where attempts are recorded (not for probes).
    zone: Option<Zone>,
    policy: FailPolicy,
    log: *mut ngx::ffi::ngx_log_t,
    next: usize,
}

/// `peer.init`: per request, before the first connection attempt.
unsafe extern "C" fn init_peer(
    r: *mut ngx_http_request_t,
    _us: *mut ngx_http_upstream_srv_conf_t,
) -> ngx_int_t {
    guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx passes the live request being proxied.
        let req = unsafe { Request::from_ngx_http_request(r) };
        let log = req.log();
        // The peers stay where they are, unchanged, until the request's
        // pool goes: a routed viewer's (and a probe's) are never changed
        // again, and nginx selects peers outside the module's handlers.
        let probe = ctx::get(req).and_then(|s| match &*s {
            ReqCtx::Probe(p) => Some(&p.peers[..] as *const [Peer]),
            ReqCtx::Viewer(_) | ReqCtx::Lookup(_) | ReqCtx::Report => None,
        });
        let data = match probe {
            Some(peers) => Some((
                peers,
                None,
                FailPolicy {
                    max_fails: 0,
                    fail_timeout_ms: 0,
                },
            )),
            None => ctx::main_viewer(req)
                .filter(|v| !v.peers.is_empty())
                .map(|v| (&v.peers[..] as *const [Peer], v.zone, v.fail_policy)),
        };
        let Some((peers, zone, policy)) = data else {
            ngx_log_error!(
                NGX_LOG_ERR,
                log,
                "edge_router_upstream: request has no route; \"edge_router\" must be set in the proxying location"
            );
            return NGX_ERROR as ngx_int_t;
        };
        let tries = peers.len();
        let pd = req.pool().allocate(PeerData {
            peers,
            zone,
            policy,
            log,
            next: 0,
        });
        let Some(upstream) = req.upstream() else {
            return NGX_ERROR as ngx_int_t;
        };
        if pd.is_null() {
            return NGX_ERROR as ngx_int_t;
        }
        // SAFETY: a proxied request has a live upstream.
        let u = unsafe { &mut *upstream };
        u.peer.data = pd.cast::<c_void>();
        u.peer.get = Some(get_peer);
        u.peer.free = Some(free_peer);
        u.peer.tries = tries as ngx_uint_t;
        NGX_OK as ngx_int_t
    })
}

unsafe extern "C" fn get_peer(pc: *mut ngx_peer_connection_t, data: *mut c_void) -> ngx_int_t {
    guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: `data` is the PeerData of `init_peer`; its viewer lives in
        // the same request pool; `pc` is the request's peer connection.
        let (pd, pc) = unsafe { (&*data.cast::<PeerData>(), &mut *pc) };
        // SAFETY: as above.
        let peers = unsafe { &*pd.peers };
        let Some(peer) = peers.get(pd.next) else {
            return NGX_BUSY as ngx_int_t;
        };
        pc.sockaddr = peer.addr.as_ptr().cast::<sockaddr>().cast_mut();
        pc.socklen = peer.addr.len();
        pc.name = (&peer.name_str as *const ngx::ffi::ngx_str_t).cast_mut();
        pc.connection = core::ptr::null_mut();
        pc.set_cached(0);
        NGX_OK as ngx_int_t
    })
}

unsafe extern "C" fn free_peer(
    pc: *mut ngx_peer_connection_t,
    data: *mut c_void,
    state: ngx_uint_t,
) {
    guard((), || {
        // SAFETY: as in `get_peer`.
        let (pd, pc) = unsafe { (&mut *data.cast::<PeerData>(), &mut *pc) };
        // SAFETY: as in `get_peer`.
        let peers = unsafe { &*pd.peers };
        if let (Some(peer), Some(zone)) = (peers.get(pd.next), pd.zone) {
            let failed = state & NGX_PEER_FAILED as ngx_uint_t != 0;
            if zone.record_attempt(peer.name(), failed, now_ms(), &pd.policy) {
                ngx_log_error!(
                    NGX_LOG_WARN,
                    pd.log,
                    "edge_router: origin {} failed; skipped for {} ms",
                    String::from_utf8_lossy(peer.name()),
                    pd.policy.fail_timeout_ms
                );
            }
        }
        pd.next += 1;
        if pc.tries > 0 {
            pc.tries -= 1;
        }
    })
}
