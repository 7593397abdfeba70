//! Started as root, `make up` runs the nginx workers (which parse RTMP from
//! the internet and run the edge module) and the ABR ladder they start as
//! an unprivileged user: `NGINX_USER`, `www-data` by default. The masters
//! (root) open the listening sockets and logs; the workers must reach the
//! state folder, write the HLS folders, caches and temporary files (given
//! to them: `Process::worker_dirs`; nginx also hands over its own temp and
//! cache paths), and read the player page and the ladder script. Checked
//! here, as that user, before anything starts.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::unistd::{Gid, Group, Uid, User};

/// The workers' user when `make up` runs as root and `NGINX_USER` is unset
/// (Debian's and Ubuntu's web-server user, present on every install).
pub const DEFAULT_USER: &str = "www-data";

/// The workers' user and group.
#[derive(Clone, Copy, Debug)]
pub struct Ids {
    pub uid: Uid,
    pub gid: Gid,
}

/// `nginx_user` (`user [group]`, nginx's `user` directive), made explicit
/// (`user group`: nginx would otherwise want a group named like the user,
/// which `nobody` has not), with its ids when this runs as root and the
/// workers run as someone else; `None` otherwise (nginx then keeps this
/// user for its workers).
pub fn resolve(nginx_user: &str) -> Result<(String, Option<Ids>), String> {
    if !Uid::effective().is_root() {
        return Ok((nginx_user.to_string(), None));
    }
    let mut words = nginx_user.split_whitespace();
    let name = words.next().unwrap_or_default();
    let user = User::from_name(name)
        .map_err(|e| format!("NGINX_USER {name:?}: {e}"))?
        .ok_or_else(|| {
            format!(
                "NGINX_USER: no user {name:?} here (as root the nginx workers run as \
                 {DEFAULT_USER} unless NGINX_USER names another unprivileged user)"
            )
        })?;
    let group = match words.next() {
        Some(g) => Group::from_name(g)
            .map_err(|e| format!("NGINX_USER group {g:?}: {e}"))?
            .ok_or_else(|| format!("NGINX_USER: no group {g:?} here"))?,
        None => Group::from_gid(user.gid)
            .map_err(|e| format!("NGINX_USER {name:?}'s group: {e}"))?
            .ok_or_else(|| format!("NGINX_USER: {name:?}'s group {} has no name", user.gid))?,
    };
    let directive = format!("{} {}", user.name, group.name);
    if user.uid.is_root() {
        crate::say::say(
            "warning: NGINX_USER is root: the nginx workers and the ABR ladder run as root",
        );
        return Ok((directive, None));
    }
    Ok((
        directive,
        Some(Ids {
            uid: user.uid,
            gid: group.gid,
        }),
    ))
}

/// Whether `test <op> <path>` succeeds as the workers' user.
fn as_worker(ids: Ids, op: &str, path: &Path) -> bool {
    let mut cmd = Command::new("test");
    cmd.arg(op)
        .arg(path)
        .uid(ids.uid.as_raw())
        .gid(ids.gid.as_raw())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.status().is_ok_and(|s| s.success())
}

/// Makes the state folder traversable by the workers (adds the `x` bits of
/// group and others, removes nothing: its secrets stay 0600), then checks,
/// as their user, that they reach it and read what they serve or run.
pub fn check_access(
    ids: Ids,
    user: &str,
    state_dir: &Path,
    player_dir: &Path,
    ladder: Option<&Path>,
) -> Result<(), String> {
    let meta = std::fs::metadata(state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
    let mode = meta.permissions().mode();
    if mode & 0o011 != 0o011 {
        std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(mode | 0o011))
            .map_err(|e| format!("{}: {e}", state_dir.display()))?;
    }
    if !as_worker(ids, "-x", state_dir) {
        return Err(format!(
            "the nginx workers run as {user} and cannot reach STATE_DIR {} (a folder above it \
             is private): choose a STATE_DIR they can traverse (as root the default is \
             /var/lib/rtmp-live)",
            state_dir.display()
        ));
    }
    let served = ["index.html", "player.js", "player.css", "hls.min.js"]
        .map(|f| player_dir.join(f))
        .into_iter()
        .filter(|f| f.exists());
    for f in served {
        if !as_worker(ids, "-r", &f) {
            return Err(format!(
                "the edge's workers run as {user} and cannot read {}: set PLAYER_DIR to a copy \
                 they can read",
                f.display()
            ));
        }
    }
    if let Some(l) = ladder {
        if !as_worker(ids, "-x", l) {
            return Err(format!(
                "the origin's workers run as {user} and cannot run the ABR ladder {}: move the \
                 build (BIN_DIR) where they can read it",
                l.display()
            ));
        }
    }
    Ok(())
}
