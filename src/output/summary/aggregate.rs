//! Aggregating: the records of a sweep folder -> a [`Summary`]: each setting's final
//! metrics over its seeds (count, mean, sample std, min, max), the settings ranked by
//! mean validation accuracy, and the runs left out of the averages.
//!
//! May import `output::contract` and `summary::read` (the records).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::output::contract::{Metric, PlannedRun, RunStatus};
use crate::output::summary::read::{GradcheckRow, ResultRow};

/// A run whose parameters differ from those of its setting's first run in `plan.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InconsistentSetting {
    /// The run's line in `plan.csv`.
    pub line: u64,
    pub run_id: String,
    pub setting_id: String,
}

/// Count, mean, sample standard deviation (ddof = 1, as pandas' default), min and max of
/// one metric over a setting's seeds. Undefined values are NaN: all of them when `n` is
/// 0, and `std` when `n` is 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// Aggregates `values`, skipping NaN as pandas does, so that an empty metric cell
    /// (for example a sweep without a test split) does not poison the mean.
    pub(crate) fn of(values: &[f64]) -> Stats {
        let kept: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        let n = kept.len();
        if n == 0 {
            return Stats {
                n,
                mean: f64::NAN,
                std: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let mean = kept.iter().sum::<f64>() / n as f64;
        // Two passes (mean first, then squared deviations) avoid the cancellation of the
        // textbook sum-of-squares formula; see Chan, Golub & LeVeque (1983).
        let std = if n > 1 {
            (kept.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            f64::NAN
        };
        Stats {
            n,
            mean,
            std,
            min: kept.iter().copied().fold(f64::INFINITY, f64::min),
            max: kept.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// A run that stopped because its cost stopped being finite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DivergedRun {
    pub run_id: String,
    pub epoch: Option<u64>,
}

/// A run that failed, with its error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRun {
    pub run_id: String,
    pub error: String,
}

/// The runs that do not count towards the averages, by run id, in plan order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Missing {
    /// Planned runs with no row in `results.csv`.
    pub unfinished: Vec<String>,
    pub diverged: Vec<DivergedRun>,
    pub failed: Vec<FailedRun>,
    /// Rows of `results.csv` whose run id is not in `plan.csv`; they are ignored.
    pub unplanned: Vec<String>,
}

impl Missing {
    /// True when every planned run finished with status ok.
    pub fn is_empty(&self) -> bool {
        self.unfinished.is_empty()
            && self.diverged.is_empty()
            && self.failed.is_empty()
            && self.unplanned.is_empty()
    }

    pub(crate) fn headline(&self, planned: usize) -> String {
        format!(
            "{} of {} planned runs not averaged: {} unfinished, {} diverged, {} failed",
            self.unfinished.len() + self.diverged.len() + self.failed.len(),
            planned,
            self.unfinished.len(),
            self.diverged.len(),
            self.failed.len()
        )
    }

    /// One line per missing run, each `kind: run_id[: detail]`.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(self.unfinished.iter().map(|id| format!("unfinished: {id}")));
        out.extend(self.diverged.iter().map(|d| match d.epoch {
            Some(e) => format!("diverged: {} (at epoch {e})", d.run_id),
            None => format!("diverged: {}", d.run_id),
        }));
        out.extend(
            self.failed
                .iter()
                .map(|f| format!("failed: {}: {}", f.run_id, f.error)),
        );
        out.extend(
            self.unplanned
                .iter()
                .map(|id| format!("ignored (not in plan.csv): {id}")),
        );
        out
    }
}

/// One setting (all parameters but the seed) aggregated over its seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingSummary {
    pub setting_id: String,
    /// The values of `SETTING_COLUMNS`, as written in `plan.csv`.
    pub params: Vec<String>,
    /// Planned run ids, in plan order.
    pub run_ids: Vec<String>,
    /// Run ids with status ok, in plan order; the statistics are over these.
    pub ok_run_ids: Vec<String>,
    /// Run ids successive halving stopped, in plan order (not in the statistics).
    pub stopped_run_ids: Vec<String>,
    pub n_diverged: usize,
    pub n_failed: usize,
    pub stats: [Stats; Metric::COUNT],
    /// 1 is the best mean validation accuracy; ties share the smaller rank (pandas'
    /// `rank(method="min")`). None when no run of the setting finished ok.
    pub rank: Option<usize>,
}

impl SettingSummary {
    /// The number of runs with status ok.
    pub fn n(&self) -> usize {
        self.ok_run_ids.len()
    }

    pub fn n_planned(&self) -> usize {
        self.run_ids.len()
    }

    pub fn stat(&self, metric: Metric) -> &Stats {
        &self.stats[metric.index()]
    }
}

/// One setting's curve figure: where it is, its size and what its x axis counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurveFigure {
    pub rel: String,
    pub size: (u32, u32),
    pub x_axis: &'static str,
}

/// A figure of one setting's curves over those of its twin, the same setting but for
/// one switch (today batch norm): `off` without it, `on` with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairFigure {
    pub off: String,
    pub on: String,
    pub rel: String,
    pub size: (u32, u32),
    pub x_axis: &'static str,
}

/// A figure of validation accuracy against one setting axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFigure {
    /// The axis's key (its column).
    pub axis: String,
    pub rel: String,
    pub size: (u32, u32),
    pub log_x: bool,
    /// Settings of the coarse sweep drawn beside this sweep's (0: none).
    pub n_coarse: usize,
}

/// A heatmap of the best mean validation accuracy over two setting axes (x, y).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeatmapFigure {
    pub axes: [String; 2],
    pub rel: String,
    pub size: (u32, u32),
}

/// Relative paths (from the sweep folder) of the figures that were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FigureIndex {
    /// How many of the best settings get their own figures and report sections.
    pub top: usize,
    /// Validation accuracy against each numeric axis that varies, in column order.
    pub responses: Vec<ResponseFigure>,
    /// Heatmaps over the first pairs of those axes.
    pub heatmaps: Vec<HeatmapFigure>,
    /// The coarse sweep's folder, when the response figures also show its settings.
    pub coarse: Option<String>,
    /// Every setting's mean validation accuracy in one chart.
    pub overlay: Option<String>,
    /// A successive-halving race, every candidate's curve with the stopped ones marked.
    pub halving: Option<String>,
    /// Loss, cost and accuracy curves by setting id.
    pub curves: HashMap<String, CurveFigure>,
    /// Settings with batch norm beside their twins without, in summary order.
    pub batch_norm_pairs: Vec<PairFigure>,
    /// Weight montages by run id.
    pub montages: HashMap<String, String>,
    /// Runs with status ok whose montage was not drawn because of `MAX_MONTAGES`.
    pub montages_skipped: usize,
    /// Why a run has no montage although it was due one (its W is not a stack of
    /// images), by run id.
    pub no_montage: HashMap<String, String>,
}

/// The summary of one sweep folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The sweep's name (its folder name).
    pub name: String,
    /// Settings, best rank first; unranked settings last, in plan order.
    pub settings: Vec<SettingSummary>,
    pub n_planned: usize,
    pub gradcheck: Option<Vec<GradcheckRow>>,
    pub figures: FigureIndex,
    missing: Missing,
}

impl Summary {
    /// Aggregates `results` by setting. Settings are those of `plan`; results whose run is
    /// not planned are listed in `Missing::unplanned` and ignored.
    pub(crate) fn from_runs(
        name: &str,
        plan: &[PlannedRun],
        results: &[ResultRow],
    ) -> Result<Summary, InconsistentSetting> {
        let by_id: HashMap<&str, &ResultRow> =
            results.iter().map(|r| (r.run_id.as_str(), r)).collect();
        let planned: HashSet<&str> = plan.iter().map(|p| p.run_id.as_str()).collect();
        let mut missing = Missing {
            unplanned: results
                .iter()
                .filter(|r| !planned.contains(r.run_id.as_str()))
                .map(|r| r.run_id.clone())
                .collect(),
            ..Missing::default()
        };

        let mut order: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<&PlannedRun>> = HashMap::new();
        for run in plan {
            let group = groups.entry(run.setting_id.clone()).or_default();
            if let Some(first) = group.first() {
                if first.params != run.params {
                    return Err(InconsistentSetting {
                        line: run.line,
                        run_id: run.run_id.clone(),
                        setting_id: run.setting_id.clone(),
                    });
                }
            } else {
                order.push(run.setting_id.clone());
            }
            group.push(run);
        }

        let mut settings = Vec::with_capacity(order.len());
        for setting_id in order {
            let runs = &groups[&setting_id];
            let mut ok = Vec::new();
            let mut stopped = Vec::new();
            let (mut n_diverged, mut n_failed) = (0, 0);
            for run in runs {
                match by_id.get(run.run_id.as_str()) {
                    None => missing.unfinished.push(run.run_id.clone()),
                    Some(r) => match r.status {
                        RunStatus::Ok => ok.push(*r),
                        RunStatus::Diverged => {
                            n_diverged += 1;
                            missing.diverged.push(DivergedRun {
                                run_id: r.run_id.clone(),
                                epoch: r.diverged_epoch,
                            });
                        }
                        // Successive halving's stopped runs are expected, not missing:
                        // they count towards n_planned only.
                        RunStatus::Stopped => stopped.push(r.run_id.clone()),
                        RunStatus::Failed => {
                            n_failed += 1;
                            missing.failed.push(FailedRun {
                                run_id: r.run_id.clone(),
                                error: r.error.clone(),
                            });
                        }
                    },
                }
            }
            let stats = Metric::ALL.map(|m| {
                let values: Vec<f64> = ok.iter().map(|r| r.metrics[m.index()]).collect();
                Stats::of(&values)
            });
            settings.push(SettingSummary {
                setting_id,
                params: runs[0].params.clone(),
                run_ids: runs.iter().map(|r| r.run_id.clone()).collect(),
                ok_run_ids: ok.iter().map(|r| r.run_id.clone()).collect(),
                stopped_run_ids: stopped,
                n_diverged,
                n_failed,
                stats,
                rank: None,
            });
        }
        rank_settings(&mut settings);

        Ok(Summary {
            name: name.to_string(),
            settings,
            n_planned: plan.len(),
            gradcheck: None,
            figures: FigureIndex::default(),
            missing,
        })
    }

    /// The runs that are not in the averages, with ids.
    pub fn missing(&self) -> &Missing {
        &self.missing
    }

    /// The best setting: rank 1 (the first one in plan order if several tie).
    pub fn best(&self) -> Option<&SettingSummary> {
        self.settings.first().filter(|s| s.rank.is_some())
    }
}

/// Sorts settings by mean validation accuracy, best first (stable, so ties keep plan
/// order), and gives each its rank; settings without a mean go last, unranked.
fn rank_settings(settings: &mut [SettingSummary]) {
    let key = |s: &SettingSummary| s.stat(Metric::ValAccuracy).mean;
    settings.sort_by(|a, b| match (key(a).is_nan(), key(b).is_nan()) {
        (false, false) => key(b).total_cmp(&key(a)),
        (x, y) => x.cmp(&y),
    });
    let mut prev: Option<(f64, usize)> = None;
    for (i, s) in settings.iter_mut().enumerate() {
        let v = key(s);
        if v.is_nan() {
            continue;
        }
        let rank = match prev {
            Some((pv, pr)) if pv == v => pr,
            _ => i + 1,
        };
        s.rank = Some(rank);
        prev = Some((v, rank));
    }
}

/// Groups gradient-check rows by (batch size, segment, lambda, method) in file order,
/// with the W and b rows of each group side by side.
pub fn gradcheck_groups(rows: &[GradcheckRow]) -> Vec<[Option<&GradcheckRow>; 2]> {
    let mut order: Vec<(&str, &str, &str, &str)> = Vec::new();
    let mut groups: BTreeMap<usize, [Option<&GradcheckRow>; 2]> = BTreeMap::new();
    for r in rows {
        let key = (
            r.batch_size.as_str(),
            r.segment.as_str(),
            r.lambda.as_str(),
            r.method.as_str(),
        );
        let i = order.iter().position(|k| *k == key).unwrap_or_else(|| {
            order.push(key);
            order.len() - 1
        });
        let slot = if r.param == "b" { 1 } else { 0 };
        groups.entry(i).or_default()[slot] = Some(r);
    }
    groups.into_values().collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::output::contract::{SETTING_COLUMNS, setting_id_of};
    use approx::assert_relative_eq;

    pub(crate) fn planned(run_id: &str, lambda: &str) -> PlannedRun {
        PlannedRun {
            run_id: run_id.to_string(),
            setting_id: setting_id_of(run_id),
            params: vec![
                lambda.into(),
                "0.001".into(),
                "100".into(),
                "3".into(),
                "true".into(),
                "f32".into(),
                "0.01".into(),
            ]
            .into_iter()
            .chain(std::iter::repeat_n(
                String::new(),
                SETTING_COLUMNS.len() - 7,
            ))
            .collect(),
            line: 0,
        }
    }

    pub(crate) fn result(run_id: &str, status: RunStatus, val_acc: f64) -> ResultRow {
        ResultRow {
            run_id: run_id.to_string(),
            status,
            diverged_epoch: (status == RunStatus::Diverged).then_some(2),
            metrics: [
                0.5,
                val_acc,
                f64::NAN,
                1.0,
                2.0,
                f64::NAN,
                0.9,
                1.9,
                f64::NAN,
            ],
            error: if status == RunStatus::Failed {
                "out of memory".into()
            } else {
                String::new()
            },
        }
    }

    #[test]
    fn stats_match_hand_computed_values() {
        // Mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, / (4 - 1), sqrt.
        let s = Stats::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.n, 4);
        assert_relative_eq!(s.mean, 2.5);
        assert_relative_eq!(s.std, (5.0f64 / 3.0).sqrt(), max_relative = 1e-15);
        assert_eq!((s.min, s.max), (1.0, 4.0));
        // pandas: pd.Series([0.3, 0.5]).std() == 0.14142135623730953.
        assert_relative_eq!(
            Stats::of(&[0.3, 0.5]).std,
            0.141_421_356_237_309_53,
            max_relative = 1e-15
        );
    }

    #[test]
    fn stats_of_one_value_has_no_std_and_nan_is_skipped() {
        let one = Stats::of(&[0.25, f64::NAN]);
        assert_eq!(one.n, 1);
        assert_eq!((one.mean, one.min, one.max), (0.25, 0.25, 0.25));
        assert!(one.std.is_nan());
        let none = Stats::of(&[]);
        assert_eq!(none.n, 0);
        assert!(none.mean.is_nan() && none.min.is_nan());
    }

    pub(crate) fn two_settings() -> Summary {
        let a = ["lambda=0_seed=1", "lambda=0_seed=2", "lambda=0_seed=3"];
        let b = ["lambda=1_seed=1", "lambda=1_seed=2", "lambda=1_seed=3"];
        let plan: Vec<PlannedRun> = a
            .iter()
            .map(|id| planned(id, "0"))
            .chain(b.iter().map(|id| planned(id, "1")))
            .collect();
        let results = vec![
            result(a[0], RunStatus::Ok, 0.30),
            result(a[1], RunStatus::Ok, 0.34),
            result(a[2], RunStatus::Diverged, f64::NAN),
            result(b[0], RunStatus::Ok, 0.40),
            result(b[1], RunStatus::Failed, f64::NAN),
            result("lambda=9_seed=1", RunStatus::Ok, 0.99),
        ];
        Summary::from_runs("demo", &plan, &results).unwrap()
    }

    #[test]
    fn aggregates_only_ok_runs_and_lists_the_rest() {
        let s = two_settings();
        // lambda=1 has the higher mean val accuracy (0.40 vs 0.32), so it comes first.
        let ids: Vec<&str> = s.settings.iter().map(|x| x.setting_id.as_str()).collect();
        assert_eq!(ids, ["lambda=1", "lambda=0"]);
        let (best, second) = (&s.settings[0], &s.settings[1]);
        assert_eq!((best.rank, second.rank), (Some(1), Some(2)));
        assert_eq!(
            (best.n(), best.n_planned(), best.n_diverged, best.n_failed),
            (1, 3, 0, 1)
        );
        assert_eq!(
            (
                second.n(),
                second.n_planned(),
                second.n_diverged,
                second.n_failed
            ),
            (2, 3, 1, 0)
        );
        let v = second.stat(Metric::ValAccuracy);
        assert_relative_eq!(v.mean, 0.32, max_relative = 1e-12);
        assert_relative_eq!(v.std, 0.02 * 2f64.sqrt(), max_relative = 1e-12);
        assert_eq!(second.stat(Metric::TestAccuracy).n, 0);
        let m = s.missing();
        assert_eq!(m.unfinished, ["lambda=1_seed=3"]);
        assert_eq!(
            m.diverged,
            [DivergedRun {
                run_id: "lambda=0_seed=3".into(),
                epoch: Some(2)
            }]
        );
        assert_eq!(m.failed[0].run_id, "lambda=1_seed=2");
        assert_eq!(m.unplanned, ["lambda=9_seed=1"]);
        assert_eq!(s.best().map(|b| b.setting_id.as_str()), Some("lambda=1"));
    }

    #[test]
    fn ties_share_the_smaller_rank_and_empty_settings_are_unranked() {
        let plan: Vec<PlannedRun> = ["a_seed=1", "b_seed=1", "c_seed=1", "d_seed=1"]
            .iter()
            .map(|id| planned(id, id))
            .collect();
        let results = vec![
            result("a_seed=1", RunStatus::Ok, 0.2),
            result("b_seed=1", RunStatus::Ok, 0.5),
            result("c_seed=1", RunStatus::Ok, 0.5),
        ];
        let s = Summary::from_runs("t", &plan, &results).unwrap();
        let ranks: Vec<(&str, Option<usize>)> = s
            .settings
            .iter()
            .map(|x| (x.setting_id.as_str(), x.rank))
            .collect();
        assert_eq!(
            ranks,
            [("b", Some(1)), ("c", Some(1)), ("a", Some(3)), ("d", None)]
        );
    }

    #[test]
    fn inconsistent_parameters_within_a_setting_are_rejected() {
        let plan = vec![planned("x_seed=1", "0.1"), planned("x_seed=2", "0.2")];
        let err = Summary::from_runs("t", &plan, &[]).unwrap_err();
        assert_eq!((err.run_id.as_str(), err.line), ("x_seed=2", 0));
    }
}
