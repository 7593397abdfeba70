//! The directives' handlers (their command table is `commands.rs`).

use core::ffi::{c_char, c_void};
use core::ptr;

use edge_router_policy::{AllowList, Allowed};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_str_t, ngx_uint_t, NGX_HTTP_UPSTREAM_CREATE, NGX_LOG_EMERG,
    NGX_LOG_WARN,
};
use ngx::http::{HttpModuleServerConf, NgxHttpUpstreamModule};
use ngx::ngx_conf_log_error;

use crate::ffi::guard;

use super::{
    LocConf, MainConf, UpstreamConf, MIN_ZONE_SIZE, QUERY_DELIVERY, QUERY_DROP, UNSET_NUM,
};

/// The arguments of the directive being parsed (`args[0]` is its name).
///
/// # Safety
/// `cf` must be the configuration being parsed, inside a directive handler.
pub(crate) unsafe fn args<'a>(cf: *mut ngx_conf_t) -> &'a mut [ngx_str_t] {
    // SAFETY: `cf->args` is an array of ngx_str_t with `nelts` elements.
    unsafe {
        let a = &*(*cf).args;
        core::slice::from_raw_parts_mut(a.elts.cast::<ngx_str_t>(), a.nelts)
    }
}

/// `edge_router_zone name size;`
pub(super) unsafe extern "C" fn set_zone(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guard(NGX_CONF_ERROR, || {
        // SAFETY: `conf` is our MainConf (NGX_HTTP_MAIN_CONF_OFFSET).
        let mcf = unsafe { &mut *conf.cast::<MainConf>() };
        if !mcf.zone.is_null() {
            return c"is duplicate".as_ptr().cast_mut();
        }
        // SAFETY: TAKE2 guarantees three arguments.
        let args = unsafe { args(cf) };
        let mut name = args[1];
        // SAFETY: a valid argument string of the directive.
        let size = unsafe { ngx::ffi::ngx_parse_size(&mut args[2]) };
        if name.len == 0 {
            ngx_conf_log_error!(NGX_LOG_EMERG, cf, "empty zone name in \"edge_router_zone\"");
            return NGX_CONF_ERROR;
        }
        if size < MIN_ZONE_SIZE {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "invalid zone size \"{}\" in \"edge_router_zone\": at least 64k",
                String::from_utf8_lossy(args[2].as_bytes())
            );
            return NGX_CONF_ERROR;
        }
        // SAFETY: registers a shared zone owned by this module.
        let zone = unsafe {
            ngx::ffi::ngx_shared_memory_add(
                cf,
                &mut name,
                size as usize,
                ptr::addr_of_mut!(crate::ngx_http_edge_router_module).cast(),
            )
        };
        if zone.is_null() {
            return NGX_CONF_ERROR;
        }
        // SAFETY: `zone` was just returned by nginx.
        let z = unsafe { &mut *zone };
        if !z.data.is_null() {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "edge_router_zone \"{}\" is already used",
                String::from_utf8_lossy(name.as_bytes())
            );
            return NGX_CONF_ERROR;
        }
        z.init = Some(crate::zone::init_zone);
        z.data = (mcf as *mut MainConf).cast();
        mcf.zone = zone;
        NGX_CONF_OK
    })
}

/// `edge_router_api /internal-prefix;` and `edge_router_probe
/// /internal-prefix;`: the field at the command's offset.
pub(super) unsafe extern "C" fn set_prefix(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guard(NGX_CONF_ERROR, || {
        // SAFETY: `conf` is our LocConf (NGX_HTTP_LOC_CONF_OFFSET) and the
        // command's offset names one of its `ngx_str_t` fields.
        let field = unsafe { &mut *conf.cast::<u8>().add((*cmd).offset).cast::<ngx_str_t>() };
        if !field.data.is_null() {
            return c"is duplicate".as_ptr().cast_mut();
        }
        // SAFETY: TAKE1 guarantees two arguments.
        let v = unsafe { args(cf) }[1];
        let bytes = v.as_bytes();
        let ok = bytes.len() > 1
            && bytes[0] == b'/'
            && bytes
                .iter()
                .all(|&b| b.is_ascii_graphic() && b != b'?' && b != b'$' && b != b'#');
        if !ok {
            // SAFETY: the command's name is a static string.
            let name = unsafe { (*cmd).name };
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "invalid URI prefix \"{}\" in \"{}\": expected an internal location like /_edge_router_api",
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(name.as_bytes())
            );
            return NGX_CONF_ERROR;
        }
        *field = v;
        NGX_CONF_OK
    })
}

/// `edge_router_origins address|CIDR|name ...;`
pub(super) unsafe extern "C" fn set_origins(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guard(NGX_CONF_ERROR, || {
        // SAFETY: `conf` is our LocConf (NGX_HTTP_LOC_CONF_OFFSET).
        let lcf = unsafe { &mut *conf.cast::<LocConf>() };
        if lcf.origins.is_some() {
            return c"is duplicate".as_ptr().cast_mut();
        }
        let mut list = AllowList::default();
        // SAFETY: 1MORE guarantees at least two arguments.
        for a in &unsafe { args(cf) }[1..] {
            let text = String::from_utf8_lossy(a.as_bytes());
            match Allowed::parse(&text) {
                Ok(e) => list.entries.push(e),
                Err(e) => {
                    ngx_conf_log_error!(NGX_LOG_EMERG, cf, "{e} in \"edge_router_origins\"");
                    return NGX_CONF_ERROR;
                }
            }
        }
        lcf.origins = Some(list);
        NGX_CONF_OK
    })
}

/// `edge_router_query drop|delivery;`
pub(super) unsafe extern "C" fn set_query(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guard(NGX_CONF_ERROR, || {
        // SAFETY: `conf` is our LocConf (NGX_HTTP_LOC_CONF_OFFSET).
        let lcf = unsafe { &mut *conf.cast::<LocConf>() };
        if lcf.query != UNSET_NUM {
            return c"is duplicate".as_ptr().cast_mut();
        }
        // SAFETY: TAKE1 guarantees two arguments.
        let v = unsafe { args(cf) }[1];
        lcf.query = match v.as_bytes() {
            b"drop" => QUERY_DROP,
            b"delivery" => QUERY_DELIVERY,
            other => {
                ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "invalid value \"{}\" in \"edge_router_query\": expected drop or delivery",
                    String::from_utf8_lossy(other)
                );
                return NGX_CONF_ERROR;
            }
        };
        NGX_CONF_OK
    })
}

/// `edge_router_upstream;` inside `upstream {}`.
pub(super) unsafe extern "C" fn set_upstream(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guard(NGX_CONF_ERROR, || {
        // SAFETY: `conf` is our UpstreamConf (NGX_HTTP_SRV_CONF_OFFSET inside
        // an upstream block).
        let ucf = unsafe { &mut *conf.cast::<UpstreamConf>() };
        // SAFETY: inside `upstream {}` the upstream module's server
        // configuration is that block's ngx_http_upstream_srv_conf_t.
        let Some(uscf) = (unsafe { NgxHttpUpstreamModule::server_conf_mut(&*cf) }) else {
            return NGX_CONF_ERROR;
        };
        if uscf.peer.init_upstream.is_some() {
            ngx_conf_log_error!(NGX_LOG_WARN, cf, "load balancing method redefined");
        }
        // nginx insists on at least one `server` in every upstream block;
        // the peers here come from routes, so an empty placeholder entry
        // satisfies that check and is never used.
        // SAFETY: `servers` is the block's array of ngx_http_upstream_server_t.
        let placeholder = unsafe { ngx::ffi::ngx_array_push(uscf.servers) };
        if placeholder.is_null() {
            return NGX_CONF_ERROR;
        }
        // SAFETY: the new element has room for one server entry.
        unsafe {
            core::ptr::write_bytes(
                placeholder.cast::<ngx::ffi::ngx_http_upstream_server_t>(),
                0,
                1,
            )
        };
        uscf.flags = NGX_HTTP_UPSTREAM_CREATE as ngx_uint_t;
        uscf.peer.init_upstream = Some(crate::upstream::init_upstream);
        ucf.enabled = true;
        NGX_CONF_OK
    })
}
