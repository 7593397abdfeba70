//! Origins by name: the host names of a route are turned into addresses by
//! nginx's own resolver (the `resolver` and `resolver_timeout` directives of
//! the location), the way `proxy_pass` with variables resolves, never
//! blocking the worker. nginx caches answers for their DNS TTL, or for the
//! `valid=` time of the `resolver` directive, which bounds it.
//!
//! A viewer whose route names a host it has no addresses for returns
//! `NGX_AGAIN` from the access phase. The resolver's handler writes each
//! answer into the request's [`Names`] (never into the viewer, which may be
//! borrowed when nginx answers from its cache inside `ask_resolver`) and, once
//! every name is answered, posts the request's write event, which runs the
//! access phase again. A request that goes away first cancels its lookups
//! ([`Names::cancel`], from the viewer's release).

use core::ffi::{c_void, CStr};
use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;

use ngx::ffi::{
    ngx_http_request_t, ngx_resolve_name, ngx_resolve_name_done, ngx_resolve_start,
    ngx_resolver_addr_t, ngx_resolver_ctx_t, ngx_resolver_strerror, ngx_str_t, sockaddr_in,
    sockaddr_in6, AF_INET, AF_INET6, NGX_OK,
};
use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule, Request};

use crate::ffi::guard;

/// `NGX_NO_RESOLVER` of `ngx_resolver.h`: no `resolver` is configured.
const NO_RESOLVER: *mut ngx_resolver_ctx_t = usize::MAX as *mut ngx_resolver_ctx_t;

/// What became of one host name.
pub enum Answer {
    /// Not asked yet, or nginx's resolver works on it.
    Pending,
    Failed(String),
    Addrs(Vec<SocketAddr>),
}

/// One host name of a viewer's route.
struct Entry {
    /// The name's bytes: the resolver reads them until it is done (a
    /// `String` does not move its bytes when the list grows).
    host: String,
    port: u16,
    result: Option<Result<Vec<SocketAddr>, String>>,
    /// The resolver's context while it works (null when done).
    ctx: *mut ngx_resolver_ctx_t,
}

/// The host names of one viewer's route and their answers, shared (`Rc`)
/// by the viewer and the resolver's handler.
pub struct Names {
    /// The request, woken when the last name is answered.
    r: *mut ngx_http_request_t,
    entries: RefCell<Vec<Entry>>,
    in_flight: Cell<usize>,
    /// The request returned `NGX_AGAIN` for its names: the last answer
    /// wakes it (answers that come inside `ask_resolver` need no wake-up).
    parked: Cell<bool>,
}

impl Names {
    pub fn new(r: *mut ngx_http_request_t) -> Rc<Names> {
        Rc::new(Names {
            r,
            entries: RefCell::default(),
            in_flight: Cell::new(0),
            parked: Cell::new(false),
        })
    }

    /// The answer for `host`:`port`, which is added (to be asked by the
    /// next `ask_resolver`) if it is new.
    pub fn answer(&self, host: &str, port: u16) -> Answer {
        let mut entries = self.entries.borrow_mut();
        let Some(e) = entries.iter().find(|e| e.host == host && e.port == port) else {
            entries.push(Entry {
                host: host.to_owned(),
                port,
                result: None,
                ctx: core::ptr::null_mut(),
            });
            return Answer::Pending;
        };
        match &e.result {
            None => Answer::Pending,
            Some(Err(why)) => Answer::Failed(why.clone()),
            Some(Ok(a)) => Answer::Addrs(a.clone()),
        }
    }

    /// Names asked and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.get()
    }

    /// The request waits (`NGX_AGAIN`) for the names in flight.
    pub fn park(&self) {
        self.parked.set(true);
    }

    /// Stops the lookups still in flight (their handlers will not run).
    pub fn cancel(&self) {
        for e in self.entries.borrow_mut().iter_mut() {
            if !e.ctx.is_null() {
                // SAFETY: a context from `ngx_resolve_start` whose handler
                // has not run yet (the handler nulls `ctx`): still ours.
                unsafe { ngx_resolve_name_done(e.ctx) };
                e.ctx = core::ptr::null_mut();
            }
        }
        self.in_flight.set(0);
    }

    /// Records the answer for entry `index`; wakes the request after the
    /// last one if it waits.
    fn answered(&self, index: usize, result: Result<Vec<SocketAddr>, String>) {
        if let Some(e) = self.entries.borrow_mut().get_mut(index) {
            if e.ctx.is_null() {
                return;
            }
            e.ctx = core::ptr::null_mut();
            e.result = Some(result);
        }
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
        if self.in_flight.get() == 0 && self.parked.replace(false) {
            // SAFETY: the request is live while its names are (it cancels
            // them before its pool goes); its write event runs its phases
            // again.
            unsafe {
                ngx::ffi::ngx_post_event(
                    (*(*self.r).connection).write,
                    core::ptr::addr_of_mut!(ngx::ffi::ngx_posted_events),
                );
            }
        }
    }
}

/// What the resolver's handler is given, in the request pool.
struct Pending {
    names: *const Names,
    index: usize,
}

/// Why names could not be looked up at all.
#[derive(Debug)]
pub enum StartError {
    /// No `resolver` directive applies to the location.
    NoResolver,
    /// nginx could not allocate a lookup.
    NoMemory,
}

/// Starts resolving the names of `names` that have no answer and no lookup
/// yet. Returns how many are still in flight when it returns (0: all
/// answered from nginx's cache, or failed at once).
pub fn ask_resolver(r: &Request, names: &Rc<Names>) -> Result<usize, StartError> {
    let Some(clcf) = NgxHttpCoreModule::location_conf(r.as_ref()) else {
        return Err(StartError::NoResolver);
    };
    let (resolver, timeout) = (clcf.resolver, clcf.resolver_timeout);
    let count = names.entries.borrow().len();
    for index in 0..count {
        let host = {
            let entries = names.entries.borrow();
            let e = &entries[index];
            if e.result.is_some() || !e.ctx.is_null() {
                continue;
            }
            ngx_str_t {
                len: e.host.len(),
                data: e.host.as_ptr().cast_mut(),
            }
        };
        let pending = r.pool().allocate(Pending {
            names: Rc::as_ptr(names),
            index,
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
        // SAFETY: a fresh context; `pending` and the name's bytes live as
        // long as the request, which cancels the lookup before they go.
        unsafe {
            (*ctx).name = host;
            (*ctx).handler = Some(resolved);
            (*ctx).data = pending.cast::<c_void>();
            (*ctx).timeout = timeout;
        }
        names.entries.borrow_mut()[index].ctx = ctx;
        names.in_flight.set(names.in_flight.get() + 1);
        // SAFETY: a fully set up context. On error nginx has freed it. The
        // handler may run inside this call (a cached answer): no borrow of
        // the entries is held here.
        if unsafe { ngx_resolve_name(ctx) } != NGX_OK as isize {
            names.answered(index, Err("the resolver failed to start".into()));
        }
    }
    Ok(names.in_flight())
}

/// The resolver's handler: called once per name, possibly from inside
/// `ngx_resolve_name` (cached answers).
unsafe extern "C" fn resolved(ctx: *mut ngx_resolver_ctx_t) {
    guard((), || {
        // SAFETY: nginx passes the context set up in `ask_resolver`, whose `data`
        // is the `Pending` in the live request's pool, naming that
        // request's live `Names` (a request that goes away cancels its
        // lookups first).
        let (c, p) = unsafe { (&*ctx, &*(*ctx).data.cast::<Pending>()) };
        // SAFETY: as above.
        let names = unsafe { &*p.names };
        let result = if c.state == 0 {
            let port = names.entries.borrow().get(p.index).map_or(80, |e| e.port);
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
        names.answered(p.index, result);
    });
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
