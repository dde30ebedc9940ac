//! Plotting a summary: which figures a [`Summary`] gets (per-setting curves, the
//! validation-accuracy overlay, weight montages up to [`MAX_MONTAGES`]), drawn through
//! [`crate::output::figures`] into `figures/`, and the index of what was drawn.
//!
//! May import `output::contract`, `output::atomic`, `output::figures`, `summary::read`,
//! `summary::aggregate`, `summary::error`, and `data` (CIFAR-10's class names).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use ndarray::Array2;
use rayon::prelude::*;

use crate::data::CIFAR10_CLASSES;
use crate::output::contract::{self, FIGURES_DIR, METRICS_CSV, RUNS_DIR, W_NPY};
use crate::output::figures::{self, Band, FigureError, IMAGE_LEN, OverlayLine, SettingCurves};
use crate::output::summary::aggregate::{FigureIndex, Summary};
use crate::output::summary::error::SummaryError;
use crate::output::summary::read::{RunCurves, Series, read_curves, read_weights};

/// At most this many weight montages are drawn per sweep. Each setting's first-seed run
/// is always drawn (the report shows it); other runs are drawn in plan order until the
/// cap is reached, because beyond that the images cost time and disk without being read.
pub const MAX_MONTAGES: usize = 500;

/// Draws the per-setting curves, the validation-accuracy overlay and the weight montages
/// into `dir/figures/`, then removes the figures of an earlier summary that this one no
/// longer draws. Each figure replaces its old version atomically, so a failure part-way
/// leaves every figure either as it was or complete.
pub(crate) fn write_figures(dir: &Path, summary: &Summary) -> Result<FigureIndex, SummaryError> {
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
        let rel = contract::curves_png(&s.setting_id);
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
        let rel = contract::overlay_png();
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
            let w_path = dir.join(RUNS_DIR).join(id).join(W_NPY);
            if !w_path.is_file() {
                return Ok(None);
            }
            let w = read_weights(&w_path)?;
            if let Some(why) = not_images(&w) {
                return Ok(Some((id.to_string(), Err(why))));
            }
            let rel = contract::weights_png(id);
            figures::draw_weight_montage(&dir.join(&rel), id, &w, &class_names(w.nrows()))?;
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

/// Why the rows of `w` cannot be shown as images, if they cannot: a montage shows each
/// class's row as a 32x32 RGB image, so a row must have 3 x 32 x 32 values.
fn not_images(w: &Array2<f64>) -> Option<String> {
    let (k, d) = w.dim();
    if k == 0 {
        Some(format!("its W is {k} × {d}, with no class rows"))
    } else if d != IMAGE_LEN {
        Some(format!(
            "its W is {k} × {d}, and a row of {d} values is not an image \
             (a montage shows each row as a 32×32 RGB image, which takes 3 × 32 × 32 = {IMAGE_LEN})"
        ))
    } else {
        None
    }
}

/// The montage's tile labels: CIFAR-10's class names for its 10 classes, else
/// `class 0`, `class 1`, ... (nothing says what the classes of other data are).
fn class_names(k: usize) -> Vec<String> {
    if k == CIFAR10_CLASSES.len() {
        CIFAR10_CLASSES.iter().map(|c| c.to_string()).collect()
    } else {
        (0..k).map(|i| format!("class {i}")).collect()
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
        .chain(index.curves.values())
        .chain(index.montages.values())
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
        assert_eq!(not_images(&Array2::zeros((10, IMAGE_LEN))), None);
        assert_eq!(not_images(&Array2::zeros((3, IMAGE_LEN))), None);
        let why = not_images(&Array2::zeros((10, 32))).unwrap();
        assert!(why.contains("10 × 32") && why.contains("3072"), "{why}");
        assert!(not_images(&Array2::zeros((0, IMAGE_LEN))).is_some());
    }

    #[test]
    fn class_names_are_cifar_only_for_ten_classes() {
        assert_eq!(class_names(10)[0], "airplane");
        assert_eq!(class_names(3), ["class 0", "class 1", "class 2"]);
    }
}
