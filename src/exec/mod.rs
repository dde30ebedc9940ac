//! Execution: trains the plan's pending runs on a local rayon pool and writes each one's
//! folder as soon as it finishes.
//!
//! Runs that can share their data order (see [`RunParams::group_key`]) train fused in
//! work units of at most [`MAX_FUSED`]; units train in lockstep in small cohorts (see
//! [`cohorts`]), epoch by epoch, so that each epoch's evaluation scores a whole cohort in
//! one pass over the data. A run's numbers depend on neither its unit nor its cohort
//! (see [`crate::train`]), so outputs are the same whatever `--jobs`, the grid's shape or
//! a resumption. A failure (an I/O error, a panic) is recorded for the runs it hit, and
//! the others go on; with `fail_fast`, the runs still training in the failing run's
//! cohort stop after their epoch and later cohorts are skipped, none of them written.
//!
//! The kind of model a cohort trains is chosen once, in [`execute`]; the rest of this
//! module is generic over [`crate::train::Trainer`]. Execution may use every earlier
//! stage (spec, plan, data, train, output); only `app` uses it.
//!
//! [`RunParams::group_key`]: crate::plan::RunParams::group_key

mod halving;
pub mod shard;
pub mod slurm;

use std::fs;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use crate::data::Dataset;
use crate::output::artifacts::{ArtifactError, RunResult, RunStatus, SweepDir};
use crate::plan::{Plan, RunParams, RunSpec};
use crate::spec::LossName::{self, CrossEntropy, Hinge};
use crate::spec::Precision::{self, F32, F64};
use crate::train::eval::ChunkSums;
use crate::train::{Fitted, LinearTrainer, NetTrainer, Real, Scores, Snapshot, Trainer, loss};

/// Most runs trained in one fused group (bounds the stacked weight matrix).
pub const MAX_FUSED: usize = 16;

/// How to execute a plan.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Worker threads.
    pub jobs: NonZeroUsize,
    /// Retrain runs that already finished.
    pub force: bool,
    /// After the first diverged or failed run, stop the runs training in its cohort and
    /// start no other.
    pub fail_fast: bool,
}

/// Receives progress events; called from worker threads.
pub trait Progress: Sync {
    /// `runs` begin training, fused.
    fn started(&self, _runs: &[RunSpec]) {}
    /// Training begins: `spans` recordings of metrics to make in all (every pending
    /// run's [`crate::plan::RunParams::records`]).
    fn begin(&self, _spans: u64) {}
    /// One more span (the updates up to a recording) of `runs` runs is done.
    fn span(&self, _runs: usize) {}
    /// A run finished (or failed).
    fn finished(&self, _outcome: &RunOutcome) {}
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Why a run produced no result of its own.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Failed(String),
    #[error("not started: an earlier run failed or diverged and --fail-fast is on")]
    Skipped,
    #[error(
        "stopped after {epochs} of its epochs: an earlier run failed or diverged and \
         --fail-fast is on"
    )]
    Stopped { epochs: usize },
    #[error("being trained by another sweep process on the same output folder")]
    ClaimedElsewhere,
}

/// What happened to one planned run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run: RunSpec,
    pub result: Result<RunResult, RunError>,
    /// Already finished before this invocation (not retrained).
    pub reused: bool,
}

/// Counts that decide the exit code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    pub planned: usize,
    pub reused: usize,
    pub ok: usize,
    pub diverged: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Stopped by successive halving (not a failure).
    pub stopped: usize,
    /// Left to another process that was training them.
    pub elsewhere: usize,
}

impl RunStats {
    pub fn from_outcomes(outcomes: &[RunOutcome]) -> Self {
        let mut s = RunStats {
            planned: outcomes.len(),
            ..Default::default()
        };
        for o in outcomes {
            s.reused += usize::from(o.reused);
            match &o.result {
                Ok(r) => match r.status {
                    RunStatus::Ok => s.ok += 1,
                    RunStatus::Diverged => s.diverged += 1,
                    RunStatus::Failed => s.failed += 1,
                    RunStatus::Stopped => s.stopped += 1,
                },
                Err(RunError::Failed(_)) => s.failed += 1,
                Err(RunError::Skipped | RunError::Stopped { .. }) => s.skipped += 1,
                Err(RunError::ClaimedElsewhere) => s.elsewhere += 1,
            }
        }
        s
    }

    pub fn has_failures(&self) -> bool {
        self.diverged + self.failed + self.skipped > 0
    }
}

/// Splits pending runs into fused work units: same group key, plan order, at most
/// [`MAX_FUSED`] each. Units are listed in order of their first run.
pub fn work_units(runs: &[RunSpec]) -> Vec<Vec<RunSpec>> {
    let mut units: Vec<Vec<RunSpec>> = Vec::new();
    let mut open: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
    for run in runs {
        let key = run.params.group_key();
        match open.get(&key) {
            Some(&u) if units[u].len() < MAX_FUSED => units[u].push(run.clone()),
            _ => {
                open.insert(key, units.len());
                units.push(vec![run.clone()]);
            }
        }
    }
    units
}

/// Rows (runs x classes) of stacked weights from which a cohort of work units is big
/// enough: each epoch's evaluation scores all of a cohort's runs in one pass over the
/// data, and the packed product runs near its best from about 120 rows
/// (`examples/kernels.rs`).
pub const COHORT_ROWS: usize = 120;

/// Groups work units (from [`work_units`]) into cohorts trained in lockstep, epoch by
/// epoch, so that each epoch's evaluation reads the data once for the whole cohort.
/// A cohort holds consecutive units of one kind of model ([`kind`]: precision, loss and
/// layers) and closes once it has at least `jobs` units (so every worker has a unit to
/// train) and [`COHORT_ROWS`] rows (`rows_per_run` of the first layer each); small, so
/// that results keep reaching the disk as a long sweep goes on.
pub fn cohorts(
    units: Vec<Vec<RunSpec>>,
    jobs: usize,
    rows_per_run: usize,
) -> Vec<Vec<Vec<RunSpec>>> {
    let mut cohorts: Vec<Vec<Vec<RunSpec>>> = Vec::new();
    let mut open: std::collections::HashMap<Kind, usize> = std::collections::HashMap::new();
    for unit in units {
        let key = kind(&unit[0].params);
        let c = match open.get(&key) {
            Some(&c) => c,
            None => {
                cohorts.push(Vec::new());
                cohorts.len() - 1
            }
        };
        cohorts[c].push(unit);
        let rows = match key.2.first() {
            Some(&width) => width as usize,
            None => rows_per_run,
        };
        let rows: usize = cohorts[c].iter().map(Vec::len).sum::<usize>() * rows;
        if cohorts[c].len() < jobs || rows < COHORT_ROWS {
            open.insert(key, c);
        } else {
            open.remove(&key);
        }
    }
    cohorts
}

/// What the runs of a cohort share: the trainer type and the shape of the stacked layers.
type Kind = (Precision, LossName, Vec<u32>);

/// A run's [`Kind`].
fn kind(p: &RunParams) -> Kind {
    (p.precision, p.loss, p.hidden.as_slice().to_vec())
}

/// A work unit this process has claimed: its runs and their claim locks, held until
/// the runs' results are written.
struct Claimed {
    runs: Vec<RunSpec>,
    _locks: Vec<fs::File>,
}

/// What `execute` shares with every cohort.
struct Context<'a> {
    data: &'a Dataset,
    dir: &'a SweepDir,
    fingerprint: &'a str,
    opts: &'a ExecOptions,
    progress: &'a dyn Progress,
    stop: AtomicBool,
}

impl<'a> Context<'a> {
    /// Claims each run of `unit`; drops those another process is training or has
    /// finished since the plan was partitioned (their outcomes go to `others`).
    fn claim(&self, unit: &[RunSpec], others: &mut Vec<RunOutcome>) -> Option<Claimed> {
        let mut runs = Vec::new();
        let mut locks = Vec::new();
        for run in unit {
            match self.dir.claim(&run.id) {
                Ok(Some(lock)) => match self.dir.finished(run, self.fingerprint) {
                    Ok(Some(result)) if !self.opts.force => others.push(RunOutcome {
                        run: run.clone(),
                        result: Ok(result),
                        reused: true,
                    }),
                    _ => {
                        locks.push(lock);
                        runs.push(run.clone());
                    }
                },
                Ok(None) => others.push(RunOutcome {
                    run: run.clone(),
                    result: Err(RunError::ClaimedElsewhere),
                    reused: false,
                }),
                Err(e) => others.push(RunOutcome {
                    run: run.clone(),
                    result: Err(self.record_failure(run, &e.to_string())),
                    reused: false,
                }),
            }
        }
        (!runs.is_empty()).then_some(Claimed {
            runs,
            _locks: locks,
        })
    }

    fn record_failure(&self, run: &RunSpec, msg: &str) -> RunError {
        let _ = self.dir.write_failed(run, msg, self.fingerprint);
        RunError::Failed(msg.to_string())
    }

    /// Writes a unit's trained runs (or its failure), then releases its claims.
    fn settle<T: Real>(
        &self,
        unit: Claimed,
        trained: Result<Vec<Fitted<T>>, String>,
        seconds: f64,
        out: &mut Vec<RunOutcome>,
    ) {
        let results: Vec<Result<RunResult, RunError>> = match trained {
            Ok(fitted) => unit
                .runs
                .iter()
                .zip(&fitted)
                .map(|(run, f)| {
                    self.dir
                        .write_run(run, f, seconds, self.fingerprint)
                        .map_err(|e| self.record_failure(run, &e.to_string()))
                })
                .collect(),
            Err(msg) => unit
                .runs
                .iter()
                .map(|run| Err(self.record_failure(run, &msg)))
                .collect(),
        };
        for (run, result) in unit.runs.iter().zip(results) {
            let outcome = RunOutcome {
                run: run.clone(),
                result,
                reused: false,
            };
            let bad = !matches!(&outcome.result, Ok(r) if matches!(r.status, RunStatus::Ok | RunStatus::Stopped));
            if bad && self.opts.fail_fast {
                self.stop.store(true, Ordering::Relaxed);
            }
            self.progress.finished(&outcome);
            out.push(outcome);
        }
    }

    /// Trains a cohort's units in lockstep: every epoch, all units' current weights are
    /// scored together while each unit trains its next epoch (see [`Context::step`];
    /// scoring one epoch needs only a copy of the weights, see [`Snapshot`]). A unit
    /// is written as soon as it is done; a panic fails the units it hit and the others go
    /// on.
    fn train_cohort<G: Trainer<'a>>(&self, units: Vec<Claimed>, out: &mut Vec<RunOutcome>) {
        let start = Instant::now();
        let total: usize = units.iter().map(|u| u.runs.len()).sum();
        let seconds = || start.elapsed().as_secs_f64() / total as f64;
        let mut active: Vec<(Claimed, G)> = Vec::new();
        for unit in units {
            self.progress.started(&unit.runs);
            let hypers: Vec<_> = unit.runs.iter().map(|r| r.params.hyper()).collect();
            let cfg = unit.runs[0].params.train_config();
            match catch_panic(|| G::new(self.data, &cfg, &hypers)) {
                Ok(group) => active.push((unit, group)),
                Err(msg) => self.settle::<G::Real>(unit, Err(msg), seconds(), out),
            }
        }
        G::prepare_scoring(self.data, active.iter().map(|(_, g)| g.runs()).sum());
        while !active.is_empty() {
            let snapshot = G::Snapshot::take(&active.iter().map(|(_, g)| g).collect::<Vec<_>>());
            let (scored, trained) = {
                let mut groups: Vec<_> = active.iter_mut().map(|(_, g)| g).collect();
                self.step(&snapshot, &mut groups)
            };
            let recorded = scored.and_then(|scores| {
                catch_panic(|| {
                    let mut groups: Vec<_> = active.iter_mut().map(|(_, g)| g).collect();
                    snapshot.record(&scores, &mut groups);
                })
            });
            if let Err(msg) = recorded {
                for (unit, _) in active.drain(..) {
                    self.settle::<G::Real>(unit, Err(msg.clone()), seconds(), out);
                }
                break;
            }
            // Settle the units that are done or failed, keeping the others in order.
            let mut still = Vec::with_capacity(active.len());
            for ((unit, group), failed) in active.drain(..).zip(trained) {
                if group.recorded() > Some(0) {
                    self.progress.span(unit.runs.len());
                }
                if let Some(msg) = failed {
                    self.settle::<G::Real>(unit, Err(msg), seconds(), out);
                } else if group.done() {
                    let fitted = catch_panic(move || group.finish());
                    self.settle(unit, fitted, seconds(), out);
                } else {
                    still.push((unit, group));
                }
            }
            if self.stop.load(Ordering::Relaxed) {
                // --fail-fast: the units still training stop here and write nothing.
                for (unit, group) in still {
                    out.extend(unit.runs.into_iter().map(|run| RunOutcome {
                        run,
                        result: Err(RunError::Stopped {
                            epochs: group.recorded().unwrap_or(0),
                        }),
                        reused: false,
                    }));
                }
                break;
            }
            active = still;
        }
    }

    /// Trains the next epoch of every group that wants one while `snapshot` (their
    /// previous epoch) is scored, as one list of tasks run by whichever thread is free
    /// ([`self_scheduled`]): the groups' epochs first, biggest first, then the scoring
    /// chunks, which are small and so fill every thread until the last epoch is done.
    /// A group's epoch runs on the thread that took it, but its products still split
    /// across the pool (rayon's `join`) once the other threads run out of tasks.
    ///
    /// Returns the scores, and per group its training failure, if any.
    fn step<G: Trainer<'a>>(
        &self,
        snapshot: &G::Snapshot,
        groups: &mut [&mut G],
    ) -> (Result<Scores, String>, Vec<Option<String>>) {
        let mut training: Vec<usize> = (0..groups.len())
            .filter(|&g| groups[g].wants_span())
            .collect();
        training.sort_by_key(|&g| std::cmp::Reverse(groups[g].runs()));
        let cells: Vec<Mutex<&mut G>> = groups.iter_mut().map(|g| Mutex::new(&mut **g)).collect();
        enum Done {
            Trained(usize, Option<String>),
            Scored(Result<ChunkSums, String>),
        }
        let tasks = training.len() + snapshot.chunks(self.data);
        let done = self_scheduled(
            tasks,
            || None,
            |scratch, i| match training.get(i) {
                Some(&g) => Done::Trained(
                    g,
                    catch_panic(|| cells[g].lock().expect("one task per group").train_span()).err(),
                ),
                None => Done::Scored(catch_panic(|| {
                    snapshot.score_chunk(self.data, i - training.len(), scratch)
                })),
            },
        );
        let mut failed = vec![None; groups.len()];
        let mut chunks = Vec::with_capacity(done.len());
        for d in done {
            match d {
                Done::Trained(g, failure) => failed[g] = failure,
                Done::Scored(sums) => chunks.push(sums),
            }
        }
        let scores = chunks
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .and_then(|chunks| catch_panic(|| snapshot.scores(self.data, &chunks)));
        (scores, failed)
    }
}

/// Runs `task(state, i)` for every `i` in `0..n` on every thread of the current rayon
/// pool, each thread taking the next index as soon as it is free, so the tasks start in
/// list order (put the long ones first). Each thread's `state` starts as `init()`.
/// Returns the results in index order.
fn self_scheduled<S, R: Send>(
    n: usize,
    init: impl Fn() -> S + Sync,
    task: impl Fn(&mut S, usize) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = rayon::broadcast(|_| {
        let mut state = init();
        let mut mine = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                return mine;
            }
            mine.push((i, task(&mut state, i)));
        }
    })
    .into_iter()
    .flatten()
    .collect();
    done.sort_unstable_by_key(|&(i, _)| i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Runs `f`, turning a panic into its message.
fn catch_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "training panicked".into());
        format!("internal error: {msg}; please report it")
    })
}

/// Finished runs (reused unless `opts.force`) and runs whose folder cannot be read
/// (failed), then the rest, pending.
pub fn partition(
    plan: &Plan,
    dir: &SweepDir,
    fingerprint: &str,
    force: bool,
) -> Result<(Vec<RunOutcome>, Vec<RunSpec>), ArtifactError> {
    let mut done = Vec::new();
    let mut pending = Vec::new();
    for run in &plan.runs {
        match dir.finished(run, fingerprint) {
            Ok(Some(result)) if !force => done.push(RunOutcome {
                run: run.clone(),
                result: Ok(result),
                reused: true,
            }),
            Ok(_) => pending.push(run.clone()),
            Err(ArtifactError::OtherData { .. } | ArtifactError::OtherArithmetic { .. })
                if force =>
            {
                pending.push(run.clone())
            }
            // One run's unreadable folder (a file in its place, a corrupt result.json) is
            // that run's failure, not the sweep's: the others still train. Its folder is
            // left as found, since it may hold something the user wants.
            Err(e @ ArtifactError::Read { .. }) => done.push(RunOutcome {
                run: run.clone(),
                result: Err(RunError::Failed(e.to_string())),
                reused: false,
            }),
            Err(e) => return Err(e),
        }
    }
    Ok((done, pending))
}

/// Evaluates `$call` with `$G` naming the trainer type of runs with parameters `$p`
/// ([`trainer_type`]): the one place a kind of model is picked.
macro_rules! with_trainer {
    ($p:expr, $G:ident => $call:expr) => {
        match trainer_type($p) {
            (F32, CrossEntropy, false) => {
                type $G<'d> = LinearTrainer<'d, f32>;
                $call
            }
            (F64, CrossEntropy, false) => {
                type $G<'d> = LinearTrainer<'d, f64>;
                $call
            }
            (F32, Hinge, false) => {
                type $G<'d> = LinearTrainer<'d, f32, loss::Hinge>;
                $call
            }
            (F64, Hinge, false) => {
                type $G<'d> = LinearTrainer<'d, f64, loss::Hinge>;
                $call
            }
            (F32, CrossEntropy, true) => {
                type $G<'d> = NetTrainer<'d, f32>;
                $call
            }
            (F64, CrossEntropy, true) => {
                type $G<'d> = NetTrainer<'d, f64>;
                $call
            }
            (F32, Hinge, true) => {
                type $G<'d> = NetTrainer<'d, f32, loss::Hinge>;
                $call
            }
            (F64, Hinge, true) => {
                type $G<'d> = NetTrainer<'d, f64, loss::Hinge>;
                $call
            }
        }
    };
}

/// Builds the pool and context `execute` and `execute_halving` share, runs `body` on the
/// pool, and returns the outcomes it gathered in `pending`'s order.
fn on_pool(
    pending: &[RunSpec],
    data: &Dataset,
    dir: &SweepDir,
    fingerprint: &str,
    opts: &ExecOptions,
    progress: &dyn Progress,
    body: impl FnOnce(&Context<'_>, &mut Vec<RunOutcome>) + Send,
) -> Vec<RunOutcome> {
    let cx = Context {
        data,
        dir,
        fingerprint,
        opts,
        progress,
        stop: AtomicBool::new(false),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.get())
        .build()
        .expect("thread pool");
    let mut outcomes = Vec::with_capacity(pending.len());
    pool.install(|| body(&cx, &mut outcomes));
    let mut by_id: std::collections::HashMap<_, _> = outcomes
        .into_iter()
        .map(|o| (o.run.id.clone(), o))
        .collect();
    pending
        .iter()
        .map(|r| {
            by_id
                .remove(&r.id)
                .expect("every pending run has an outcome")
        })
        .collect()
}

/// Trains `pending` and returns one outcome per run, in the order given.
///
/// Cohorts (see [`cohorts`]) train one after another, each on the whole pool.
pub fn execute(
    pending: &[RunSpec],
    data: &Dataset,
    dir: &SweepDir,
    fingerprint: &str,
    opts: &ExecOptions,
    progress: &dyn Progress,
) -> Vec<RunOutcome> {
    on_pool(
        pending,
        data,
        dir,
        fingerprint,
        opts,
        progress,
        |cx, outcomes| {
            let rows_per_run = LinearTrainer::<f32>::rows_per_run(data);
            for cohort in cohorts(work_units(pending), opts.jobs.get(), rows_per_run) {
                if cx.stop.load(Ordering::Relaxed) {
                    outcomes.extend(cohort.iter().flatten().map(|run| RunOutcome {
                        run: run.clone(),
                        result: Err(RunError::Skipped),
                        reused: false,
                    }));
                    continue;
                }
                let claimed: Vec<Claimed> = cohort
                    .iter()
                    .filter_map(|unit| cx.claim(unit, outcomes))
                    .collect();
                if claimed.is_empty() {
                    continue;
                }
                with_trainer!(&cohort[0][0].params, G => cx.train_cohort::<G>(claimed, outcomes));
            }
        },
    )
}

/// Which trainer type trains a run: what the runs of one successive-halving race must
/// share (see [`execute_halving`]).
pub fn trainer_type(p: &RunParams) -> (Precision, LossName, bool) {
    (p.precision, p.loss, !p.hidden.is_empty())
}

/// A successive-halving race: its rules, and the runs that finished before this process
/// (whose recorded metrics take part in the decisions).
pub struct Race<'r> {
    pub halving: crate::spec::Halving,
    pub reused: &'r [RunOutcome],
}

/// Trains `pending` by successive halving (see [`halving`]) against the runs of
/// `race.reused`. Every pending run must have one [`trainer_type`].
pub fn execute_halving(
    pending: &[RunSpec],
    race: Race<'_>,
    data: &Dataset,
    dir: &SweepDir,
    fingerprint: &str,
    opts: &ExecOptions,
    progress: &dyn Progress,
) -> Vec<RunOutcome> {
    on_pool(
        pending,
        data,
        dir,
        fingerprint,
        opts,
        progress,
        |cx, outcomes| {
            let claimed: Vec<Claimed> = work_units(pending)
                .iter()
                .filter_map(|unit| cx.claim(unit, outcomes))
                .collect();
            let Some(first) = claimed.first().map(|c| c.runs[0].params) else {
                return;
            };
            let (reused, halving) = (race.reused, &race.halving);
            with_trainer!(&first, G => cx.race::<G>(claimed, reused, halving, outcomes));
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{RunId, RunParams};

    fn run(seed: u64, eta: f64, batch: usize) -> RunSpec {
        let params = RunParams {
            lambda: 0.0,
            eta,
            batch_size: batch,
            epochs: 2,
            seed,
            shuffle: true,
            precision: Precision::F32,
            init_std: 0.01,
            ..RunParams::default()
        };
        RunSpec {
            id: RunId::new(&params),
            params,
        }
    }

    #[test]
    fn units_fuse_runs_sharing_data_order_only() {
        let runs = [
            run(1, 0.1, 10),
            run(2, 0.1, 10),
            run(1, 0.2, 10),
            run(1, 0.3, 20),
        ];
        let units = work_units(&runs);
        let ids: Vec<Vec<_>> = units
            .iter()
            .map(|u| u.iter().map(|r| (r.params.seed, r.params.eta)).collect())
            .collect();
        assert_eq!(
            ids,
            vec![vec![(1, 0.1), (1, 0.2)], vec![(2, 0.1)], vec![(1, 0.3)]]
        );
        let many: Vec<_> = (0..40).map(|i| run(1, 0.01 * (i + 1) as f64, 10)).collect();
        assert_eq!(
            work_units(&many).iter().map(Vec::len).collect::<Vec<_>>(),
            vec![16, 16, 8]
        );
    }

    #[test]
    fn cohorts_fill_every_job_and_enough_rows_and_keep_precisions_apart() {
        let with = |seed, precision| {
            let mut r = run(seed, 0.1, 10);
            r.params.precision = precision;
            r
        };
        let f32_units: Vec<Vec<RunSpec>> =
            (1..=30).map(|s| vec![with(s, Precision::F32)]).collect();
        let sizes = |c: &[Vec<Vec<RunSpec>>]| c.iter().map(Vec::len).collect::<Vec<_>>();
        // 12 single runs (120 rows) per cohort; the rest in the last one.
        assert_eq!(sizes(&cohorts(f32_units.clone(), 2, 10)), vec![12, 12, 6]);
        // More jobs than 12 units: one unit per job.
        assert_eq!(sizes(&cohorts(f32_units, 16, 10)), vec![16, 14]);
        // Units of 4 runs: 3 fill 120 rows.
        let fours: Vec<Vec<RunSpec>> = (1..=7)
            .map(|s| (1..=4).map(|i| run(s, 0.1 * i as f64, 10)).collect())
            .collect();
        assert_eq!(sizes(&cohorts(fours, 2, 10)), vec![3, 3, 1]);
        // Precisions alternate in plan order but never share a cohort.
        let mixed: Vec<Vec<RunSpec>> = (1..=4)
            .map(|s| {
                let p = if s % 2 == 0 {
                    Precision::F64
                } else {
                    Precision::F32
                };
                vec![with(s, p)]
            })
            .collect();
        let c = cohorts(mixed, 1, 10);
        let seeds: Vec<Vec<u64>> = c
            .iter()
            .map(|c| c.iter().map(|u| u[0].params.seed).collect())
            .collect();
        assert_eq!(seeds, vec![vec![1, 3], vec![2, 4]]);
    }

    #[test]
    fn stats_count_every_status() {
        let ok = |s| RunOutcome {
            run: run(1, 0.1, 10),
            result: Err(s),
            reused: false,
        };
        let stats =
            RunStats::from_outcomes(&[ok(RunError::Skipped), ok(RunError::Failed("x".into()))]);
        assert_eq!((stats.failed, stats.skipped), (1, 1));
        assert!(stats.has_failures());
    }

    #[test]
    fn self_scheduled_runs_every_task_once_and_returns_them_in_order() {
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let inits = AtomicUsize::new(0);
            let results = pool.install(|| {
                self_scheduled(
                    50,
                    || {
                        inits.fetch_add(1, Ordering::Relaxed);
                        Vec::new()
                    },
                    |seen: &mut Vec<usize>, i| {
                        // A thread's state carries over from task to task, in the
                        // order it took them.
                        assert!(seen.last().is_none_or(|&last| last < i));
                        seen.push(i);
                        i * i
                    },
                )
            });
            assert_eq!(results, (0..50).map(|i| i * i).collect::<Vec<_>>());
            assert_eq!(inits.load(Ordering::Relaxed), threads);
        }
    }
}
