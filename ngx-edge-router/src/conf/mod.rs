//! Directives and configuration: `edge_router_zone`, `edge_router`,
//! `edge_router_api`, `edge_router_valid`, `edge_router_negative`,
//! `edge_router_stale`, `edge_router_grace`, `edge_router_viewer_key`,
//! `edge_router_origins`, `edge_router_max_fails`, `edge_router_fail_timeout`,
//! `edge_router_lookups`, `edge_router_probe`, `edge_router_collapse`,
//! `edge_router_collapse_max`, `edge_router_query`, `edge_router_metrics`,
//! `edge_router_upstream`, `edge_router_viewers`, `edge_router_viewer_report`,
//! `edge_router_viewer_report_interval`, `edge_router_playback_secret`,
//! `edge_router_token_prefix`, `edge_router_token` and `edge_router_signed`.
//!
//! Here the configuration's types, defaults and merge; the directives'
//! handlers and the command table are in `directives.rs`.

mod commands;
mod directives;

pub use self::commands::COMMANDS;
pub(crate) use self::directives::args;

use core::ffi::{c_char, c_void};
use core::ptr;

use edge_router_policy::{AllowList, FailPolicy, QueryRule, Timing};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::ffi::{
    ngx_conf_t, ngx_http_complex_value_t, ngx_int_t, ngx_msec_t, ngx_shm_zone_t, ngx_str_t,
    NGX_LOG_EMERG, NGX_LOG_WARN,
};
use ngx::http::HttpModuleMainConf;
use ngx::ngx_conf_log_error;

use crate::ffi::guard;
use crate::EdgeRouter;

/// `edge_router_valid` default: how long a route is fresh.
pub const DEFAULT_VALID_MS: ngx_msec_t = 5_000;
/// `edge_router_negative` default: how long "no such stream" is remembered.
pub const DEFAULT_NEGATIVE_MS: ngx_msec_t = 1_000;
/// `edge_router_stale` default: how long a route serves while the API fails.
pub const DEFAULT_STALE_MS: ngx_msec_t = 15 * 60 * 1_000;
/// `edge_router_grace` default: a confirmed route outlives "not found"
/// answers this long (the registry lost its data; the origin's next
/// heartbeat restores it).
pub const DEFAULT_GRACE_MS: ngx_msec_t = 8_000;
/// `edge_router_fail_timeout` default.
pub const DEFAULT_FAIL_TIMEOUT_MS: ngx_msec_t = 10_000;
/// `edge_router_max_fails` default.
pub const DEFAULT_MAX_FAILS: ngx_int_t = 1;
/// `edge_router_lookups` default: API lookups one worker may have in flight.
pub const DEFAULT_LOOKUPS: ngx_int_t = 64;
/// `edge_router_collapse_max` default: collapsed requests (held LL-HLS
/// reloads and parts) one worker may have upstream at one origin (see
/// BENCHMARKS.md, "Held requests").
pub const DEFAULT_COLLAPSE_MAX: ngx_int_t = 1024;
/// After a failed lookup, stale routes are served this long before the API
/// is asked again.
pub const RETRY_AFTER_FAILURE_MS: u64 = 1_000;
/// A worker's claim to refresh a route in the background lapses after this
/// long (its lookup was cut short, or the worker died).
pub const REFRESH_CLAIM_MS: u64 = 5_000;
/// `edge_router_viewer_report_interval` default: how often the edge sends
/// its viewer counts to the API.
pub const DEFAULT_REPORT_INTERVAL_MS: ngx_msec_t = 5_000;
/// Smallest accepted `edge_router_zone` size.
const MIN_ZONE_SIZE: isize = 64 * 1024;

const UNSET_MSEC: ngx_msec_t = ngx_msec_t::MAX;
const QUERY_DROP: ngx_int_t = 0;
const QUERY_DELIVERY: ngx_int_t = 1;
const UNSET_NUM: ngx_int_t = -1;

/// `http` level: the shared route cache and the playback signing secret.
#[derive(Debug)]
pub struct MainConf {
    pub zone: *mut ngx_shm_zone_t,
    /// `edge_router_playback_secret`: the secret's bytes (read from its file
    /// at configuration time); empty when not set.
    pub secret: Vec<u8>,
}

impl Default for MainConf {
    fn default() -> Self {
        MainConf {
            zone: ptr::null_mut(),
            secret: Vec::new(),
        }
    }
}

/// `upstream` level: whether `edge_router_upstream` selects the peers.
#[derive(Debug, Default)]
pub struct UpstreamConf {
    pub enabled: bool,
}

/// `http`/`server`/`location` level. `repr(C)` because nginx's own slot
/// setters write the fields at their offsets.
#[derive(Debug)]
#[repr(C)]
pub struct LocConf {
    /// `edge_router`: the stream name; null when routing is off here.
    pub name: *mut ngx_http_complex_value_t,
    /// `edge_router_viewer_key`; null means `$remote_addr`.
    pub viewer_key: *mut ngx_http_complex_value_t,
    /// `edge_router_collapse`: the key of requests that share one upstream
    /// request per worker; null (or an empty value) means none.
    pub collapse: *mut ngx_http_complex_value_t,
    /// `edge_router_api`: internal location prefix of the API lookups.
    pub api: ngx_str_t,
    /// `edge_router_probe`: internal location prefix of origin probes.
    pub probe: ngx_str_t,
    pub valid: ngx_msec_t,
    pub negative: ngx_msec_t,
    pub stale: ngx_msec_t,
    pub grace: ngx_msec_t,
    pub fail_timeout: ngx_msec_t,
    pub max_fails: ngx_int_t,
    pub lookups: ngx_int_t,
    /// `edge_router_collapse_max` (0: no limit).
    pub collapse_max: ngx_int_t,
    /// `edge_router_query`: 0 `drop`, 1 `delivery`.
    pub query: ngx_int_t,
    /// `edge_router_viewers`: count this location's viewers (1, the
    /// default) or not (0).
    pub viewers: ngx_int_t,
    /// `edge_router_viewer_report`: internal location prefix of the viewer
    /// report to the API; empty: no report.
    pub report: ngx_str_t,
    pub report_interval: ngx_msec_t,
    /// `edge_router_token_prefix` (server level): the path prefix signed
    /// links start with (`/t/`); empty: none.
    pub token_prefix: ngx_str_t,
    /// `edge_router_token`: the playback token of the request (from its
    /// path); null: tokens are not looked at.
    pub token: *mut ngx_http_complex_value_t,
    /// `edge_router_signed`: playback needs a valid token (1), or only
    /// where the stream's configuration asks for it (0).
    pub signed: ngx_int_t,
    /// `edge_router_origins`; `None` when not set at this level.
    pub origins: Option<AllowList>,
}

impl Default for LocConf {
    fn default() -> Self {
        LocConf {
            name: ptr::null_mut(),
            viewer_key: ptr::null_mut(),
            collapse: ptr::null_mut(),
            api: ngx_str_t {
                len: 0,
                data: ptr::null_mut(),
            },
            probe: ngx_str_t {
                len: 0,
                data: ptr::null_mut(),
            },
            valid: UNSET_MSEC,
            negative: UNSET_MSEC,
            stale: UNSET_MSEC,
            grace: UNSET_MSEC,
            fail_timeout: UNSET_MSEC,
            max_fails: UNSET_NUM,
            lookups: UNSET_NUM,
            collapse_max: UNSET_NUM,
            query: UNSET_NUM,
            report: ngx_str_t {
                len: 0,
                data: ptr::null_mut(),
            },
            viewers: UNSET_NUM,
            report_interval: UNSET_MSEC,
            token_prefix: ngx_str_t {
                len: 0,
                data: ptr::null_mut(),
            },
            token: ptr::null_mut(),
            signed: UNSET_NUM,
            origins: None,
        }
    }
}

impl LocConf {
    pub fn timing(&self) -> Timing {
        Timing {
            valid_ms: self.valid as u64,
            negative_ms: self.negative as u64,
            stale_ms: self.stale as u64,
            retry_ms: RETRY_AFTER_FAILURE_MS,
            grace_ms: self.grace as u64,
            refresh_claim_ms: REFRESH_CLAIM_MS,
        }
    }

    pub fn query_rule(&self) -> QueryRule {
        if self.query == QUERY_DELIVERY {
            QueryRule::Delivery
        } else {
            QueryRule::Drop
        }
    }

    pub fn fail_policy(&self) -> FailPolicy {
        FailPolicy {
            max_fails: u32::try_from(self.max_fails.max(0)).unwrap_or(u32::MAX),
            fail_timeout_ms: self.fail_timeout as u64,
        }
    }

    /// The origins to probe when the API cannot answer (`edge_router_probe`
    /// and the exact addresses of `edge_router_origins`).
    pub fn probe_targets(&self) -> Vec<std::net::SocketAddr> {
        if self.probe.len == 0 {
            return Vec::new();
        }
        self.allowed().exact()
    }

    /// The origins an API answer may point at (empty: the implicit default).
    pub fn allowed(&self) -> &AllowList {
        static DEFAULT: AllowList = AllowList {
            entries: Vec::new(),
        };
        self.origins.as_ref().unwrap_or(&DEFAULT)
    }

    /// Inherits unset values from `prev`, then applies defaults.
    fn merge(&mut self, prev: &LocConf) {
        if self.name.is_null() {
            self.name = prev.name;
        }
        if self.viewer_key.is_null() {
            self.viewer_key = prev.viewer_key;
        }
        if self.collapse.is_null() {
            self.collapse = prev.collapse;
        }
        if self.api.data.is_null() {
            self.api = prev.api;
        }
        if self.probe.data.is_null() {
            self.probe = prev.probe;
        }
        if self.report.data.is_null() {
            self.report = prev.report;
        }
        if self.token.is_null() {
            self.token = prev.token;
        }
        if self.token_prefix.data.is_null() {
            self.token_prefix = prev.token_prefix;
        }
        let msec = |v: &mut ngx_msec_t, p: ngx_msec_t, d: ngx_msec_t| {
            if *v == UNSET_MSEC {
                *v = if p == UNSET_MSEC { d } else { p };
            }
        };
        msec(&mut self.valid, prev.valid, DEFAULT_VALID_MS);
        msec(&mut self.negative, prev.negative, DEFAULT_NEGATIVE_MS);
        msec(&mut self.stale, prev.stale, DEFAULT_STALE_MS);
        msec(&mut self.grace, prev.grace, DEFAULT_GRACE_MS);
        msec(
            &mut self.report_interval,
            prev.report_interval,
            DEFAULT_REPORT_INTERVAL_MS,
        );
        msec(
            &mut self.fail_timeout,
            prev.fail_timeout,
            DEFAULT_FAIL_TIMEOUT_MS,
        );
        let num = |v: &mut ngx_int_t, p: ngx_int_t, d: ngx_int_t| {
            if *v == UNSET_NUM {
                *v = if p == UNSET_NUM { d } else { p };
            }
        };
        num(&mut self.max_fails, prev.max_fails, DEFAULT_MAX_FAILS);
        num(&mut self.lookups, prev.lookups, DEFAULT_LOOKUPS);
        num(
            &mut self.collapse_max,
            prev.collapse_max,
            DEFAULT_COLLAPSE_MAX,
        );
        num(&mut self.query, prev.query, QUERY_DROP);
        num(&mut self.signed, prev.signed, 0);
        num(&mut self.viewers, prev.viewers, 1);
        if self.origins.is_none() {
            self.origins = prev.origins.clone();
        }
    }
}

/// `merge_loc_conf`: inherit, default, and check that a routed location has
/// everything it needs.
pub unsafe extern "C" fn merge_loc_conf(
    cf: *mut ngx_conf_t,
    parent: *mut c_void,
    child: *mut c_void,
) -> *mut c_char {
    guard(NGX_CONF_ERROR, || {
        // SAFETY: nginx passes our own LocConf objects for both levels.
        let (prev, conf) = unsafe { (&*parent.cast::<LocConf>(), &mut *child.cast::<LocConf>()) };
        conf.merge(prev);
        if conf.name.is_null() {
            return NGX_CONF_OK;
        }
        if conf.api.len == 0 {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "\"edge_router\" requires \"edge_router_api\""
            );
            return NGX_CONF_ERROR;
        }
        // SAFETY: `cf` is the configuration being parsed.
        let mcf = unsafe { EdgeRouter::main_conf(&*cf) };
        if (conf.signed == 1 || !conf.token.is_null()) && mcf.is_none_or(|m| m.secret.is_empty()) {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "\"edge_router_token\" and \"edge_router_signed\" require \"edge_router_playback_secret\""
            );
            return NGX_CONF_ERROR;
        }
        if conf.signed == 1 && conf.token.is_null() {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "\"edge_router_signed on\" requires \"edge_router_token\""
            );
            return NGX_CONF_ERROR;
        }
        let zone = mcf.map_or(ptr::null_mut(), |m| m.zone);
        if zone.is_null() {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "\"edge_router\" requires \"edge_router_zone\""
            );
            return NGX_CONF_ERROR;
        }
        if conf.lookups < 1 {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "\"edge_router_lookups\" must be at least 1"
            );
            return NGX_CONF_ERROR;
        }
        if conf.origins.is_none() {
            ngx_conf_log_error!(
                NGX_LOG_WARN,
                cf,
                "\"edge_router\" without \"edge_router_origins\": any origin the API names is contacted, except loopback, link-local and unspecified addresses"
            );
        }
        if conf.collapse_max < 0 {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "\"edge_router_collapse_max\" must not be negative"
            );
            return NGX_CONF_ERROR;
        }
        if conf.stale < conf.valid {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "\"edge_router_stale\" must not be shorter than \"edge_router_valid\""
            );
            return NGX_CONF_ERROR;
        }
        NGX_CONF_OK
    })
}
