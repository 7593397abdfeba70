//! The stream folder's file operations: atomic writes, reads that do not
//! touch access times, and clearing what this process packaged.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Deletes this component's files in a stream folder (segments, their
/// temporary names, init segments).
pub(super) fn remove_packaged(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let init = name.starts_with("init-") || name.starts_with(".init-");
        if name.ends_with(".m4s") || (init && name.ends_with(".mp4")) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes a file under a temporary name, then renames it into place.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("tmp")
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

/// The number in a fragment's file name (`<n>.ts`).
pub fn fragment_number(uri: &str) -> Option<u64> {
    uri.rsplit('/').next()?.strip_suffix(".ts")?.parse().ok()
}

/// Opens a fragment for reading without updating its access time: the file
/// is modified all the time, so with `relatime` nearly every read would
/// write the inode (a third of the reads' cost). `O_NOATIME` needs the
/// file's owner (nginx's user, as we run); otherwise a plain open.
pub(super) fn open_noatime(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path)
        .or_else(|_| File::open(path))
}

/// Reads until `buf` is full or the file ends.
pub(super) fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = 0;
    while len < buf.len() {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

/// Reads a playlist (a few hundred bytes, rewritten with each fragment):
/// without updating its access time (the first read of each new file would
/// write its inode) and without asking its size first.
pub(super) fn read_playlist(path: &Path) -> io::Result<String> {
    let mut f = open_noatime(path)?;
    let (mut buf, mut len) = (vec![0u8; 4096], 0);
    loop {
        if len == buf.len() {
            buf.resize(2 * len, 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
