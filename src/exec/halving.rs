//! Successive halving (`[search] method = "halving"`): the candidates (settings, each
//! trained with every seed) race over training length.
//!
//! Every candidate trains the first rung's length (`min_epochs`, or cycles for cyclic
//! schedules); the best 1/`factor` of them, by the mean over their seeds of the metric
//! recorded there, ties broken by setting id, train on to the next rung, `factor` times
//! longer, and so on up to the runs' full length. The rest stop where they are: their
//! folders are written with status `stopped`, their weights and metrics as they were.
//!
//! A promoted run is not retrained: its fused group pauses at the rung
//! ([`Trainer::pause_at`]) and trains on from there, the same updates in the same order
//! as training straight through. So every group stays in memory until it is done, and
//! the whole race runs in one process (`sweep run` refuses `--shard` for it).
//!
//! Decisions read only recorded metrics, so they are the same on every machine, thread
//! count and resumption: a run finished before a resumption brings the metrics in its
//! `metrics.csv`; a run that was stopped, or was still training when the process died,
//! trains again from its start (deterministically, to the same numbers).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Instant;

use tracing::info;

use super::{Claimed, Context, RunError, RunOutcome, catch_panic};
use crate::output::artifacts::RunStatus;
use crate::output::contract::{METRICS_CSV, setting_id_of};
use crate::plan::{Length, RunParams, RunSpec};
use crate::spec::{Halving, Objective};
use crate::train::{Snapshot, SplitMetrics, Trainer};

/// A fused group racing, with the claims of its runs.
struct Slot<G> {
    unit: Claimed,
    group: G,
    failed: Option<String>,
}

/// Where one run of a candidate is.
#[derive(Debug, Clone, Copy)]
enum Member {
    /// Member `r` of slot `s`.
    Live { slot: usize, r: usize },
    /// Finished before this process started; index into `reused`.
    Reused(usize),
}

/// The length a run's rungs are counted in, and its full length in that unit.
pub(crate) fn length_unit(p: &RunParams) -> (&'static str, usize) {
    match p.train_config().length {
        Length::Updates(_) => ("cycles", p.cycles),
        Length::Epochs(e) => ("epochs", e),
    }
}

/// Updates after `rung` epochs (cycles, for cyclic schedules) of a run on `n` examples.
fn rung_updates(p: &RunParams, rung: usize, n: usize) -> usize {
    match p.train_config().length {
        Length::Updates(_) => 2 * p.step_size * rung,
        Length::Epochs(_) => rung * n.div_ceil(p.batch_size.min(n).max(1)),
    }
}

fn value(m: SplitMetrics, metric: Objective) -> f64 {
    match metric {
        Objective::ValAccuracy => m.accuracy,
        Objective::ValCost => m.cost,
        Objective::ValLoss => m.loss,
    }
}

impl<'a> Context<'a> {
    /// Races `units` (claimed, not yet trained) against each other and against the runs
    /// of `reused` (finished before), writing each run's folder once its group is done.
    pub(super) fn race<G: Trainer<'a>>(
        &self,
        units: Vec<Claimed>,
        reused: &[RunOutcome],
        halving: &Halving,
        out: &mut Vec<RunOutcome>,
    ) {
        let start = Instant::now();
        let total: usize = units.iter().map(|u| u.runs.len()).sum::<usize>().max(1);
        let seconds = || start.elapsed().as_secs_f64() / total as f64;
        let n = self.data.train.len();

        let mut slots: Vec<Slot<G>> = Vec::new();
        for unit in units {
            self.progress.started(&unit.runs);
            let hypers: Vec<_> = unit.runs.iter().map(|r| r.params.hyper()).collect();
            let cfg = unit.runs[0].params.train_config();
            match catch_panic(|| G::new(self.data, &cfg, &hypers)) {
                Ok(group) => slots.push(Slot {
                    unit,
                    group,
                    failed: None,
                }),
                Err(msg) => self.settle::<G::Real>(unit, Err(msg), seconds(), out),
            }
        }
        G::prepare_scoring(self.data, slots.iter().map(|s| s.group.runs()).sum());

        // The candidates, by setting id (so ties break by it), and where their runs are.
        let mut candidates: BTreeMap<String, Vec<(RunSpec, Member)>> = BTreeMap::new();
        for (s, slot) in slots.iter().enumerate() {
            for (r, run) in slot.unit.runs.iter().enumerate() {
                candidates
                    .entry(setting_id_of(run.id.as_str()))
                    .or_default()
                    .push((run.clone(), Member::Live { slot: s, r }));
            }
        }
        for (i, o) in reused.iter().enumerate() {
            candidates
                .entry(setting_id_of(o.run.id.as_str()))
                .or_default()
                .push((o.run.clone(), Member::Reused(i)));
        }
        let Some((unit, length)) = candidates
            .values()
            .next()
            .map(|runs| length_unit(&runs[0].0.params))
        else {
            return;
        };
        let rungs = halving.rungs(length);
        let mut alive: Vec<String> = candidates.keys().cloned().collect();
        let chunk = self.opts.jobs.get().max(8);

        for (k, &rung) in rungs.iter().enumerate() {
            let last = k + 1 == rungs.len();
            for slot in &mut slots {
                let limit = if last {
                    usize::MAX
                } else {
                    rung_updates(&slot.unit.runs[0].params, rung, n)
                };
                slot.group.pause_at(limit);
            }
            self.advance(&mut slots, chunk);
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            if !last {
                let keep = halving.keep(alive.len());
                let mut scored: Vec<(f64, String)> = alive
                    .iter()
                    .map(|id| {
                        let runs = &candidates[id];
                        let sum: f64 = runs
                            .iter()
                            .map(|(run, m)| {
                                let target = rung_updates(&run.params, rung, n);
                                let at = match *m {
                                    Member::Live { slot, r } => slots[slot]
                                        .group
                                        .history(r)
                                        .last()
                                        .filter(|h| h.update == target)
                                        .map(|h| h.val),
                                    Member::Reused(i) => self.recorded_val(&reused[i], target),
                                };
                                at.map_or(f64::NAN, |v| value(v, halving.metric))
                            })
                            .sum();
                        (sum / runs.len() as f64, id.clone())
                    })
                    .collect();
                scored.sort_by(|(a, x), (b, y)| {
                    if halving.metric.better(*a, *b) {
                        std::cmp::Ordering::Less
                    } else if halving.metric.better(*b, *a) {
                        std::cmp::Ordering::Greater
                    } else {
                        x.cmp(y)
                    }
                });
                info!(
                    "halving: {} candidates after {rung} {unit}; the best {keep} by {} train on to {} {unit}",
                    alive.len(),
                    halving.metric.key(),
                    rungs[k + 1]
                );
                for (_, id) in &scored[keep..] {
                    for (_, m) in &candidates[id] {
                        if let Member::Live { slot, r } = *m {
                            slots[slot].group.stop(r);
                        }
                    }
                }
                alive = scored.into_iter().take(keep).map(|(_, id)| id).collect();
            }
            // Write the groups that are done (every member stopped, diverged or, at the
            // last rung, finished) or failed; the others race on.
            let mut still = Vec::with_capacity(slots.len());
            let mut moved = HashMap::new();
            for (old, slot) in slots.into_iter().enumerate() {
                if let Some(msg) = slot.failed {
                    self.settle::<G::Real>(slot.unit, Err(msg), seconds(), out);
                } else if slot.group.done() || last {
                    let Slot { unit, group, .. } = slot;
                    let fitted = catch_panic(move || group.finish());
                    self.settle(unit, fitted, seconds(), out);
                } else {
                    moved.insert(old, still.len());
                    still.push(slot);
                }
            }
            slots = still;
            for runs in candidates.values_mut() {
                for (_, m) in runs.iter_mut() {
                    if let Member::Live { slot, .. } = m
                        && let Some(&new) = moved.get(slot)
                    {
                        *slot = new;
                    }
                }
            }
        }
        // --fail-fast: whatever still races stops here and writes nothing.
        for slot in slots {
            let epochs = slot.group.recorded().unwrap_or(0);
            out.extend(slot.unit.runs.into_iter().map(|run| RunOutcome {
                run,
                result: Err(RunError::Stopped { epochs }),
                reused: false,
            }));
        }
    }

    /// Trains every slot that is neither done, paused nor failed until it is one of
    /// them, `chunk` slots at a time in lockstep (as [`Context::train_cohort`] does).
    fn advance<G: Trainer<'a>>(&self, slots: &mut [Slot<G>], chunk: usize) {
        for part in slots.chunks_mut(chunk) {
            loop {
                let mut live: Vec<&mut Slot<G>> = part
                    .iter_mut()
                    .filter(|s| s.failed.is_none() && !s.group.done() && !s.group.paused())
                    .collect();
                if live.is_empty() || self.stop.load(Ordering::Relaxed) {
                    break;
                }
                let snapshot =
                    G::Snapshot::take(&live.iter().map(|s| &s.group).collect::<Vec<_>>());
                let (scored, trained) = {
                    let mut groups: Vec<&mut G> = live.iter_mut().map(|s| &mut s.group).collect();
                    self.step(&snapshot, &mut groups)
                };
                let recorded = scored.and_then(|scores| {
                    catch_panic(|| {
                        let mut groups: Vec<&mut G> =
                            live.iter_mut().map(|s| &mut s.group).collect();
                        snapshot.record(&scores, &mut groups);
                    })
                });
                for (s, failed) in live.iter_mut().zip(trained) {
                    if s.group.recorded() > Some(0) {
                        self.progress.span(s.unit.runs.len());
                    }
                    s.failed = failed.or_else(|| recorded.as_ref().err().cloned());
                }
            }
        }
    }

    /// The validation metrics `run` (finished before) recorded after `update` updates.
    fn recorded_val(&self, run: &RunOutcome, update: usize) -> Option<SplitMetrics> {
        let Ok(result) = &run.result else {
            return None;
        };
        if result.status == RunStatus::Diverged {
            return None;
        }
        let path = self.dir.run_dir(&run.run.id).join(METRICS_CSV);
        let mut reader = csv::Reader::from_path(path).ok()?;
        let headers = reader.headers().ok()?.clone();
        let col = |name: &str| headers.iter().position(|h| h == name);
        let (u, split) = (col("update")?, col("split")?);
        let (loss, cost, accuracy) = (col("loss")?, col("cost")?, col("accuracy")?);
        reader.records().filter_map(Result::ok).find_map(|rec| {
            let at = rec.get(u)?.parse::<usize>().ok()? == update && rec.get(split)? == "val";
            let num = |c: usize| rec.get(c)?.parse::<f64>().ok();
            at.then(|| {
                Some(SplitMetrics {
                    loss: num(loss)?,
                    cost: num(cost)?,
                    accuracy: num(accuracy)?,
                })
            })
            .flatten()
        })
    }
}
