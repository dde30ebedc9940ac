//! Rendering: a [`Summary`] as its settings table, in `summary.csv` (the contract's
//! columns), as aligned text for a terminal, or as Markdown.
//!
//! May import `output::contract` and `summary::aggregate`.

use std::fmt::Write as _;

use crate::output::contract::{Metric, summary_header};
use crate::output::summary::aggregate::{Stats, Summary};

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

impl Summary {
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
        w.write_record(summary_header())
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
        if !self.missing().is_empty() {
            out.push('\n');
            let _ = writeln!(out, "{}", self.missing().headline(self.n_planned));
            for l in self.missing().lines() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::summary::aggregate::tests::two_settings;

    #[test]
    fn csv_rendering_has_contract_columns_and_empty_nan_cells() {
        let csv = two_settings().render(TableFormat::Csv);
        let mut lines = csv.lines();
        let header = lines.next().unwrap();
        let settings = crate::output::contract::SETTING_COLUMNS.join(",");
        assert!(header.starts_with(&format!(
            "setting_id,{settings},n,n_planned,n_diverged,n_failed,train_accuracy_mean,train_accuracy_std,"
        )));
        assert!(
            header
                .starts_with("setting_id,lambda,eta,batch_size,epochs,shuffle,precision,init_std,")
        );
        assert!(header.ends_with("test_cost_min,test_cost_max,train_loss_mean,train_loss_std,train_loss_min,train_loss_max,val_loss_mean,val_loss_std,val_loss_min,val_loss_max,test_loss_mean,test_loss_std,test_loss_min,test_loss_max,rank"));
        let s = 1 + crate::output::contract::SETTING_COLUMNS.len();
        assert_eq!(header.split(',').count(), s + 4 + 9 * 4 + 1);
        let best: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(best[0], "lambda=1");
        assert_eq!(&best[s..s + 4], ["1", "3", "0", "1"]);
        assert_eq!(best[s + 5], "", "std of a single seed is empty, not 0");
        assert_eq!(best[s + 8], "0.4", "val_accuracy_mean");
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
}
