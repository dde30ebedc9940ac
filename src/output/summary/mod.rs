//! The summary stage, `sweep summarize`: reads one sweep output folder (the files
//! `sweep run` writes, as the output contract names them), aggregates each setting's
//! final metrics over seeds, says which runs are missing, and writes `summary.csv`, the
//! figures and `report.html`.
//!
//! It reads only `plan.csv`, `results.csv`, `metrics.csv`, `gradcheck.csv` (optional) and
//! `runs/<id>/W.npy`, so it works on a folder copied from another machine and on a sweep
//! that is still running (its unfinished runs are listed, never averaged over silently).
//!
//! The parts depend one way, each only on those above it:
//! `read` (folder -> records) -> `aggregate` (records -> [`Summary`]) -> `tables`
//! (the settings table as CSV, text or Markdown), `response` (accuracy against each
//! axis), `plots` (the figures) and `report` (the HTML page) -> this module, which runs
//! them in order and reads a refined sweep's coarse sweep for `response`. `error` is their shared
//! error type. They may import `output::contract`, `output::atomic`, `output::figures`
//! and the earlier stages' types, never `output::artifacts` or a later stage.

use std::path::Path;

use crate::output::atomic::write_atomic;
use crate::output::contract::{
    self, GRADCHECK_CSV, PLAN_CSV, REPORT_HTML, RESULTS_CSV, SUMMARY_CSV,
};

mod aggregate;
mod error;
mod halving;
mod plots;
mod read;
mod report;
mod response;
mod tables;

pub use aggregate::{
    DivergedRun, FailedRun, FigureIndex, HeatmapFigure, Missing, ResponseFigure, SettingSummary,
    Stats, Summary,
};
pub use contract::Metric;
pub use error::SummaryError;
pub use read::GradcheckRow;
pub use tables::TableFormat;

use response::{Coarse, SweepFile};

/// What `summarize_sweep` writes besides `summary.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryOptions {
    /// Write `figures/*.png` and `report.html` (default true).
    pub figures: bool,
    /// How many of the best settings (by rank) get their own curve figures, weight
    /// montages and report sections (default [`DEFAULT_TOP`]); `summary.csv` and the
    /// response figures always cover every setting.
    pub top: usize,
}

/// The default of [`SummaryOptions::top`], for `sweep summarize` and the summary at the
/// end of `sweep run`: a page of curves that is still read.
pub const DEFAULT_TOP: usize = 8;

impl Default for SummaryOptions {
    fn default() -> Self {
        Self {
            figures: true,
            top: DEFAULT_TOP,
        }
    }
}

/// Summarizes one sweep folder: writes `<dir>/summary.csv` and, when `opts.figures`,
/// `<dir>/figures/*.png` and `<dir>/report.html`, each under a temporary name renamed
/// into place.
pub fn summarize_sweep(dir: &Path, opts: &SummaryOptions) -> Result<Summary, SummaryError> {
    let mut summary = read_summary(dir)?;
    write(
        &dir.join(SUMMARY_CSV),
        summary.render(TableFormat::Csv).as_bytes(),
    )?;
    if opts.figures {
        let file = SweepFile::read(dir);
        let coarse = file.refined_from.as_deref().and_then(read_coarse);
        let input = plots::FigureInput {
            top: opts.top,
            file: &file,
            coarse: coarse.as_ref(),
        };
        summary.figures = plots::write_figures(dir, &summary, input)?;
        summary.figures.halving = halving::write_halving_figure(dir, &summary)?;
        write(&dir.join(REPORT_HTML), report::render(&summary).as_bytes())?;
    }
    Ok(summary)
}

/// The coarse sweep a refined one names in `[search] refined_from`, if it can still be
/// summarized; if not (moved, deleted, no results yet) the figures show the refined sweep
/// alone, and a warning says why.
fn read_coarse(from: &Path) -> Option<Coarse> {
    if !from.join(RESULTS_CSV).is_file() {
        tracing::warn!(
            "refined_from {} has no {RESULTS_CSV}; the response figures show this sweep alone",
            from.display()
        );
        return None;
    }
    match read_summary(from) {
        Ok(s) => Some(Coarse {
            dir: from.to_path_buf(),
            settings: s.settings,
            log_keys: SweepFile::read(from).log_keys,
        }),
        Err(e) => {
            tracing::warn!(
                "cannot summarize refined_from {}: {e}; the response figures show this sweep alone",
                from.display()
            );
            None
        }
    }
}

/// The summary of one sweep folder, from its tables, writing nothing (no figures).
pub fn read_summary(dir: &Path) -> Result<Summary, SummaryError> {
    let plan = contract::read_plan(&dir.join(PLAN_CSV))?;
    let results = read::read_results(&dir.join(RESULTS_CSV))?;
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let mut summary = Summary::from_runs(&name, &plan, &results).map_err(|e| {
        SummaryError::InconsistentSetting {
            path: dir.join(PLAN_CSV),
            line: e.line,
            run_id: e.run_id,
            setting_id: e.setting_id,
        }
    })?;
    let gradcheck_path = dir.join(GRADCHECK_CSV);
    if gradcheck_path.is_file() {
        summary.gradcheck = Some(read::read_gradcheck(&gradcheck_path)?);
    }
    Ok(summary)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), SummaryError> {
    write_atomic(path, bytes).map_err(|source| SummaryError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;
