//! `rtmp-live-render`: the containers' config renderer, the same Rust code
//! `make up` renders with. Template variables come from the environment
//! (plus [`render::derived`]); a missing one fails, naming it.
//!
//! - `rtmp-live-render file <template> <out>`: one template;
//! - `rtmp-live-render origin <templates> <dir>`: an origin's configs into
//!   `dir`, chosen as `make up` chooses them ([`components::origin_configs`];
//!   `ABR=1` for the ladder, `LLHLS=0` for nginx-rtmp's files only);
//! - `rtmp-live-render edge <template> <conf>`: the edge container's nginx
//!   with its list of origins kept exact (see `edge.rs`).

mod edge;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rtmp_live_platform::topology::system_resolver;
use rtmp_live_platform::{components, render, Config};

#[derive(Parser)]
#[command(about = "Renders the platform's nginx configs from the environment")]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// One template into `out`.
    File { template: PathBuf, out: PathBuf },
    /// The edge container's nginx, its origins kept exact (runs until
    /// nginx ends or a SIGTERM).
    Edge { template: PathBuf, conf: PathBuf },
    /// An origin's configs (from the templates in `templates`) into `dir`.
    Origin {
        templates: PathBuf,
        dir: PathBuf,
        /// The ABR ladder's packaging.
        #[arg(long, env = "ABR", default_value = "0")]
        abr: String,
        /// Playlists through the LL-HLS component.
        #[arg(long, env = "LLHLS", default_value = "1")]
        llhls: String,
        /// The DVR window (nginx-rtmp's playlist holds it without LL-HLS).
        #[arg(long, env = "DVR_WINDOW", default_value = rtmp_live_types::window::DEFAULT,
              value_parser = rtmp_live_types::window::parse)]
        dvr_window: std::time::Duration,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let vars = render::derived(&env, system_resolver);
    let configs = match args.what {
        What::Edge { template, conf } => return edge::run(template, conf, vars),
        What::File { template, out } => vec![Config {
            template,
            out,
            vars,
        }],
        What::Origin {
            templates,
            dir,
            abr,
            llhls,
            dvr_window,
        } => {
            // Left by an earlier run of the container: only this run's
            // ladder application is included.
            let _ = std::fs::remove_dir_all(dir.join("rtmp.d"));
            let packaging = components::Packaging {
                abr: abr == "1",
                llhls: llhls == "1",
                dvr_window,
            };
            components::origin_configs(|n| templates.join(n), &dir, packaging, &vars)
        }
    };
    for c in &configs {
        if let Err(e) = write(c) {
            eprintln!("rtmp-live-render: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

pub(crate) fn write(c: &Config) -> Result<(), String> {
    let text = std::fs::read_to_string(&c.template)
        .map_err(|e| format!("{}: {e}", c.template.display()))?;
    let out = render(&text, &c.vars).map_err(|e| format!("{}: {e}", c.template.display()))?;
    if let Some(parent) = c.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(&c.out, out).map_err(|e| format!("{}: {e}", c.out.display()))
}
