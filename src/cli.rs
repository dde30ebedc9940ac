//! The command line (clap derive). Only this module and `main.rs` know about clap; each
//! command converts into the library's option types.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Declarative hyperparameter sweeps of classifiers trained from scratch.
///
/// A sweep file (TOML) lists grids of lambda, eta, batch size, epochs and seeds;
/// `sweep run` trains every run across all cores and writes per-epoch CSV metrics,
/// .npy weights and a gradient-check table; `sweep summarize` aggregates over seeds.
///
/// Example: sweep run sweeps/sample.toml && sweep summarize out/sample
#[derive(Debug, Parser)]
#[command(name = "sweep", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log more (-v: debug, -vv: trace). SWEEP_LOG=<filter> overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train every run of a sweep file (skipping runs already finished).
    ///
    /// Example: sweep run sweeps/sample.toml --out out -j 2
    Run(RunArgs),
    /// Rebuild a sweep's tables from its run folders and summarise them.
    ///
    /// DIR is one sweep's output folder (out/<name>) or a folder of them (out/).
    ///
    /// Example: sweep summarize out/sample --format markdown
    Summarize(SummarizeArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The sweep file (TOML).
    pub spec: PathBuf,
    /// Output folder; results go to <OUT>/<name>/.
    #[arg(short, long, default_value = "out")]
    pub out: PathBuf,
    /// Data folder, replacing the sweep file's [data].dir.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Worker threads [default: number of cores].
    #[arg(short, long)]
    pub jobs: Option<NonZeroUsize>,
    /// Print the plan (run ids and parameters, CSV) to stdout and train nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Retrain runs that already finished.
    #[arg(long)]
    pub force: bool,
    /// Stop starting new runs after the first one that diverges or fails.
    #[arg(long)]
    pub fail_fast: bool,
}

/// Output format of tables printed to stdout.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Format {
    /// Aligned columns (default).
    #[default]
    Table,
    Csv,
    Markdown,
}

#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// A sweep output folder, or a folder of them.
    pub dir: PathBuf,
    /// How to print the summary table.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl RunArgs {
    pub fn into_options(self) -> sweep::app::RunOptions {
        sweep::app::RunOptions {
            spec: self.spec,
            out: self.out,
            data: self.data,
            // Runs are the unit of parallelism: one worker per core by default.
            jobs: self.jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
            }),
            force: self.force,
            fail_fast: self.fail_fast,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
