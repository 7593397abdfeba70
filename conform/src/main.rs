//! `rtmp-live-conform`: see the library (`lib.rs`) and `conform/README.md`.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use rtmp_live_conform::config::Config;
use rtmp_live_conform::error::Error;
use rtmp_live_conform::findings::Collector;
use rtmp_live_conform::{external, follow, rules};

fn main() -> ExitCode {
    let cfg = Config::parse();
    if cfg.list_rules {
        let mut out = std::io::stdout().lock();
        for r in rules::catalogue() {
            let line = format!(
                "{} {:<40} {:<9} {}",
                r.severity.letter(),
                r.id,
                r.section,
                r.summary
            );
            // A closed pipe (`| head`) is no reason to panic.
            if writeln!(out, "{line}").is_err() {
                break;
            }
        }
        return ExitCode::SUCCESS;
    }
    match run(&cfg) {
        Ok(findings) => ExitCode::from(u8::from(findings > 0)),
        Err(e) => {
            eprintln!("rtmp-live-conform: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the check; returns the number of findings.
fn run(cfg: &Config) -> Result<usize, Error> {
    let (url, opts) = cfg.options()?;
    // The external checkers are checked before the run spends its time.
    if cfg.hls_parser {
        external::hls_parser_ready(&cfg.node, &cfg.hls_parser_script)?;
    }
    if cfg.media_doctor {
        external::media_doctor_ready(&cfg.media_doctor_bin)?;
    }
    let save_dir = opts.save_dir.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    let mut report = rt.block_on(follow::run::run(url, opts))?;
    if let Some(dir) = &save_dir {
        let mut col = Collector::new();
        if cfg.hls_parser {
            report.external.push(external::hls_parser(
                &cfg.node,
                &cfg.hls_parser_script,
                dir,
                &mut col,
            )?);
        }
        if cfg.media_doctor {
            report.external.push(external::media_doctor(
                &cfg.media_doctor_bin,
                dir,
                &mut col,
            )?);
        }
        report.findings.extend(col.into_findings());
        report.finish();
    }
    let mut text = report.summary();
    for x in &report.external {
        text += &format!(
            "external {}: {} revision(s) checked, {} rejected\n",
            x.tool, x.files, x.failures
        );
    }
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if let Some(path) = &cfg.report {
        let json = serde_json::to_vec_pretty(&report).map_err(|e| Error::io("report", e.into()))?;
        std::fs::write(path, json)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    }
    Ok(report.findings.len())
}
