//! Viewer counts: every routed viewer request is seen in its stream's
//! sketch in the zone (see `zone/audience.rs`, `edge_router_policy::
//! audience`), under the viewer's key (`edge_router_viewer_key`, the
//! client address by default: the same identity as origin stickiness);
//! and one worker every `edge_router_viewer_report_interval` sends the
//! edge's counts to the API, as a background subrequest of the request
//! that noticed it was time (like a background route refresh), through the
//! internal location named by `edge_router_viewer_report`. That location's
//! `proxy_set_body $edge_router_viewer_report` is rendered by
//! [`report_body`] when the subrequest is sent.
//!
//! Nothing here waits: counting is one short lock of the zone, the report
//! is sent while the viewer is already served.

use std::hash::Hasher;

use ngx::ffi::{ngx_int_t, NGX_LOG_WARN};
use ngx::http::{HttpModuleMainConf, Request};
use ngx::{ngx_log_debug_http, ngx_log_error};

use crate::conf::LocConf;
use crate::ffi::now_ms;
use crate::state::{ReqCtx, Viewer};
use crate::subrequest;
use crate::zone::Zone;
use crate::EdgeRouter;

/// The viewer's hash for the sketches: the same in every worker (the
/// sketches are shared), well mixed (the sketch reads its low and its
/// trailing bits). SipHash-1-3 with fixed keys.
fn viewer_hash(key: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(key);
    h.finish()
}

/// Counts viewer `key` for `v`'s stream, then sends the report when it is
/// this worker's turn. `close`: the request's connection is closed after
/// its answer (nginx keeps it busy until the report ends).
pub fn see(r: &mut Request, lcf: &LocConf, v: &mut Viewer, key: &[u8]) {
    let Some(zone) = v.zone.filter(|_| lcf.viewers == 1) else {
        return;
    };
    let report = (lcf.report.len > 0).then_some(lcf.report_interval as u64);
    if !zone.see(&v.name, viewer_hash(key), now_ms(), report) {
        return;
    }
    if subrequest::spawn::<Report>(r, lcf.report.as_bytes(), b"", ReqCtx::Report, true).is_err() {
        ngx_log_error!(
            NGX_LOG_WARN,
            r.log(),
            "edge_router: cannot create the viewer report subrequest"
        );
        return;
    }
    v.close_connection = true;
    ngx_log_debug_http!(r, "edge_router: viewer report sent");
}

/// `$edge_router_viewer_report`: the edge's counts as the API takes them.
pub fn report_body(r: &Request) -> Vec<u8> {
    let Some(zone) = EdgeRouter::main_conf(r.as_ref()).and_then(|m| Zone::new(m.zone)) else {
        return edge_router_policy::audience::report_json([]);
    };
    let counts = zone.audiences(now_ms());
    edge_router_policy::audience::report_json(counts.iter().map(|(k, n)| (&k[..], *n)))
}

/// The report subrequests' owner: a failure is logged, nothing waits.
struct Report;

impl subrequest::Owner for Report {
    fn finished(sr: &Request, _state: &mut ReqCtx, rc: ngx_int_t) {
        let status = sr.as_ref().headers_out.status;
        if !(200..300).contains(&status) {
            ngx_log_error!(
                NGX_LOG_WARN,
                sr.log(),
                "edge_router: the API did not take the viewer report (status {status}, rc {rc})"
            );
        }
    }
}
