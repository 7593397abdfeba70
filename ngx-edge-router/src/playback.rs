//! Signed playback: `edge_router_playback_secret` (the secret, read from
//! its file when the configuration is loaded) and the check of a request's
//! token (`edge_router_token`, taken from the path by the configuration,
//! `/t/<token>/<stream>/...`) before any routing. The token's format is
//! `rtmp_live_types::playback`, shared with the API that issues tokens.
//!
//! The token never reaches the cache or collapse keys, nor the origin: the
//! configuration strips it from the URI, so signed and unsigned viewers
//! share every cached object.

use core::ffi::{c_char, c_void};

use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_int_t, NGX_HTTP_FORBIDDEN, NGX_HTTP_INTERNAL_SERVER_ERROR,
    NGX_LOG_EMERG, NGX_LOG_INFO,
};
use ngx::http::{HttpModuleMainConf, Request};
use ngx::{ngx_conf_log_error, ngx_log_error};
use rtmp_live_types::playback::{self, MIN_SECRET_LEN};

use crate::conf::{LocConf, MainConf};
use crate::ffi::guard;
use crate::EdgeRouter;

/// What a request showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// No token (allowed: signing is not required here).
    Absent,
    /// A valid token for this stream.
    Valid,
}

/// `edge_router_playback_secret /path/to/file;` (http level).
pub unsafe extern "C" fn set_secret(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guard(NGX_CONF_ERROR, || {
        // SAFETY: `conf` is our MainConf (NGX_HTTP_MAIN_CONF_OFFSET).
        let mcf = unsafe { &mut *conf.cast::<MainConf>() };
        if !mcf.secret.is_empty() {
            return c"is duplicate".as_ptr().cast_mut();
        }
        // SAFETY: TAKE1 guarantees two arguments in `cf->args`.
        let path = unsafe {
            let a = &*(*cf).args;
            *a.elts.cast::<ngx::ffi::ngx_str_t>().add(1)
        };
        let path = String::from_utf8_lossy(path.as_bytes()).into_owned();
        let secret = match std::fs::read(&path) {
            Ok(mut b) => {
                while b.last().is_some_and(u8::is_ascii_whitespace) {
                    b.pop();
                }
                b
            }
            Err(e) => {
                ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "edge_router_playback_secret: cannot read \"{path}\": {e}"
                );
                return NGX_CONF_ERROR;
            }
        };
        if secret.len() < MIN_SECRET_LEN {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "edge_router_playback_secret: \"{path}\" holds fewer than {MIN_SECRET_LEN} bytes"
            );
            return NGX_CONF_ERROR;
        }
        mcf.secret = secret;
        NGX_CONF_OK
    })
}

/// nginx's cached wall clock, Unix seconds.
fn unix_now() -> u64 {
    // SAFETY: `ngx_cached_time` points at the current slot of nginx's time
    // cache, updated by this process's event loop.
    let sec = unsafe { (*ngx::ffi::ngx_cached_time).sec };
    u64::try_from(sec).unwrap_or(0)
}

/// Checks the playback token of viewer request `r` for stream `name`: the
/// handler's 403 when it is missing where needed, malformed, expired, for
/// another stream or bound to another address; one log line says which.
pub fn check(r: &mut Request, lcf: &LocConf, name: &[u8]) -> Result<Token, ngx_int_t> {
    if lcf.token.is_null() {
        return Ok(Token::Absent);
    }
    // SAFETY: a non-null complex value compiled at configuration time.
    let cv = unsafe { &*lcf.token };
    let Some(token) = r.get_complex_value(cv) else {
        return Err(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
    };
    let token = token.as_bytes();
    if token.is_empty() {
        if lcf.signed == 1 {
            ngx_log_error!(
                NGX_LOG_INFO,
                r.log(),
                "edge_router: playback of \"{}\" refused: no token",
                String::from_utf8_lossy(name)
            );
            return Err(NGX_HTTP_FORBIDDEN as ngx_int_t);
        }
        return Ok(Token::Absent);
    }
    let secret = EdgeRouter::main_conf(r.as_ref()).map_or(&[][..], |m| &m.secret[..]);
    // SAFETY: the connection of a live request is live; `addr_text` is its
    // client address as text (after `real_ip`, if configured).
    let address = unsafe { (*r.connection()).addr_text.as_bytes() };
    match playback::verify(secret, token, name, unix_now(), address) {
        Ok(()) => Ok(Token::Valid),
        Err(why) => {
            ngx_log_error!(
                NGX_LOG_INFO,
                r.log(),
                "edge_router: playback of \"{}\" refused: token {}",
                String::from_utf8_lossy(name),
                why.as_str()
            );
            Err(NGX_HTTP_FORBIDDEN as ngx_int_t)
        }
    }
}

/// A route that needs a token (the stream's configuration asks for it) for
/// a request that showed none: the 403.
pub fn refuse_unsigned(r: &Request, name: &[u8]) -> ngx_int_t {
    ngx_log_error!(
        NGX_LOG_INFO,
        r.log(),
        "edge_router: playback of \"{}\" refused: the stream needs a token",
        String::from_utf8_lossy(name)
    );
    NGX_HTTP_FORBIDDEN as ngx_int_t
}
