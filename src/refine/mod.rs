//! `sweep refine`, the second half of a coarse-to-fine search: from a finished sweep's
//! folder (the copy of its sweep file, `origin.json` and its results), a new sweep file
//! in which every distribution axis is narrowed to the span of the best settings.
//!
//! The narrowing, per distribution (a `[train]` key, or a key of one `[[grid]]`):
//! take the top K settings drawn from it (by the mean over seeds of `--metric`, ties
//! broken by setting id), and the span from their smallest to their largest value of
//! the axis, in log10 space for `log_uniform`. Widen it on each side by a quarter of
//! that span, and by at least a twentieth of the old range (so that K settings with one
//! value still leave a range to draw from); clip to the old bounds. Bounds are rounded
//! outward to three significant digits (ints: floor and ceiling) so the file reads well.
//!
//! Everything else of the file is kept as written, comments included (toml_edit): the
//! data, the fixed settings, the seeds and `[search] seed`. The new file is named
//! `<name>-fine`, records `[search] refined_from` (the coarse folder, which the fine
//! sweep's report draws next to its own), and drops `[gradcheck]`, which the coarse
//! sweep already ran.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Value};

use crate::output::atomic::{absolute, write_atomic};
use crate::output::contract::{
    self, Metric, ORIGIN_JSON, Origin, SETTING_COLUMNS, SWEEP_TOML, setting_id_of,
};
use crate::output::summary::{self, SettingSummary, SummaryError};
use crate::plan::{self, PlanError};
use crate::spec::{self, Objective, SpecError, ValidSpec};

/// What `sweep refine` is asked for.
#[derive(Debug, Clone)]
pub struct RefineOptions {
    /// How many of the best settings span the new ranges.
    pub top: usize,
    pub metric: Objective,
    /// A new `[search] samples`; the coarse sweep's when None.
    pub samples: Option<u32>,
    /// Where to write the new sweep file; `<name>-fine.toml` next to the coarse sweep
    /// file when None.
    pub out: Option<PathBuf>,
}

/// One distribution narrowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Narrowed {
    /// Where it is in the file: `train.lambda` or `grid[1].eta`.
    pub key: String,
    /// `log_uniform`, `uniform` or `int_uniform`.
    pub dist: &'static str,
    pub old: [f64; 2],
    pub new: [f64; 2],
}

impl Narrowed {
    /// `grid[0].lambda: log_uniform [1e-5, 0.1] -> [2.18e-5, 1.78e-4]`.
    pub fn describe(&self) -> String {
        let text = |x: f64| {
            if self.dist == "int_uniform" {
                format!("{x}")
            } else {
                float_text(x)
            }
        };
        format!(
            "{}: {} [{}, {}] -> [{}, {}]",
            self.key,
            self.dist,
            text(self.old[0]),
            text(self.old[1]),
            text(self.new[0]),
            text(self.new[1])
        )
    }
}

/// The sweep file `sweep refine` wrote.
#[derive(Debug, Clone)]
pub struct Refined {
    pub path: PathBuf,
    pub name: String,
    pub narrowed: Vec<Narrowed>,
    /// Settings with at least one finished run, of those the distributions drew.
    pub ranked: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RefineError {
    #[error(
        "{dir} is not a sweep output folder (no {file} in it); pass out/<name> of a sweep that ran"
    )]
    NotASweep { dir: PathBuf, file: &'static str },
    #[error(
        "{dir} has no {ORIGIN_JSON} (sweeps run before `sweep refine` existed lack it); run the same \
         `sweep run` again to record it (finished runs are skipped), then refine"
    )]
    NoOrigin { dir: PathBuf },
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error(
        "the sweep file of {dir} draws no axis from a distribution, so there is nothing to narrow; \
         write e.g. lambda = {{ log_uniform = [1e-5, 1e-1] }} and [search] samples = N"
    )]
    NoDistribution { dir: PathBuf },
    #[error("{dir} has no finished run of {key} yet; run the sweep (`sweep run`) first")]
    NoFinished { dir: PathBuf, key: String },
    #[error(
        "--top {top} asks for more settings than {dir} has finished for {key} ({have}); \
         pass --top {have} or less"
    )]
    TooFew {
        dir: PathBuf,
        key: String,
        have: usize,
        top: usize,
    },
    #[error("--top must be at least 1")]
    ZeroTop,
    #[error("{0} exists; refine will not overwrite it: pass another --out or remove it")]
    Exists(PathBuf),
    #[error(transparent)]
    Summary(#[from] SummaryError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
}

/// Where a distribution is written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Train,
    Grid(usize),
}

/// Writes the refined sweep file of the sweep folder `dir` (whose tables are up to date)
/// and returns what it did. Nothing is written when anything is refused.
pub fn refine(dir: &Path, opts: &RefineOptions) -> Result<Refined, RefineError> {
    if opts.top == 0 {
        return Err(RefineError::ZeroTop);
    }
    for file in [SWEEP_TOML, contract::PLAN_CSV] {
        if !dir.join(file).is_file() {
            return Err(RefineError::NotASweep {
                dir: dir.to_path_buf(),
                file,
            });
        }
    }
    let origin = read_origin(dir)?;
    let text = read(&dir.join(SWEEP_TOML))?;
    let coarse = spec::parse(&origin.spec, &text, Some(&origin.data_dir))?;
    let mut doc: DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| RefineError::Read {
                path: dir.join(SWEEP_TOML),
                message: e.to_string(),
            })?;
    let dists = distributions(&doc);
    if dists.is_empty() {
        return Err(RefineError::NoDistribution {
            dir: dir.to_path_buf(),
        });
    }

    let summary = summary::read_summary(dir)?;
    let metric = Metric::of(opts.metric);
    let origins = setting_origins(&coarse)?;
    let mut narrowed = Vec::new();
    let mut ranked_ids = HashSet::new();
    for (section, key, dist) in &dists {
        let label = match section {
            Section::Train => format!("train.{key}"),
            Section::Grid(i) => format!("grid[{i}].{key}"),
        };
        let drew = drawing_grids(&coarse, *section, key);
        let mut settings: Vec<&SettingSummary> = summary
            .settings
            .iter()
            .filter(|s| {
                s.stat(metric).n > 0
                    && origins
                        .get(s.setting_id.as_str())
                        .is_some_and(|o| drew.contains(o))
            })
            .collect();
        if settings.is_empty() {
            return Err(RefineError::NoFinished {
                dir: dir.to_path_buf(),
                key: label,
            });
        }
        if settings.len() < opts.top {
            return Err(RefineError::TooFew {
                dir: dir.to_path_buf(),
                key: label,
                have: settings.len(),
                top: opts.top,
            });
        }
        settings.sort_by(|a, b| {
            let (x, y) = (a.stat(metric).mean, b.stat(metric).mean);
            if opts.metric.better(x, y) {
                std::cmp::Ordering::Less
            } else if opts.metric.better(y, x) {
                std::cmp::Ordering::Greater
            } else {
                a.setting_id.cmp(&b.setting_id)
            }
        });
        ranked_ids.extend(settings.iter().map(|s| s.setting_id.clone()));
        let col = SETTING_COLUMNS
            .iter()
            .position(|c| c == key)
            .expect("invariant broken: a drawn axis is a setting column");
        let values: Vec<f64> = settings[..opts.top]
            .iter()
            .map(|s| s.params[col].parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|e| RefineError::Read {
                path: dir.join(contract::PLAN_CSV),
                message: format!("{key} is not a number: {e}"),
            })?;
        let new = narrow(*dist, &values);
        set_bounds(&mut doc, *section, key, dist.key(), new);
        narrowed.push(Narrowed {
            key: label,
            dist: dist.key(),
            old: dist.bounds_f64(),
            new: new.bounds_f64(),
        });
    }

    let name = format!("{}-fine", coarse.name);
    let path = match &opts.out {
        Some(p) => p.clone(),
        None => origin
            .spec
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("{name}.toml")),
    };
    if path.exists() {
        return Err(RefineError::Exists(path));
    }
    doc["name"] = toml_edit::value(name.as_str());
    let search = doc["search"]
        .or_insert(toml_edit::table())
        .as_table_like_mut()
        .expect("invariant broken: [search] parsed as a table");
    search.insert(
        "refined_from",
        toml_edit::value(absolute(dir).display().to_string()),
    );
    if let Some(n) = opts.samples {
        search.insert("samples", toml_edit::value(i64::from(n)));
    }
    let had_check = doc.remove("gradcheck").is_some();
    keep_data_dir(&mut doc, &path, &origin);

    let mut header = format!(
        "# Refined by `sweep refine` from {} (the top {} of {} settings by {}):\n",
        absolute(dir).display(),
        opts.top,
        ranked_ids.len(),
        opts.metric.key()
    );
    for n in &narrowed {
        header.push_str(&format!("#   {}\n", n.describe()));
    }
    if had_check {
        header.push_str("# The coarse sweep's [gradcheck] is not repeated.\n");
    }
    header.push('\n');
    let fine = header + &doc.to_string();

    // The new file must be a sweep `sweep run` accepts; a refusal here is a bug of
    // refine's, reported before anything is written.
    let spec = spec::parse(&path, &fine, None)?;
    plan::expand(&spec)?;
    write_atomic(&path, fine.as_bytes()).map_err(|e| RefineError::Write {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(Refined {
        path,
        name,
        narrowed,
        ranked: ranked_ids.len(),
    })
}

fn read(path: &Path) -> Result<String, RefineError> {
    std::fs::read_to_string(path).map_err(|e| RefineError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn read_origin(dir: &Path) -> Result<Origin, RefineError> {
    let path = dir.join(ORIGIN_JSON);
    if !path.is_file() {
        return Err(RefineError::NoOrigin {
            dir: dir.to_path_buf(),
        });
    }
    serde_json::from_str(&read(&path)?).map_err(|e| RefineError::Read {
        path,
        message: e.to_string(),
    })
}

/// Every distribution the file draws from, in file order: `[train]`'s, then each
/// `[[grid]]`'s.
fn distributions(doc: &DocumentMut) -> Vec<(Section, String, spec::Dist)> {
    let mut out = Vec::new();
    let mut scan = |section: Section, table: &dyn toml_edit::TableLike| {
        for (key, item) in table.iter() {
            if let Some(dist) = item.as_value().and_then(dist_of) {
                out.push((section, key.to_string(), dist));
            }
        }
    };
    if let Some(t) = doc.get("train").and_then(Item::as_table_like) {
        scan(Section::Train, t);
    }
    if let Some(grids) = doc.get("grid").and_then(Item::as_array_of_tables) {
        for (i, t) in grids.iter().enumerate() {
            scan(Section::Grid(i), t);
        }
    }
    out
}

/// The distribution an inline table such as `{ log_uniform = [1e-5, 1e-1] }` names
/// (the spec stage has checked it).
fn dist_of(v: &Value) -> Option<spec::Dist> {
    let t = v.as_inline_table()?;
    let (key, bounds) = t.iter().next()?;
    let b = bounds.as_array()?;
    let f = |i: usize| {
        let v = b.get(i)?;
        v.as_float().or_else(|| v.as_integer().map(|x| x as f64))
    };
    let i = |i: usize| b.get(i)?.as_integer();
    match key {
        "uniform" => Some(spec::Dist::Uniform {
            low: f(0)?,
            high: f(1)?,
        }),
        "log_uniform" => Some(spec::Dist::LogUniform {
            low: f(0)?,
            high: f(1)?,
        }),
        "int_uniform" => Some(spec::Dist::IntUniform {
            low: i(0)?,
            high: i(1)?,
        }),
        _ => None,
    }
}

/// The `[[grid]]` indices whose draws come from the distribution at `section`.`key`:
/// that grid, or for `[train]`, every grid that does not set the key itself.
fn drawing_grids(spec: &ValidSpec, section: Section, key: &str) -> HashSet<usize> {
    match section {
        Section::Grid(i) => HashSet::from([i]),
        Section::Train => spec
            .grids
            .iter()
            .filter(|g| g.given.iter().any(|(_, _, k)| *k == format!("train.{key}")))
            .map(|g| g.origin)
            .collect(),
    }
}

/// Each setting id of the sweep's plan, with the `[[grid]]` it came from.
fn setting_origins(spec: &ValidSpec) -> Result<HashMap<String, usize>, PlanError> {
    let mut by_origin: Vec<(usize, Vec<crate::spec::Grid>)> = Vec::new();
    for g in &spec.grids {
        match by_origin.last_mut() {
            Some((o, grids)) if *o == g.origin => grids.push(g.clone()),
            _ => by_origin.push((g.origin, vec![g.clone()])),
        }
    }
    let mut out = HashMap::new();
    for (origin, grids) in by_origin {
        let one = ValidSpec {
            grids,
            ..spec.clone()
        };
        for run in plan::expand(&one)?.runs {
            out.entry(setting_id_of(run.id.as_str())).or_insert(origin);
        }
    }
    Ok(out)
}

/// The distribution narrowed to the top settings' `values` (see the module docs).
fn narrow(dist: spec::Dist, values: &[f64]) -> spec::Dist {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let widen = |lo: f64, hi: f64, old_lo: f64, old_hi: f64| {
        let pad = ((hi - lo) / 4.0).max((old_hi - old_lo) / 20.0);
        ((lo - pad).max(old_lo), (hi + pad).min(old_hi))
    };
    match dist {
        spec::Dist::Uniform { low, high } => {
            let (a, b) = widen(lo, hi, low, high);
            spec::Dist::Uniform {
                low: round_sig(a, false).max(low),
                high: round_sig(b, true).min(high),
            }
        }
        spec::Dist::LogUniform { low, high } => {
            let (a, b) = widen(lo.log10(), hi.log10(), low.log10(), high.log10());
            spec::Dist::LogUniform {
                low: round_sig(10f64.powf(a), false).max(low),
                high: round_sig(10f64.powf(b), true).min(high),
            }
        }
        spec::Dist::IntUniform { low, high } => {
            let (a, b) = widen(lo, hi, low as f64, high as f64);
            let (a, b) = ((a.floor() as i64).max(low), (b.ceil() as i64).min(high));
            // Keep a range of at least two values where the old one allows.
            let (a, b) = if a < b {
                (a, b)
            } else if b < high {
                (a, b + 1)
            } else {
                (a - 1, b)
            };
            spec::Dist::IntUniform { low: a, high: b }
        }
    }
}

/// `x` as a sweep file would write it: `2.18e-5` rather than `0.0000218`.
pub fn float_text(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e6) {
        format!("{x:e}")
    } else if x.fract() == 0.0 {
        format!("{x:.1}")
    } else {
        x.to_string()
    }
}

/// `x` rounded to three significant digits, up or down.
fn round_sig(x: f64, up: bool) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let e = x.abs().log10().floor() as i32 - 2;
    let m = x / 10f64.powi(e);
    let m = if up { m.ceil() } else { m.floor() };
    format!("{m}e{e}")
        .parse()
        .expect("a float's text reads back")
}

/// Replaces the bounds of the distribution at `section`.`key`.
fn set_bounds(doc: &mut DocumentMut, section: Section, key: &str, dist: &str, new: spec::Dist) {
    let table: &mut dyn toml_edit::TableLike = match section {
        Section::Train => doc["train"]
            .as_table_like_mut()
            .expect("invariant broken: [train] was scanned"),
        Section::Grid(i) => doc["grid"]
            .as_array_of_tables_mut()
            .and_then(|a| a.get_mut(i))
            .expect("invariant broken: [[grid]] was scanned"),
    };
    let bounds: toml_edit::Array = match new {
        spec::Dist::IntUniform { low, high } => [low, high].into_iter().collect(),
        other => other
            .bounds_f64()
            .into_iter()
            .map(|x| {
                float_text(x)
                    .parse::<Value>()
                    .expect("a float's text is a TOML float")
            })
            .collect(),
    };
    let inline = table
        .get_mut(key)
        .and_then(Item::as_value_mut)
        .and_then(Value::as_inline_table_mut)
        .expect("invariant broken: a distribution is an inline table");
    inline.insert(dist, Value::Array(bounds));
}

/// Makes `[data].dir` find the coarse sweep's data from the new file's folder: kept as
/// written when it already does, else replaced by the data folder's absolute path.
fn keep_data_dir(doc: &mut DocumentMut, path: &Path, origin: &Origin) {
    let written = doc
        .get("data")
        .and_then(|d| d.get("dir"))
        .and_then(Item::as_str)
        .unwrap_or("");
    let base = path.parent().unwrap_or(Path::new("."));
    let resolved = if written.is_empty() {
        base.to_path_buf()
    } else {
        base.join(written)
    };
    if absolute(&resolved) != origin.data_dir {
        doc["data"]["dir"] = toml_edit::value(origin.data_dir.display().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Dist;

    #[test]
    fn log_uniform_narrows_in_log_space_with_a_quarter_span_margin() {
        // Top values 1e-4 and 1e-2: two decades, widened half a decade each side.
        let d = narrow(
            Dist::LogUniform {
                low: 1e-6,
                high: 1.0,
            },
            &[1e-4, 1e-3, 1e-2],
        );
        let Dist::LogUniform { low, high } = d else {
            panic!("{d:?}")
        };
        assert!((low.log10() - -4.5).abs() < 0.01, "{low}");
        assert!((high.log10() - -1.5).abs() < 0.01, "{high}");
        assert!(
            low <= 10f64.powf(-4.5) && high >= 10f64.powf(-1.5),
            "rounded outward"
        );
    }

    #[test]
    fn one_value_keeps_a_twentieth_of_the_old_range_and_bounds_clip() {
        let Dist::Uniform { low, high } = narrow(
            Dist::Uniform {
                low: 0.0,
                high: 1.0,
            },
            &[0.01],
        ) else {
            panic!()
        };
        assert_eq!((low, high), (0.0, 0.06));
        let Dist::IntUniform { low, high } =
            narrow(Dist::IntUniform { low: 50, high: 200 }, &[200.0, 190.0])
        else {
            panic!()
        };
        assert_eq!((low, high), (182, 200));
        let Dist::IntUniform { low, high } = narrow(Dist::IntUniform { low: 1, high: 3 }, &[3.0])
        else {
            panic!()
        };
        assert!(low < high && high == 3, "{low}..{high}");
    }

    #[test]
    fn rounding_is_outward_at_three_digits() {
        assert_eq!(round_sig(0.000123456, false), 0.000123);
        assert_eq!(round_sig(0.000123456, true), 0.000124);
        assert_eq!(round_sig(31622.7, true), 31700.0);
        assert_eq!(round_sig(0.0, true), 0.0);
    }
}
