//! nginx's command table of the module's directives (their handlers are in
//! `directives.rs`, or with their concern: metrics, playback).

use core::ffi::{c_char, c_void};
use core::mem::offset_of;
use core::ptr;

use ngx::ffi::{
    ngx_command_t, ngx_conf_set_flag_slot, ngx_conf_set_msec_slot, ngx_conf_set_num_slot,
    ngx_conf_t, ngx_http_set_complex_value_slot, ngx_str_t, ngx_uint_t, NGX_CONF_1MORE,
    NGX_CONF_FLAG, NGX_CONF_NOARGS, NGX_CONF_TAKE1, NGX_CONF_TAKE2, NGX_HTTP_LOC_CONF,
    NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET, NGX_HTTP_SRV_CONF,
    NGX_HTTP_SRV_CONF_OFFSET, NGX_HTTP_UPS_CONF,
};
use ngx::ngx_string;

use super::directives::{set_origins, set_prefix, set_query, set_upstream, set_zone};
use super::LocConf;

const ANY_LEVEL: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;

const fn command(
    name: ngx_str_t,
    type_: u32,
    set: unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char,
    conf: usize,
    offset: usize,
) -> ngx_command_t {
    ngx_command_t {
        name,
        type_: type_ as ngx_uint_t,
        set: Some(set),
        conf: conf as ngx_uint_t,
        offset: offset as ngx_uint_t,
        post: ptr::null_mut(),
    }
}

pub static mut COMMANDS: [ngx_command_t; 26] = [
    command(
        ngx_string!("edge_router_zone"),
        NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE2,
        set_zone,
        NGX_HTTP_MAIN_CONF_OFFSET,
        0,
    ),
    command(
        ngx_string!("edge_router"),
        NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
        ngx_http_set_complex_value_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, name),
    ),
    command(
        ngx_string!("edge_router_api"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        set_prefix,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, api),
    ),
    command(
        ngx_string!("edge_router_probe"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        set_prefix,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, probe),
    ),
    command(
        ngx_string!("edge_router_valid"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        ngx_conf_set_msec_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, valid),
    ),
    command(
        ngx_string!("edge_router_negative"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        ngx_conf_set_msec_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, negative),
    ),
    command(
        ngx_string!("edge_router_stale"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        ngx_conf_set_msec_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, stale),
    ),
    command(
        ngx_string!("edge_router_grace"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        ngx_conf_set_msec_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, grace),
    ),
    command(
        ngx_string!("edge_router_fail_timeout"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        ngx_conf_set_msec_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, fail_timeout),
    ),
    command(
        ngx_string!("edge_router_max_fails"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        ngx_conf_set_num_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, max_fails),
    ),
    command(
        ngx_string!("edge_router_lookups"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        ngx_conf_set_num_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, lookups),
    ),
    command(
        ngx_string!("edge_router_origins"),
        ANY_LEVEL | NGX_CONF_1MORE,
        set_origins,
        NGX_HTTP_LOC_CONF_OFFSET,
        0,
    ),
    command(
        ngx_string!("edge_router_viewer_key"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        ngx_http_set_complex_value_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, viewer_key),
    ),
    command(
        ngx_string!("edge_router_collapse"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        ngx_http_set_complex_value_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, collapse),
    ),
    command(
        ngx_string!("edge_router_collapse_max"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        ngx_conf_set_num_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, collapse_max),
    ),
    command(
        ngx_string!("edge_router_query"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        set_query,
        NGX_HTTP_LOC_CONF_OFFSET,
        0,
    ),
    command(
        ngx_string!("edge_router_metrics"),
        NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
        crate::metrics::set_metrics,
        NGX_HTTP_LOC_CONF_OFFSET,
        0,
    ),
    command(
        ngx_string!("edge_router_viewers"),
        ANY_LEVEL | NGX_CONF_FLAG,
        ngx_conf_set_flag_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, viewers),
    ),
    command(
        ngx_string!("edge_router_viewer_report"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        set_prefix,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, report),
    ),
    command(
        ngx_string!("edge_router_viewer_report_interval"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        ngx_conf_set_msec_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, report_interval),
    ),
    command(
        ngx_string!("edge_router_playback_secret"),
        NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
        crate::playback::set_secret,
        NGX_HTTP_MAIN_CONF_OFFSET,
        0,
    ),
    command(
        ngx_string!("edge_router_token_prefix"),
        NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_CONF_TAKE1,
        set_prefix,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, token_prefix),
    ),
    command(
        ngx_string!("edge_router_token"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        ngx_http_set_complex_value_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, token),
    ),
    command(
        ngx_string!("edge_router_signed"),
        ANY_LEVEL | NGX_CONF_FLAG,
        ngx_conf_set_flag_slot,
        NGX_HTTP_LOC_CONF_OFFSET,
        offset_of!(LocConf, signed),
    ),
    command(
        ngx_string!("edge_router_upstream"),
        NGX_HTTP_UPS_CONF | NGX_CONF_NOARGS,
        set_upstream,
        NGX_HTTP_SRV_CONF_OFFSET,
        0,
    ),
    ngx_command_t::empty(),
];
