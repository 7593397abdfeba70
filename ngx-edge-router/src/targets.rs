//! Which of a route's origins this edge may contact (`edge_router_origins`),
//! as socket addresses: literal addresses directly, host names once they
//! are resolved (`resolve.rs`).

use edge_router_policy::metrics::Event;
use edge_router_policy::{Prepared, Target};
use ngx::ffi::{NGX_LOG_ERR, NGX_LOG_WARN};
use ngx::ngx_log_error;

use crate::conf::LocConf;
use crate::ctx::Viewer;
use crate::resolve;

/// The route's origins as addresses (each with the index of its origin in
/// the route), or the need to resolve names first.
pub enum Targets {
    /// Inline for routes of up to two addresses: no allocation per request.
    Ready(smallvec::SmallVec<[(std::net::SocketAddr, usize); 2]>),
    Resolve,
}

/// Applies `edge_router_origins` to the route's origins: literal addresses
/// directly, host names by name and then by every address they resolve to
/// (a name needs resolving once per request; nginx caches the answers).
pub fn allowed_targets(
    v: &mut Viewer,
    lcf: &LocConf,
    log: *mut ngx::ffi::ngx_log_t,
    route: &Prepared,
) -> Targets {
    let list = lcf.allowed();
    let origins = &route.route.origins;
    let mut out = smallvec::SmallVec::new();
    let mut unresolved = false;
    let refuse = |v: &Viewer, what: &str| {
        if let Some(z) = v.zone {
            z.count(Event::Refused);
        }
        ngx_log_error!(
            NGX_LOG_WARN,
            log,
            "edge_router: origin {what} of stream \"{}\" is not allowed by \"edge_router_origins\"; not contacted",
            String::from_utf8_lossy(&v.name)
        );
    };
    for (i, (o, target)) in origins.iter().zip(&route.targets).enumerate() {
        match target {
            Some(Target::Addr(a)) if list.allows(a) => out.push((*a, i)),
            Some(Target::Name { host, port }) if list.allows_name(host, *port) => {
                match v
                    .resolving
                    .iter()
                    .find(|r| r.host == *host && r.port == *port)
                {
                    None => {
                        v.resolving
                            .push(resolve::Resolution::new(host.clone(), *port));
                        unresolved = true;
                    }
                    Some(r) => match &r.result {
                        None => unresolved = true,
                        Some(Err(why)) => {
                            ngx_log_error!(
                                NGX_LOG_ERR,
                                log,
                                "edge_router: origin {} of stream \"{}\" could not be resolved: {why}",
                                o.addr,
                                String::from_utf8_lossy(&v.name)
                            );
                        }
                        Some(Ok(addrs)) => {
                            for a in addrs.clone() {
                                if list.allows_resolved(&a) {
                                    out.push((a, i));
                                } else {
                                    refuse(v, &format!("{} (resolved to {a})", o.addr));
                                }
                            }
                        }
                    },
                }
            }
            _ => refuse(v, &o.addr),
        }
    }
    if unresolved {
        Targets::Resolve
    } else {
        Targets::Ready(out)
    }
}
