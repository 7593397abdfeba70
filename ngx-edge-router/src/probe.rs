//! Origin probes: when the API cannot answer and the edge has no route for a
//! stream (the API is down, or the edge restarted during an outage), the
//! request that led the failed lookup asks each origin of the operator's
//! `edge_router_origins` (exact addresses only; never an address from a
//! request or from the API) for the requested path, through the internal
//! location of `edge_router_probe`. The origins that have it become a
//! provisional route: fresh for `edge_router_valid`, then refreshed at the
//! API like any route, whose answer wins once it is back. No origin has it:
//! "not found", remembered for `edge_router_negative`. Probes count against
//! `edge_router_lookups`; the leader's waiters share the result.

use edge_router_policy::{Outcome, RouteOrigin, Timing};
use ngx::ffi::{ngx_int_t, NGX_ERROR, NGX_HTTP_SPECIAL_RESPONSE, NGX_LOG_WARN};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, Request};
use ngx::{ngx_log_debug_http, ngx_log_error};

use crate::coalesce;
use crate::ctx;
use crate::ffi::now_ms;
use crate::inflight::{self, InFlight};
use crate::state::{Peer, Probe, ReqCtx, State};
use crate::subrequest;
use crate::zone::Zone;
use crate::EdgeRouter;

/// Starts one probe per target for the leader `r`; returns how many started.
pub fn ask_origins(r: &mut Request, targets: &[std::net::SocketAddr]) -> usize {
    let Some(lcf) = EdgeRouter::location_conf(r.as_ref()) else {
        return 0;
    };
    let prefix = lcf.probe.as_bytes();
    let prefix = prefix.strip_suffix(b"/").unwrap_or(prefix).to_vec();
    let path = r.as_ref().uri.as_bytes().to_vec();
    let mut started = 0;
    for addr in targets {
        if inflight::count() >= usize::try_from(lcf.lookups.max(1)).unwrap_or(1) {
            break;
        }
        if start_one(r, (&prefix, &path), *addr, lcf.timing()).is_ok() {
            started += 1;
        }
    }
    started
}

fn start_one(
    r: &mut Request,
    (prefix, path): (&[u8], &[u8]),
    addr: std::net::SocketAddr,
    timing: Timing,
) -> Result<(), ()> {
    let name = addr.to_string();
    let state = ReqCtx::Probe(Probe {
        origin: RouteOrigin::new(name.clone(), 0),
        peers: vec![Peer::new(addr, &name)],
        done: false,
        timing,
        _in_flight: InFlight::start(),
    });
    subrequest::spawn::<OriginProbe>(r, prefix, path, state, false)?;
    ngx_log_debug_http!(r, "edge_router: probing {name}");
    Ok(())
}

/// The probes' owner.
struct OriginProbe;

impl subrequest::Owner for OriginProbe {
    fn finished(sr: &Request, state: &mut ReqCtx, rc: ngx_int_t) {
        if let ReqCtx::Probe(p) = state {
            finished(sr, p, rc);
        }
    }
}

/// A probe ended: its result goes to the leader, the main request.
fn finished(sr: &Request, p: &mut Probe, rc: ngx_int_t) {
    if p.done {
        return;
    }
    p.done = true;
    let Some(mut v) = ctx::main_viewer(sr) else {
        return;
    };
    if v.probe_done {
        return;
    }
    // SAFETY: the connection of a live request is live.
    if unsafe { (*sr.connection()).error() } != 0 {
        // The viewer hung up: its waiters start over.
        v.probe_done = true;
        v.state = State::Resolved;
        coalesce::wake(&v.name, None);
        return;
    }
    let ok = rc != NGX_ERROR as ngx_int_t
        && rc < NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t
        && sr.as_ref().headers_out.status == 200;
    ngx_log_debug_http!(
        sr,
        "edge_router: probe of {} for \"{}\": {}",
        p.origin.addr,
        String::from_utf8_lossy(&v.name),
        if ok { "found" } else { "not found" }
    );
    if ok {
        v.probed.push(p.origin.clone());
    }
    v.probes_pending = v.probes_pending.saturating_sub(1);
    if v.probes_pending > 0 {
        return;
    }
    v.probe_done = true;
    let outcome = if v.probed.is_empty() {
        Outcome::NotFound
    } else {
        // what the stream's configuration says is the API's to tell: a
        // stream found by probing is signed only where the edge says so
        Outcome::Found(std::mem::take(&mut v.probed), false)
    };
    if let Some(zone) = EdgeRouter::main_conf(sr.as_ref()).and_then(|m| Zone::new(m.zone)) {
        let _ = zone.store_outcome(&v.name, &outcome, now_ms(), &p.timing);
    }
    ngx_log_error!(
        NGX_LOG_WARN,
        sr.log(),
        "edge_router: the API could not answer for stream \"{}\"; origin probes: {}",
        String::from_utf8_lossy(&v.name),
        match &outcome {
            Outcome::Found(o, _) => o
                .iter()
                .map(|o| o.addr.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            _ => "none has it".to_string(),
        }
    );
    v.state = State::Resolved;
    v.outcome = Some(outcome.clone());
    coalesce::wake(&v.name, Some(&outcome));
}
