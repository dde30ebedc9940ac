//! Summary stage: reads one sweep output folder (the files `sweep run` writes, see the
//! output contract), aggregates each setting's final metrics over seeds, says which runs
//! are missing, and writes `summary.csv`, the figures and `report.html`.
//!
//! It reads only `plan.csv`, `results.csv`, `metrics.csv`, `gradcheck.csv` (optional) and
//! `runs/<id>/W.npy`, so it works on a folder copied from another machine and on a sweep
//! that is still running (its unfinished runs are listed, never averaged over silently).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use rayon::prelude::*;
use thiserror::Error;

use crate::output::figures::{self, Band, FigureError, OverlayLine, SettingCurves};
use crate::output::report;

/// The parameter columns of a setting, in `plan.csv` order, without `seed`.
pub const PARAM_COLUMNS: [&str; 7] = [
    "lambda",
    "eta",
    "batch_size",
    "epochs",
    "shuffle",
    "precision",
    "init_std",
];

/// At most this many weight montages are drawn per sweep. Each setting's first-seed run
/// is always drawn (the report shows it); other runs are drawn in plan order until the
/// cap is reached, because beyond that the images cost time and disk without being read.
pub const MAX_MONTAGES: usize = 500;

/// How `Summary::render` lays out the settings table. The default is `Table`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TableFormat {
    /// Aligned plain-text columns for a terminal, followed by the list of missing runs.
    #[default]
    Table,
    /// Exactly the contents of `summary.csv`.
    Csv,
    /// A GitHub-flavoured Markdown table, followed by the list of missing runs.
    Markdown,
}

/// What `summarize_sweep` writes besides `summary.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryOptions {
    /// Write `figures/*.png` and `report.html` (default true).
    pub figures: bool,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        Self { figures: true }
    }
}

/// Everything that can stop the summary of a sweep folder.
#[derive(Debug, Error)]
pub enum SummaryError {
    #[error(
        "no plan.csv in {} nor in any folder directly inside it; pass a sweep output folder (out/<name>) or a folder of them",
        dir.display()
    )]
    NoSweeps { dir: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {}: {source}; it does not follow the sweep output contract", path.display())]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error(
        "{} has no column `{column}`; it does not follow the sweep output contract, rerun the sweep or rebuild it from the run folders",
        path.display()
    )]
    MissingColumn { path: PathBuf, column: &'static str },
    #[error("{} line {line}: column `{column}` is {value:?}, expected {expected}", path.display())]
    BadValue {
        path: PathBuf,
        line: u64,
        column: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(
        "{} lists run `{run_id}` twice (lines {first} and {second}); rebuild it from the run folders",
        path.display()
    )]
    DuplicateRun {
        path: PathBuf,
        run_id: String,
        first: u64,
        second: u64,
    },
    #[error(
        "{} line {line}: run `{run_id}` belongs to setting `{setting_id}` but its parameters differ from that setting's first run; run ids and parameter columns disagree",
        path.display()
    )]
    InconsistentSetting {
        path: PathBuf,
        line: u64,
        run_id: String,
        setting_id: String,
    },
    #[error("cannot read weights {}: {message}; the run folder may be incomplete, rerun that run", path.display())]
    Weights { path: PathBuf, message: String },
    #[error(transparent)]
    Figure(#[from] FigureError),
}

/// One final metric that is aggregated over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    TrainAccuracy,
    ValAccuracy,
    TestAccuracy,
    TrainCost,
    ValCost,
    TestCost,
}

impl Metric {
    /// Every metric, in `summary.csv` column order.
    pub const ALL: [Metric; 6] = [
        Metric::TrainAccuracy,
        Metric::ValAccuracy,
        Metric::TestAccuracy,
        Metric::TrainCost,
        Metric::ValCost,
        Metric::TestCost,
    ];

    /// The column name in `results.csv`, also the prefix of the `summary.csv` columns.
    pub fn column(self) -> &'static str {
        match self {
            Metric::TrainAccuracy => "train_accuracy",
            Metric::ValAccuracy => "val_accuracy",
            Metric::TestAccuracy => "test_accuracy",
            Metric::TrainCost => "train_cost",
            Metric::ValCost => "val_cost",
            Metric::TestCost => "test_cost",
        }
    }

    fn index(self) -> usize {
        Metric::ALL
            .iter()
            .position(|m| *m == self)
            .expect("invariant broken: Metric::ALL lists every metric")
    }
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
    pub fn of(values: &[f64]) -> Stats {
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

/// The final state of a run, as `results.csv` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Ok,
    Diverged,
    Failed,
}

/// One row of `plan.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    pub run_id: String,
    pub setting_id: String,
    pub seed: u64,
    /// The values of `PARAM_COLUMNS`, as written in `plan.csv`.
    pub params: Vec<String>,
    /// The 1-based line in `plan.csv`, for error messages.
    pub line: u64,
}

/// One row of `results.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    pub run_id: String,
    pub status: RunStatus,
    pub diverged_epoch: Option<u64>,
    /// Final metrics in `Metric::ALL` order; NaN when the cell is empty.
    pub metrics: [f64; 6],
    pub error: String,
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

    fn headline(&self, planned: usize) -> String {
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
    /// The values of `PARAM_COLUMNS`, as written in `plan.csv`.
    pub params: Vec<String>,
    /// Planned run ids, in plan order.
    pub run_ids: Vec<String>,
    /// Run ids with status ok, in plan order; the statistics are over these.
    pub ok_run_ids: Vec<String>,
    pub n_diverged: usize,
    pub n_failed: usize,
    pub stats: [Stats; 6],
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

/// Relative paths (from the sweep folder) of the figures that were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FigureIndex {
    /// Every setting's mean validation accuracy in one chart.
    pub overlay: Option<String>,
    /// Loss, cost and accuracy curves by setting id.
    pub curves: HashMap<String, String>,
    /// Weight montages by run id.
    pub montages: HashMap<String, String>,
    /// Runs with status ok whose montage was not drawn because of `MAX_MONTAGES`.
    pub montages_skipped: usize,
}

/// One row of `gradcheck.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckRow {
    pub batch_size: String,
    pub segment: String,
    pub lambda: String,
    pub method: String,
    pub param: String,
    pub norm_diff: f64,
    pub max_abs_diff: f64,
    pub max_rel_err: f64,
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
    pub fn from_runs(
        name: &str,
        plan: &[PlannedRun],
        results: &[RunResult],
    ) -> Result<Summary, SummaryError> {
        let by_id: HashMap<&str, &RunResult> =
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
                    return Err(SummaryError::InconsistentSetting {
                        path: PathBuf::from("plan.csv"),
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

    /// The settings table in the requested format. `Csv` is exactly `summary.csv`; `Table`
    /// and `Markdown` show accuracies in percent and end with the list of missing runs.
    pub fn render(&self, format: TableFormat) -> String {
        match format {
            TableFormat::Csv => self.to_csv(),
            TableFormat::Table => self.to_table(false),
            TableFormat::Markdown => self.to_table(true),
        }
    }

    fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<String> = vec!["setting_id".into()];
        header.extend(PARAM_COLUMNS.iter().map(|c| c.to_string()));
        header.extend(["n", "n_planned", "n_diverged", "n_failed"].map(String::from));
        for m in Metric::ALL {
            for s in ["mean", "std", "min", "max"] {
                header.push(format!("{}_{s}", m.column()));
            }
        }
        header.push("rank".into());
        w.write_record(&header)
            .expect("invariant broken: writing CSV to memory cannot fail");
        for s in &self.settings {
            let mut row: Vec<String> = vec![s.setting_id.clone()];
            row.extend(s.params.iter().cloned());
            row.extend([s.n(), s.n_planned(), s.n_diverged, s.n_failed].map(|v| v.to_string()));
            for st in &s.stats {
                row.extend([st.mean, st.std, st.min, st.max].map(csv_number));
            }
            row.push(s.rank.map(|r| r.to_string()).unwrap_or_default());
            w.write_record(&row)
                .expect("invariant broken: writing CSV to memory cannot fail");
        }
        String::from_utf8(
            w.into_inner()
                .expect("invariant broken: in-memory CSV flush"),
        )
        .expect("invariant broken: CSV of UTF-8 strings is UTF-8")
    }

    fn to_table(&self, markdown: bool) -> String {
        let header: Vec<String> = [
            "rank",
            "setting",
            "n/planned",
            "train acc %",
            "val acc %",
            "test acc %",
            "val cost",
        ]
        .map(String::from)
        .to_vec();
        let rows: Vec<Vec<String>> = self
            .settings
            .iter()
            .map(|s| {
                vec![
                    s.rank.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                    s.setting_id.clone(),
                    format!("{}/{}", s.n(), s.n_planned()),
                    mean_pm_std(s.stat(Metric::TrainAccuracy), 100.0, 2),
                    mean_pm_std(s.stat(Metric::ValAccuracy), 100.0, 2),
                    mean_pm_std(s.stat(Metric::TestAccuracy), 100.0, 2),
                    mean_pm_std(s.stat(Metric::ValCost), 1.0, 4),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                rows.iter()
                    .map(|r| r[c].chars().count())
                    .chain([header[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        // The setting id is the only left-aligned column; the others are numbers.
        let cell = |text: &str, c: usize| {
            let pad = " ".repeat(widths[c] - text.chars().count());
            if c == 1 {
                format!("{text}{pad}")
            } else {
                format!("{pad}{text}")
            }
        };
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells.iter().enumerate().map(|(c, t)| cell(t, c)).collect();
            if markdown {
                format!("| {} |", parts.join(" | "))
            } else {
                parts.join("  ").trim_end().to_string()
            }
        };
        let mut out = String::new();
        out.push_str(&line(&header));
        out.push('\n');
        if markdown {
            let rule: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(c, w)| {
                    let dashes = "-".repeat((*w).max(3) - 1);
                    if c == 1 {
                        format!(":{dashes}")
                    } else {
                        format!("{dashes}:")
                    }
                })
                .collect();
            let _ = writeln!(out, "| {} |", rule.join(" | "));
        }
        for r in &rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        if !self.missing.is_empty() {
            out.push('\n');
            let _ = writeln!(out, "{}", self.missing.headline(self.n_planned));
            for l in self.missing.lines() {
                if markdown {
                    let _ = writeln!(out, "- {}", l.replace('|', "\\|"));
                } else {
                    let _ = writeln!(out, "  {l}");
                }
            }
        }
        out
    }
}

/// Writes NaN as an empty cell (pandas reads it back as NaN) and every other value with
/// Rust's shortest round-trip formatting, so `summary.csv` loses no precision.
fn csv_number(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        v.to_string()
    }
}

fn mean_pm_std(st: &Stats, scale: f64, digits: usize) -> String {
    if st.n == 0 {
        "-".into()
    } else if st.std.is_nan() {
        format!("{:.digits$}", st.mean * scale)
    } else {
        format!("{:.digits$} ± {:.digits$}", st.mean * scale, st.std * scale)
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

/// The setting id of a run id: the run id without its `_seed=N` part.
pub fn setting_id_of(run_id: &str) -> String {
    run_id
        .split('_')
        .filter(|part| !part.starts_with("seed="))
        .collect::<Vec<_>>()
        .join("_")
}

/// The sweep folders to summarize: `dir` itself if it has `plan.csv`, otherwise every
/// folder directly inside it that has one, sorted by name.
pub fn find_sweeps(dir: &Path) -> Result<Vec<PathBuf>, SummaryError> {
    if dir.join("plan.csv").is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let io = |source| SummaryError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() && path.join("plan.csv").is_file() {
            found.push(path);
        }
    }
    if found.is_empty() {
        return Err(SummaryError::NoSweeps {
            dir: dir.to_path_buf(),
        });
    }
    found.sort();
    Ok(found)
}

/// Summarizes one sweep folder: writes `<dir>/summary.csv` and, when `opts.figures`,
/// `<dir>/figures/*.png` and `<dir>/report.html`.
pub fn summarize_sweep(dir: &Path, opts: &SummaryOptions) -> Result<Summary, SummaryError> {
    let plan = read_plan(&dir.join("plan.csv"))?;
    let results = read_results(&dir.join("results.csv"))?;
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let mut summary = Summary::from_runs(&name, &plan, &results).map_err(|e| match e {
        SummaryError::InconsistentSetting {
            line,
            run_id,
            setting_id,
            ..
        } => SummaryError::InconsistentSetting {
            path: dir.join("plan.csv"),
            line,
            run_id,
            setting_id,
        },
        other => other,
    })?;
    let gradcheck_path = dir.join("gradcheck.csv");
    if gradcheck_path.is_file() {
        summary.gradcheck = Some(read_gradcheck(&gradcheck_path)?);
    }
    let summary_path = dir.join("summary.csv");
    std::fs::write(&summary_path, summary.render(TableFormat::Csv)).map_err(|source| {
        SummaryError::Write {
            path: summary_path,
            source,
        }
    })?;
    if opts.figures {
        summary.figures = write_figures(dir, &summary)?;
        let report_path = dir.join("report.html");
        std::fs::write(&report_path, report::render(&summary)).map_err(|source| {
            SummaryError::Write {
                path: report_path,
                source,
            }
        })?;
    }
    Ok(summary)
}

/// Draws the per-setting curves, the validation-accuracy overlay and the weight montages.
fn write_figures(dir: &Path, summary: &Summary) -> Result<FigureIndex, SummaryError> {
    let fig_dir = dir.join("figures");
    std::fs::create_dir_all(&fig_dir).map_err(|source| SummaryError::Write {
        path: fig_dir.clone(),
        source,
    })?;
    remove_old_figures(&fig_dir)?;
    figures::register_font()?;

    let wanted: HashSet<&str> = summary
        .settings
        .iter()
        .flat_map(|s| s.ok_run_ids.iter().map(String::as_str))
        .collect();
    let metrics_path = dir.join("metrics.csv");
    let curves = if metrics_path.is_file() {
        read_curves(&metrics_path, &wanted)?
    } else {
        HashMap::new()
    };

    let mut index = FigureIndex::default();
    let mut curve_jobs = Vec::new();
    for s in &summary.settings {
        let runs: Vec<&RunCurves> = s
            .ok_run_ids
            .iter()
            .filter_map(|id| curves.get(id))
            .collect();
        if runs.is_empty() {
            continue;
        }
        let band = |series: Series| {
            let per_run: Vec<&[(u32, f64)]> =
                runs.iter().map(|r| r[series as usize].as_slice()).collect();
            Band::from_runs(&per_run)
        };
        let rel = format!("figures/curves_{}.png", file_stem(&s.setting_id));
        curve_jobs.push((
            rel.clone(),
            SettingCurves {
                title: s.setting_id.clone(),
                n_runs: runs.len(),
                loss: [band(Series::TrainLoss), band(Series::ValLoss)],
                cost: [band(Series::TrainCost), band(Series::ValCost)],
                accuracy: [band(Series::TrainAccuracy), band(Series::ValAccuracy)],
            },
        ));
        index.curves.insert(s.setting_id.clone(), rel);
    }

    if !curve_jobs.is_empty() {
        let lines: Vec<OverlayLine> = summary
            .settings
            .iter()
            .filter_map(|s| {
                let (_, c) = curve_jobs.iter().find(|(_, c)| c.title == s.setting_id)?;
                Some(OverlayLine {
                    label: match s.rank {
                        Some(r) => format!("#{r} {}", s.setting_id),
                        None => s.setting_id.clone(),
                    },
                    band: c.accuracy[1].clone(),
                })
            })
            .collect();
        let rel = "figures/val_accuracy_all.png".to_string();
        figures::draw_val_accuracy_overlay(&dir.join(&rel), &summary.name, &lines)?;
        index.overlay = Some(rel);
    }

    curve_jobs
        .par_iter()
        .map(|(rel, c)| figures::draw_setting_curves(&dir.join(rel), c))
        .collect::<Result<Vec<()>, FigureError>>()?;

    let mut montage_runs: Vec<&str> = summary
        .settings
        .iter()
        .filter_map(|s| s.ok_run_ids.first().map(String::as_str))
        .collect();
    let firsts: HashSet<&str> = montage_runs.iter().copied().collect();
    let others: Vec<&str> = summary
        .settings
        .iter()
        .flat_map(|s| s.ok_run_ids.iter().map(String::as_str))
        .filter(|id| !firsts.contains(id))
        .collect();
    let room = MAX_MONTAGES.saturating_sub(montage_runs.len());
    index.montages_skipped = others.len().saturating_sub(room);
    montage_runs.extend(others.into_iter().take(room));

    let drawn = montage_runs
        .par_iter()
        .map(|id| {
            let w_path = dir.join("runs").join(id).join("W.npy");
            if !w_path.is_file() {
                return Ok(None);
            }
            let w = read_weights(&w_path)?;
            let rel = format!("figures/weights_{}.png", file_stem(id));
            figures::draw_weight_montage(&dir.join(&rel), id, &w)?;
            Ok(Some((id.to_string(), rel)))
        })
        .collect::<Result<Vec<_>, SummaryError>>()?;
    index.montages = drawn.into_iter().flatten().collect();
    Ok(index)
}

/// Deletes the figures an earlier summary wrote, so that `figures/` never shows a run
/// that has since been removed or a montage the cap now skips. Other files are kept.
fn remove_old_figures(fig_dir: &Path) -> Result<(), SummaryError> {
    let write_err = |source| SummaryError::Write {
        path: fig_dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(fig_dir).map_err(write_err)? {
        let path = entry.map_err(write_err)?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ours = name.ends_with(".png")
            && (name.starts_with("curves_")
                || name.starts_with("weights_")
                || name == "val_accuracy_all.png");
        if ours {
            std::fs::remove_file(&path).map_err(|source| SummaryError::Write { path, source })?;
        }
    }
    Ok(())
}

/// A file-name-safe form of a run or setting id. Ids are made of `[A-Za-z0-9._=-]`
/// already; anything else is replaced so that an odd id cannot escape `figures/`.
fn file_stem(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '=' | '-' | '+') {
                c
            } else {
                '~'
            }
        })
        .collect()
}

/// Reads `W.npy` as float64 or float32 (the run's precision), as a 10 x 3072 array.
fn read_weights(path: &Path) -> Result<Array2<f64>, SummaryError> {
    use ndarray_npy::ReadNpyExt;
    let bad = |message: String| SummaryError::Weights {
        path: path.to_path_buf(),
        message,
    };
    let open = || File::open(path).map_err(|e| bad(e.to_string()));
    let w = match Array2::<f64>::read_npy(open()?) {
        Ok(w) => w,
        Err(_) => Array2::<f32>::read_npy(open()?)
            .map_err(|e| bad(format!("not a 2-d float32/float64 array ({e})")))?
            .mapv(f64::from),
    };
    if w.dim() != (figures::CLASS_NAMES.len(), figures::IMAGE_LEN) {
        return Err(bad(format!(
            "shape is {:?}, expected ({}, {})",
            w.dim(),
            figures::CLASS_NAMES.len(),
            figures::IMAGE_LEN
        )));
    }
    Ok(w)
}

/// The per-epoch series of `metrics.csv` that the curve figures show.
#[derive(Debug, Clone, Copy)]
enum Series {
    TrainLoss,
    ValLoss,
    TrainCost,
    ValCost,
    TrainAccuracy,
    ValAccuracy,
}

/// One run's per-epoch values, indexed by `Series as usize`.
type RunCurves = [Vec<(u32, f64)>; 6];

fn read_curves(
    path: &Path,
    wanted: &HashSet<&str>,
) -> Result<HashMap<String, RunCurves>, SummaryError> {
    let (mut reader, cols) = open_csv(path)?;
    let [id_c, epoch_c, split_c, loss_c, cost_c, acc_c] =
        ["run_id", "epoch", "split", "loss", "cost", "accuracy"].map(|c| cols.index(c));
    let [id_c, epoch_c, split_c, loss_c, cost_c, acc_c] =
        [id_c?, epoch_c?, split_c?, loss_c?, cost_c?, acc_c?];
    let mut out: HashMap<String, RunCurves> = HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(source) => {
                return Err(SummaryError::Csv {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        let id = &record[id_c];
        if !wanted.contains(id) {
            continue;
        }
        let line = record.position().map_or(0, |p| p.line());
        let epoch: u32 = parse(path, line, "epoch", &record[epoch_c], "an integer epoch")?;
        let (loss_s, cost_s, acc_s) = match &record[split_c] {
            "train" => (Series::TrainLoss, Series::TrainCost, Series::TrainAccuracy),
            "val" => (Series::ValLoss, Series::ValCost, Series::ValAccuracy),
            other => {
                return Err(bad_value(path, line, "split", other, "`train` or `val`"));
            }
        };
        let entry = out.entry(id.to_string()).or_default();
        for (series, col, name) in [
            (loss_s, loss_c, "loss"),
            (cost_s, cost_c, "cost"),
            (acc_s, acc_c, "accuracy"),
        ] {
            let v = parse_opt_f64(path, line, name, &record[col])?;
            entry[series as usize].push((epoch, v));
        }
    }
    Ok(out)
}

/// Column positions of a CSV header, with contract errors for missing columns.
struct Columns {
    path: PathBuf,
    index: HashMap<String, usize>,
}

impl Columns {
    fn index(&self, column: &'static str) -> Result<usize, SummaryError> {
        self.index
            .get(column)
            .copied()
            .ok_or_else(|| SummaryError::MissingColumn {
                path: self.path.clone(),
                column,
            })
    }
}

fn open_csv(path: &Path) -> Result<(csv::Reader<File>, Columns), SummaryError> {
    let file = File::open(path).map_err(|source| SummaryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::Reader::from_reader(file);
    let headers = reader.headers().map_err(|source| SummaryError::Csv {
        path: path.to_path_buf(),
        source,
    })?;
    let index = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.to_string(), i))
        .collect();
    Ok((
        reader,
        Columns {
            path: path.to_path_buf(),
            index,
        },
    ))
}

fn bad_value(
    path: &Path,
    line: u64,
    column: &'static str,
    value: &str,
    expected: &'static str,
) -> SummaryError {
    SummaryError::BadValue {
        path: path.to_path_buf(),
        line,
        column,
        value: value.to_string(),
        expected,
    }
}

fn parse<T: std::str::FromStr>(
    path: &Path,
    line: u64,
    column: &'static str,
    value: &str,
    expected: &'static str,
) -> Result<T, SummaryError> {
    value
        .trim()
        .parse()
        .map_err(|_| bad_value(path, line, column, value, expected))
}

/// An empty cell is NaN (the contract leaves unavailable metrics empty).
fn parse_opt_f64(
    path: &Path,
    line: u64,
    column: &'static str,
    value: &str,
) -> Result<f64, SummaryError> {
    if value.trim().is_empty() {
        Ok(f64::NAN)
    } else {
        parse(path, line, column, value, "a number or an empty cell")
    }
}

fn each_record(
    path: &Path,
    mut reader: csv::Reader<File>,
    mut f: impl FnMut(&csv::StringRecord, u64) -> Result<(), SummaryError>,
) -> Result<(), SummaryError> {
    for record in reader.records() {
        let record = record.map_err(|source| SummaryError::Csv {
            path: path.to_path_buf(),
            source,
        })?;
        let line = record.position().map_or(0, |p| p.line());
        f(&record, line)?;
    }
    Ok(())
}

/// Reads and checks `plan.csv`.
pub fn read_plan(path: &Path) -> Result<Vec<PlannedRun>, SummaryError> {
    let (reader, cols) = open_csv(path)?;
    let id_c = cols.index("run_id")?;
    let seed_c = cols.index("seed")?;
    let param_cs = PARAM_COLUMNS
        .map(|c| cols.index(c))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut plan = Vec::new();
    each_record(path, reader, |rec, line| {
        let run_id = rec[id_c].to_string();
        if let Some(first) = seen.insert(run_id.clone(), line) {
            return Err(SummaryError::DuplicateRun {
                path: path.to_path_buf(),
                run_id,
                first,
                second: line,
            });
        }
        let seed: u64 = parse(path, line, "seed", &rec[seed_c], "an unsigned integer")?;
        let params: Vec<String> = param_cs.iter().map(|&c| rec[c].to_string()).collect();
        for (column, value) in PARAM_COLUMNS.iter().zip(&params) {
            check_param(path, line, column, value)?;
        }
        plan.push(PlannedRun {
            setting_id: setting_id_of(&run_id),
            run_id,
            seed,
            params,
            line,
        });
        Ok(())
    })?;
    Ok(plan)
}

fn check_param(
    path: &Path,
    line: u64,
    column: &'static str,
    value: &str,
) -> Result<(), SummaryError> {
    match column {
        "lambda" | "eta" | "init_std" => {
            parse::<f64>(path, line, column, value, "a number").map(drop)
        }
        "batch_size" | "epochs" => {
            parse::<u64>(path, line, column, value, "an unsigned integer").map(drop)
        }
        "shuffle" => parse::<bool>(path, line, column, value, "`true` or `false`").map(drop),
        "precision" if matches!(value, "f32" | "f64") => Ok(()),
        "precision" => Err(bad_value(path, line, column, value, "`f32` or `f64`")),
        _ => Ok(()),
    }
}

/// Reads and checks `results.csv`; a missing file means no run has finished yet.
pub fn read_results(path: &Path) -> Result<Vec<RunResult>, SummaryError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let (reader, cols) = open_csv(path)?;
    let id_c = cols.index("run_id")?;
    let status_c = cols.index("status")?;
    let div_c = cols.index("diverged_epoch")?;
    let err_c = cols.index("error")?;
    let metric_cs = Metric::ALL
        .map(|m| cols.index(m.column()))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut results = Vec::new();
    each_record(path, reader, |rec, line| {
        let run_id = rec[id_c].to_string();
        if let Some(first) = seen.insert(run_id.clone(), line) {
            return Err(SummaryError::DuplicateRun {
                path: path.to_path_buf(),
                run_id,
                first,
                second: line,
            });
        }
        let status = match &rec[status_c] {
            "ok" => RunStatus::Ok,
            "diverged" => RunStatus::Diverged,
            "failed" => RunStatus::Failed,
            other => {
                return Err(bad_value(
                    path,
                    line,
                    "status",
                    other,
                    "`ok`, `diverged` or `failed`",
                ));
            }
        };
        let diverged_epoch = match rec[div_c].trim() {
            "" => None,
            v => Some(parse(
                path,
                line,
                "diverged_epoch",
                v,
                "an integer epoch or an empty cell",
            )?),
        };
        let mut metrics = [f64::NAN; 6];
        for (m, &c) in Metric::ALL.iter().zip(&metric_cs) {
            metrics[m.index()] = parse_opt_f64(path, line, m.column(), &rec[c])?;
        }
        results.push(RunResult {
            run_id,
            status,
            diverged_epoch,
            metrics,
            error: rec[err_c].to_string(),
        });
        Ok(())
    })?;
    Ok(results)
}

/// Reads `gradcheck.csv`.
pub fn read_gradcheck(path: &Path) -> Result<Vec<GradcheckRow>, SummaryError> {
    let (reader, cols) = open_csv(path)?;
    let [b, s, l, m, p, nd, mad, mre] = [
        "batch_size",
        "segment",
        "lambda",
        "method",
        "param",
        "norm_diff",
        "max_abs_diff",
        "max_rel_err",
    ]
    .map(|c| cols.index(c));
    let [b, s, l, m, p, nd, mad, mre] = [b?, s?, l?, m?, p?, nd?, mad?, mre?];
    let mut rows = Vec::new();
    each_record(path, reader, |rec, line| {
        rows.push(GradcheckRow {
            batch_size: rec[b].to_string(),
            segment: rec[s].to_string(),
            lambda: rec[l].to_string(),
            method: rec[m].to_string(),
            param: rec[p].to_string(),
            norm_diff: parse_opt_f64(path, line, "norm_diff", &rec[nd])?,
            max_abs_diff: parse_opt_f64(path, line, "max_abs_diff", &rec[mad])?,
            max_rel_err: parse_opt_f64(path, line, "max_rel_err", &rec[mre])?,
        });
        Ok(())
    })?;
    Ok(rows)
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
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use ndarray_npy::WriteNpyExt;
    use std::io::Write as _;

    fn planned(run_id: &str, lambda: &str) -> PlannedRun {
        PlannedRun {
            run_id: run_id.to_string(),
            setting_id: setting_id_of(run_id),
            seed: 0,
            params: vec![
                lambda.into(),
                "0.001".into(),
                "100".into(),
                "3".into(),
                "true".into(),
                "f32".into(),
                "0.01".into(),
            ],
            line: 0,
        }
    }

    fn result(run_id: &str, status: RunStatus, val_acc: f64) -> RunResult {
        RunResult {
            run_id: run_id.to_string(),
            status,
            diverged_epoch: (status == RunStatus::Diverged).then_some(2),
            metrics: [0.5, val_acc, f64::NAN, 1.0, 2.0, f64::NAN],
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

    #[test]
    fn setting_id_drops_only_the_seed_part() {
        assert_eq!(
            setting_id_of("lambda=0.1_eta=0.001_batch=100_epochs=40_seed=12_shuffle=false_f64"),
            "lambda=0.1_eta=0.001_batch=100_epochs=40_shuffle=false_f64"
        );
    }

    fn two_settings() -> Summary {
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
        assert!(
            matches!(err, SummaryError::InconsistentSetting { ref run_id, .. } if run_id == "x_seed=2")
        );
    }

    #[test]
    fn csv_rendering_has_contract_columns_and_empty_nan_cells() {
        let csv = two_settings().render(TableFormat::Csv);
        let mut lines = csv.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with(
            "setting_id,lambda,eta,batch_size,epochs,shuffle,precision,init_std,n,n_planned,n_diverged,n_failed,train_accuracy_mean,train_accuracy_std,"
        ));
        assert!(header.ends_with("test_cost_min,test_cost_max,rank"));
        assert_eq!(header.split(',').count(), 8 + 4 + 6 * 4 + 1);
        let best: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(best[0], "lambda=1");
        assert_eq!(&best[8..12], ["1", "3", "0", "1"]);
        assert_eq!(best[13], "", "std of a single seed is empty, not 0");
        assert_eq!(best[16], "0.4", "val_accuracy_mean");
        assert_eq!(*best.last().unwrap(), "1");
    }

    #[test]
    fn table_and_markdown_show_n_of_planned_and_missing_runs() {
        let s = two_settings();
        let table = s.render(TableFormat::Table);
        assert!(table.lines().next().unwrap().contains("n/planned"));
        assert!(table.contains("1/3") && table.contains("2/3"));
        assert!(table.contains("32.00 ± 2.83"), "{table}");
        assert!(table.contains("unfinished: lambda=1_seed=3"));
        assert!(table.contains("diverged: lambda=0_seed=3 (at epoch 2)"));
        // Columns line up: "val acc %" ends at the same character in every table row.
        let rows: Vec<&str> = table.lines().take(3).collect();
        let end = |l: &str| l.chars().count();
        assert_eq!(end(rows[1]), end(rows[2]));
        let md = s.render(TableFormat::Markdown);
        let md_lines: Vec<&str> = md.lines().collect();
        assert!(md_lines[0].starts_with("| rank |"));
        assert!(md_lines[1].starts_with("| ---: | :"));
        assert!(md.contains("- failed: lambda=1_seed=2: out of memory"));
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        File::create(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    const PLAN_HEADER: &str = "run_id,lambda,eta,batch_size,epochs,seed,shuffle,precision,init_std";

    #[test]
    fn bad_status_and_duplicate_runs_are_rejected_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        write(
            &path,
            "run_id,lambda,eta,batch_size,epochs,seed,shuffle,precision,init_std,status,diverged_epoch,train_loss,train_cost,train_accuracy,val_loss,val_cost,val_accuracy,test_loss,test_cost,test_accuracy,seconds,error\n\
             a_seed=1,0,0.1,100,3,1,true,f32,0.01,done,,1,1,0.5,1,1,0.5,,,,1.0,\n",
        );
        let err = read_results(&path).unwrap_err();
        assert!(
            matches!(
                err,
                SummaryError::BadValue {
                    column: "status",
                    line: 2,
                    ..
                }
            ),
            "{err}"
        );

        let plan = dir.path().join("plan.csv");
        write(
            &plan,
            &format!(
                "{PLAN_HEADER}\na_seed=1,0,0.1,100,3,1,true,f32,0.01\na_seed=1,0,0.1,100,3,1,true,f32,0.01\n"
            ),
        );
        let err = read_plan(&plan).unwrap_err();
        assert!(
            matches!(
                err,
                SummaryError::DuplicateRun {
                    first: 2,
                    second: 3,
                    ..
                }
            ),
            "{err}"
        );

        write(
            &plan,
            &format!("{PLAN_HEADER}\na_seed=1,0,0.1,100,3,1,maybe,f32,0.01\n"),
        );
        let err = read_plan(&plan).unwrap_err();
        assert!(
            matches!(
                err,
                SummaryError::BadValue {
                    column: "shuffle",
                    ..
                }
            ),
            "{err}"
        );

        write(&plan, "run_id,lambda,seed\na,0,1\n");
        assert!(matches!(
            read_plan(&plan).unwrap_err(),
            SummaryError::MissingColumn { column: "eta", .. }
        ));
    }

    #[test]
    fn find_sweeps_accepts_a_sweep_or_a_folder_of_sweeps() {
        let root = tempfile::tempdir().unwrap();
        assert!(matches!(
            find_sweeps(root.path()).unwrap_err(),
            SummaryError::NoSweeps { .. }
        ));
        for name in ["b", "a"] {
            write(&root.path().join(name).join("plan.csv"), PLAN_HEADER);
        }
        std::fs::create_dir(root.path().join("not-a-sweep")).unwrap();
        let found = find_sweeps(root.path()).unwrap();
        assert_eq!(found, [root.path().join("a"), root.path().join("b")]);
        assert_eq!(find_sweeps(&found[0]).unwrap(), [found[0].clone()]);
    }

    /// Writes a two-setting, three-seed sweep folder by the output contract: setting
    /// lambda=0 (f32 weights) has three ok runs; setting lambda=0.1 (f64 weights) has
    /// one ok, one diverged and one unfinished run.
    fn write_synthetic_sweep(dir: &Path) -> Vec<(String, f64)> {
        let mut plan = format!("{PLAN_HEADER}\n");
        let mut results = String::from(
            "run_id,lambda,eta,batch_size,epochs,seed,shuffle,precision,init_std,status,diverged_epoch,train_loss,train_cost,train_accuracy,val_loss,val_cost,val_accuracy,test_loss,test_cost,test_accuracy,seconds,error\n",
        );
        let mut metrics = String::from(
            "run_id,lambda,eta,batch_size,epochs,seed,shuffle,precision,init_std,epoch,split,loss,cost,accuracy\n",
        );
        let mut val_accs = Vec::new();
        for (lambda, precision) in [("0", "f32"), ("0.1", "f64")] {
            for seed in 1..=3u64 {
                let id = format!("lambda={lambda}_eta=0.001_batch=100_epochs=3_seed={seed}");
                let params = format!("{lambda},0.001,100,3,{seed},true,{precision},0.01");
                plan.push_str(&format!("{id},{params}\n"));
                let status = match (lambda, seed) {
                    ("0.1", 2) => "diverged",
                    ("0.1", 3) => continue,
                    _ => "ok",
                };
                let val = 0.30 + 0.01 * seed as f64 + if lambda == "0" { 0.05 } else { 0.0 };
                if status == "ok" {
                    val_accs.push((id.clone(), val));
                    results.push_str(&format!(
                        "{id},{params},ok,,1.5,1.6,0.45,1.7,1.8,{val},1.75,1.85,0.33,2.5,\n"
                    ));
                } else {
                    results.push_str(&format!("{id},{params},diverged,2,,,,,,,,,,1.0,\n"));
                }
                for epoch in 0..=3u32 {
                    for (split, acc) in [
                        ("train", 0.1 + 0.1 * epoch as f64),
                        ("val", val * epoch as f64 / 3.0),
                    ] {
                        let loss = 2.3 - 0.2 * epoch as f64 - 0.01 * seed as f64;
                        metrics.push_str(&format!(
                            "{id},{params},{epoch},{split},{loss},{},{acc}\n",
                            loss + 0.1
                        ));
                    }
                }
                let run_dir = dir.join("runs").join(&id);
                std::fs::create_dir_all(&run_dir).unwrap();
                let w = Array2::<f64>::from_shape_fn((10, figures::IMAGE_LEN), |(k, j)| {
                    ((k * 31 + j * (seed as usize)) % 97) as f64 / 97.0 - 0.5
                });
                let file = File::create(run_dir.join("W.npy")).unwrap();
                if precision == "f32" {
                    w.mapv(|v| v as f32).write_npy(file).unwrap();
                } else {
                    w.write_npy(file).unwrap();
                }
            }
        }
        write(&dir.join("plan.csv"), &plan);
        write(&dir.join("results.csv"), &results);
        write(&dir.join("metrics.csv"), &metrics);
        write(
            &dir.join("gradcheck.csv"),
            "batch_size,segment,lambda,method,param,norm_diff,max_abs_diff,max_rel_err,seconds\n\
             1,first,0,centred,W,1.5e-9,2e-10,3.1e-7,0.5\n\
             1,first,0,centred,b,2.5e-10,1e-10,4.2e-8,0.5\n\
             20,random-1,0.1,forward,W,1e-6,1e-7,2e-4,0.7\n\
             20,random-1,0.1,forward,b,3e-7,1e-7,5e-5,0.7\n",
        );
        val_accs
    }

    fn png_size(path: &Path) -> (u32, u32) {
        let decoder = png::Decoder::new(File::open(path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        (info.width, info.height)
    }

    #[test]
    fn summarizes_a_synthetic_sweep_folder_end_to_end() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        let val_accs = write_synthetic_sweep(&dir);
        let summary = summarize_sweep(&dir, &SummaryOptions::default()).unwrap();

        let text = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
        assert_eq!(text, summary.render(TableFormat::Csv));
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        let first_setting: Vec<f64> = val_accs
            .iter()
            .filter(|(id, _)| id.starts_with("lambda=0_"))
            .map(|(_, v)| *v)
            .collect();
        let expected_mean = first_setting.iter().sum::<f64>() / first_setting.len() as f64;
        assert_eq!(
            &rows[0][col("setting_id")],
            "lambda=0_eta=0.001_batch=100_epochs=3"
        );
        assert_eq!(&rows[0][col("n")], "3");
        assert_relative_eq!(
            rows[0][col("val_accuracy_mean")].parse::<f64>().unwrap(),
            expected_mean,
            max_relative = 1e-12
        );
        assert_eq!(
            (
                &rows[1][col("n")],
                &rows[1][col("n_planned")],
                &rows[1][col("n_diverged")]
            ),
            ("1", "3", "1")
        );
        assert_eq!(&rows[1][col("val_accuracy_std")], "");
        assert_eq!(
            summary.missing().unfinished,
            ["lambda=0.1_eta=0.001_batch=100_epochs=3_seed=3"]
        );

        let figures_dir = dir.join("figures");
        let mut pngs: Vec<PathBuf> = std::fs::read_dir(&figures_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        pngs.sort();
        // 2 curve figures, 1 overlay and 4 montages (one per ok run).
        assert_eq!(pngs.len(), 7, "{pngs:?}");
        for p in &pngs {
            let (w, h) = png_size(p);
            assert!(
                (300..=3000).contains(&w) && (200..=2000).contains(&h),
                "{}: {w}x{h}",
                p.display()
            );
        }
        assert_eq!(summary.figures.montages.len(), 4);
        assert_eq!(summary.figures.curves.len(), 2);

        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        let table = &html[html.find("<table id=\"settings\">").unwrap()..];
        let tbody = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
        assert_eq!(tbody.matches("<tr").count(), 2);
        assert!(html.contains("id=\"gradcheck-table\""));
        assert!(html.contains("3.10e-7"), "max relative error of W is shown");
        assert!(
            html.contains("lambda=0.1_eta=0.001_batch=100_epochs=3_seed=3"),
            "unfinished run is listed"
        );
        for rel in summary
            .figures
            .curves
            .values()
            .chain(summary.figures.montages.values())
        {
            assert!(
                html.contains(&format!("=\"{rel}\"")),
                "report shows or links {rel}"
            );
        }
    }

    #[test]
    fn a_second_summary_removes_figures_of_runs_that_are_gone() {
        let tmp = tempfile::tempdir().unwrap();
        write_synthetic_sweep(tmp.path());
        let figures = tmp.path().join("figures");
        std::fs::create_dir_all(&figures).unwrap();
        write(&figures.join("weights_old-run.png"), "stale");
        write(&figures.join("notes.txt"), "kept");
        summarize_sweep(tmp.path(), &SummaryOptions::default()).unwrap();
        assert!(!figures.join("weights_old-run.png").exists());
        assert!(figures.join("notes.txt").exists());
    }

    #[test]
    fn figures_can_be_turned_off() {
        let tmp = tempfile::tempdir().unwrap();
        write_synthetic_sweep(tmp.path());
        summarize_sweep(tmp.path(), &SummaryOptions { figures: false }).unwrap();
        assert!(tmp.path().join("summary.csv").is_file());
        assert!(!tmp.path().join("figures").exists());
        assert!(!tmp.path().join("report.html").exists());
    }
}
