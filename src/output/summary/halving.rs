//! The figure of a successive-halving race (`figures/halving.png`): every candidate's
//! mean validation accuracy over training, the ones that trained to the end coloured by
//! rank, the stopped ones grey and crossed where they stopped.

use std::collections::HashSet;
use std::path::Path;

use super::plots::band_of;
use super::read::{RunCurves, Series, read_curves};
use super::{Summary, SummaryError};
use crate::output::contract::{self, METRICS_CSV};
use crate::output::figures::{self, OverlayLine, XAxis};

/// Draws the race of `summary` into `dir`, if any of its runs were stopped; returns the
/// figure's path relative to `dir`.
pub(super) fn write_halving_figure(
    dir: &Path,
    summary: &Summary,
) -> Result<Option<String>, SummaryError> {
    if summary
        .settings
        .iter()
        .all(|s| s.stopped_run_ids.is_empty())
    {
        return Ok(None);
    }
    let runs_of = |s: &super::SettingSummary| -> Vec<String> {
        s.ok_run_ids
            .iter()
            .chain(&s.stopped_run_ids)
            .cloned()
            .collect()
    };
    let ids: Vec<String> = summary.settings.iter().flat_map(runs_of).collect();
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let curves = read_curves(&dir.join(METRICS_CSV), &wanted)?;
    let per_setting: Vec<(&super::SettingSummary, Vec<&RunCurves>)> = summary
        .settings
        .iter()
        .map(|s| {
            let runs = runs_of(s).iter().filter_map(|id| curves.get(id)).collect();
            (s, runs)
        })
        .filter(|(_, runs): &(_, Vec<&RunCurves>)| !runs.is_empty())
        .collect();
    let x_axis = if per_setting
        .iter()
        .any(|(_, runs)| runs.iter().any(|r| r.records_by_update()))
    {
        XAxis::Update
    } else {
        XAxis::Epoch
    };
    let lines: Vec<OverlayLine> = per_setting
        .iter()
        .map(|(s, runs)| OverlayLine {
            label: s.setting_id.clone(),
            band: band_of(runs, x_axis, |r| &r.series[Series::ValAccuracy as usize]),
            stopped: s.ok_run_ids.is_empty(),
        })
        .collect();
    let rel = contract::halving_png();
    figures::draw_halving(&dir.join(&rel), &summary.name, x_axis, &lines)?;
    Ok(Some(rel))
}
