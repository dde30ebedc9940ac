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
            let shard = match &args.shard {
                Some(arg) => arg.resolve(|var| std::env::var(var).ok())?,
                None => sweep::exec::shard::Shard::WHOLE,
            };
            if args.dry_run {
                let (spec, plan) = sweep::app::plan_only(&args.spec, args.data.as_deref())?;
                let mine = sweep::app::shard_of(&plan, shard);
                let mut out = String::from("run_id,");
                out.push_str(&sweep::plan::PARAM_COLUMNS.join(","));
                out.push('\n');
                for r in &mine.runs {
                    out.push_str(&format!("{},{}\n", r.id, r.params.csv_fields().join(",")));
                }
                emit(&out)?;
                tracing::info!(
                    "dry run: {} of {} planned runs (shard {shard}) for sweep {:?}; nothing trained",
                    mine.runs.len(),
                    plan.runs.len(),
                    spec.name
                );
                return Ok(SUCCESS);
            }
            let opts = args.into_options(shard);
            let (_, plan) = sweep::app::plan_only(&opts.spec, opts.data.as_deref())?;
            let mine = sweep::app::shard_of(&plan, shard);
            let epochs: u64 = mine.runs.iter().map(|r| r.params.epochs as u64).sum();
            let reporter = sweep::progress::Reporter::new(
                mine.runs.len(),
                epochs,
                std::io::stderr().is_terminal(),
            );
            let report = sweep::app::run(&opts, &reporter);
            reporter.finish();
            let report = report?;
            let s = report.stats;
            tracing::info!(
                "{} runs: {} ok, {} diverged, {} failed, {} skipped, {} left to another runner ({} reused from earlier); outputs in {}",
                s.planned,
                s.ok,
                s.diverged,
                s.failed,
                s.skipped,
                s.elsewhere,
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
            let opts = sweep::output::summary::SummaryOptions {
                figures: !args.no_figures,
            };
            let many = sweep::app::summarize(&args.dir, &opts)?;
            let mut out = String::new();
            for (dir, summary) in &many {
                if many.len() > 1 && !matches!(args.format, cli::Format::Csv) {
                    out.push_str(&format!("# {}\n", dir.display()));
                }
                out.push_str(&summary.render(args.format.into()));
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                for line in summary.missing().lines() {
                    tracing::warn!("{}: {line}", dir.display());
                }
                if opts.figures {
                    tracing::info!("report: {}", dir.join("report.html").display());
                }
            }
            emit(&out)?;
            Ok(SUCCESS)
        }
        Command::Data(cli::DataCommand::Fetch {
            dataset: _,
            dir,
            url,
        }) => {
            let opts = sweep::data::fetch::FetchOptions {
                url,
                dir,
                manifest: sweep::data::fetch::Manifest::cifar10_official(),
            };
            let bar = indicatif::ProgressBar::new(0);
            if std::io::stderr().is_terminal() {
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} {bytes}/{total_bytes} {bar:30} {bytes_per_sec} ETA {eta}",
                    )
                    .expect("valid template"),
                );
            } else {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            let result = sweep::data::fetch::fetch(&opts, &mut |done, total| {
                if let Some(t) = total {
                    bar.set_length(t);
                }
                bar.set_position(done);
            });
            bar.finish_and_clear();
            let path = result?;
            tracing::info!("CIFAR-10 verified and installed in {}", path.display());
            emit(&format!("{}\n", path.display()))?;
            Ok(SUCCESS)
        }
        Command::Data(cli::DataCommand::Verify { dir }) => {
            let report = sweep::data::fetch::verify(
                &dir,
                &sweep::data::fetch::Manifest::cifar10_official(),
            )?;
            emit(&format!("{report}\n"))?;
            // Missing files are normal (a split may use only some batches); wrong ones are not.
            Ok(if report.wrong().count() == 0 {
                SUCCESS
            } else {
                RUNS_FAILED
            })
        }
        Command::Slurm(args) => {
            let (spec, _plan) = sweep::app::plan_only(&args.spec, None)?;
            let opts = sweep::exec::slurm::SlurmOptions {
                spec: args.spec,
                out: args.out,
                tasks: args.tasks.get(),
                partition: args.partition,
                time: args.time,
                cpus_per_task: args.cpus_per_task,
                extra_args: args.sbatch_args,
                sweep_bin: std::env::current_exe()?,
            };
            let (array, summarize) = sweep::exec::slurm::write_scripts(&opts, &spec.name)?;
            tracing::info!("wrote {} and {}", array.display(), summarize.display());
            if args.submit {
                let (a, s) = sweep::exec::slurm::submit(&array, &summarize)?;
                emit(&format!("{a}\n{s}\n"))?;
                tracing::info!("submitted array job {a} and summary job {s} (afterany:{a})");
            } else {
                emit(&format!("{}\n{}\n", array.display(), summarize.display()))?;
                tracing::info!(
                    "submit with: sbatch {} (or rerun with --submit)",
                    array.display()
                );
            }
            Ok(SUCCESS)
        }
    }
}
