//! `edge_router_metrics`: a content handler answering the zone's counters
//! in Prometheus' text format (see `edge_router_policy::metrics`), the same
//! for every worker.

use core::ffi::{c_char, c_void};

use edge_router_policy::metrics::render;
use ngx::core::{Status, NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::ffi::{
    ngx_chain_t, ngx_command_t, ngx_conf_t, ngx_http_request_t, ngx_int_t, NGX_HTTP_GET,
    NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_ALLOWED,
};
use ngx::http::{
    HTTPStatus, HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule, Request,
};

use crate::ffi::{guard, now_ms};
use crate::zone::Zone;
use crate::EdgeRouter;

/// `edge_router_metrics;` in a location: that location answers the metrics.
pub unsafe extern "C" fn set_metrics(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guard(NGX_CONF_ERROR, || {
        // SAFETY: `cf` is the configuration being parsed, inside a location.
        let Some(clcf) = NgxHttpCoreModule::location_conf_mut(unsafe { &*cf }) else {
            return NGX_CONF_ERROR;
        };
        clcf.handler = Some(handler);
        NGX_CONF_OK
    })
}

unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    guard(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t, || {
        // SAFETY: nginx calls content handlers with a live request.
        let req = unsafe { Request::from_ngx_http_request(r) };
        respond(req).0
    })
}

fn respond(r: &mut Request) -> Status {
    if r.as_ref().method & (NGX_HTTP_GET | NGX_HTTP_HEAD) as usize == 0 {
        return Status(NGX_HTTP_NOT_ALLOWED as ngx_int_t);
    }
    let status = r.discard_request_body();
    if !status.is_ok() {
        return status;
    }
    let zone = EdgeRouter::main_conf(r.as_ref()).and_then(|m| Zone::new(m.zone));
    let _ = EdgeRouter::location_conf(r.as_ref());
    let body = zone
        .map(|z| render(&z.snapshot(now_ms())))
        .unwrap_or_default();
    r.set_status(HTTPStatus::OK);
    r.set_content_length_n(body.len());
    let ct = "text/plain; version=0.0.4; charset=utf-8";
    r.as_mut().headers_out.content_type = ngx::ffi::ngx_str_t {
        len: ct.len(),
        data: ct.as_ptr().cast_mut(),
    };
    r.as_mut().headers_out.content_type_len = ct.len();
    let rc = r.send_header();
    if rc.0 == ngx::ffi::NGX_ERROR as ngx_int_t
        || rc.0 > ngx::ffi::NGX_OK as ngx_int_t
        || r.header_only()
    {
        return rc;
    }
    let Some(mut buf) = r.pool().create_buffer_from_str(&body) else {
        return Status::NGX_ERROR;
    };
    ngx::core::Buffer::set_last_buf(&mut buf, true);
    ngx::core::Buffer::set_last_in_chain(&mut buf, true);
    let mut out = ngx_chain_t {
        buf: ngx::core::Buffer::as_ngx_buf_mut(&mut buf),
        next: core::ptr::null_mut(),
    };
    r.output_filter(&mut out)
}
