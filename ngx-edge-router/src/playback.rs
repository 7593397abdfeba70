//! Signed playback: `edge_router_playback_secret` (the secret, read from
//! its file when the configuration is loaded); `edge_router_token_prefix`
//! (a server-rewrite-phase handler that takes `/t/<token>` off the path,
//! before any location is chosen, and keeps the token in
//! `$edge_router_token`); and the check of a request's token
//! (`edge_router_token`) before any routing. The token's format is
//! `rtmp_live_types::playback`, shared with the API that issues tokens.
//!
//! The token never reaches the cache or collapse keys, nor the origin: the
//! path goes on without it, so signed and unsigned viewers share every
//! cached object.

use core::ffi::{c_char, c_void};
use core::sync::atomic::{AtomicUsize, Ordering};

use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_http_request_t, ngx_int_t, ngx_str_t, NGX_DECLINED,
    NGX_HTTP_FORBIDDEN, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_LOG_EMERG, NGX_LOG_INFO,
};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, Request};
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
        // SAFETY: `cf` is the configuration being parsed, in this
        // directive's handler; TAKE1 guarantees two arguments.
        let path = unsafe { crate::conf::args(cf) }[1];
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

/// The index of `$edge_router_token` among the request's variables.
static TOKEN_VAR: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Finds `$edge_router_token`'s index (postconfiguration).
///
/// # Safety
/// `cf` must be the configuration being parsed.
pub unsafe fn index_token_variable(cf: *mut ngx_conf_t) -> ngx_int_t {
    let mut name = ngx::ngx_string!("edge_router_token");
    // SAFETY: per the contract; the variable was added in preconfiguration.
    let i = unsafe { ngx::ffi::ngx_http_get_variable_index(cf, &mut name) };
    match usize::try_from(i) {
        Ok(i) => {
            TOKEN_VAR.store(i, Ordering::Relaxed);
            ngx::ffi::NGX_OK as ngx_int_t
        }
        Err(_) => ngx::ffi::NGX_ERROR as ngx_int_t,
    }
}

/// Whether `t` has a token's shape closely enough to be taken off the path
/// (and then checked, or refused): a digit first, a `.`, only the token's
/// characters. No stream or rendition folder name has a `.`, so a path
/// such as `/t/720p/index.m3u8` (stream `t`) is left alone.
fn token_like(t: &[u8]) -> bool {
    !t.is_empty()
        && t.len() <= 2 * playback::MAX_TOKEN_LEN
        && t[0].is_ascii_digit()
        && t.contains(&b'.')
        && t.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The server-rewrite-phase handler (`NGX_HTTP_SERVER_REWRITE_PHASE`):
/// with `edge_router_token_prefix /t/`, `/t/<token>/<rest>` goes on as
/// `/<rest>` (the decoded, normalized path nginx matches locations
/// against) with the token in `$edge_router_token`. Never an answer.
pub unsafe extern "C" fn take_prefix(r: *mut ngx_http_request_t) -> ngx_int_t {
    guard(NGX_DECLINED as ngx_int_t, || {
        // SAFETY: nginx calls phase handlers with a live request.
        let req = unsafe { Request::from_ngx_http_request(r) };
        strip(req);
        NGX_DECLINED as ngx_int_t
    })
}

fn strip(r: &mut Request) {
    let Some(lcf) = EdgeRouter::location_conf(r.as_ref()) else {
        return;
    };
    let index = TOKEN_VAR.load(Ordering::Relaxed);
    if lcf.token_prefix.len == 0 || index == usize::MAX || !r.is_main() {
        return;
    }
    // The path and the token stay where they are, in the request's pool.
    let uri: &[u8] = {
        let u = r.as_ref().uri;
        if u.data.is_null() {
            return;
        }
        // SAFETY: `r->uri` is `len` bytes in the request's pool, which
        // outlives the request's handlers and variables.
        unsafe { core::slice::from_raw_parts(u.data, u.len) }
    };
    let Some(rest) = uri.strip_prefix(lcf.token_prefix.as_bytes()) else {
        return;
    };
    let Some(slash) = rest.iter().position(|&b| b == b'/') else {
        return;
    };
    let (token, path) = rest.split_at(slash);
    if !token_like(token) {
        return;
    }
    let raw: *mut ngx_http_request_t = (&mut *r).into();
    // SAFETY: a live main request before its location is chosen: nginx
    // matches locations against `r->uri`, builds the upstream request from
    // it (`valid_unparsed_uri` 0, escaped: `quoted_uri`) and takes the
    // extension from it (`ngx_http_set_exten`); `r->variables` has a slot
    // per indexed variable, `index` among them.
    unsafe {
        if crate::variables::set_kept((*raw).variables.add(index), token)
            != ngx::core::Status::NGX_OK
        {
            return;
        }
        (*raw).uri = ngx_str_t {
            len: path.len(),
            data: path.as_ptr().cast_mut(),
        };
        (*raw).set_valid_unparsed_uri(0);
        (*raw).set_quoted_uri(1);
        ngx::ffi::ngx_http_set_exten(raw);
    }
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
