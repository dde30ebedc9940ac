//! `sweep` binary: parse the command line, set up logging, call the library for the
//! command, print its data to stdout, and map the result to an exit code in one place
//! ([`sweep::error::exit_code`]).

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, DataCommand, RefineArgs, RunArgs, SlurmArgs, SummarizeArgs};
use sweep::app::{self, Planned};
use sweep::data::fetch;
use sweep::error::Outcome;
use sweep::exec::shard::Shard;
use sweep::exec::slurm;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.quiet, cli.verbose);
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Summarize(args) => summarize(args),
        Command::Refine(args) => refine(args),
        Command::Data(command) => data(command),
        Command::Slurm(args) => slurm(args),
    };
    if let Err(e) = &result {
        tracing::error!("{e:#}");
    }
    ExitCode::from(sweep::error::exit_code(&result))
}

/// Logs go to stderr: warnings and errors with `-q`, more with each `-v`, and whatever
/// `SWEEP_LOG` says if it is set.
fn init_logging(quiet: bool, verbose: u8) {
    let default = match (quiet, verbose) {
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
}

/// Writes to stdout, treating a closed pipe as success.
fn emit(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn run(args: RunArgs) -> anyhow::Result<Outcome> {
    let shard = args.shard()?;
    let planned = Planned::load(&args.spec, args.data.as_deref(), shard)?;
    if args.dry_run {
        emit(&planned.csv())?;
        tracing::info!(
            "dry run: {} of {} planned runs (shard {shard}) for sweep {:?}; nothing trained",
            planned.mine.runs.len(),
            planned.plan.runs.len(),
            planned.spec.name
        );
        return Ok(Outcome::Success);
    }
    let reporter =
        sweep::progress::Reporter::new(planned.mine.runs.len(), std::io::stderr().is_terminal());
    let report = app::run(&planned, &args.options(), &reporter);
    reporter.finish();
    let report = report?;
    let s = report.stats;
    tracing::info!(
        "{} runs: {} ok, {}{} diverged, {} failed, {} skipped, {} left to another runner ({} reused from earlier); outputs in {}",
        s.planned,
        s.ok,
        if s.stopped > 0 {
            format!("{} stopped by halving, ", s.stopped)
        } else {
            String::new()
        },
        s.diverged,
        s.failed,
        s.skipped,
        s.elsewhere,
        s.reused,
        report.dir.display()
    );
    Ok(Outcome::failed_if(s.has_failures()))
}

fn summarize(args: SummarizeArgs) -> anyhow::Result<Outcome> {
    let opts = sweep::output::summary::SummaryOptions {
        figures: !args.no_figures,
        top: args.top,
    };
    let many = app::summarize(&args.dir, &opts)?;
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
    Ok(Outcome::Success)
}

fn refine(args: RefineArgs) -> anyhow::Result<Outcome> {
    let refined = app::refine(&args.dir, &args.options())?;
    let mut out = format!("{}\n", refined.path.display());
    for n in &refined.narrowed {
        out.push_str(&format!("  {}\n", n.describe()));
    }
    emit(&out)?;
    tracing::info!(
        "wrote sweep {:?} from the top {} of {} settings by {}; run it with: sweep run {}",
        refined.name,
        args.top,
        refined.ranked,
        args.metric.key(),
        refined.path.display()
    );
    Ok(Outcome::Success)
}

fn data(command: DataCommand) -> anyhow::Result<Outcome> {
    match command {
        DataCommand::Fetch {
            dataset: _,
            dir,
            url,
        } => {
            let opts = fetch::FetchOptions {
                url,
                dir,
                manifest: fetch::Manifest::cifar10_official(),
            };
            let bar = sweep::progress::Download::new(std::io::stderr().is_terminal());
            let result = fetch::fetch(&opts, &mut |done, total| bar.update(done, total));
            bar.finish();
            let path = result?;
            tracing::info!("CIFAR-10 verified and installed in {}", path.display());
            emit(&format!("{}\n", path.display()))?;
            Ok(Outcome::Success)
        }
        DataCommand::Verify { dir } => {
            let report = fetch::verify(&dir, &fetch::Manifest::cifar10_official())?;
            emit(&format!("{report}\n"))?;
            // Missing files are normal (a split may use only some batches); wrong ones are not.
            Ok(Outcome::failed_if(report.wrong().count() > 0))
        }
    }
}

fn slurm(args: SlurmArgs) -> anyhow::Result<Outcome> {
    let planned = Planned::load(&args.spec, None, Shard::WHOLE)?;
    planned.check_halving(args.tasks.get())?;
    let opts = args.options(std::env::current_exe()?);
    let (array, summarize) = slurm::write_scripts(&opts, &planned.spec.name)?;
    tracing::info!("wrote {} and {}", array.display(), summarize.display());
    if args.submit {
        let (a, s) = slurm::submit(&array, &summarize)?;
        emit(&format!("{a}\n{s}\n"))?;
        tracing::info!("submitted array job {a} and summary job {s} (afterany:{a})");
    } else {
        emit(&format!("{}\n{}\n", array.display(), summarize.display()))?;
        tracing::info!(
            "submit with: sbatch {} (or rerun with --submit)",
            array.display()
        );
    }
    Ok(Outcome::Success)
}
