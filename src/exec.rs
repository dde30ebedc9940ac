//! Execution: trains the plan's pending runs on a local rayon pool and writes each one's
//! folder as soon as it finishes.
//!
//! Runs that can share their data order (see [`RunParams::group_key`]) train fused in
//! groups of at most [`MAX_FUSED`]; a run's numbers do not depend on its group (see
//! [`crate::model`]), so outputs are the same whatever `--jobs`, the grid's shape or a
//! resumption. A failure (an I/O error, a panic) is recorded for the runs it hit, and the
//! others go on; with `fail_fast`, units not yet started are skipped instead.

use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::artifacts::{ArtifactError, RunResult, RunStatus, SweepDir};
use crate::data::Dataset;
use crate::model::{self, Real};
use crate::plan::{Plan, RunSpec};
use crate::spec::Precision;

/// Most runs trained in one fused group (bounds the stacked weight matrix).
pub const MAX_FUSED: usize = 16;

/// How to execute a plan.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Worker threads.
    pub jobs: NonZeroUsize,
    /// Retrain runs that already finished.
    pub force: bool,
    /// Stop starting new work after the first diverged or failed run.
    pub fail_fast: bool,
}

/// Receives progress events; called from worker threads.
pub trait Progress: Sync {
    /// `runs` begin training, fused.
    fn started(&self, _runs: &[RunSpec]) {}
    /// One more epoch of `runs` runs is done.
    fn epoch(&self, _runs: usize) {}
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
                },
                Err(RunError::Failed(_)) => s.failed += 1,
                Err(RunError::Skipped) => s.skipped += 1,
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

fn train_unit<T: Real>(
    unit: &[RunSpec],
    data: &Dataset,
    dir: &SweepDir,
    fingerprint: &str,
    progress: &dyn Progress,
) -> Vec<Result<RunResult, RunError>> {
    let start = Instant::now();
    let hypers: Vec<_> = unit.iter().map(|r| r.params.hyper()).collect();
    let cfg = unit[0].params.train_config();
    let trained = catch_unwind(AssertUnwindSafe(|| {
        model::train_group::<T>(data, &cfg, &hypers, &|_| progress.epoch(unit.len()))
    }));
    let seconds = start.elapsed().as_secs_f64() / unit.len() as f64;
    match trained {
        Ok(fitted) => unit
            .iter()
            .zip(&fitted)
            .map(|(run, f)| {
                dir.write_run(run, f, seconds, fingerprint)
                    .map_err(|e| record_failure(dir, run, &e.to_string(), fingerprint))
            })
            .collect(),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "training panicked".into());
            let msg = format!("internal error: {msg}; please report it");
            unit.iter()
                .map(|run| Err(record_failure(dir, run, &msg, fingerprint)))
                .collect()
        }
    }
}

fn record_failure(dir: &SweepDir, run: &RunSpec, msg: &str, fingerprint: &str) -> RunError {
    let _ = dir.write_failed(run, msg, fingerprint);
    RunError::Failed(msg.to_string())
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
            Err(ArtifactError::OtherData { .. }) if force => pending.push(run.clone()),
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

/// Trains `pending` and returns one outcome per run, in the order given.
pub fn execute(
    pending: &[RunSpec],
    data: &Dataset,
    dir: &SweepDir,
    fingerprint: &str,
    opts: &ExecOptions,
    progress: &dyn Progress,
) -> Vec<RunOutcome> {
    let units = work_units(pending);
    let stop = AtomicBool::new(false);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.get())
        .build()
        .expect("thread pool");
    let per_unit: Vec<Vec<RunOutcome>> = pool.install(|| {
        units
            .par_iter()
            .with_max_len(1)
            .map(|unit| {
                if stop.load(Ordering::Relaxed) {
                    return unit
                        .iter()
                        .map(|run| RunOutcome {
                            run: run.clone(),
                            result: Err(RunError::Skipped),
                            reused: false,
                        })
                        .collect();
                }
                // Claim each run; drop those another process is training or has finished
                // since the plan was partitioned.
                let mut mine = Vec::new();
                let mut claims = Vec::new();
                let mut others = Vec::new();
                for run in unit {
                    match dir.claim(&run.id) {
                        Ok(Some(lock)) => match dir.finished(run, fingerprint) {
                            Ok(Some(result)) if !opts.force => others.push(RunOutcome {
                                run: run.clone(),
                                result: Ok(result),
                                reused: true,
                            }),
                            _ => {
                                claims.push(lock);
                                mine.push(run.clone());
                            }
                        },
                        Ok(None) => others.push(RunOutcome {
                            run: run.clone(),
                            result: Err(RunError::ClaimedElsewhere),
                            reused: false,
                        }),
                        Err(e) => others.push(RunOutcome {
                            run: run.clone(),
                            result: Err(record_failure(dir, run, &e.to_string(), fingerprint)),
                            reused: false,
                        }),
                    }
                }
                if mine.is_empty() {
                    return others;
                }
                let unit = &mine;
                progress.started(unit);
                let results = match unit[0].params.precision {
                    Precision::F32 => train_unit::<f32>(unit, data, dir, fingerprint, progress),
                    Precision::F64 => train_unit::<f64>(unit, data, dir, fingerprint, progress),
                };
                drop(claims);
                let mut outcomes = others;
                outcomes.extend(unit.iter().zip(results).map(|(run, result)| {
                    let outcome = RunOutcome {
                        run: run.clone(),
                        result,
                        reused: false,
                    };
                    let bad = !matches!(&outcome.result, Ok(r) if r.status == RunStatus::Ok);
                    if bad && opts.fail_fast {
                        stop.store(true, Ordering::Relaxed);
                    }
                    progress.finished(&outcome);
                    outcome
                }));
                outcomes
            })
            .collect()
    });
    let mut by_id: std::collections::HashMap<_, _> = per_unit
        .into_iter()
        .flatten()
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
}
