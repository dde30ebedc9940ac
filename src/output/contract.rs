//! The output contract, declared once: the name of every file and folder of a sweep's
//! output folder, every column of its CSV files, the run status, the result record
//! (`result.json`), and the reading of `plan.csv`. The writer ([`super::artifacts`]) and
//! the reader ([`super::summary`]) both take their names from here.
//!
//! ```text
//! <out>/<name>/sweep.toml        the sweep file as run
//! <out>/<name>/plan.csv          one row per planned run: run_id and parameter columns
//! <out>/<name>/runs/<run_id>/    params.json, metrics.csv, W.npy, b.npy, result.json
//! <out>/<name>/metrics.csv       every run's per-epoch metrics (rebuilt from runs/)
//! <out>/<name>/results.csv       one row per finished run (rebuilt from runs/)
//! <out>/<name>/gradcheck.csv     the gradient-check table (with gradcheck.json)
//! <out>/<name>/summary.csv       one row per setting, aggregated over seeds
//! <out>/<name>/figures/          curves_<setting>.png, val_accuracy_all.png, weights_<run>.png,
//!                                batchnorm_<setting>.png (a setting beside its twin without batch norm),
//!                                response_<axis>.png, heatmap_<a>_<b>.png (accuracy against the axes)
//! <out>/<name>/report.html       the report page
//! ```
//!
//! May import `plan` (the run parameters, whose columns it re-exports) and `train` (the
//! split metrics a result records); nothing of the later stages.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::plan::PARAM_COLUMNS;
use crate::plan::{RunId, RunParams};
use crate::train::SplitMetrics;

// ---- Files and folders -------------------------------------------------------------

pub const SWEEP_TOML: &str = "sweep.toml";
/// Where the sweep file and its data were when the sweep last ran ([`Origin`]).
pub const ORIGIN_JSON: &str = "origin.json";
pub const PLAN_CSV: &str = "plan.csv";
/// The sweep's table of every run's epochs, and each run's own (without the run columns).
pub const METRICS_CSV: &str = "metrics.csv";
pub const RESULTS_CSV: &str = "results.csv";
pub const GRADCHECK_CSV: &str = "gradcheck.csv";
/// The gradient check's spec, so that an unchanged check is not redone.
pub const GRADCHECK_JSON: &str = "gradcheck.json";
pub const SUMMARY_CSV: &str = "summary.csv";
pub const REPORT_HTML: &str = "report.html";
pub const FIGURES_DIR: &str = "figures";
/// The sweep-wide lock file (see `SweepDir::with_lock`).
pub const SWEEP_LOCK: &str = ".lock";
/// The folder of run folders, `runs/<run_id>/`.
pub const RUNS_DIR: &str = "runs";
/// Inside `runs/`: where run folders are assembled before they are renamed into place.
pub const RUNS_TMP_DIR: &str = ".tmp";
/// Inside `runs/`: one lock file per run being trained, `<run_id>.lock`.
pub const CLAIMS_DIR: &str = ".claims";
pub const PARAMS_JSON: &str = "params.json";
/// A run's `model.json`: its arrays in order with their shapes, and the forward recipe.
pub const MODEL_JSON: &str = "model.json";
pub const RESULT_JSON: &str = "result.json";
pub const W_NPY: &str = "W.npy";

/// The file of a model's parameter array `name` in its run's folder: `NAME.npy`.
pub fn array_file(name: &str) -> String {
    format!("{name}.npy")
}

/// The figure of every setting's validation accuracy, inside `figures/`.
pub const OVERLAY_PNG: &str = "val_accuracy_all.png";
/// A successive-halving race: every candidate's curve, stopped ones marked.
pub const HALVING_PNG: &str = "halving.png";
const CURVES_PREFIX: &str = "curves_";
const WEIGHTS_PREFIX: &str = "weights_";
const BATCH_NORM_PREFIX: &str = "batchnorm_";
const RESPONSE_PREFIX: &str = "response_";
const HEATMAP_PREFIX: &str = "heatmap_";
const PNG: &str = ".png";

/// The path of a setting's curve figure, relative to the sweep folder.
pub fn curves_png(setting_id: &str) -> String {
    format!(
        "{FIGURES_DIR}/{CURVES_PREFIX}{}{PNG}",
        file_stem(setting_id)
    )
}

/// The path of a run's weight montage, relative to the sweep folder.
pub fn weights_png(run_id: &str) -> String {
    format!("{FIGURES_DIR}/{WEIGHTS_PREFIX}{}{PNG}", file_stem(run_id))
}

/// The path of the figure that sets a batch-normalised setting's curves beside those of
/// its twin without batch norm, relative to the sweep folder.
pub fn batch_norm_png(setting_id: &str) -> String {
    format!(
        "{FIGURES_DIR}/{BATCH_NORM_PREFIX}{}{PNG}",
        file_stem(setting_id)
    )
}

/// The path of the figure of validation accuracy against one setting axis (its key),
/// relative to the sweep folder.
pub fn response_png(axis: &str) -> String {
    format!("{FIGURES_DIR}/{RESPONSE_PREFIX}{}{PNG}", file_stem(axis))
}

/// The path of the heatmap of validation accuracy over two setting axes (their keys),
/// relative to the sweep folder.
pub fn heatmap_png(a: &str, b: &str) -> String {
    format!(
        "{FIGURES_DIR}/{HEATMAP_PREFIX}{}_{}{PNG}",
        file_stem(a),
        file_stem(b)
    )
}

/// The path of the validation-accuracy overlay, relative to the sweep folder.
pub fn overlay_png() -> String {
    format!("{FIGURES_DIR}/{OVERLAY_PNG}")
}

pub fn halving_png() -> String {
    format!("{FIGURES_DIR}/{HALVING_PNG}")
}

/// Whether a file name inside `figures/` is one of the figures the summary draws.
pub fn is_figure_name(name: &str) -> bool {
    name.ends_with(PNG)
        && (name.starts_with(CURVES_PREFIX)
            || name.starts_with(WEIGHTS_PREFIX)
            || name.starts_with(BATCH_NORM_PREFIX)
            || name.starts_with(RESPONSE_PREFIX)
            || name.starts_with(HEATMAP_PREFIX)
            || name == OVERLAY_PNG
            || name == HALVING_PNG)
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

// ---- Columns -----------------------------------------------------------------------

pub const RUN_ID: &str = "run_id";
pub const SETTING_ID: &str = "setting_id";
/// The parameter column that tells the runs of one setting apart.
pub const SEED: &str = "seed";

/// The parameter columns of a setting: [`PARAM_COLUMNS`] without [`SEED`], in the same
/// order (a setting is every parameter but the seed).
pub const SETTING_COLUMNS: [&str; PARAM_COLUMNS.len() - 1] = without_seed();

const fn without_seed() -> [&'static str; PARAM_COLUMNS.len() - 1] {
    const fn same(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
    let mut out = [""; PARAM_COLUMNS.len() - 1];
    let (mut i, mut j) = (0, 0);
    while i < PARAM_COLUMNS.len() {
        if !same(PARAM_COLUMNS[i], SEED) {
            // Panics at compile time if PARAM_COLUMNS had no seed column.
            out[j] = PARAM_COLUMNS[i];
            j += 1;
        }
        i += 1;
    }
    out
}

/// The splits whose metrics are recorded, in column order.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];
/// The splits measured every epoch (`metrics.csv`'s `split` column).
pub const EPOCH_SPLITS: [&str; 2] = [SPLITS[0], SPLITS[1]];

/// The columns of a run's `metrics.csv`, one row per (epoch, split); the sweep's
/// `metrics.csv` has [`RUN_ID`] and [`PARAM_COLUMNS`] before them.
pub const EPOCH_COLUMNS: [&str; 7] = [
    "epoch",
    "update",
    "learning_rate",
    "split",
    "loss",
    "cost",
    "accuracy",
];

pub const STATUS: &str = "status";
pub const DIVERGED_EPOCH: &str = "diverged_epoch";
/// Whole epochs a run stopped by successive halving trained (the last column, added last).
pub const STOPPED_EPOCH: &str = "stopped_epoch";
pub const SECONDS: &str = "seconds";
pub const ERROR: &str = "error";
/// The final metrics in `results.csv`, by split ([`SPLITS`]) then quantity (loss, cost,
/// accuracy).
pub const FINAL_COLUMNS: [[&str; 3]; 3] = [
    ["train_loss", "train_cost", "train_accuracy"],
    ["val_loss", "val_cost", "val_accuracy"],
    ["test_loss", "test_cost", "test_accuracy"],
];

/// The columns of `gradcheck.csv`.
pub const GRADCHECK_COLUMNS: [&str; 11] = [
    "batch_size",
    "segment",
    "lambda",
    "method",
    "param",
    "norm_diff",
    "max_abs_diff",
    "max_rel_err",
    "seconds",
    "kinks",
    "zero_by_construction",
];

/// The count columns of `summary.csv`: ok runs, planned, diverged, failed.
pub const COUNT_COLUMNS: [&str; 4] = ["n", "n_planned", "n_diverged", "n_failed"];
/// The statistics of each [`Metric`] in `summary.csv`, as `<metric>_<stat>`.
pub const STAT_COLUMNS: [&str; 4] = ["mean", "std", "min", "max"];
pub const RANK: &str = "rank";

/// The header of `plan.csv`.
pub fn plan_header() -> Vec<&'static str> {
    let mut h = vec![RUN_ID];
    h.extend(PARAM_COLUMNS);
    h
}

/// The header of the sweep's `metrics.csv`. The `loss` parameter (the loss function) is
/// spelt `loss_function` there, as `loss` is the metric.
pub fn metrics_header() -> Vec<&'static str> {
    let mut h: Vec<&str> = plan_header()
        .into_iter()
        .map(|c| if c == LOSS_KEY { LOSS_FUNCTION } else { c })
        .collect();
    h.extend(EPOCH_COLUMNS);
    h
}

/// The loss-function parameter's column in `plan.csv` and `results.csv` (its key).
pub const LOSS_KEY: &str = "loss";

/// The batch-norm switch's column (its key), and the columns that only a batch-normalised
/// setting fills: the summary pairs settings that differ in these alone.
pub const BATCH_NORM_KEY: &str = "batch_norm";
pub const BATCH_NORM_ONLY_KEYS: [&str; 2] = ["bn_momentum", "bn_eps"];

/// The `loss` parameter's column in the sweep's `metrics.csv`.
pub const LOSS_FUNCTION: &str = "loss_function";

/// The header of `results.csv`.
pub fn results_header() -> Vec<&'static str> {
    let mut h = plan_header();
    h.extend([STATUS, DIVERGED_EPOCH]);
    h.extend(FINAL_COLUMNS.iter().flatten());
    h.extend([SECONDS, ERROR, STOPPED_EPOCH]);
    h
}

/// The header of `summary.csv`.
pub fn summary_header() -> Vec<String> {
    let mut h: Vec<String> = vec![SETTING_ID.into()];
    h.extend(SETTING_COLUMNS.map(String::from));
    h.extend(COUNT_COLUMNS.map(String::from));
    for m in Metric::ALL {
        for s in STAT_COLUMNS {
            h.push(format!("{}_{s}", m.column()));
        }
    }
    h.push(RANK.into());
    h
}

/// One final metric that `summary.csv` aggregates over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    TrainAccuracy,
    ValAccuracy,
    TestAccuracy,
    TrainCost,
    ValCost,
    TestCost,
    TrainLoss,
    ValLoss,
    TestLoss,
}

impl Metric {
    /// Every metric, in `summary.csv` column order (the losses came last, so they
    /// are last).
    pub const ALL: [Metric; Metric::COUNT] = [
        Metric::TrainAccuracy,
        Metric::ValAccuracy,
        Metric::TestAccuracy,
        Metric::TrainCost,
        Metric::ValCost,
        Metric::TestCost,
        Metric::TrainLoss,
        Metric::ValLoss,
        Metric::TestLoss,
    ];

    /// The number of metrics.
    pub const COUNT: usize = 9;

    /// The column in `results.csv`, also the prefix of the `summary.csv` columns.
    pub fn column(self) -> &'static str {
        const LOSS: usize = 0;
        const COST: usize = 1;
        const ACCURACY: usize = 2;
        let (split, quantity) = match self {
            Metric::TrainAccuracy => (0, ACCURACY),
            Metric::ValAccuracy => (1, ACCURACY),
            Metric::TestAccuracy => (2, ACCURACY),
            Metric::TrainCost => (0, COST),
            Metric::ValCost => (1, COST),
            Metric::TestCost => (2, COST),
            Metric::TrainLoss => (0, LOSS),
            Metric::ValLoss => (1, LOSS),
            Metric::TestLoss => (2, LOSS),
        };
        FINAL_COLUMNS[split][quantity]
    }

    /// The final metric a search objective ranks by.
    pub fn of(objective: crate::spec::Objective) -> Metric {
        match objective {
            crate::spec::Objective::ValAccuracy => Metric::ValAccuracy,
            crate::spec::Objective::ValCost => Metric::ValCost,
            crate::spec::Objective::ValLoss => Metric::ValLoss,
        }
    }

    /// The position of the metric in [`Metric::ALL`].
    pub fn index(self) -> usize {
        Metric::ALL
            .iter()
            .position(|m| *m == self)
            .expect("invariant broken: Metric::ALL lists every metric")
    }
}

/// `origin.json`: the absolute paths of the sweep file and of its data folder when the
/// sweep last ran, so that `sweep refine` can write a new sweep file whose relative
/// `[data].dir` still finds the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub spec: std::path::PathBuf,
    pub data_dir: std::path::PathBuf,
}

// ---- Records -----------------------------------------------------------------------

/// How a run ended, as recorded in `result.json` and `results.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Ok,
    Diverged,
    Failed,
    /// Successive halving did not promote it (`[search] method = "halving"`).
    Stopped,
}

impl RunStatus {
    const ALL: [RunStatus; 4] = [
        RunStatus::Ok,
        RunStatus::Diverged,
        RunStatus::Failed,
        RunStatus::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Diverged => "diverged",
            RunStatus::Failed => "failed",
            RunStatus::Stopped => "stopped",
        }
    }

    /// The status written as `text` by [`RunStatus::as_str`].
    pub fn parse(text: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Final metrics on one split.
///
/// A diverged run's loss and cost are not finite; JSON has no such numbers and
/// `serde_json` writes them as `null`, so `null` reads back as NaN.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Final {
    #[serde(deserialize_with = "f64_or_nan")]
    pub loss: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub cost: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub accuracy: f64,
}

impl Final {
    /// The metrics, or `None` when one is not finite (a diverged run): JSON has no NaN,
    /// and results.csv leaves unavailable metrics empty.
    pub fn finite(m: SplitMetrics) -> Option<Final> {
        [m.loss, m.cost, m.accuracy]
            .iter()
            .all(|v| v.is_finite())
            .then_some(m.into())
    }
}

fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl From<SplitMetrics> for Final {
    fn from(m: SplitMetrics) -> Self {
        Final {
            loss: m.loss,
            cost: m.cost,
            accuracy: m.accuracy,
        }
    }
}

/// The content of `result.json`; `results.csv` has one row of it per finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub run_id: RunId,
    pub params: RunParams,
    pub status: RunStatus,
    pub diverged_epoch: Option<usize>,
    /// Whole epochs trained by a run successive halving stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_epoch: Option<usize>,
    pub train: Option<Final>,
    pub val: Option<Final>,
    pub test: Option<Final>,
    /// Wall time; for runs trained fused, the group's time divided by its size.
    pub seconds: f64,
    pub error: Option<String>,
    /// Identifies the data the run was trained on.
    pub data: String,
    /// The revision of training's arithmetic that computed the run
    /// ([`crate::train::ARITHMETIC`]); results written before it was recorded read as 1.
    #[serde(default = "first_arithmetic")]
    pub arithmetic: u32,
}

fn first_arithmetic() -> u32 {
    1
}

impl RunId {
    /// A run id read back from `plan.csv` (written by [`RunId::new`]).
    pub fn from_str_unchecked(s: &str) -> Self {
        serde_json::from_value(serde_json::Value::String(s.to_string()))
            .expect("a string is a RunId")
    }
}

/// The setting id of a run id: the run id without its `_seed=N` part (as
/// [`RunId::setting`] defines it).
pub fn setting_id_of(run_id: &str) -> String {
    RunId::from_str_unchecked(run_id).setting()
}

// ---- Reading -----------------------------------------------------------------------

/// A file of the output folder that does not follow the contract, or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
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
}

/// One row of `plan.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    pub run_id: String,
    pub setting_id: String,
    /// The values of [`SETTING_COLUMNS`], as written in `plan.csv`.
    pub params: Vec<String>,
    /// The 1-based line in `plan.csv`, for error messages.
    pub line: u64,
}

/// Reads and checks `plan.csv`: every column present, every value of its type, no run
/// twice.
/// Records that `run_id` is on line `line` of the table at `path`; a second line of the
/// same run is an error naming both lines.
pub(crate) fn once(
    seen: &mut HashMap<String, u64>,
    path: &Path,
    run_id: &str,
    line: u64,
) -> Result<(), ReadError> {
    match seen.insert(run_id.to_string(), line) {
        Some(first) => Err(ReadError::DuplicateRun {
            path: path.to_path_buf(),
            run_id: run_id.to_string(),
            first,
            second: line,
        }),
        None => Ok(()),
    }
}

/// The setting columns every `plan.csv` has had: `lambda` to `init_std`.
const FIRST_RELEASE_AXES: usize = 7;

/// Reads `plan.csv`: each run's id and setting cells, checked against the contract.
pub fn read_plan(path: &Path) -> Result<Vec<PlannedRun>, ReadError> {
    let (reader, cols) = open_csv(path)?;
    let id_c = cols.index(RUN_ID)?;
    let seed_c = cols.index(SEED)?;
    // A folder written before an axis existed has no column for it: its runs are at
    // that axis's default, an empty cell here as for an axis that does not apply. The
    // axes of the first release are always there.
    let param_cs = SETTING_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| match cols.index(c) {
            Ok(c) => Ok(Some(c)),
            Err(_) if i >= FIRST_RELEASE_AXES => Ok(None),
            Err(e) => Err(e),
        })
        .collect::<Result<Vec<Option<usize>>, ReadError>>()?;
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut plan = Vec::new();
    each_record(path, reader, |rec, line| {
        let run_id = rec[id_c].to_string();
        once(&mut seen, path, &run_id, line)?;
        // The seed is part of the run id; it is checked, not kept.
        parse::<u64>(path, line, SEED, &rec[seed_c], "an unsigned integer")?;
        let params: Vec<String> = param_cs
            .iter()
            .map(|c| c.map_or_else(String::new, |c| rec[c].to_string()))
            .collect();
        for (column, value) in SETTING_COLUMNS.iter().zip(&params) {
            check_param(path, line, column, value)?;
        }
        plan.push(PlannedRun {
            setting_id: setting_id_of(&run_id),
            run_id,
            params,
            line,
        });
        Ok(())
    })?;
    Ok(plan)
}

fn check_param(path: &Path, line: u64, column: &'static str, value: &str) -> Result<(), ReadError> {
    if value.is_empty() {
        // An axis that does not apply to the run (`eta` of a cyclic run).
        return Ok(());
    }
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

/// Column positions of a CSV header, with contract errors for missing columns.
pub(crate) struct Columns {
    path: PathBuf,
    index: HashMap<String, usize>,
}

impl Columns {
    pub(crate) fn index(&self, column: &'static str) -> Result<usize, ReadError> {
        self.index
            .get(column)
            .copied()
            .ok_or_else(|| ReadError::MissingColumn {
                path: self.path.clone(),
                column,
            })
    }
}

/// Opens a CSV file of the output folder and reads its header.
pub(crate) fn open_csv(path: &Path) -> Result<(csv::Reader<File>, Columns), ReadError> {
    let file = File::open(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::Reader::from_reader(file);
    let headers = reader.headers().map_err(|source| ReadError::Csv {
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

pub(crate) fn bad_value(
    path: &Path,
    line: u64,
    column: &'static str,
    value: &str,
    expected: &'static str,
) -> ReadError {
    ReadError::BadValue {
        path: path.to_path_buf(),
        line,
        column,
        value: value.to_string(),
        expected,
    }
}

pub(crate) fn parse<T: std::str::FromStr>(
    path: &Path,
    line: u64,
    column: &'static str,
    value: &str,
    expected: &'static str,
) -> Result<T, ReadError> {
    value
        .trim()
        .parse()
        .map_err(|_| bad_value(path, line, column, value, expected))
}

/// An empty cell is NaN (the contract leaves unavailable metrics empty).
pub(crate) fn parse_opt_f64(
    path: &Path,
    line: u64,
    column: &'static str,
    value: &str,
) -> Result<f64, ReadError> {
    if value.trim().is_empty() {
        Ok(f64::NAN)
    } else {
        parse(path, line, column, value, "a number or an empty cell")
    }
}

/// Calls `f` with each record of `reader` and its 1-based line.
pub(crate) fn each_record<E: From<ReadError>>(
    path: &Path,
    mut reader: csv::Reader<File>,
    mut f: impl FnMut(&csv::StringRecord, u64) -> Result<(), E>,
) -> Result<(), E> {
    for record in reader.records() {
        let record = record.map_err(|source| ReadError::Csv {
            path: path.to_path_buf(),
            source,
        })?;
        let line = record.position().map_or(0, |p| p.line());
        f(&record, line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn setting_columns_are_the_parameter_columns_without_the_seed() {
        let expected: Vec<&str> = PARAM_COLUMNS.into_iter().filter(|c| *c != SEED).collect();
        assert_eq!(SETTING_COLUMNS.to_vec(), expected);
    }

    #[test]
    fn metric_columns_are_final_columns_of_results_csv() {
        let header = results_header();
        for m in Metric::ALL {
            assert!(header.contains(&m.column()), "{m:?}");
            assert_eq!(Metric::ALL[m.index()], m);
        }
        assert_eq!(
            header[PARAM_COLUMNS.len() + 1..PARAM_COLUMNS.len() + 3],
            [STATUS, DIVERGED_EPOCH]
        );
    }

    #[test]
    fn run_status_reads_back_what_it_writes() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert_eq!(RunStatus::parse("done"), None);
    }

    #[test]
    fn setting_id_drops_only_the_seed_part() {
        assert_eq!(
            setting_id_of("lambda=0.1_eta=0.001_batch=100_epochs=40_seed=12_shuffle=false_f64"),
            "lambda=0.1_eta=0.001_batch=100_epochs=40_shuffle=false_f64"
        );
    }

    #[test]
    fn figure_names_are_recognised_and_ids_cannot_escape_the_folder() {
        assert_eq!(curves_png("a=1"), "figures/curves_a=1.png");
        assert_eq!(weights_png("../x y"), "figures/weights_..~x~y.png");
        assert_eq!(
            heatmap_png("lambda", "eta"),
            "figures/heatmap_lambda_eta.png"
        );
        for rel in [
            curves_png("s"),
            weights_png("r"),
            batch_norm_png("s_bn"),
            overlay_png(),
            response_png("lambda"),
            heatmap_png("lambda", "eta"),
        ] {
            assert!(
                is_figure_name(rel.strip_prefix("figures/").unwrap()),
                "{rel}"
            );
        }
        assert!(!is_figure_name("notes.txt") && !is_figure_name("mine.png"));
    }

    #[test]
    fn the_batch_norm_keys_are_setting_columns() {
        for key in std::iter::once(BATCH_NORM_KEY).chain(BATCH_NORM_ONLY_KEYS) {
            assert!(SETTING_COLUMNS.contains(&key), "{key}");
        }
    }

    #[test]
    fn result_json_round_trips_floats_exactly() {
        // A value serde_json's fast float parser misreads by one ulp without its
        // `float_roundtrip` feature (seen as results.csv differing from metrics.csv).
        let f = Final {
            loss: 2.0099948738605162,
            cost: 0.1 + 0.2,
            accuracy: 1.0 / 3.0,
        };
        let back: Final = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.loss.to_bits(), f.loss.to_bits());
    }

    fn write(path: &Path, text: &str) {
        File::create(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    #[test]
    fn bad_plans_are_rejected_with_their_line_or_column() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join(PLAN_CSV);
        // A folder from before the network axes: their columns are missing.
        let header = plan_header()[..9].join(",");
        write(
            &plan,
            &format!(
                "{header}\na_seed=1,0,0.1,100,3,1,true,f32,0.01\na_seed=1,0,0.1,100,3,1,true,f32,0.01\n"
            ),
        );
        let err = read_plan(&plan).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::DuplicateRun {
                    first: 2,
                    second: 3,
                    ..
                }
            ),
            "{err}"
        );

        write(
            &plan,
            &format!("{header}\na_seed=1,0,0.1,100,3,1,maybe,f32,0.01\n"),
        );
        let err = read_plan(&plan).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::BadValue {
                    column: "shuffle",
                    ..
                }
            ),
            "{err}"
        );

        write(&plan, "run_id,lambda,seed\na,0,1\n");
        assert!(matches!(
            read_plan(&plan).unwrap_err(),
            ReadError::MissingColumn { column: "eta", .. }
        ));

        write(
            &plan,
            &format!("{header}\nlambda=0_seed=2,0,0.1,100,3,2,true,f64,0.01\n"),
        );
        let rows = read_plan(&plan).unwrap();
        assert_eq!((rows[0].setting_id.as_str(), rows[0].line), ("lambda=0", 2));
        assert_eq!(
            rows[0].params[..7],
            ["0", "0.1", "100", "3", "true", "f64", "0.01"]
        );
        assert!(rows[0].params[7..].iter().all(String::is_empty));
    }
}
