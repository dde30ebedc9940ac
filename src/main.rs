//! `sweep` binary: parse the command line, set up logging, call the library, and map the
//! outcome to an exit code (see `sweep::error`).

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};
use sweep::error::{CANNOT_START, RUNS_FAILED, SUCCESS};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("SWEEP_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .without_time()
        .with_target(false)
        .init();
    let code = match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            CANNOT_START
        }
    };
    ExitCode::from(code as u8)
}

/// Writes to stdout, treating a closed pipe as success.
fn emit(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn run(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Run(args) => {
            if args.dry_run {
                let (spec, plan) = sweep::app::plan_only(&args.spec, args.data.as_deref())?;
                let mut out = String::from("run_id,");
                out.push_str(&sweep::plan::PARAM_COLUMNS.join(","));
                out.push('\n');
                for r in &plan.runs {
                    out.push_str(&format!("{},{}\n", r.id, r.params.csv_fields().join(",")));
                }
                emit(&out)?;
                tracing::info!(
                    "dry run: {} runs planned for sweep {:?}; nothing trained",
                    plan.runs.len(),
                    spec.name
                );
                return Ok(SUCCESS);
            }
            let opts = args.into_options();
            let (_, plan) = sweep::app::plan_only(&opts.spec, opts.data.as_deref())?;
            let epochs: u64 = plan.runs.iter().map(|r| r.params.epochs as u64).sum();
            let reporter = sweep::progress::Reporter::new(
                plan.runs.len(),
                epochs,
                std::io::stderr().is_terminal(),
            );
            let report = sweep::app::run(&opts, &reporter);
            reporter.finish();
            let report = report?;
            let s = report.stats;
            tracing::info!(
                "{} runs: {} ok, {} diverged, {} failed, {} skipped ({} reused from earlier); outputs in {}",
                s.planned,
                s.ok,
                s.diverged,
                s.failed,
                s.skipped,
                s.reused,
                report.dir.display()
            );
            Ok(if s.has_failures() {
                RUNS_FAILED
            } else {
                SUCCESS
            })
        }
        Command::Summarize(args) => {
            let sweeps = sweep::app::summarize(&args.dir)?;
            for s in sweeps {
                tracing::info!("rebuilt tables of {}", s.display());
            }
            let _ = args.format;
            Ok(SUCCESS)
        }
    }
}
