//! The HTML report of a sweep: one self-contained page laid out like a lab report (title,
//! best setting, the response figures and heatmaps, the settings table (the best rows),
//! gradient check, the top settings' figures and weight montages, missing runs). It has inline CSS and references images by relative path
//! (`figures/...`), so it opens straight from disk without a server or network.
//!
//! May import `output::contract`, `summary::read` and `summary::aggregate` (what it
//! shows) and `summary::plots` (the montage cap it explains).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::output::contract::{Metric, SETTING_COLUMNS};
use crate::output::summary::aggregate::{SettingSummary, Stats, Summary, gradcheck_groups};
use crate::output::summary::plots::MAX_MONTAGES;
use crate::output::summary::read::GradcheckRow;

const CSS: &str = r#"
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dde5; --stripe: #f5f7fa; --accent: #1f77b4; --warn: #b45309; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg);
       max-width: 1560px; margin: 0 auto; padding: 24px 32px 64px; line-height: 1.45; }
h1 { font-size: 1.9rem; margin: 0 0 4px; }
h2 { font-size: 1.35rem; margin: 40px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.1rem; margin: 28px 0 6px; font-family: ui-monospace, "DejaVu Sans Mono", monospace; word-break: break-all; }
p.lede { color: var(--muted); margin-top: 0; }
.callout { border-left: 4px solid var(--warn); background: #fff7ed; padding: 8px 14px; margin: 16px 0; }
.best { border-left: 4px solid var(--accent); background: #eff6fc; padding: 10px 16px; }
.best code { font-size: 1.05rem; font-weight: 600; }
.best p { margin: 4px 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.86rem; }
th, td { padding: 4px 7px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: #eef1f6; position: sticky; top: 0; }
td.id, th.id { text-align: left; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
tbody tr:nth-child(even) { background: var(--stripe); }
tbody tr.rank1 { background: #e3effa; font-weight: 600; }
td { font-variant-numeric: tabular-nums; }
.table-wrap { overflow-x: auto; }
.note { color: var(--muted); font-size: 0.88rem; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 0.88rem; }
ul.missing { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.88rem; }
a { color: var(--accent); }
"#;

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a relative path for an `src`/`href`, keeping `/` and the characters
/// that ids are made of, so a file name with `=` or `+` still resolves from disk.
fn url_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/._-=~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn pm(st: &Stats, scale: f64, digits: usize) -> String {
    if st.n == 0 {
        "–".into()
    } else if st.std.is_nan() {
        format!("{:.digits$}", st.mean * scale)
    } else {
        format!("{:.digits$} ± {:.digits$}", st.mean * scale, st.std * scale)
    }
}

fn anchor(s: &SettingSummary) -> String {
    format!(
        "setting-{}",
        s.setting_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
    )
}

/// The settings that get a section of their own: the `figures.top` best ranked ones.
fn in_detail(summary: &Summary) -> HashSet<&str> {
    summary
        .settings
        .iter()
        .filter(|s| s.rank.is_some())
        .take(summary.figures.top)
        .map(|s| s.setting_id.as_str())
        .collect()
}

/// A setting's id, linked to its section when it has one.
fn setting_link(s: &SettingSummary, detailed: &HashSet<&str>) -> String {
    if detailed.contains(s.setting_id.as_str()) {
        format!(
            "<a href=\"#{}\"><code>{}</code></a>",
            anchor(s),
            escape(&s.setting_id)
        )
    } else {
        format!("<code>{}</code>", escape(&s.setting_id))
    }
}

/// The settings table shows at most this many rows (or `--top` if larger); the rest are
/// in summary.csv.
const TABLE_ROWS: usize = 20;

/// Parameter columns whose value differs between settings; the others are stated once.
fn varying_params(summary: &Summary) -> Vec<usize> {
    (0..SETTING_COLUMNS.len())
        .filter(|&i| {
            summary
                .settings
                .first()
                .is_some_and(|f| summary.settings.iter().any(|s| s.params[i] != f.params[i]))
        })
        .collect()
}

/// Renders the report page of `summary` (whose `figures` index says which images exist).
pub(crate) fn render(summary: &Summary) -> String {
    let mut h = String::new();
    let name = escape(&summary.name);
    let missing = summary.missing();
    let n_ok: usize = summary.settings.iter().map(|s| s.n()).sum();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Sweep report: {name}</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <h1>Sweep report: {name}</h1>\n"
    );
    let _ = writeln!(
        h,
        "<p class=\"lede\">{} settings, {} planned runs: {} ok, {} diverged, {} failed, {} unfinished. \
         Final metrics are aggregated over seeds.</p>",
        summary.settings.len(),
        summary.n_planned,
        n_ok,
        missing.diverged.len(),
        missing.failed.len(),
        missing.unfinished.len()
    );
    if !missing.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"callout\">Some planned runs are not in the averages; the n column shows how many \
             seeds each mean is over. See <a href=\"#missing\">missing runs</a>.</p>"
        );
    }

    let detailed = in_detail(summary);
    write_best(&mut h, summary, &detailed);
    write_response(&mut h, summary);
    write_settings_table(&mut h, summary, &detailed);
    if let Some(rel) = &summary.figures.overlay {
        let _ = writeln!(
            h,
            "<h2>Validation accuracy of every setting</h2>\n<figure><img src=\"{}\" alt=\"validation accuracy of every setting over epochs\" width=\"1300\" height=\"620\">\
             <figcaption>Mean validation accuracy over seeds, per epoch; the legend is ordered by rank.</figcaption></figure>",
            url_path(rel)
        );
    }
    if let Some(rel) = &summary.figures.halving {
        let stopped: usize = summary
            .settings
            .iter()
            .filter(|s| s.n() == 0 && !s.stopped_run_ids.is_empty())
            .count();
        let _ = writeln!(
            h,
            "<h2>Successive halving</h2>\n<p>{stopped} of {} candidates were stopped before the end \
             (status <code>stopped</code> in results.csv, with <code>stopped_epoch</code>); the table \
             ranks the ones that trained to the end.</p>\n<figure><img src=\"{}\" alt=\"successive halving: every candidate's validation accuracy\" width=\"1300\" height=\"620\">\
             <figcaption>Mean validation accuracy over seeds of every candidate; grey lines stopped where crossed.</figcaption></figure>",
            summary.settings.len(),
            url_path(rel)
        );
    }
    write_batch_norm_pairs(&mut h, summary, &detailed);
    if let Some(rows) = &summary.gradcheck {
        write_gradcheck(&mut h, rows);
    }
    write_details(&mut h, summary, &detailed);
    write_missing(&mut h, summary);
    h.push_str("</body>\n</html>\n");
    h
}

/// Each setting with batch norm beside its twin without: their test accuracies and one
/// figure with both settings' curves on the same axes.
fn write_batch_norm_pairs(h: &mut String, summary: &Summary, detailed: &HashSet<&str>) {
    let pairs = &summary.figures.batch_norm_pairs;
    if pairs.is_empty() {
        return;
    }
    let by_id: HashMap<&str, &SettingSummary> = summary
        .settings
        .iter()
        .map(|s| (s.setting_id.as_str(), s))
        .collect();
    h.push_str("<h2 id=\"batch-norm\">With and without batch normalisation</h2>\n");
    let _ = writeln!(
        h,
        "<p>{} settings trained with batch norm, each beside the same setting without it.</p>",
        pairs.len()
    );
    for p in pairs {
        let (Some(off), Some(on)) = (by_id.get(p.off.as_str()), by_id.get(p.on.as_str())) else {
            continue;
        };
        let link = |s: &SettingSummary| setting_link(s, detailed);
        let _ = writeln!(
            h,
            "<section>\n<h3>{}</h3>\n<p>Test accuracy without batch norm {} % (n = {}), with it {} % (n = {}): {} and {}.</p>\n\
             <figure><img src=\"{}\" alt=\"loss, cost and accuracy of {} without and with batch norm\" width=\"{}\" height=\"{}\" loading=\"lazy\">\
             <figcaption>Per {}: train (light) and validation (dark), without batch norm in blue and with it in orange; \
             line: mean over seeds, band: min..max.</figcaption></figure>\n</section>",
            escape(&off.setting_id),
            pm(off.stat(Metric::TestAccuracy), 100.0, 2),
            off.n(),
            pm(on.stat(Metric::TestAccuracy), 100.0, 2),
            on.n(),
            link(off),
            link(on),
            url_path(&p.rel),
            escape(&off.setting_id),
            p.size.0,
            p.size.1,
            p.x_axis,
        );
    }
}

/// Validation accuracy against each numeric axis that varies, then the heatmaps: how
/// the sweep responds to its settings, whatever their number.
fn write_response(h: &mut String, summary: &Summary) {
    let f = &summary.figures;
    if f.responses.is_empty() && f.heatmaps.is_empty() {
        return;
    }
    h.push_str("<h2 id=\"response\">Response to the settings</h2>\n");
    let coarse = match &f.coarse {
        Some(dir) => format!(
            " Blue: this sweep (fine); orange: the coarse sweep it was refined from, <code>{}</code>.",
            escape(dir)
        ),
        None => String::new(),
    };
    for r in &f.responses {
        let _ = writeln!(
            h,
            "<figure><img src=\"{}\" alt=\"validation accuracy against {}\" width=\"{}\" height=\"{}\">\
             <figcaption>Validation accuracy against <code>{}</code>{}: a dot per setting at its mean over seeds, \
             a bar from its worst to its best seed.{coarse}</figcaption></figure>",
            url_path(&r.rel),
            escape(&r.axis),
            r.size.0,
            r.size.1,
            escape(&r.axis),
            if r.log_x { " (log scale)" } else { "" },
        );
    }
    for m in &f.heatmaps {
        let _ = writeln!(
            h,
            "<figure><img src=\"{}\" alt=\"best mean validation accuracy by {} and {}\" width=\"{}\" height=\"{}\">\
             <figcaption>Each cell: the best mean validation accuracy (over seeds) of the settings whose \
             <code>{}</code> and <code>{}</code> fall in it; blank: no setting there.</figcaption></figure>",
            url_path(&m.rel),
            escape(&m.axes[0]),
            escape(&m.axes[1]),
            m.size.0,
            m.size.1,
            escape(&m.axes[0]),
            escape(&m.axes[1]),
        );
    }
}

fn write_best(h: &mut String, summary: &Summary, detailed: &HashSet<&str>) {
    h.push_str("<h2 id=\"best\">Best setting</h2>\n");
    match summary.best() {
        Some(b) => {
            let _ = writeln!(
                h,
                "<div class=\"best\"><p>{}</p>\
                 <p>Validation accuracy {} %, test accuracy {} %, train accuracy {} % \
                 (mean ± std over {} of {} planned seeds).</p></div>",
                setting_link(b, detailed),
                pm(b.stat(Metric::ValAccuracy), 100.0, 2),
                pm(b.stat(Metric::TestAccuracy), 100.0, 2),
                pm(b.stat(Metric::TrainAccuracy), 100.0, 2),
                b.n(),
                b.n_planned()
            );
        }
        None => h.push_str("<p>No run finished with status ok, so no setting can be ranked.</p>\n"),
    }
}

fn write_settings_table(h: &mut String, summary: &Summary, detailed: &HashSet<&str>) {
    let varying = varying_params(summary);
    h.push_str("<h2>Settings</h2>\n");
    if let Some(first) = summary.settings.first() {
        let fixed: Vec<String> = (0..SETTING_COLUMNS.len())
            .filter(|i| !varying.contains(i))
            .map(|i| format!("{} = {}", SETTING_COLUMNS[i], escape(&first.params[i])))
            .collect();
        if !fixed.is_empty() {
            let _ = writeln!(
                h,
                "<p class=\"note\">Same in every setting: {}.</p>",
                fixed.join(", ")
            );
        }
    }
    h.push_str("<div class=\"table-wrap\"><table id=\"settings\">\n<thead><tr><th>rank</th><th class=\"id\">setting</th>");
    for &i in &varying {
        let _ = write!(h, "<th>{}</th>", SETTING_COLUMNS[i]);
    }
    h.push_str(
        "<th>n / planned</th><th>train acc %</th><th>val acc %</th><th>test acc %</th>\
         <th>train cost</th><th>val cost</th><th>test cost</th></tr></thead>\n<tbody>\n",
    );
    let shown = TABLE_ROWS.max(summary.figures.top);
    for s in summary.settings.iter().take(shown) {
        let class = if s.rank == Some(1) {
            " class=\"rank1\""
        } else {
            ""
        };
        let id = if detailed.contains(s.setting_id.as_str()) {
            format!("<a href=\"#{}\">{}</a>", anchor(s), escape(&s.setting_id))
        } else {
            escape(&s.setting_id)
        };
        let _ = write!(
            h,
            "<tr{class}><td>{}</td><td class=\"id\">{id}</td>",
            s.rank.map(|r| r.to_string()).unwrap_or_else(|| "–".into()),
        );
        for &i in &varying {
            let _ = write!(h, "<td>{}</td>", escape(&s.params[i]));
        }
        let _ = write!(h, "<td>{} / {}</td>", s.n(), s.n_planned());
        for (m, scale, digits) in [
            (Metric::TrainAccuracy, 100.0, 2),
            (Metric::ValAccuracy, 100.0, 2),
            (Metric::TestAccuracy, 100.0, 2),
            (Metric::TrainCost, 1.0, 3),
            (Metric::ValCost, 1.0, 3),
            (Metric::TestCost, 1.0, 3),
        ] {
            let _ = write!(h, "<td>{}</td>", pm(s.stat(m), scale, digits));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
    let more = summary.settings.len().saturating_sub(shown);
    if more > 0 {
        let _ = writeln!(
            h,
            "<p class=\"note\" id=\"more-settings\">The {shown} best settings of {}; {more} more settings are in \
             <a href=\"summary.csv\">summary.csv</a>.</p>",
            summary.settings.len()
        );
    }
    h.push_str(
        "<p class=\"note\">Mean ± sample standard deviation (ddof = 1) over the seeds \
         that finished with status ok; no ± when only one did. Ranked by mean validation accuracy \
         (ties share a rank). Full precision, min and max: <a href=\"summary.csv\">summary.csv</a>.</p>\n",
    );
}

fn write_gradcheck(h: &mut String, rows: &[GradcheckRow]) {
    if rows.iter().any(|r| r.param != "W" && r.param != "b") {
        return write_network_gradcheck(h, rows);
    }
    h.push_str(
        "<h2 id=\"gradcheck\">Gradient check</h2>\n<p class=\"note\">Analytic gradients against numerical \
         ones: norm of the difference and largest relative error, for W and b.</p>\n\
         <div class=\"table-wrap\"><table id=\"gradcheck-table\">\n<thead><tr><th>batch size</th>\
         <th class=\"id\">segment</th><th>λ</th><th class=\"id\">method</th><th>‖ΔW‖</th><th>‖Δb‖</th>\
         <th>max rel. err. W</th><th>max rel. err. b</th></tr></thead>\n<tbody>\n",
    );
    let num = |r: Option<&GradcheckRow>, f: fn(&GradcheckRow) -> f64| {
        r.map(f)
            .filter(|v| !v.is_nan())
            .map(|v| format!("{v:.2e}"))
            .unwrap_or_else(|| "–".into())
    };
    for [w, b] in gradcheck_groups(rows) {
        let Some(any) = w.or(b) else { continue };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"id\">{}</td><td>{}</td><td class=\"id\">{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&any.batch_size),
            escape(&any.segment),
            escape(&any.lambda),
            escape(&any.method),
            num(w, |r| r.norm_diff),
            num(b, |r| r.norm_diff),
            num(w, |r| r.max_rel_err),
            num(b, |r| r.max_rel_err),
        );
    }
    h.push_str("</tbody></table></div>\n");
}

/// A network's check, one row per array (in training order): the worst relative error
/// and difference norm over batch sizes, segments and lambdas, per method. A bias before
/// batch norm, whose gradient is zero by construction, says so with the size of its
/// numerical gradient (rounding noise) instead of a relative error.
fn write_network_gradcheck(h: &mut String, rows: &[GradcheckRow]) {
    let mut methods: Vec<&str> = Vec::new();
    let mut params: Vec<&str> = Vec::new();
    for r in rows {
        if !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
        if !params.contains(&r.param.as_str()) {
            params.push(&r.param);
        }
    }
    h.push_str(
        "<h2 id=\"gradcheck\">Gradient check</h2>\n<p class=\"note\">Analytic gradients against numerical \
         ones for every array, at the full input dimension: the largest relative error and the \
         largest norm of the difference over every batch size, segment and λ checked. Each \
         case is a row of <a href=\"gradcheck.csv\">gradcheck.csv</a>.</p>\n\
         <div class=\"table-wrap\"><table id=\"gradcheck-table\">\n<thead><tr><th class=\"id\">array</th>",
    );
    for m in &methods {
        let _ = write!(
            h,
            "<th>max rel. err. ({})</th><th>max ‖Δ‖ ({})</th>",
            escape(m),
            escape(m)
        );
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    let worst =
        |it: &mut dyn Iterator<Item = f64>| it.filter(|v| !v.is_nan()).fold(f64::NAN, f64::max);
    for p in &params {
        let _ = write!(h, "<tr><td class=\"id\">{}</td>", escape(p));
        for m in &methods {
            let of: Vec<&GradcheckRow> = rows
                .iter()
                .filter(|r| r.param == *p && r.method == *m)
                .collect();
            let norm = worst(&mut of.iter().map(|r| r.norm_diff));
            if of.iter().any(|r| r.zero_by_construction) {
                let noise = worst(&mut of.iter().map(|r| r.max_abs_diff));
                let _ = write!(
                    h,
                    "<td class=\"note\">0 by construction (batch norm follows; numerical |g| ≤ {noise:.1e})</td><td>{norm:.2e}</td>"
                );
            } else {
                let rel = worst(&mut of.iter().map(|r| r.max_rel_err));
                let _ = write!(h, "<td>{rel:.2e}</td><td>{norm:.2e}</td>");
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
}

fn write_details(h: &mut String, summary: &Summary, detailed: &HashSet<&str>) {
    h.push_str("<h2>Settings in detail</h2>\n");
    let rest = summary.settings.len() - detailed.len();
    if rest > 0 {
        let _ = writeln!(
            h,
            "<p class=\"note\">The {} best settings by mean validation accuracy (<code>--top {}</code>); \
             the other {rest} are in the settings table, <a href=\"summary.csv\">summary.csv</a> and the \
             response figures.</p>",
            detailed.len(),
            summary.figures.top
        );
    }
    for s in summary
        .settings
        .iter()
        .filter(|s| detailed.contains(s.setting_id.as_str()))
    {
        let rank = s.rank.map(|r| format!("#{r} ")).unwrap_or_default();
        let _ = writeln!(
            h,
            "<section id=\"{}\">\n<h3>{rank}{}</h3>\n<p>{}; n = {} of {} planned; val acc {} %, test acc {} %.</p>",
            anchor(s),
            escape(&s.setting_id),
            SETTING_COLUMNS
                .iter()
                .zip(&s.params)
                .map(|(c, v)| format!("{c} = {}", escape(v)))
                .collect::<Vec<_>>()
                .join(", "),
            s.n(),
            s.n_planned(),
            pm(s.stat(Metric::ValAccuracy), 100.0, 2),
            pm(s.stat(Metric::TestAccuracy), 100.0, 2),
        );
        match summary.figures.curves.get(&s.setting_id) {
            Some(fig) => {
                let _ = writeln!(
                    h,
                    "<figure><img src=\"{}\" alt=\"loss, cost and accuracy curves of {}\" width=\"{}\" height=\"{}\" loading=\"lazy\">\
                     <figcaption>Train (blue) and validation (orange) per {}; line: mean over seeds, band: min..max.</figcaption></figure>",
                    url_path(&fig.rel),
                    escape(&s.setting_id),
                    fig.size.0,
                    fig.size.1,
                    fig.x_axis
                );
            }
            None => h.push_str("<p class=\"note\">No curves: no run of this setting finished ok with per-epoch metrics.</p>\n"),
        }
        let first = s.ok_run_ids.first();
        match first.and_then(|id| summary.figures.montages.get(id).map(|rel| (id, rel))) {
            Some((id, rel)) => {
                let _ = writeln!(
                    h,
                    "<figure><img src=\"{}\" alt=\"first-layer weights as images for run {}\" loading=\"lazy\">\
                     <figcaption>First-layer weights of run <code>{}</code>: each row (a class of W, or a hidden unit of W1) \
                     as a 32×32 RGB image, scaled to [0, 1] per row.</figcaption></figure>",
                    url_path(rel),
                    escape(id),
                    escape(id)
                );
            }
            None => match first.and_then(|id| summary.figures.no_montage.get(id).map(|why| (id, why))) {
                Some((id, why)) => {
                    let _ = writeln!(
                        h,
                        "<p class=\"note\" id=\"no-montage-{}\">No weight montage: run <code>{}</code> {}.</p>",
                        anchor(s),
                        escape(id),
                        escape(why)
                    );
                }
                None => h.push_str("<p class=\"note\">No weight montage: no run of this setting finished ok with a W.npy or W1.npy.</p>\n"),
            },
        }
        let others: Vec<String> = s
            .ok_run_ids
            .iter()
            .skip(1)
            .filter_map(|id| {
                summary.figures.montages.get(id).map(|rel| {
                    format!(
                        "<a href=\"{}\"><code>{}</code></a>",
                        url_path(rel),
                        escape(id)
                    )
                })
            })
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                h,
                "<p class=\"note\">Weights of the other seeds: {}.</p>",
                others.join(", ")
            );
        }
        h.push_str("</section>\n");
    }
    if summary.figures.montages_skipped > 0 {
        let _ = writeln!(
            h,
            "<p class=\"note\">{} further runs have no weight montage: at most {} are drawn per sweep.</p>",
            summary.figures.montages_skipped, MAX_MONTAGES
        );
    }
}

fn write_missing(h: &mut String, summary: &Summary) {
    let missing = summary.missing();
    h.push_str("<h2 id=\"missing\">Missing, diverged and failed runs</h2>\n");
    if missing.is_empty() {
        h.push_str("<p>None: every planned run finished with status ok.</p>\n");
        return;
    }
    let _ = writeln!(
        h,
        "<p>{} unfinished (planned, no result yet), {} diverged, {} failed. These runs are not in the means.</p>\n<ul class=\"missing\">",
        missing.unfinished.len(),
        missing.diverged.len(),
        missing.failed.len()
    );
    for line in missing.lines() {
        let _ = writeln!(h, "<li>{}</li>", escape(&line));
    }
    h.push_str("</ul>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_the_best_20_and_only_the_top_settings_get_sections() {
        use crate::output::contract::RunStatus;
        use crate::output::summary::aggregate::tests::{planned, result};
        let ids: Vec<String> = (0..25).map(|i| format!("s{i:02}_seed=1")).collect();
        let plan: Vec<_> = ids.iter().map(|id| planned(id, id)).collect();
        let results: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| result(id, RunStatus::Ok, 0.1 + 0.01 * i as f64))
            .collect();
        let mut summary = Summary::from_runs("t", &plan, &results).unwrap();
        summary.figures.top = 3;
        let html = render(&summary);
        let table = &html[html.find("<table id=\"settings\">").unwrap()..];
        let tbody = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
        assert_eq!(tbody.matches("<tr").count(), 20);
        assert!(
            tbody.contains("s24") && !tbody.contains(">s04<"),
            "best first"
        );
        assert!(html.contains("5 more settings are in <a href=\"summary.csv\">"));
        assert_eq!(html.matches("<section id=\"setting-").count(), 3);
        assert_eq!(
            tbody.matches("<a href=\"#setting-").count(),
            3,
            "links only to sections"
        );

        summary.figures.top = 30;
        let html = render(&summary);
        assert!(!html.contains("more settings are in"), "all 25 rows shown");
        assert_eq!(html.matches("<section id=\"setting-").count(), 25);
    }

    #[test]
    fn escape_covers_markup_characters() {
        assert_eq!(
            escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn url_path_keeps_id_characters_and_encodes_the_rest() {
        assert_eq!(
            url_path("figures/curves_lambda=0.1_eta=1e-3.png"),
            "figures/curves_lambda=0.1_eta=1e-3.png"
        );
        assert_eq!(url_path("figures/a b+c.png"), "figures/a%20b%2Bc.png");
    }
}
