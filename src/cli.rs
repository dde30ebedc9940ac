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
    /// Writes summary.csv, figures/ and report.html in each sweep folder: validation
    /// accuracy against each numeric axis and heatmaps over pairs of axes for every
    /// setting; curves and weights for the --top N best.
    ///
    /// Example: sweep summarize out/sample --format markdown
    Summarize(SummarizeArgs),
    /// Write a finer sweep file from a finished search: each distribution axis narrowed
    /// to the span of the best settings.
    ///
    /// DIR is the coarse sweep's output folder. Each distribution (log_uniform, uniform,
    /// int_uniform) gets the range from the smallest to the largest value of the top K
    /// settings (by the mean over seeds of --metric; in log space for log_uniform),
    /// widened by a quarter of that span on each side (at least a twentieth of the old
    /// range) and clipped to the old bounds. Everything else is kept; the new file is
    /// named <name>-fine and records [search] refined_from.
    ///
    /// Example: sweep refine out/lab2-search --top 3 && sweep run sweeps/lab2-search-fine.toml
    Refine(RefineArgs),
    /// Get and check datasets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Write (and optionally submit) Slurm scripts that run a sweep as a job array.
    ///
    /// Each array task runs `sweep run SPEC --shard slurm`; a dependent job
    /// (afterany) runs `sweep summarize`. Resubmitting the same array redoes only
    /// unfinished runs.
    ///
    /// Example: sweep slurm sweeps/report.toml --tasks 8 --time 01:00:00 --submit
    Slurm(SlurmArgs),
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download the CIFAR-10 binary version, check its md5s, and install it in
    /// DIR/cifar-10-batches-bin.
    ///
    /// Example: sweep data fetch cifar10 --dir data
    Fetch {
        /// The dataset (only cifar10 for now).
        #[arg(value_enum)]
        dataset: Dataset,
        /// Data folder.
        #[arg(long, default_value = "data")]
        dir: PathBuf,
        /// Source archive (http, https or file://).
        #[arg(long, env = sweep::data::fetch::URL_ENV, default_value = sweep::data::fetch::DEFAULT_URL)]
        url: String,
    },
    /// Check the CIFAR-10 files in DIR (or DIR/cifar-10-batches-bin) against the known
    /// sizes and md5s; lists each file as ok, missing or wrong.
    ///
    /// Example: sweep data verify data/cifar-10-batches-bin
    Verify {
        /// The folder to check.
        dir: PathBuf,
    },
}

/// Datasets `sweep data` knows.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Dataset {
    Cifar10,
}

#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// The sweep file (TOML).
    pub spec: PathBuf,
    /// Number of array tasks (shards).
    #[arg(long)]
    pub tasks: NonZeroUsize,
    /// Output folder shared by all tasks.
    #[arg(short, long, default_value = "out")]
    pub out: PathBuf,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per task, e.g. 01:00:00.
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per task (each task runs that many worker threads).
    #[arg(long)]
    pub cpus_per_task: Option<usize>,
    /// Extra sbatch option, repeatable, e.g. --sbatch-arg=--mem=4G.
    #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// Submit both scripts with sbatch and print the job ids.
    #[arg(long)]
    pub submit: bool,
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
    /// After the first run that diverges or fails, stop: runs still training stop
    /// after their current epoch, and no new run starts. Neither writes anything.
    #[arg(long)]
    pub fail_fast: bool,
    /// Run only shard I of N (0-based) of the plan, e.g. 0/4; `slurm` reads it from
    /// the Slurm array task's environment.
    #[arg(long, value_parser = clap::value_parser!(sweep::exec::shard::ShardArg))]
    pub shard: Option<sweep::exec::shard::ShardArg>,
    /// Skip writing summary.csv, figures and report.html at the end.
    #[arg(long)]
    pub no_summary: bool,
    /// Run only the sweep file's [gradcheck], train nothing.
    #[arg(long)]
    pub gradcheck_only: bool,
}

#[derive(Debug, Args)]
pub struct RefineArgs {
    /// The coarse sweep's output folder (out/<name>).
    pub dir: PathBuf,
    /// How many of the best settings span the new ranges.
    #[arg(long)]
    pub top: usize,
    /// What ranks the settings: val_accuracy (the higher the better), val_cost or
    /// val_loss (the lower the better); the mean over seeds.
    #[arg(long, default_value = "val_accuracy")]
    pub metric: sweep::spec::Objective,
    /// Draws of the fine search ([search] samples) [default: the coarse sweep's].
    #[arg(long)]
    pub samples: Option<u32>,
    /// Where to write the new sweep file [default: <name>-fine.toml next to the coarse
    /// sweep file]. An existing file is never overwritten.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl RefineArgs {
    pub fn options(&self) -> sweep::refine::RefineOptions {
        sweep::refine::RefineOptions {
            top: self.top,
            metric: self.metric,
            samples: self.samples,
            out: self.out.clone(),
        }
    }
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
    /// Skip figures and report.html (tables only).
    #[arg(long)]
    pub no_figures: bool,
    /// Draw curves and weight montages, and give report sections, only to the N best
    /// settings by mean validation accuracy. summary.csv, the report's response figures
    /// (accuracy against each numeric axis) and heatmaps cover every setting.
    #[arg(long, value_name = "N", default_value_t = sweep::output::summary::DEFAULT_TOP)]
    pub top: usize,
}

impl From<Format> for sweep::output::summary::TableFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Table => sweep::output::summary::TableFormat::Table,
            Format::Csv => sweep::output::summary::TableFormat::Csv,
            Format::Markdown => sweep::output::summary::TableFormat::Markdown,
        }
    }
}

impl RunArgs {
    /// The shard this process runs: `--shard`, resolved from the environment for
    /// `--shard slurm`, or the whole plan.
    pub fn shard(&self) -> Result<sweep::exec::shard::Shard, sweep::exec::shard::ShardError> {
        match self.shard {
            Some(arg) => arg.resolve(|var| std::env::var(var).ok()),
            None => Ok(sweep::exec::shard::Shard::WHOLE),
        }
    }

    pub fn options(&self) -> sweep::app::RunOptions {
        sweep::app::RunOptions {
            summarize: !self.no_summary,
            gradcheck_only: self.gradcheck_only,
            out: self.out.clone(),
            // Runs are the unit of parallelism: one worker per core by default.
            jobs: self.jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
            }),
            force: self.force,
            fail_fast: self.fail_fast,
        }
    }
}

impl SlurmArgs {
    /// The options for `sweep::exec::slurm`, whose tasks run `sweep_bin`.
    pub fn options(&self, sweep_bin: PathBuf) -> sweep::exec::slurm::SlurmOptions {
        sweep::exec::slurm::SlurmOptions {
            spec: self.spec.clone(),
            out: self.out.clone(),
            tasks: self.tasks.get(),
            partition: self.partition.clone(),
            time: self.time.clone(),
            cpus_per_task: self.cpus_per_task,
            extra_args: self.sbatch_args.clone(),
            sweep_bin,
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
