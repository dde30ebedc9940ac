//! Plotting a summary: which figures a [`Summary`] gets (the response figures and
//! heatmaps of `summary::response`, the validation-accuracy overlay of every setting,
//! and for the top settings only, per-setting curves against epochs or update steps and
//! first-layer weight montages up to [`MAX_MONTAGES`]), drawn through
//! [`crate::output::figures`] into `figures/`, and the index of what was drawn.
//!
//! May import `output::contract`, `output::atomic`, `output::figures`, `summary::read`,
//! `summary::aggregate`, `summary::error`, `summary::response`, and `data` (CIFAR-10's
//! class names).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use ndarray::Array2;
use rayon::prelude::*;

use crate::data::CIFAR10_CLASSES;
use crate::output::contract::{
    self, BATCH_NORM_KEY, BATCH_NORM_ONLY_KEYS, FIGURES_DIR, LOSS_KEY, METRICS_CSV, RUNS_DIR,
    SETTING_COLUMNS, W_NPY,
};
use crate::output::figures::{
    self, Band, FigureError, IMAGE_LEN, OverlayLine, SettingCurves, XAxis,
};
use crate::output::summary::aggregate::{
    CurveFigure, FigureIndex, PairFigure, SettingSummary, Summary,
};
use crate::output::summary::error::SummaryError;
use crate::output::summary::read::{Point, RunCurves, Series, read_curves, read_weights};
use crate::output::summary::response::{self, Coarse, SweepFile};

/// At most this many weight montages are drawn per sweep, all of the `--top` settings.
/// Each top setting's first-seed run is always drawn (the report shows it); its other
/// runs are drawn in plan order until the cap is reached, because beyond that the images
/// cost time and disk without being read.
pub const MAX_MONTAGES: usize = 500;

/// What the figures draw besides the summary itself: how many of the best settings get
/// their own figures, the sweep file's log axes, and the coarse sweep, if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FigureInput<'a> {
    pub top: usize,
    pub file: &'a SweepFile,
    pub coarse: Option<&'a Coarse>,
}

/// Draws the response figures and heatmaps, the validation-accuracy overlay of every
/// setting, and the curves, batch-norm pairs and weight montages of the `input.top`
/// best settings into `dir/figures/`, then removes the figures of an earlier summary
/// that this one no longer draws (a setting no longer in the top). Each figure replaces
/// its old version atomically, so a failure part-way leaves every figure either as it
/// was or complete.
pub(crate) fn write_figures(
    dir: &Path,
    summary: &Summary,
    input: FigureInput<'_>,
) -> Result<FigureIndex, SummaryError> {
    let fig_dir = dir.join(FIGURES_DIR);
    std::fs::create_dir_all(&fig_dir).map_err(|source| SummaryError::Write {
        path: fig_dir.clone(),
        source,
    })?;
    figures::register_font()?;

    let wanted: HashSet<&str> = summary
        .settings
        .iter()
        .flat_map(|s| s.ok_run_ids.iter().map(String::as_str))
        .collect();
    let metrics_path = dir.join(METRICS_CSV);
    let curves = if metrics_path.is_file() {
        read_curves(&metrics_path, &wanted)?
    } else {
        HashMap::new()
    };

    let mut index = FigureIndex {
        top: input.top,
        ..FigureIndex::default()
    };
    let (responses, heatmaps) =
        response::write_response_figures(dir, summary, input.file, input.coarse)?;
    index.responses = responses;
    index.heatmaps = heatmaps;
    index.coarse = input
        .coarse
        .filter(|_| index.responses.iter().any(|r| r.n_coarse > 0))
        .map(|c| c.dir.display().to_string());

    // Settings are best first, so the top ones are the first ranked ones.
    let top: HashSet<&str> = summary
        .settings
        .iter()
        .filter(|s| s.rank.is_some())
        .take(input.top)
        .map(|s| s.setting_id.as_str())
        .collect();
    let pairs: Vec<(&str, &str)> = batch_norm_pairs(&summary.settings)
        .into_iter()
        .filter(|(off, on)| top.contains(off) || top.contains(on))
        .collect();
    let needs_curves: HashSet<&str> = top
        .iter()
        .copied()
        .chain(pairs.iter().flat_map(|(off, on)| [*off, *on]))
        .collect();

    let mut curve_jobs = Vec::new();
    let mut curves_of: HashMap<&str, SettingCurves> = HashMap::new();
    let mut overlay_runs = Vec::new();
    for s in &summary.settings {
        let runs: Vec<&RunCurves> = s
            .ok_run_ids
            .iter()
            .filter_map(|id| curves.get(id))
            .collect();
        if runs.is_empty() {
            continue;
        }
        let x_axis = if runs.iter().any(|r| r.records_by_update()) {
            XAxis::Update
        } else {
            XAxis::Epoch
        };
        if needs_curves.contains(s.setting_id.as_str()) {
            let band = |series: Series| band_of(&runs, x_axis, |r| &r.series[series as usize]);
            let learning_rate = runs
                .iter()
                .any(|r| r.learning_rate_moves())
                .then(|| band_of(&runs, x_axis, |r| &r.learning_rate));
            let c = SettingCurves {
                title: s.setting_id.clone(),
                n_runs: runs.len(),
                x_axis,
                loss_name: loss_name(&s.params).to_string(),
                loss: [band(Series::TrainLoss), band(Series::ValLoss)],
                cost: [band(Series::TrainCost), band(Series::ValCost)],
                accuracy: [band(Series::TrainAccuracy), band(Series::ValAccuracy)],
                learning_rate,
            };
            if top.contains(s.setting_id.as_str()) {
                let rel = contract::curves_png(&s.setting_id);
                index.curves.insert(
                    s.setting_id.clone(),
                    CurveFigure {
                        rel: rel.clone(),
                        size: c.size(),
                        x_axis: x_axis.label(),
                    },
                );
                curve_jobs.push((rel, s.setting_id.as_str()));
            }
            curves_of.insert(s.setting_id.as_str(), c);
        }
        overlay_runs.push((s, runs, x_axis));
    }

    if !overlay_runs.is_empty() {
        // One x axis for every line: update steps as soon as one setting is shown so.
        let x_axis = overlay_runs
            .iter()
            .map(|(_, _, x)| *x)
            .max_by_key(|x| *x == XAxis::Update)
            .unwrap_or_default();
        let lines: Vec<OverlayLine> = overlay_runs
            .iter()
            .map(|(s, runs, _)| OverlayLine {
                label: match s.rank {
                    Some(r) => format!("#{r} {}", s.setting_id),
                    None => s.setting_id.clone(),
                },
                band: band_of(runs, x_axis, |r| &r.series[Series::ValAccuracy as usize]),
                stopped: false,
            })
            .collect();
        let rel = contract::overlay_png();
        figures::draw_val_accuracy_overlay(&dir.join(&rel), &summary.name, x_axis, &lines)?;
        index.overlay = Some(rel);
    }

    curve_jobs
        .par_iter()
        .map(|(rel, id)| figures::draw_setting_curves(&dir.join(rel), &curves_of[id]))
        .collect::<Result<Vec<()>, FigureError>>()?;

    let pair_jobs: Vec<(PairFigure, [&SettingCurves; 2])> = pairs
        .into_iter()
        .filter_map(|(off, on)| {
            let c = [curves_of.get(off)?, curves_of.get(on)?];
            (c[0].x_axis == c[1].x_axis).then(|| {
                let fig = PairFigure {
                    off: off.to_string(),
                    on: on.to_string(),
                    rel: contract::batch_norm_png(on),
                    size: figures::pair_size(),
                    x_axis: c[0].x_axis.label(),
                };
                (fig, c)
            })
        })
        .collect();
    pair_jobs
        .par_iter()
        .map(|(fig, [off, on])| {
            let title = format!("{}: without and with batch norm", fig.off);
            let sides = [("without BN", *off), ("with BN", *on)];
            figures::draw_pair_curves(&dir.join(&fig.rel), &title, sides)
        })
        .collect::<Result<Vec<()>, FigureError>>()?;
    index.batch_norm_pairs = pair_jobs.into_iter().map(|(fig, _)| fig).collect();

    let top_settings = || {
        summary
            .settings
            .iter()
            .filter(|s| top.contains(s.setting_id.as_str()))
    };
    let mut montage_runs: Vec<&str> = top_settings()
        .filter_map(|s| s.ok_run_ids.first().map(String::as_str))
        .collect();
    let firsts: HashSet<&str> = montage_runs.iter().copied().collect();
    let others: Vec<&str> = top_settings()
        .flat_map(|s| s.ok_run_ids.iter().map(String::as_str))
        .filter(|id| !firsts.contains(id))
        .collect();
    let room = MAX_MONTAGES.saturating_sub(montage_runs.len());
    index.montages_skipped = others.len().saturating_sub(room);
    montage_runs.extend(others.into_iter().take(room));

    let drawn = montage_runs
        .par_iter()
        .map(|id| {
            let run_dir = dir.join(RUNS_DIR).join(id);
            let Some(first) = FirstLayer::of(&run_dir) else {
                return Ok(None);
            };
            let w = read_weights(&run_dir.join(first.file()))?;
            if let Some(why) = not_images(first, &w) {
                return Ok(Some((id.to_string(), Err(why))));
            }
            let rel = contract::weights_png(id);
            let (heading, names) = first.labels(id, w.nrows());
            figures::draw_weight_montage(&dir.join(&rel), &heading, &w, &names)?;
            Ok(Some((id.to_string(), Ok(rel))))
        })
        .collect::<Result<Vec<_>, SummaryError>>()?;
    for (id, drawn) in drawn.into_iter().flatten() {
        match drawn {
            Ok(rel) => index.montages.insert(id, rel),
            Err(why) => index.no_montage.insert(id, why),
        };
    }
    remove_stale_figures(&fig_dir, &index)?;
    Ok(index)
}

/// The min..max band over `runs` of the points `pick` selects, against `x_axis`. Points
/// without an update count (folders older than the column) fall back to epochs.
pub(super) fn band_of<'a>(
    runs: &[&'a RunCurves],
    x_axis: XAxis,
    pick: impl Fn(&'a RunCurves) -> &'a Vec<Point>,
) -> Band {
    let per_run: Vec<Vec<(u32, f64)>> = runs
        .iter()
        .map(|r| {
            pick(r)
                .iter()
                .map(|p| match (x_axis, p.update) {
                    (XAxis::Update, Some(u)) => (u, p.value),
                    _ => (p.epoch, p.value),
                })
                .collect()
        })
        .collect();
    let slices: Vec<&[(u32, f64)]> = per_run.iter().map(Vec::as_slice).collect();
    Band::from_runs(&slices)
}

/// The settings with batch norm, in summary order, each with its twin without: the
/// setting whose parameters are the same but for `batch_norm = false` and the columns
/// only batch norm fills (`bn_momentum`, `bn_eps`), as (off, on) setting ids. Folders
/// written before the column existed have no pairs.
fn batch_norm_pairs(settings: &[SettingSummary]) -> Vec<(&str, &str)> {
    let column = |key: &str| SETTING_COLUMNS.iter().position(|c| *c == key);
    let (Some(bn), Some(only)) = (
        column(BATCH_NORM_KEY),
        BATCH_NORM_ONLY_KEYS
            .map(column)
            .into_iter()
            .collect::<Option<Vec<usize>>>(),
    ) else {
        return Vec::new();
    };
    let switch = |s: &SettingSummary, value: &str| s.params.get(bn).is_some_and(|v| v == value);
    let twin_key = |s: &SettingSummary| -> Vec<String> {
        let mut p = s.params.clone();
        for i in std::iter::once(bn).chain(only.iter().copied()) {
            if let Some(v) = p.get_mut(i) {
                v.clear();
            }
        }
        p
    };
    let off: HashMap<Vec<String>, &str> = settings
        .iter()
        .filter(|s| switch(s, "false"))
        .map(|s| (twin_key(s), s.setting_id.as_str()))
        .collect();
    settings
        .iter()
        .filter(|s| switch(s, "true"))
        .filter_map(|on| Some((*off.get(&twin_key(on))?, on.setting_id.as_str())))
        .collect()
}

/// The setting's loss function, for the loss panel's caption; folders written before
/// the `loss` key existed trained with cross-entropy.
fn loss_name(params: &[String]) -> &str {
    SETTING_COLUMNS
        .iter()
        .position(|c| *c == LOSS_KEY)
        .and_then(|i| params.get(i))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .unwrap_or("cross-entropy")
}

/// The weight matrix a run's montage shows: the one-layer classifier's W (a row per
/// class) or a network's W1 (a row per first-layer unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstLayer {
    Classes,
    Units,
}

impl FirstLayer {
    /// Which of the two the run folder holds, if either.
    fn of(run_dir: &Path) -> Option<FirstLayer> {
        [FirstLayer::Classes, FirstLayer::Units]
            .into_iter()
            .find(|f| run_dir.join(f.file()).is_file())
    }

    fn file(self) -> String {
        match self {
            FirstLayer::Classes => W_NPY.to_string(),
            FirstLayer::Units => contract::array_file("W1"),
        }
    }

    fn matrix(self) -> &'static str {
        match self {
            FirstLayer::Classes => "W",
            FirstLayer::Units => "W1",
        }
    }

    /// The montage's heading and tile labels: CIFAR-10's class names for W's 10
    /// classes, else `class 0`, `class 1`, ... (nothing says what the classes of other
    /// data are); `unit 0`, `unit 1`, ... for W1.
    fn labels(self, run_id: &str, rows: usize) -> (String, Vec<String>) {
        match self {
            FirstLayer::Classes if rows == CIFAR10_CLASSES.len() => (
                format!("Rows of W as images: {run_id}"),
                CIFAR10_CLASSES.iter().map(|c| c.to_string()).collect(),
            ),
            FirstLayer::Classes => (
                format!("Rows of W as images: {run_id}"),
                (0..rows).map(|i| format!("class {i}")).collect(),
            ),
            FirstLayer::Units => (
                format!("First-layer units (rows of W1) as images: {run_id}"),
                (0..rows).map(|i| format!("unit {i}")).collect(),
            ),
        }
    }
}

/// Why the rows of `w` cannot be shown as images, if they cannot: a montage shows each
/// row as a 32x32 RGB image, so a row must have 3 x 32 x 32 values.
fn not_images(first: FirstLayer, w: &Array2<f64>) -> Option<String> {
    let (k, d) = w.dim();
    let m = first.matrix();
    if k == 0 {
        Some(format!("its {m} is {k} × {d}, with no rows"))
    } else if d != IMAGE_LEN {
        Some(format!(
            "its {m} is {k} × {d}, and a row of {d} values is not an image \
             (a montage shows each row as a 32×32 RGB image, which takes 3 × 32 × 32 = {IMAGE_LEN})"
        ))
    } else {
        None
    }
}

/// Deletes the figures of an earlier summary that `index` does not list (a run since
/// removed, a montage the cap now skips), and temporary files a killed summary left.
/// Other files are kept.
fn remove_stale_figures(fig_dir: &Path, index: &FigureIndex) -> Result<(), SummaryError> {
    let write_err = |source| SummaryError::Write {
        path: fig_dir.to_path_buf(),
        source,
    };
    let current: HashSet<String> = index
        .overlay
        .iter()
        .chain(index.curves.values().map(|c| &c.rel))
        .chain(index.montages.values())
        .chain(index.batch_norm_pairs.iter().map(|p| &p.rel))
        .chain(index.responses.iter().map(|r| &r.rel))
        .chain(index.heatmaps.iter().map(|h| &h.rel))
        .filter_map(|rel| Path::new(rel).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    for entry in std::fs::read_dir(fig_dir).map_err(write_err)? {
        let path = entry.map_err(write_err)?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stale = contract::is_figure_name(&name) && !current.contains(&name);
        let debris =
            crate::output::atomic::temporary_target(&name).is_some_and(contract::is_figure_name);
        if stale || debris {
            std::fs::remove_file(&path).map_err(|source| SummaryError::Write { path, source })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rows_of_3072_values_are_images() {
        let c = FirstLayer::Classes;
        assert_eq!(not_images(c, &Array2::zeros((10, IMAGE_LEN))), None);
        assert_eq!(not_images(c, &Array2::zeros((3, IMAGE_LEN))), None);
        let why = not_images(c, &Array2::zeros((10, 32))).unwrap();
        assert!(
            why.contains("W is 10 × 32") && why.contains("3072"),
            "{why}"
        );
        assert!(not_images(c, &Array2::zeros((0, IMAGE_LEN))).is_some());
        let why = not_images(FirstLayer::Units, &Array2::zeros((50, 32))).unwrap();
        assert!(why.contains("W1 is 50 × 32"), "{why}");
    }

    #[test]
    fn tiles_are_cifar_classes_only_for_ten_classes_and_units_for_w1() {
        assert_eq!(FirstLayer::Classes.labels("r", 10).1[0], "airplane");
        assert_eq!(
            FirstLayer::Classes.labels("r", 3).1,
            ["class 0", "class 1", "class 2"]
        );
        let (heading, names) = FirstLayer::Units.labels("r", 50);
        assert!(
            heading.contains("W1") && heading.ends_with(": r"),
            "{heading}"
        );
        assert_eq!((names.len(), names[49].as_str()), (50, "unit 49"));
    }

    #[test]
    fn loss_name_reads_the_loss_column_and_defaults_to_cross_entropy() {
        let mut params = vec![String::new(); SETTING_COLUMNS.len()];
        assert_eq!(loss_name(&params), "cross-entropy");
        let i = SETTING_COLUMNS.iter().position(|c| *c == LOSS_KEY).unwrap();
        params[i] = "hinge".into();
        assert_eq!(loss_name(&params), "hinge");
    }
}
