//! The commands as library functions: [`Planned::load`] reads, validates and expands a
//! sweep file once per command; [`run`] strings the rest of the pipeline together
//! (data -> execution -> artifacts -> summary) and [`summarize`] rebuilds a finished
//! sweep's tables. The CLI (`main.rs`) only parses arguments, prints and maps the result
//! to an exit code ([`crate::error::exit_code`]).

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tracing::{info, warn};

use crate::data::{DataError, Dataset};
use crate::exec::shard::{self, Shard};
use crate::exec::{self, ExecOptions, Progress, RunOutcome, RunStats};
use crate::output::artifacts::{ArtifactError, SweepDir};
use crate::output::summary::{self, SummaryError, SummaryOptions};
use crate::plan::{self, Plan, PlanError};
use crate::spec::{self, Augment, AxisName, AxisValue, SpecError, ValidSpec};
use crate::train::gradcheck::{self, CheckError};
use crate::train::linear::FLIP_DIM;

/// Everything `sweep run` needs besides the planned sweep ([`Planned`]).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub out: PathBuf,
    pub jobs: NonZeroUsize,
    pub force: bool,
    pub fail_fast: bool,
    /// Write summary.csv, figures and report.html at the end.
    pub summarize: bool,
    /// Run only the gradient check, no training.
    pub gradcheck_only: bool,
}

/// Why a sweep could not start (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Summary(#[from] SummaryError),
    #[error(transparent)]
    Refine(#[from] crate::refine::RefineError),
    #[error(
        "{spec}: run {run_id} has batch_size = {batch_size} but the training split has only {train} examples; \
         use a batch size from 1 to {train}"
    )]
    BatchTooLarge {
        spec: PathBuf,
        run_id: String,
        batch_size: usize,
        train: usize,
    },
    #[error(
        "{spec}: successive halving decides each rung from every candidate's metrics and keeps \
         promoted runs training in memory, so it runs in one process: run it without --shard \
         (or `sweep slurm --tasks 1`)"
    )]
    HalvingSharded { spec: PathBuf },
    #[error(
        "{spec}: successive halving races candidates of one kind of model, but runs {a} and {b} \
         differ in precision, loss or having hidden layers; split them into two sweeps"
    )]
    HalvingMixed { spec: PathBuf, a: String, b: String },
    #[error("output path {0} exists and is not a folder; pass another --out")]
    OutNotDir(PathBuf),
    #[error("cannot create output folder {path}: {source}; pass a writable --out")]
    OutUnwritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A sweep file read, validated and expanded, with the runs of one shard picked out:
/// what `sweep run` (and its `--dry-run`) and `sweep slurm` start from, made once per
/// command without touching data or disk.
#[derive(Debug, Clone)]
pub struct Planned {
    pub spec: ValidSpec,
    /// Every run of the sweep, in plan order.
    pub plan: Plan,
    /// The shard this process runs.
    pub shard: Shard,
    /// The runs of `plan` in `shard`, in plan order (`exec::shard::runs_of`).
    pub mine: Plan,
}

impl Planned {
    /// Reads the sweep file at `spec_path` (with `data` replacing its `[data].dir`),
    /// expands its plan and picks out `shard`'s runs.
    pub fn load(spec_path: &Path, data: Option<&Path>, shard: Shard) -> Result<Planned, AppError> {
        let spec = spec::load(spec_path, data)?;
        let plan = plan::expand(&spec)?;
        let mine = shard::runs_of(&plan, shard);
        Ok(Planned {
            spec,
            plan,
            shard,
            mine,
        })
    }

    /// Refuses to split a successive-halving sweep into `shards` parts (more than one),
    /// and a race between different kinds of model.
    pub fn check_halving(&self, shards: usize) -> Result<(), AppError> {
        if self.spec.search.as_ref().and_then(|s| s.halving).is_none() {
            return Ok(());
        }
        if shards > 1 {
            return Err(AppError::HalvingSharded {
                spec: self.spec.path.clone(),
            });
        }
        let mut runs = self.plan.runs.iter();
        if let Some(first) = runs.next()
            && let Some(other) =
                runs.find(|r| exec::trainer_type(&r.params) != exec::trainer_type(&first.params))
        {
            return Err(AppError::HalvingMixed {
                spec: self.spec.path.clone(),
                a: first.id.to_string(),
                b: other.id.to_string(),
            });
        }
        Ok(())
    }

    /// This shard's runs as CSV (run id, then the plan's parameter columns): the
    /// `--dry-run` output.
    pub fn csv(&self) -> String {
        let mut out = String::from("run_id,");
        out.push_str(&plan::PARAM_COLUMNS.join(","));
        out.push('\n');
        for r in &self.mine.runs {
            out.push_str(&format!("{},{}\n", r.id, r.params.csv_fields().join(",")));
        }
        out
    }
}

/// What a finished `sweep run` reports.
#[derive(Debug)]
pub struct RunReport {
    pub dir: PathBuf,
    pub outcomes: Vec<RunOutcome>,
    pub stats: RunStats,
}

/// Creates `path` (and parents), refusing a file in the way, before anything is written.
fn ensure_dir(path: &Path) -> Result<(), AppError> {
    if path.exists() && !path.is_dir() {
        return Err(AppError::OutNotDir(path.to_path_buf()));
    }
    std::fs::create_dir_all(path).map_err(|source| AppError::OutUnwritable {
        path: path.to_path_buf(),
        source,
    })?;
    let probe = path.join(format!(".sweep-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|source| AppError::OutUnwritable {
        path: path.to_path_buf(),
        source,
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// `sweep run`: trains every pending run of `planned`'s shard and writes its artifacts.
pub fn run(
    planned: &Planned,
    opts: &RunOptions,
    progress: &dyn Progress,
) -> Result<RunReport, AppError> {
    let Planned {
        spec,
        plan,
        shard,
        mine,
    } = planned;
    planned.check_halving(shard.count())?;
    if opts.out.exists() && !opts.out.is_dir() {
        return Err(AppError::OutNotDir(opts.out.clone()));
    }
    let t = Instant::now();
    let data = Dataset::load(&spec.data)?;
    info!(
        "loaded data in {:.2}s: {} train, {} val, {} test examples of dimension {}",
        t.elapsed().as_secs_f64(),
        data.train.len(),
        data.val.len(),
        data.test.as_ref().map_or(0, |t| t.len()),
        data.train.dim()
    );
    if let Some(run) = plan
        .runs
        .iter()
        .find(|r| r.params.batch_size > data.train.len())
    {
        return Err(AppError::BatchTooLarge {
            spec: spec.path.clone(),
            run_id: run.id.to_string(),
            batch_size: run.params.batch_size,
            train: data.train.len(),
        });
    }
    if data.train.dim() != FLIP_DIM
        && let Some(err) = spec.refuse(
            AxisName::Augment,
            |v| *v == AxisValue::Augment(Augment::Flip),
            &format!(
                "\"flip\" mirrors images of 3 x 32 x 32 planes ({FLIP_DIM} values), but the \
                 data's examples have {} values; remove it or set augment = \"none\"",
                data.train.dim()
            ),
        )
    {
        return Err(err.into());
    }
    if let Some(check) = &spec.gradcheck {
        if let Some(&n) = check.batch_sizes.iter().find(|&&n| n > data.train.len()) {
            return Err(CheckError::TooFewExamples {
                batch_size: n,
                available: data.train.len(),
            }
            .into());
        }
        if let Some(dims) = check.dims.filter(|&d| d > data.train.dim()) {
            return Err(CheckError::TooManyDims {
                dims,
                available: data.train.dim(),
            }
            .into());
        }
    }
    let fingerprint = data.fingerprint();
    let dir = SweepDir::new(&opts.out, &spec.name);
    ensure_dir(dir.root())?;
    dir.prepare(spec, plan)?;
    if shard.count() > 1 {
        info!(
            "shard {}: {} of the {} planned runs",
            shard,
            mine.runs.len(),
            plan.runs.len()
        );
    }
    let (done, mut pending) = exec::partition(mine, &dir, &fingerprint, opts.force)?;
    let halving = spec.search.as_ref().and_then(|s| s.halving);
    if opts.gradcheck_only {
        pending.clear();
    }
    let reused = done.iter().filter(|o| o.reused).count();
    if reused > 0 {
        info!(
            "skipping {} of {} runs already finished in {} (--force retrains them)",
            reused,
            plan.runs.len(),
            dir.root().display()
        );
    }
    let exec_opts = ExecOptions {
        jobs: opts.jobs,
        force: opts.force,
        fail_fast: opts.fail_fast,
    };
    progress.begin(
        pending
            .iter()
            .map(|r| r.params.records(data.train.len()) as u64)
            .sum(),
    );
    let trained = match &halving {
        Some(h) => exec::execute_halving(
            &pending,
            exec::Race {
                halving: *h,
                reused: &done,
            },
            &data,
            &dir,
            &fingerprint,
            &exec_opts,
            progress,
        ),
        None => exec::execute(&pending, &data, &dir, &fingerprint, &exec_opts, progress),
    };

    // The gradient check belongs to the first shard only.
    if let Some(check) = spec.gradcheck.as_ref().filter(|_| shard.index() == 0) {
        let key = format!("{check:?} data={fingerprint}");
        if opts.force || !dir.gradcheck_done(&key) {
            let t = Instant::now();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(opts.jobs.get())
                .build()
                .expect("thread pool");
            let rows = pool.install(|| gradcheck::run(check, &data))?;
            dir.write_gradcheck(&rows, &key)?;
            info!(
                "gradient check: {} rows in {:.1}s",
                rows.len(),
                t.elapsed().as_secs_f64()
            );
        } else {
            info!("gradient check already done");
        }
    }

    if opts.gradcheck_only {
        return Ok(RunReport {
            dir: dir.root().to_path_buf(),
            outcomes: Vec::new(),
            stats: RunStats::default(),
        });
    }
    let mut outcomes = done;
    outcomes.extend(trained);
    let order: std::collections::HashMap<_, _> = plan
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), i))
        .collect();
    outcomes.sort_by_key(|o| order[&o.run.id]);
    // A shard (a Slurm array task) leaves the sweep-level tables and the summary to
    // `sweep summarize` (the array's summary job): rebuilding them reads every run of
    // the sweep, so a task would cost as much as the whole sweep's tables, not as much
    // as the runs it trained.
    if shard.count() > 1 {
        info!(
            "shard {shard}: run folders written; `sweep summarize {}` builds the sweep's tables once every shard has run",
            dir.root().display()
        );
    } else {
        dir.with_lock(|| -> Result<(), AppError> {
            dir.rebuild_tables()?;
            if opts.summarize {
                let s = summary::summarize_sweep(dir.root(), &SummaryOptions::default())?;
                info!(
                    "summary: {} settings; report {}",
                    s.settings.len(),
                    dir.root().join("report.html").display()
                );
            }
            Ok(())
        })??;
    }
    let stats = RunStats::from_outcomes(&outcomes);
    for o in &outcomes {
        match &o.result {
            Ok(r) if r.status == crate::output::artifacts::RunStatus::Diverged => warn!(
                "run {} diverged at epoch {} (cost not finite); try a smaller eta",
                o.run.id,
                r.diverged_epoch.unwrap_or(0)
            ),
            Ok(r) if r.status == crate::output::artifacts::RunStatus::Failed => {
                warn!(
                    "run {} failed: {}",
                    o.run.id,
                    r.error.as_deref().unwrap_or("?")
                )
            }
            Err(e) => warn!("run {}: {e}", o.run.id),
            Ok(_) => {}
        }
    }
    Ok(RunReport {
        dir: dir.root().to_path_buf(),
        outcomes,
        stats,
    })
}

/// `sweep summarize`: rebuilds the sweep-level tables of each sweep folder under `dir`
/// from its run folders, then aggregates over seeds and writes figures and the report.
pub fn summarize(
    dir: &Path,
    opts: &SummaryOptions,
) -> Result<Vec<(PathBuf, summary::Summary)>, AppError> {
    let sweeps = find_sweeps(dir)?;
    let mut out = Vec::new();
    for s in sweeps {
        let sweep = SweepDir::open(&s);
        let summary = sweep.with_lock(|| -> Result<summary::Summary, AppError> {
            sweep.rebuild_tables()?;
            Ok(summary::summarize_sweep(&s, opts)?)
        })??;
        out.push((s, summary));
    }
    Ok(out)
}

/// `sweep refine`: brings the sweep folder's tables up to date (a sharded sweep leaves
/// them to `sweep summarize`), then writes the refined sweep file.
pub fn refine(
    dir: &Path,
    opts: &crate::refine::RefineOptions,
) -> Result<crate::refine::Refined, AppError> {
    if dir.join(crate::output::contract::PLAN_CSV).is_file() {
        let sweep = SweepDir::open(dir);
        sweep.with_lock(|| sweep.rebuild_tables())??;
    }
    Ok(crate::refine::refine(dir, opts)?)
}

/// `dir` itself if it is a sweep folder (has `plan.csv`), else its sweep subfolders.
fn find_sweeps(dir: &Path) -> Result<Vec<PathBuf>, AppError> {
    if dir.join("plan.csv").is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| ArtifactError::Read {
        path: dir.to_path_buf(),
        message: format!("{e}; pass a sweep output folder such as out/<name>"),
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("plan.csv").is_file())
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(ArtifactError::Read {
            path: dir.to_path_buf(),
            message:
                "no sweep output here (no plan.csv in it or its subfolders); run `sweep run` first"
                    .into(),
        }
        .into());
    }
    Ok(found)
}
