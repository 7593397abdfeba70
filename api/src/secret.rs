//! The secret playback tokens are signed with (`API_PLAYBACK_SECRET_FILE`
//! or `API_PLAYBACK_SECRET`): loaded and checked once at start, never
//! printed. The token format is `rtmp_live_types::playback`.

use std::path::Path;

use rtmp_live_types::playback;

/// The signing secret (`API_PLAYBACK_SECRET_FILE`); never printed.
pub struct PlaybackSecret(Vec<u8>);

impl std::fmt::Debug for PlaybackSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlaybackSecret(redacted)")
    }
}

impl PlaybackSecret {
    /// The file's content without trailing whitespace (a newline written by
    /// an editor or `echo` is not part of the secret), at least
    /// [`playback::MIN_SECRET_LEN`] bytes. Errors never show the content.
    pub fn load(path: &Path) -> Result<PlaybackSecret, String> {
        let raw =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_bytes(raw, &path.display().to_string())
    }

    /// The secret given as a value (`API_PLAYBACK_SECRET`).
    pub fn from_value(value: &str) -> Result<PlaybackSecret, String> {
        Self::from_bytes(value.as_bytes().to_vec(), "API_PLAYBACK_SECRET")
    }

    fn from_bytes(mut raw: Vec<u8>, source: &str) -> Result<PlaybackSecret, String> {
        let len = raw
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        raw.truncate(len);
        if raw.len() < playback::MIN_SECRET_LEN {
            return Err(format!(
                "the secret in {} is {} bytes long, at least {} are required (e.g. 32 hex \
                 characters from /dev/urandom)",
                source,
                raw.len(),
                playback::MIN_SECRET_LEN
            ));
        }
        Ok(PlaybackSecret(raw))
    }
}

impl PlaybackSecret {
    /// The secret's bytes, to sign with.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_from_files() {
        let dir = std::env::temp_dir().join(format!("playback-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("s");
        std::fs::write(&f, "0123456789abcdef\n\n").unwrap();
        assert_eq!(PlaybackSecret::load(&f).unwrap().0, b"0123456789abcdef");
        std::fs::write(&f, "0123456789abcde \n").unwrap();
        let e = PlaybackSecret::load(&f).unwrap_err();
        assert!(e.contains("15 bytes") && !e.contains("0123"), "{e}");
        assert!(PlaybackSecret::load(&dir.join("missing")).is_err());
        assert_eq!(
            format!("{:?}", PlaybackSecret(b"x".to_vec())),
            "PlaybackSecret(redacted)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
