//! Origins by name: the host names of a route are turned into addresses by
//! nginx's own resolver (the `resolver` and `resolver_timeout` directives of
//! the location), the way `proxy_pass` with variables resolves, never
//! blocking the worker. nginx caches answers for their DNS TTL, or for the
//! `valid=` time of the `resolver` directive, which bounds it.
//!
//! A viewer whose route names a host it has no addresses for returns
//! `NGX_AGAIN` from the access phase; the resolver's handler stores the
//! addresses (or the error) in the viewer and, once every name is done,
//! posts the request's write event, which runs the access phase again. An
//! answer nginx already has in its cache arrives before `start` returns.
//! A request that goes away first cancels its lookups (`Viewer::drop`).

use core::ffi::{c_void, CStr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ngx::ffi::{
    ngx_http_request_t, ngx_resolve_name, ngx_resolve_name_done, ngx_resolve_start,
    ngx_resolver_addr_t, ngx_resolver_ctx_t, ngx_resolver_strerror, ngx_str_t, sockaddr_in,
    sockaddr_in6, AF_INET, AF_INET6, NGX_OK,
};
use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule, Request};

use crate::ctx::{State, Viewer};
use crate::ffi::guard;

/// `NGX_NO_RESOLVER` of `ngx_resolver.h`: no `resolver` is configured.
const NO_RESOLVER: *mut ngx_resolver_ctx_t = usize::MAX as *mut ngx_resolver_ctx_t;

/// One host name of a viewer's route and what became of it.
pub struct Resolution {
    pub host: String,
    pub port: u16,
    /// `None` while nginx's resolver works on it.
    pub result: Option<Result<Vec<SocketAddr>, String>>,
    /// The resolver's context while it works (null when done).
    ctx: *mut ngx_resolver_ctx_t,
}

impl Resolution {
    pub fn new(host: String, port: u16) -> Resolution {
        Resolution {
            host,
            port,
            result: None,
            ctx: core::ptr::null_mut(),
        }
    }

    /// Stops a lookup still in flight (its handler will not run).
    pub fn cancel(&mut self) {
        if !self.ctx.is_null() {
            // SAFETY: a context from `ngx_resolve_start` whose handler has
            // not run yet (the handler nulls `ctx`): still owned by us.
            unsafe { ngx_resolve_name_done(self.ctx) };
            self.ctx = core::ptr::null_mut();
        }
    }
}

/// What the resolver's handler needs, in the request pool: the name's bytes
/// (the resolver reads them until it is done) and where the answer goes.
struct Pending {
    viewer: *mut Viewer,
    r: *mut ngx_http_request_t,
    index: usize,
    host: Box<[u8]>,
}

/// Why names could not be looked up at all.
#[derive(Debug)]
pub enum StartError {
    /// No `resolver` directive applies to the location.
    NoResolver,
    /// nginx could not allocate a lookup.
    NoMemory,
}

/// Starts resolving the names in `v.resolving` that have no result yet.
/// Returns how many are still in flight when it returns (0: all answered
/// from nginx's cache, or failed at once).
///
/// `v` is `r`'s viewer context; no other reference to it may be held.
pub fn start(r: &mut Request, v: *mut Viewer) -> Result<usize, StartError> {
    let Some(clcf) = NgxHttpCoreModule::location_conf(r.as_ref()) else {
        return Err(StartError::NoResolver);
    };
    let (resolver, timeout) = (clcf.resolver, clcf.resolver_timeout);
    let raw: *mut ngx_http_request_t = (&mut *r).into();
    // SAFETY: per the contract, `v` is the live context of `r`, not borrowed.
    let count = unsafe { (*v).resolving.len() };
    for index in 0..count {
        let host = {
            // SAFETY: as above; the borrow ends before the resolver runs.
            let vr = unsafe { &mut *v };
            let res = &mut vr.resolving[index];
            if res.result.is_some() || !res.ctx.is_null() {
                continue;
            }
            res.host.as_bytes().into()
        };
        let pending = r.pool().allocate(Pending {
            viewer: v,
            r: raw,
            index,
            host,
        });
        if pending.is_null() {
            return Err(StartError::NoMemory);
        }
        // SAFETY: `resolver` is the location's resolver, live for the cycle.
        let ctx = unsafe { ngx_resolve_start(resolver, core::ptr::null_mut()) };
        if ctx == NO_RESOLVER {
            return Err(StartError::NoResolver);
        }
        if ctx.is_null() {
            return Err(StartError::NoMemory);
        }
        {
            // SAFETY: a fresh context; `pending` lives in the request pool,
            // and the request cancels the lookup before that pool goes away.
            let (c, p, vr) = unsafe { (&mut *ctx, &*pending, &mut *v) };
            c.name = ngx_str_t {
                len: p.host.len(),
                data: p.host.as_ptr().cast_mut(),
            };
            c.handler = Some(resolved);
            c.data = pending.cast::<c_void>();
            c.timeout = timeout;
            vr.resolving[index].ctx = ctx;
            vr.names_pending += 1;
        }
        // SAFETY: a fully set up context. On error nginx has freed it.
        if unsafe { ngx_resolve_name(ctx) } != NGX_OK as isize {
            // SAFETY: as above; the resolver is done with `v`.
            let vr = unsafe { &mut *v };
            let res = &mut vr.resolving[index];
            if !res.ctx.is_null() {
                res.ctx = core::ptr::null_mut();
                res.result = Some(Err("the resolver failed to start".into()));
                vr.names_pending -= 1;
            }
        }
    }
    // SAFETY: as above.
    Ok(unsafe { (*v).names_pending })
}

/// The resolver's handler: called once per name, possibly from inside
/// `ngx_resolve_name` (cached answers).
unsafe extern "C" fn resolved(ctx: *mut ngx_resolver_ctx_t) {
    guard((), || {
        // SAFETY: nginx passes the context set up in `start`, whose `data`
        // is the `Pending` in the live request's pool (a request that goes
        // away cancels its lookups first).
        let (c, p) = unsafe { (&*ctx, &*(*ctx).data.cast::<Pending>()) };
        let result = if c.state == 0 {
            let port = p_port(p);
            // SAFETY: on success `addrs` holds `naddrs` entries.
            let addrs = unsafe { core::slice::from_raw_parts(c.addrs, c.naddrs) };
            Ok(addrs
                .iter()
                .filter_map(|a| to_socket_addr(a, port))
                .collect())
        } else {
            // SAFETY: returns a static C string for any code.
            let why = unsafe { CStr::from_ptr(ngx_resolver_strerror(c.state)) };
            Err(why.to_string_lossy().into_owned())
        };
        // SAFETY: the context is ours until this call; not used after it.
        unsafe { ngx_resolve_name_done(ctx) };
        // SAFETY: the viewer lives as long as its request (see above); no
        // other reference to it is in use while the resolver runs.
        let v = unsafe { &mut *p.viewer };
        let Some(res) = v.resolving.get_mut(p.index) else {
            return;
        };
        res.ctx = core::ptr::null_mut();
        res.result = Some(result);
        v.names_pending = v.names_pending.saturating_sub(1);
        if v.names_pending == 0 && v.state == State::Naming {
            v.state = State::Named;
            // SAFETY: the connection of a live request is live; its write
            // event runs the request's phases again.
            unsafe {
                ngx::ffi::ngx_post_event(
                    (*(*p.r).connection).write,
                    core::ptr::addr_of_mut!(ngx::ffi::ngx_posted_events),
                );
            }
        }
    });
}

fn p_port(p: &Pending) -> u16 {
    // SAFETY: see `resolved`.
    let v = unsafe { &*p.viewer };
    v.resolving.get(p.index).map_or(80, |r| r.port)
}

/// A resolver answer's address (IPv4 or IPv6) with `port`.
fn to_socket_addr(a: &ngx_resolver_addr_t, port: u16) -> Option<SocketAddr> {
    if a.sockaddr.is_null() {
        return None;
    }
    // SAFETY: the resolver's addresses are valid sockaddrs of `socklen`
    // bytes, of the family they name.
    let family = u32::from(unsafe { (*a.sockaddr).sa_family });
    let len = a.socklen as usize;
    let ip = if family == AF_INET && len >= core::mem::size_of::<sockaddr_in>() {
        // SAFETY: an AF_INET address of sufficient length.
        let sin = unsafe { &*a.sockaddr.cast::<sockaddr_in>() };
        IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
    } else if family == AF_INET6 && len >= core::mem::size_of::<sockaddr_in6>() {
        // SAFETY: an AF_INET6 address of sufficient length; every
        // representation of the union is plain bytes.
        let bytes = unsafe {
            (*a.sockaddr.cast::<sockaddr_in6>())
                .sin6_addr
                .__in6_u
                .__u6_addr8
        };
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        return None;
    };
    Some(SocketAddr::new(ip, port))
}
