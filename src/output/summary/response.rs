//! The response of a sweep to its settings: which setting axes are numeric and take two
//! or more values, which of them are drawn on a log axis (drawn log-uniformly or by
//! `logspace` in the sweep file, or positive and spanning more than two decades), the
//! figures of validation accuracy against each axis (beside the coarse sweep a refined
//! one came from), and heatmaps over pairs of axes, binned.
//!
//! May import `output::contract`, `output::figures`, `summary::aggregate` and
//! `summary::error`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::output::contract::{self, Metric, ORIGIN_JSON, Origin, SETTING_COLUMNS, SWEEP_TOML};
use crate::output::figures::{
    self, FigureError, Heatmap, HeatmapAxis, Response, ResponsePoint, ResponseSeries, tick_label,
};
use crate::output::summary::aggregate::{HeatmapFigure, ResponseFigure, SettingSummary, Summary};
use crate::output::summary::error::SummaryError;

/// At most this many heatmaps are drawn, for the first pairs of varying axes in column
/// order: beyond a few, pairs say little that the response figures do not.
pub const MAX_HEATMAPS: usize = 3;
/// Bins of an axis that takes many values.
const RANGE_BINS: usize = 8;
/// An axis with at most this many distinct values gets one bin per value.
const VALUE_BINS: usize = 10;

/// What the summary reads from a sweep's copy of its file (`sweep.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepFile {
    /// Keys drawn by `{ log_uniform = [...] }` or listed by `{ logspace = [...] }` in
    /// `[train]` or any `[[grid]]`.
    pub log_keys: HashSet<String>,
    /// `[search] refined_from`: the coarse sweep's folder, resolved against the
    /// original sweep file's folder when relative.
    pub refined_from: Option<PathBuf>,
}

impl SweepFile {
    /// Reads `dir/sweep.toml`. A folder without one (copied without it, or written before
    /// it was kept), or one that does not parse, reads as empty: the figures then fall
    /// back on the values alone.
    pub fn read(dir: &Path) -> SweepFile {
        let Ok(text) = std::fs::read_to_string(dir.join(SWEEP_TOML)) else {
            return SweepFile::default();
        };
        let base = std::fs::read_to_string(dir.join(ORIGIN_JSON))
            .ok()
            .and_then(|t| serde_json::from_str::<Origin>(&t).ok())
            .and_then(|o| o.spec.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| dir.to_path_buf());
        SweepFile::parse(&text, &base)
    }

    fn parse(text: &str, base: &Path) -> SweepFile {
        let Ok(doc) = toml::from_str::<toml::Table>(text) else {
            return SweepFile::default();
        };
        let train = doc.get("train").and_then(toml::Value::as_table);
        let grids = doc
            .get("grid")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_table);
        let log_keys = train
            .into_iter()
            .chain(grids)
            .flat_map(|t| t.iter())
            .filter(|(_, v)| {
                v.as_table()
                    .is_some_and(|d| d.contains_key("log_uniform") || d.contains_key("logspace"))
            })
            .map(|(k, _)| k.clone())
            .collect();
        let refined_from = doc
            .get("search")
            .and_then(|s| s.get("refined_from"))
            .and_then(toml::Value::as_str)
            .map(|p| base.join(p));
        SweepFile {
            log_keys,
            refined_from,
        }
    }
}

/// The coarse sweep a refined one came from, drawn beside it on the response figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Coarse {
    pub dir: PathBuf,
    pub settings: Vec<SettingSummary>,
    pub log_keys: HashSet<String>,
}

/// The numeric value of column `i` of each setting (None where the setting leaves the
/// column empty), or None when a filled cell is not a finite number (a switch, a list of
/// widths, a name): such a column has no response figure.
fn numeric_column(settings: &[SettingSummary], i: usize) -> Option<Vec<Option<f64>>> {
    settings
        .iter()
        .map(|s| match s.params.get(i).map(String::as_str) {
            None | Some("") => Some(None),
            Some(text) => text.parse::<f64>().ok().filter(|v| v.is_finite()).map(Some),
        })
        .collect()
}

/// The columns that are numeric and take two or more distinct values across `settings`,
/// in column order, each with its values.
fn varying_numeric_columns(settings: &[SettingSummary]) -> Vec<(usize, Vec<Option<f64>>)> {
    (0..SETTING_COLUMNS.len())
        .filter_map(|i| {
            let values = numeric_column(settings, i)?;
            let mut distinct: Vec<f64> = values.iter().flatten().copied().collect();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            (distinct.len() >= 2).then_some((i, values))
        })
        .collect()
}

/// Whether an axis is drawn on a log scale: its values are all positive, and the sweep
/// draws it log-uniformly (or by `logspace`) or they span more than two decades.
pub(crate) fn is_log_axis(drawn_log: bool, values: &[f64]) -> bool {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    !values.is_empty() && lo > 0.0 && (drawn_log || hi / lo > 100.0)
}

/// How a heatmap cuts one axis into bins.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bins {
    /// One bin per distinct value, in increasing order (an axis with few values).
    Values(Vec<f64>),
    /// `n` equal bins from `lo` to `hi`, equal in log10 when `log`.
    Range {
        lo: f64,
        hi: f64,
        n: usize,
        log: bool,
    },
}

impl Bins {
    /// The bins of an axis with `values`: one per value for at most [`VALUE_BINS`]
    /// distinct values, else [`RANGE_BINS`] over their span.
    pub(crate) fn of(values: &[f64], log: bool) -> Bins {
        let mut distinct: Vec<f64> = values.to_vec();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        match (distinct.first(), distinct.last()) {
            (Some(&lo), Some(&hi)) if distinct.len() > VALUE_BINS => Bins::Range {
                lo,
                hi,
                n: RANGE_BINS,
                log,
            },
            _ => Bins::Values(distinct),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Bins::Values(v) => v.len(),
            Bins::Range { n, .. } => *n,
        }
    }

    /// The bin of `v`; the top edge belongs to the last bin. None outside the bins.
    pub(crate) fn index(&self, v: f64) -> Option<usize> {
        match *self {
            Bins::Values(ref values) => values.iter().position(|x| *x == v),
            Bins::Range { lo, hi, n, log } => {
                if !(lo..=hi).contains(&v) {
                    return None;
                }
                let t = |x: f64| if log { x.log10() } else { x };
                let f = (t(v) - t(lo)) / (t(hi) - t(lo));
                Some(((f * n as f64) as usize).min(n - 1))
            }
        }
    }

    /// Tick labels in bin units: each value at its bin's middle, or each bin edge (to
    /// two significant digits).
    fn ticks(&self) -> Vec<(f64, String)> {
        match *self {
            Bins::Values(ref values) => values
                .iter()
                .enumerate()
                .map(|(i, v)| (i as f64 + 0.5, tick_label(*v)))
                .collect(),
            Bins::Range { lo, hi, n, log } => (0..=n)
                .map(|k| {
                    let f = k as f64 / n as f64;
                    let edge = if log {
                        10f64.powf(lo.log10() + f * (hi.log10() - lo.log10()))
                    } else {
                        lo + f * (hi - lo)
                    };
                    let rounded: f64 = format!("{edge:.1e}").parse().unwrap_or(edge);
                    (k as f64, tick_label(rounded))
                })
                .collect(),
        }
    }
}

/// The response figure's points: each setting with a value on the axis and finished
/// runs, at its validation accuracy's mean, min and max over seeds.
fn points(settings: &[SettingSummary], values: &[Option<f64>]) -> Vec<ResponsePoint> {
    settings
        .iter()
        .zip(values)
        .filter_map(|(s, x)| {
            let st = s.stat(Metric::ValAccuracy);
            (st.n > 0 && st.mean.is_finite()).then_some(ResponsePoint {
                x: (*x)?,
                mean: st.mean,
                min: st.min,
                max: st.max,
            })
        })
        .collect()
}

/// The heatmap of the best mean validation accuracy over the settings in each cell of
/// axes `x` and `y` (column, values, log).
fn heatmap(
    name: &str,
    settings: &[SettingSummary],
    x: (usize, &[Option<f64>], bool),
    y: (usize, &[Option<f64>], bool),
) -> Heatmap {
    let present = |v: &[Option<f64>]| v.iter().flatten().copied().collect::<Vec<f64>>();
    let (bx, by) = (Bins::of(&present(x.1), x.2), Bins::of(&present(y.1), y.2));
    let mut cells: Vec<Option<f64>> = vec![None; bx.len() * by.len()];
    for ((s, vx), vy) in settings.iter().zip(x.1).zip(y.1) {
        let mean = s.stat(Metric::ValAccuracy).mean;
        let (Some(vx), Some(vy)) = (*vx, *vy) else {
            continue;
        };
        let (Some(ix), Some(iy)) = (bx.index(vx), by.index(vy)) else {
            continue;
        };
        if mean.is_finite() {
            let cell = &mut cells[iy * bx.len() + ix];
            *cell = Some(cell.map_or(mean, |c| c.max(mean)));
        }
    }
    let axis = |column: usize, bins: &Bins, log: bool| HeatmapAxis {
        name: if log {
            format!("{} (log scale)", SETTING_COLUMNS[column])
        } else {
            SETTING_COLUMNS[column].to_string()
        },
        bins: bins.len(),
        ticks: bins.ticks(),
    };
    Heatmap {
        title: format!(
            "{name}: best mean validation accuracy by {} and {}",
            SETTING_COLUMNS[x.0], SETTING_COLUMNS[y.0]
        ),
        x: axis(x.0, &bx, x.2),
        y: axis(y.0, &by, y.2),
        cells,
    }
}

/// Draws `response_<axis>.png` for every numeric axis that varies across the sweep's
/// settings (with the coarse sweep's settings on the same axes, if any), and
/// `heatmap_<a>_<b>.png` for the first [`MAX_HEATMAPS`] pairs of them (unless no
/// setting has values on both axes, as when each axis varies in its own grid).
pub(crate) fn write_response_figures(
    dir: &Path,
    summary: &Summary,
    file: &SweepFile,
    coarse: Option<&Coarse>,
) -> Result<(Vec<ResponseFigure>, Vec<HeatmapFigure>), SummaryError> {
    let settings = &summary.settings;
    let axes: Vec<(usize, Vec<Option<f64>>, bool)> = varying_numeric_columns(settings)
        .into_iter()
        .map(|(i, values)| {
            let key = SETTING_COLUMNS[i];
            let coarse_values = coarse
                .and_then(|c| numeric_column(&c.settings, i))
                .unwrap_or_default();
            let all: Vec<f64> = values
                .iter()
                .chain(&coarse_values)
                .flatten()
                .copied()
                .collect();
            let drawn_log =
                file.log_keys.contains(key) || coarse.is_some_and(|c| c.log_keys.contains(key));
            let log = is_log_axis(drawn_log, &all);
            (i, values, log)
        })
        .collect();

    let mut jobs: Vec<(ResponseFigure, Response)> = Vec::new();
    for (i, values, log) in &axes {
        let key = SETTING_COLUMNS[*i];
        let mut series = vec![ResponseSeries {
            label: "fine".into(),
            points: points(settings, values),
        }];
        let coarse_points = coarse
            .and_then(|c| Some(points(&c.settings, &numeric_column(&c.settings, *i)?)))
            .filter(|p| !p.is_empty());
        if let Some(p) = &coarse_points {
            series.push(ResponseSeries {
                label: "coarse".into(),
                points: p.clone(),
            });
        }
        if series[0].points.is_empty() {
            continue;
        }
        let fig = ResponseFigure {
            axis: key.to_string(),
            rel: contract::response_png(key),
            size: figures::response_size(),
            log_x: *log,
            n_coarse: coarse_points.as_ref().map_or(0, Vec::len),
        };
        let chart = Response {
            title: format!("{}: validation accuracy by {key}", summary.name),
            axis: key.to_string(),
            log_x: *log,
            series,
        };
        jobs.push((fig, chart));
    }
    jobs.par_iter()
        .map(|(fig, chart)| figures::draw_response(&dir.join(&fig.rel), chart))
        .collect::<Result<Vec<()>, FigureError>>()?;

    let pairs: Vec<(usize, usize)> = (0..axes.len())
        .flat_map(|a| (a + 1..axes.len()).map(move |b| (a, b)))
        .take(MAX_HEATMAPS)
        .collect();
    let maps: Vec<(HeatmapFigure, Heatmap)> = pairs
        .into_iter()
        .map(|(a, b)| {
            let (x, y) = (&axes[a], &axes[b]);
            let (kx, ky) = (SETTING_COLUMNS[x.0], SETTING_COLUMNS[y.0]);
            let fig = HeatmapFigure {
                axes: [kx.to_string(), ky.to_string()],
                rel: contract::heatmap_png(kx, ky),
                size: figures::heatmap_size(),
            };
            let map = heatmap(&summary.name, settings, (x.0, &x.1, x.2), (y.0, &y.1, y.2));
            (fig, map)
        })
        .filter(|(_, map)| map.cells.iter().any(Option::is_some))
        .collect();
    maps.par_iter()
        .map(|(fig, map)| figures::draw_heatmap(&dir.join(&fig.rel), map))
        .collect::<Result<Vec<()>, FigureError>>()?;
    Ok((
        jobs.into_iter().map(|(f, _)| f).collect(),
        maps.into_iter().map(|(f, _)| f).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axes_are_drawn_log_or_span_more_than_two_decades_and_positive() {
        assert!(is_log_axis(true, &[0.01, 0.02]), "drawn log-uniformly");
        assert!(!is_log_axis(false, &[0.01, 0.02]));
        assert!(is_log_axis(false, &[1e-4, 0.1]), "three decades");
        assert!(!is_log_axis(false, &[1.0, 100.0]), "exactly two decades");
        assert!(is_log_axis(false, &[1.0, 100.5]));
        assert!(!is_log_axis(true, &[0.0, 0.1]), "0 has no logarithm");
        assert!(!is_log_axis(false, &[-1.0, 1e3]));
        assert!(!is_log_axis(true, &[]));
    }

    #[test]
    fn few_values_get_a_bin_each_and_many_get_even_bins() {
        let few = Bins::of(&[100.0, 50.0, 100.0, 200.0], false);
        assert_eq!(few, Bins::Values(vec![50.0, 100.0, 200.0]));
        assert_eq!(few.index(100.0), Some(1));
        assert_eq!(few.index(75.0), None);
        assert_eq!(few.ticks()[0], (0.5, "50".to_string()));

        let many: Vec<f64> = (0..11).map(|i| f64::from(i) * 10.0).collect();
        let lin = Bins::of(&many, false);
        assert_eq!(lin.len(), RANGE_BINS);
        // Each bin is 100 / 8 = 12.5 wide; the top edge belongs to the last bin.
        assert_eq!(lin.index(0.0), Some(0));
        assert_eq!(lin.index(12.4), Some(0));
        assert_eq!(lin.index(12.6), Some(1));
        assert_eq!(lin.index(100.0), Some(7));
        assert_eq!(lin.index(100.1), None);
        let ticks = lin.ticks();
        assert_eq!(ticks.len(), RANGE_BINS + 1);
        assert_eq!((ticks[4].0, ticks[4].1.as_str()), (4.0, "50"));
    }

    #[test]
    fn log_bins_are_even_in_decades() {
        let values: Vec<f64> = (0..=16)
            .map(|k| 10f64.powf(-5.0 + 0.25 * f64::from(k)))
            .collect();
        let bins = Bins::of(&values, true);
        assert_eq!(
            bins.len(),
            8,
            "four decades in eight bins: half a decade each"
        );
        assert_eq!(bins.index(1e-5), Some(0));
        assert_eq!(bins.index(2e-5), Some(0));
        assert_eq!(bins.index(4e-5), Some(1), "past 10^-4.5 = 3.16e-5");
        assert_eq!(bins.index(1e-3), Some(4));
        assert_eq!(bins.index(0.1), Some(7));
        let ticks = bins.ticks();
        assert_eq!(ticks[1].1, "3.2e-5");
        assert_eq!(ticks[8].1, "0.1");
        // The same values cut linearly put all but the top decade in the first bin.
        assert_eq!(Bins::of(&values, false).index(1e-3), Some(0));
    }

    #[test]
    fn the_sweep_file_names_its_log_axes_and_the_coarse_folder() {
        let file = SweepFile::parse(
            "name = \"x\"\n[train]\nlambda = { log_uniform = [1e-5, 1e-1] }\n\
             eta = { uniform = [0.01, 0.1] }\nepochs = 3\n\
             [[grid]]\nbatch_size = [50, 100]\n[[grid]]\ninit_std = { logspace = [-3, -1, 3] }\n\
             [search]\nsamples = 4\nrefined_from = \"../out/coarse\"\n",
            Path::new("/sweeps"),
        );
        let mut keys: Vec<&str> = file.log_keys.iter().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["init_std", "lambda"]);
        assert_eq!(
            file.refined_from,
            Some(PathBuf::from("/sweeps/../out/coarse"))
        );
        let absolute = SweepFile::parse("[search]\nrefined_from = \"/o/c\"\n", Path::new("/s"));
        assert_eq!(absolute.refined_from, Some(PathBuf::from("/o/c")));
        assert_eq!(
            SweepFile::parse("not toml [", Path::new("/")),
            SweepFile::default()
        );
    }

    #[test]
    fn only_numeric_columns_that_vary_get_a_response_figure() {
        use crate::output::contract::RunStatus;
        use crate::output::summary::aggregate::tests::{planned, result};
        let plan = vec![planned("a_seed=1", "0.1"), planned("b_seed=1", "0.01")];
        let results = vec![
            result("a_seed=1", RunStatus::Ok, 0.3),
            result("b_seed=1", RunStatus::Ok, 0.4),
        ];
        let s = Summary::from_runs("t", &plan, &results).unwrap();
        let cols: Vec<&str> = varying_numeric_columns(&s.settings)
            .iter()
            .map(|(i, _)| SETTING_COLUMNS[*i])
            .collect();
        assert_eq!(
            cols,
            ["lambda"],
            "eta, batch_size, ... are the same everywhere"
        );
        let mut texts = s.settings.clone();
        texts[0].params[0] = "[50]".into();
        assert!(
            varying_numeric_columns(&texts).is_empty(),
            "a list is not a number"
        );
    }

    #[test]
    fn a_heatmap_cell_holds_the_best_mean_of_its_settings() {
        use crate::output::contract::RunStatus;
        use crate::output::summary::aggregate::tests::{planned, result};
        let plan: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|id| planned(&format!("{id}_seed=1"), "0"))
            .collect();
        let mut s = Summary::from_runs(
            "t",
            &plan,
            &[
                result("a_seed=1", RunStatus::Ok, 0.3),
                result("b_seed=1", RunStatus::Ok, 0.5),
                result("c_seed=1", RunStatus::Ok, 0.2),
            ],
        )
        .unwrap();
        s.settings.sort_by(|a, b| a.setting_id.cmp(&b.setting_id));
        let x = [Some(1.0), Some(1.0), Some(2.0)];
        let y = [Some(5.0), Some(5.0), Some(5.0)];
        let map = heatmap("t", &s.settings, (0, &x, false), (1, &y, false));
        assert_eq!((map.x.bins, map.y.bins), (2, 1));
        assert_eq!(map.cells, [Some(0.5), Some(0.2)]);
        let z = [Some(1.0), Some(3.0), Some(2.0)];
        let map = heatmap("t", &s.settings, (0, &x, false), (1, &z, false));
        assert_eq!(
            map.cells.iter().filter(|c| c.is_none()).count(),
            3,
            "{map:?}"
        );
    }
}
