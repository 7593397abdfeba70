//! External checkers run over the saved playlist revisions: the npm
//! `hls-parser` in strict mode (`conform/hls-parser-check.mjs`) and, when
//! installed, `media-doctor check-hls` (crates.io). Asking for one that
//! cannot run is an error (exit 2), never a silent skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::error::Error;
use crate::findings::{Collector, Context, Issue, Severity};
use crate::report::ExternalRun;
use crate::rules::ids_media::EXT_HLS_PARSER;

/// Every saved `.m3u8` below `dir`, sorted.
pub fn playlists(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "m3u8") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[derive(Deserialize)]
struct HlsParserOut {
    files: usize,
    failures: Vec<HlsParserFailure>,
}

#[derive(Deserialize)]
struct HlsParserFailure {
    file: String,
    error: String,
}

/// Whether the hls-parser check can run: the script, its npm install, node.
pub fn hls_parser_ready(node: &str, script: &Path) -> Result<(), Error> {
    let tool = "hls-parser".to_string();
    let dir = script.parent().unwrap_or(Path::new("."));
    if !script.is_file() {
        return Err(Error::External {
            tool,
            reason: format!("{} not found", script.display()),
        });
    }
    if !dir.join("node_modules").join("hls-parser").is_dir() {
        let d = dir.display();
        return Err(Error::External {
            tool,
            reason: format!("{d}/node_modules/hls-parser is missing: run `npm ci --prefix {d}`"),
        });
    }
    match Command::new(node).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(Error::External {
            tool,
            reason: format!("{node} --version failed ({})", o.status),
        }),
        Err(e) => Err(Error::External {
            tool,
            reason: format!("cannot run {node}: {e}"),
        }),
    }
}

/// Runs `node <script> <dir>`; its failures become findings.
pub fn hls_parser(
    node: &str,
    script: &Path,
    dir: &Path,
    col: &mut Collector,
) -> Result<ExternalRun, Error> {
    hls_parser_ready(node, script)?;
    let tool = "hls-parser".to_string();
    let out = Command::new(node)
        .arg(script)
        .arg(dir)
        .output()
        .map_err(|e| Error::External {
            tool: tool.clone(),
            reason: format!("cannot run {node}: {e}"),
        })?;
    let parsed: HlsParserOut =
        serde_json::from_slice(&out.stdout).map_err(|e| Error::External {
            tool: tool.clone(),
            reason: format!(
                "unexpected output ({e}): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })?;
    for f in &parsed.failures {
        let ctx = Context {
            playlist: f.file.clone(),
            ..Default::default()
        };
        let msg = first_line(&f.error);
        col.add(
            Issue::new(
                &EXT_HLS_PARSER,
                msg.clone(),
                format!("{}: {msg}", short(&f.file)),
            ),
            &ctx,
        );
    }
    Ok(ExternalRun {
        tool,
        files: parsed.files,
        failures: parsed.failures.len(),
    })
}

#[derive(Deserialize)]
struct DoctorOut {
    findings: Vec<DoctorFinding>,
}

#[derive(Deserialize)]
struct DoctorFinding {
    severity: String,
    rule_id: String,
    message: String,
}

const MEDIA_DOCTOR_INSTALL: &str = "install: cargo install media-doctor --version 0.12.0 --locked";

/// Whether `media-doctor` runs.
pub fn media_doctor_ready(bin: &str) -> Result<(), Error> {
    let tool = "media-doctor".to_string();
    match Command::new(bin).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(Error::External {
            tool,
            reason: format!(
                "{bin} --version failed ({}); {MEDIA_DOCTOR_INSTALL}",
                o.status
            ),
        }),
        Err(e) => Err(Error::External {
            tool,
            reason: format!("cannot run {bin}: {e}; {MEDIA_DOCTOR_INSTALL}"),
        }),
    }
}

/// Runs `media-doctor check-hls --input <file> --json` on every revision.
pub fn media_doctor(bin: &str, dir: &Path, col: &mut Collector) -> Result<ExternalRun, Error> {
    media_doctor_ready(bin)?;
    let tool = "media-doctor".to_string();
    let files = playlists(dir);
    let mut failures = 0;
    for f in &files {
        let out = Command::new(bin)
            .args(["check-hls", "--json", "--input"])
            .arg(f)
            .output()
            .map_err(|e| Error::External {
                tool: tool.clone(),
                reason: format!("cannot run {bin}: {e}; {MEDIA_DOCTOR_INSTALL}"),
            })?;
        let parsed: DoctorOut =
            serde_json::from_slice(&out.stdout).map_err(|e| Error::External {
                tool: tool.clone(),
                reason: format!(
                    "unexpected output on {} ({e}): {}",
                    f.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            })?;
        if !parsed.findings.is_empty() {
            failures += 1;
        }
        for d in parsed.findings {
            let severity = if d.severity.eq_ignore_ascii_case("error") {
                Severity::Error
            } else {
                Severity::Warning
            };
            let ctx = Context {
                playlist: f.display().to_string(),
                ..Default::default()
            };
            let rule = format!("media-doctor:{}", d.rule_id);
            let msg = first_line(&d.message);
            // Folded per rule: media-doctor repeats one problem per part and revision.
            col.add_raw(
                &rule,
                severity,
                "external",
                rule.clone(),
                format!("{}: {msg}", short(&f.display().to_string())),
                &ctx,
            );
        }
    }
    Ok(ExternalRun {
        tool,
        files: files.len(),
        failures,
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

fn short(path: &str) -> &str {
    let mut parts = path.rsplitn(3, '/');
    let file = parts.next().unwrap_or(path);
    match parts.next() {
        Some(dir) => &path[path.len() - file.len() - dir.len() - 1..],
        None => file,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_saved_playlists_and_shortens_paths() {
        let dir = std::env::temp_dir().join(format!("conform-ext-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("a/000001-plain.m3u8"), "#EXTM3U\n").unwrap();
        std::fs::write(dir.join("a/notes.txt"), "x").unwrap();
        let found = playlists(&dir);
        assert_eq!(found.len(), 1);
        assert_eq!(short("/tmp/x/a/000001-plain.m3u8"), "a/000001-plain.m3u8");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_install_is_an_error() {
        let mut col = Collector::new();
        let script = std::env::temp_dir().join("conform-no-such-dir/hls-parser-check.mjs");
        assert!(hls_parser("node", &script, Path::new("/tmp"), &mut col).is_err());
        assert!(media_doctor(
            "/nonexistent/media-doctor",
            Path::new("/nonexistent"),
            &mut col
        )
        .is_err());
    }
}
