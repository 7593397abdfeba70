//! `ngx_http_edge_router_module`: routes HLS requests to the origin that holds
//! the stream. This file only wires the module together; each concern lives
//! in its own file:
//!
//! - [`conf`]: directives, configuration structs, defaults and merge;
//! - [`zone`]: the shared zone (route cache, origin failure memory);
//! - [`state`]: what the module keeps per request (viewers, API lookups,
//!   origin probes), plain data;
//! - [`ctx`]: the one door to that state, a borrow checked at run time;
//! - [`release`]: what a viewer request leaves behind when it is freed;
//! - [`inflight`]: the worker's lookups and probes in flight;
//! - [`access`]: the access-phase handler, the lookup state machine;
//! - [`coalesce`]: per-worker sharing of one lookup among waiting requests;
//! - [`collapse`]: `edge_router_collapse`, per-worker sharing of one
//!   upstream request (an LL-HLS blocking reload) among waiting requests;
//! - [`waitlist`]: the waiting and resuming both of those use;
//! - [`lookup`]: the API subrequest, its body capture and its result;
//! - [`probe`]: asking the operator's origins when the API cannot answer;
//! - [`resolve`]: origin host names to addresses with nginx's resolver;
//! - [`subrequest`]: creating those in-memory subrequests;
//! - [`upstream`]: `edge_router_upstream`, the sticky peer selector;
//! - [`metrics`]: `edge_router_metrics`, the zone's counters for Prometheus;
//! - [`audience`]: counting each stream's viewers, reporting them to the API;
//! - [`playback`]: signed playback, the token check before any routing;
//! - [`variables`]: `$edge_router_origin`, `$edge_router_cache`,
//!   `$edge_router_session`, `$edge_router_collapse_key`,
//!   `$edge_router_viewer_report`;
//! - [`ffi`]: the few shims the `ngx` crate does not provide.
//!
//! Policy (freshness, API answers, the origin allowlist, rendezvous ranking,
//! failure memory, eviction) is plain Rust in the `edge-router-policy` crate.

mod access;
mod audience;
mod coalesce;
mod collapse;
mod conf;
mod ctx;
mod ffi;
mod inflight;
mod local;
mod lookup;
mod metrics;
mod playback;
mod probe;
mod query;
mod release;
mod resolve;
mod state;
mod subrequest;
mod targets;
mod upstream;
mod variables;
mod waitlist;
mod zone;

use core::ffi::c_void;
use core::ptr;

use ngx::ffi::{
    ngx_conf_t, ngx_http_module_t, ngx_http_phases_NGX_HTTP_ACCESS_PHASE,
    ngx_http_phases_NGX_HTTP_SERVER_REWRITE_PHASE, ngx_int_t, ngx_module_t, NGX_HTTP_MODULE,
};
use ngx::http::{HttpModule, HttpModuleLocationConf, HttpModuleMainConf, HttpModuleServerConf};

/// The module's type, carrying its configuration types.
pub struct EdgeRouter;

impl HttpModule for EdgeRouter {
    fn module() -> &'static ngx_module_t {
        // SAFETY: the module object is a static that nginx only mutates while
        // loading the configuration, before any request is served.
        unsafe { &*ptr::addr_of!(ngx_http_edge_router_module) }
    }

    unsafe extern "C" fn preconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        // SAFETY: nginx passes the configuration being parsed.
        ffi::guard(ngx::core::Status::NGX_ERROR.into(), || unsafe {
            variables::register(cf)
        })
    }

    unsafe extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        ffi::guard(ngx::core::Status::NGX_ERROR.into(), || {
            // SAFETY: called by nginx with a valid configuration context,
            // once, before any request.
            unsafe {
                lookup::install_filters();
                if playback::index_token_variable(cf) != ngx::ffi::NGX_OK as ngx_int_t
                    || ffi::add_phase_handler(
                        cf,
                        ngx_http_phases_NGX_HTTP_SERVER_REWRITE_PHASE,
                        playback::take_prefix,
                    ) != ngx::ffi::NGX_OK as ngx_int_t
                {
                    return ngx::ffi::NGX_ERROR as ngx_int_t;
                }
                ffi::add_phase_handler(
                    cf,
                    ngx_http_phases_NGX_HTTP_ACCESS_PHASE,
                    access::access_handler,
                )
            }
        })
    }
}

// SAFETY: the configuration types match the slots registered in the module
// context below.
unsafe impl HttpModuleMainConf for EdgeRouter {
    type MainConf = conf::MainConf;
}
// SAFETY: as above.
unsafe impl HttpModuleServerConf for EdgeRouter {
    type ServerConf = conf::UpstreamConf;
}
// SAFETY: as above.
unsafe impl HttpModuleLocationConf for EdgeRouter {
    type LocationConf = conf::LocConf;
}

static NGX_HTTP_EDGE_ROUTER_MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: Some(EdgeRouter::preconfiguration),
    postconfiguration: Some(EdgeRouter::postconfiguration),
    create_main_conf: Some(EdgeRouter::create_main_conf),
    init_main_conf: None,
    create_srv_conf: Some(EdgeRouter::create_srv_conf),
    merge_srv_conf: None,
    create_loc_conf: Some(EdgeRouter::create_loc_conf),
    merge_loc_conf: Some(conf::merge_loc_conf),
};

ngx::ngx_modules!(ngx_http_edge_router_module);

#[used]
#[allow(non_upper_case_globals)]
pub static mut ngx_http_edge_router_module: ngx_module_t = ngx_module_t {
    ctx: ptr::addr_of!(NGX_HTTP_EDGE_ROUTER_MODULE_CTX) as *mut c_void,
    // SAFETY: the command table is a static with the lifetime of the module.
    commands: unsafe { ptr::addr_of_mut!(conf::COMMANDS[0]) },
    type_: NGX_HTTP_MODULE as _,
    ..ngx_module_t::default()
};
