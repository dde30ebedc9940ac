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
//! (the settings table as CSV, text or Markdown), `plots` (the figures) and `report`
//! (the HTML page) -> this module, which runs them in order. `error` is their shared
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
mod tables;

pub use aggregate::{DivergedRun, FailedRun, FigureIndex, Missing, SettingSummary, Stats, Summary};
pub use contract::Metric;
pub use error::SummaryError;
pub use read::GradcheckRow;
pub use tables::TableFormat;

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
        summary.figures = plots::write_figures(dir, &summary)?;
        summary.figures.halving = halving::write_halving_figure(dir, &summary)?;
        write(&dir.join(REPORT_HTML), report::render(&summary).as_bytes())?;
    }
    Ok(summary)
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
