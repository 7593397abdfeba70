//! Secrets kept in the state folder: generated on first use (32 hex
//! characters from /dev/urandom), mode 0600, reused afterwards.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The secret stored in `file`, generated when it is missing or empty.
pub fn kept_secret(file: &Path) -> std::io::Result<String> {
    let empty = fs::metadata(file).map(|m| m.len() == 0).unwrap_or(true);
    if empty {
        let mut bytes = [0u8; 16];
        fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = file.with_extension("new");
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(hex.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, file)?;
    }
    fs::set_permissions(file, fs::Permissions::from_mode(0o600))?;
    Ok(fs::read_to_string(file)?.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_private_and_reused() {
        let d = std::env::temp_dir().join(format!("kept-secret-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let f = d.join("token");
        let a = kept_secret(&f).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        let mode = fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(kept_secret(&f).unwrap(), a);
        let mode = fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode restored on reuse");
        fs::remove_dir_all(&d).unwrap();
    }
}
