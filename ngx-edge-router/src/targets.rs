//! Which of a route's origins this edge may contact (`edge_router_origins`),
//! as socket addresses: literal addresses directly, host names once they
//! are resolved (`resolve.rs`); and in which order this viewer tries them.

use edge_router_policy::metrics::Event;
use std::rc::Rc;

use edge_router_policy::{healthy_first, rank_grouped, Prepared, Target};
use ngx::ffi::{NGX_LOG_ERR, NGX_LOG_WARN};
use ngx::ngx_log_error;

use crate::conf::LocConf;
use crate::ffi::now_ms;
use crate::resolve::{Answer, Names};
use crate::state::{Peer, Peers, Viewer};

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
                let r = v.r;
                let answer = v
                    .names
                    .get_or_insert_with(|| Names::new(r))
                    .answer(host, *port);
                match answer {
                    Answer::Pending => unresolved = true,
                    Answer::Failed(why) => {
                        ngx_log_error!(
                            NGX_LOG_ERR,
                            log,
                            "edge_router: origin {} of stream \"{}\" could not be resolved: {why}",
                            o.addr,
                            String::from_utf8_lossy(&v.name)
                        );
                    }
                    Answer::Addrs(addrs) => {
                        for a in addrs {
                            if list.allows_resolved(&a) {
                                out.push((a, i));
                            } else {
                                refuse(v, &format!("{} (resolved to {a})", o.addr));
                            }
                        }
                    }
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

/// The viewer's candidates among the `allowed` addresses of `route` (at
/// least one), in order: the sticky rendezvous choice for `viewer_key`
/// first, origins that failed recently last.
pub fn order_peers(
    v: &Viewer,
    route: &Rc<Prepared>,
    allowed: &[(std::net::SocketAddr, usize)],
    viewer_key: &[u8],
) -> Peers {
    let peer =
        |&(addr, origin): &(std::net::SocketAddr, usize)| Peer::of_route(addr, route, origin);
    if allowed.len() == 1 {
        // One address (most streams): nothing to choose or reorder.
        return smallvec::smallvec![peer(&allowed[0])];
    }
    let names: Vec<&str> = allowed
        .iter()
        .map(|&(_, i)| route.route.origins[i].addr.as_str())
        .collect();
    // One rank per origin, not per address: a name's addresses stay
    // together, in the resolver's order.
    let ranked: Vec<usize> = rank_grouped(&v.name, viewer_key, &names);
    let down = match v.zone {
        Some(z) => {
            let keys: Vec<&[u8]> = ranked.iter().map(|&i| names[i].as_bytes()).collect();
            z.down(&keys, now_ms())
        }
        None => vec![false; ranked.len()],
    };
    let order: Vec<(usize, bool)> = ranked.into_iter().zip(down).collect();
    healthy_first(order, |&(_, d)| d)
        .into_iter()
        .map(|(i, _)| peer(&allowed[i]))
        .collect()
}
