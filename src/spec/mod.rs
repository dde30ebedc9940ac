//! The sweep file: raw TOML structures (with source spans) and their validation into a
//! [`ValidSpec`].
//!
//! Two layers, as in ripgrep's low/high-level arguments: serde reads the file into `Raw*`
//! structs that only know TOML types and where each value sits in the file; [`load`] then
//! checks every value once and reports the first problem as `file:line:column: key ...`
//! with what is allowed. Nothing downstream re-validates.
//!
//! The first stage: imports no other module of the crate but the leaf `rng` (the draws of
//! distribution axes). `values` (errors and value checks) is the leaf that `axes` (the
//! axis table), `data` (the `[data]` section) and `search` (drawn axes) use.

mod axes;
mod data;
mod search;
mod values;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::Value;

use axes::RawAxes;
pub(crate) use axes::{AXES, AXIS_COUNT, AXIS_KEYS, IdPart};
pub use axes::{
    Augment, AxisName, AxisValue, Init, LossName, MAX_HIDDEN, Precision, ScheduleName, Widths,
};
pub(crate) use data::MAX_CLASSES;
pub use data::{DataFormat, DataSpec, Source, ValSource, is_python_dir};
use data::{RawData, data_section};
pub use search::Halving;
use search::{AxisTable, MAX_SAMPLES, axis_table};
pub use search::{Dist, Objective, SearchSpec};
pub use values::SpecError;
use values::{Ctx, describe, float_in, int_in, string};

/// An axis: a key and the values it takes, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub name: AxisName,
    pub values: Vec<AxisValue>,
}

/// One `[[grid]]` merged over `[train]`: every axis, in expansion order.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub axes: Vec<Axis>,
    /// Where each axis the file gives is written: its byte span and key (`grid.eta`).
    pub given: Vec<(AxisName, std::ops::Range<usize>, String)>,
    /// The axes drawn from a distribution. After [`parse`], such a grid is one draw: each
    /// drawn axis holds the single value drawn.
    pub drawn: Vec<(AxisName, Dist)>,
    /// Which `[[grid]]` of the file this is (0 when the file has none): the draws of
    /// one grid share it.
    pub origin: usize,
}

/// A checked sweep file.
#[derive(Debug, Clone)]
pub struct ValidSpec {
    pub name: String,
    /// The file it came from and its text (copied into the output folder as run).
    pub path: PathBuf,
    pub text: String,
    pub format: DataFormat,
    /// The data folder (after `--data` and relative-path resolution).
    pub data_dir: PathBuf,
    pub data: DataSpec,
    pub grids: Vec<Grid>,
    pub gradcheck: Option<CheckSpec>,
    pub search: Option<SearchSpec>,
}

impl ValidSpec {
    /// An error at the first place the file gives axis `name` a value for which `bad`
    /// holds (`None` if it gives none), with `message` saying what to write instead.
    pub fn refuse(
        &self,
        name: AxisName,
        bad: impl Fn(&AxisValue) -> bool,
        message: &str,
    ) -> Option<SpecError> {
        let cx = Ctx {
            path: &self.path,
            text: &self.text,
        };
        self.grids.iter().find_map(|g| {
            let axis = g.axes.iter().find(|a| a.name == name)?;
            let (_, span, key) = g.given.iter().find(|(n, ..)| *n == name)?;
            axis.values
                .iter()
                .any(&bad)
                .then(|| cx.err(span.clone(), key, message))
        })
    }
}

/// Finite-difference scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// `(J(theta + h) - J(theta)) / h`: the lab's method.
    Forward,
    /// `(J(theta + h) - J(theta - h)) / 2h`.
    Centred,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Forward => "forward",
            Method::Centred => "centred",
        }
    }
}

/// What to check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    pub batch_sizes: Vec<usize>,
    /// Random segments per batch size, besides the first-n one.
    pub segments: u32,
    pub lambdas: Vec<f64>,
    pub methods: Vec<Method>,
    /// Finite-difference step h.
    pub step: f64,
    /// Seeds W, b and the random segments.
    pub seed: u64,
    /// Floor of the relative error's denominator.
    pub eps: f64,
    /// Check only the first `dims` input dimensions (the model is cut to K x dims).
    pub dims: Option<usize>,
    pub init_std: f64,
    /// The model checked: the hidden widths (`[]`, the default, is the one-layer
    /// classifier), its initialisation and its loss.
    pub hidden: Vec<usize>,
    pub init: Init,
    pub loss: LossName,
    /// Batch normalisation of the hidden layers, with its eps, if the model has it.
    pub bn_eps: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Option<Spanned<Value>>,
    data: Spanned<RawData>,
    train: Option<RawAxes>,
    grid: Option<Vec<Spanned<RawAxes>>>,
    gradcheck: Option<Spanned<RawCheck>>,
    search: Option<Spanned<RawSearch>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSearch {
    samples: Option<Spanned<Value>>,
    seed: Option<Spanned<Value>>,
    refined_from: Option<Spanned<Value>>,
    method: Option<Spanned<Value>>,
    metric: Option<Spanned<Value>>,
    min_epochs: Option<Spanned<Value>>,
    factor: Option<Spanned<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    batch_sizes: Option<Spanned<Value>>,
    segments: Option<Spanned<Value>>,
    lambda: Option<Spanned<Value>>,
    methods: Option<Spanned<Value>>,
    step: Option<Spanned<Value>>,
    seed: Option<Spanned<Value>>,
    eps: Option<Spanned<Value>>,
    dims: Option<Spanned<Value>>,
    init_std: Option<Spanned<Value>>,
    hidden: Option<Spanned<Value>>,
    init: Option<Spanned<Value>>,
    loss: Option<Spanned<Value>>,
    batch_norm: Option<Spanned<Value>>,
    bn_eps: Option<Spanned<Value>>,
}

/// Reads and validates the sweep file at `path`. `data_dir` (the `--data` flag) replaces
/// `[data].dir`.
pub(crate) fn load(path: &Path, data_dir: Option<&Path>) -> Result<ValidSpec, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text, data_dir)
}

/// Validates sweep-file `text` (`path` names it in errors and anchors relative paths).
pub fn parse(path: &Path, text: &str, data_dir: Option<&Path>) -> Result<ValidSpec, SpecError> {
    let raw: RawSpec = toml::from_str(text).map_err(|e| SpecError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let cx = Ctx { path, text };

    let name = match &raw.name {
        Some(v) => cx.single(v, "name", |v| {
            let s = string(v)?;
            if s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) && !s.starts_with('.') {
                Ok(s)
            } else {
                Err(format!("{s:?} must use only letters, digits, '.', '_' and '-' (it names the output folder)"))
            }
        })?,
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sweep".into()),
    };

    let (format, data_dir, data) = data_section(&cx, &raw.data, data_dir)?;

    let train = raw.train.unwrap_or_default();
    let grids = match &raw.grid {
        None => vec![grid(&cx, &train, None)?],
        Some(list) if list.is_empty() => {
            return Err(cx.err(0..0, "grid", "is empty; remove it or add a [[grid]] table"));
        }
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, g)| grid(&cx, &train, Some(g)).map(|grid| Grid { origin: i, ..grid }))
            .collect::<Result<_, _>>()?,
    };
    let search = raw
        .search
        .as_ref()
        .map(|s| search_section(&cx, s))
        .transpose()?;
    let grids = draw(&cx, grids, search.as_ref(), raw.search.as_ref())?;
    if let (Some(h), Some(raw_search)) = (search.as_ref().and_then(|s| s.halving), &raw.search) {
        check_halving(&cx, &grids, &h, raw_search)?;
    }
    let gradcheck = raw
        .gradcheck
        .as_ref()
        .map(|c| check_section(&cx, c))
        .transpose()?;

    Ok(ValidSpec {
        name,
        path: path.to_path_buf(),
        text: text.to_string(),
        format,
        data_dir,
        data,
        grids,
        gradcheck,
        search,
    })
}

fn search_section(cx: &Ctx, s: &Spanned<RawSearch>) -> Result<SearchSpec, SpecError> {
    let raw = s.get_ref();
    let halving = match &raw.method {
        None => None,
        Some(v) => {
            cx.single(v, "search.method", |v| match v {
                Value::String(m) if m == "halving" => Ok(()),
                other => Err(format!(
                    "must be \"halving\" (successive halving; random search needs no method, \
                     only samples), found {}",
                    describe(other)
                )),
            })?;
            Some(Halving {
                metric: raw.metric.as_ref().map_or(Ok(Objective::default()), |v| {
                    cx.single(v, "search.metric", |v| string(v)?.parse())
                })?,
                min_epochs: match &raw.min_epochs {
                    Some(v) => cx.single(v, "search.min_epochs", |v| {
                        int_in(v, "a whole number from 1 to 100000", 1, 100_000)
                    })? as usize,
                    None => {
                        return Err(cx.err(
                            v.span(),
                            "search.method",
                            "\"halving\" needs min_epochs = N, what every candidate trains \
                             before the first cut (cycles, for cyclic schedules)",
                        ));
                    }
                },
                factor: raw.factor.as_ref().map_or(Ok(3), |v| {
                    cx.single(v, "search.factor", |v| {
                        int_in(
                            v,
                            "a whole number from 2 to 1000 (each rung keeps 1/factor)",
                            2,
                            1000,
                        )
                    })
                })? as usize,
            })
        }
    };
    if halving.is_none() {
        for (key, v) in [
            ("metric", &raw.metric),
            ("min_epochs", &raw.min_epochs),
            ("factor", &raw.factor),
        ] {
            if let Some(v) = v {
                return Err(cx.err(
                    v.span(),
                    &format!("search.{key}"),
                    "belongs to successive halving; add method = \"halving\" or remove it",
                ));
            }
        }
    }
    if raw.samples.is_none() && halving.is_none() {
        return Err(cx.err(
            s.span(),
            "search",
            "needs samples = N, the number of draws of the distribution axes",
        ));
    }
    Ok(SearchSpec {
        samples: raw
            .samples
            .as_ref()
            .map(|samples| {
                cx.single(samples, "search.samples", |v| {
                    int_in(
                        v,
                        &format!("a whole number from 1 to {MAX_SAMPLES}"),
                        1,
                        MAX_SAMPLES,
                    )
                })
                .map(|n| n as u32)
            })
            .transpose()?,
        seed: raw.seed.as_ref().map_or(Ok(0), |v| {
            cx.single(v, "search.seed", |v| {
                int_in(v, "a whole number >= 0", 0, i64::MAX)
            })
        })?,
        refined_from: raw
            .refined_from
            .as_ref()
            .map(|v| cx.single(v, "search.refined_from", string))
            .transpose()?,
        halving,
    })
}

/// Refuses a halving whose candidates do not all train one length in one unit (epochs,
/// or cycles for cyclic schedules), or whose `min_epochs` exceeds it.
fn check_halving(
    cx: &Ctx,
    grids: &[Grid],
    halving: &Halving,
    raw: &Spanned<RawSearch>,
) -> Result<(), SpecError> {
    let mut lengths = std::collections::BTreeSet::new();
    for g in grids {
        let values = |name: AxisName| {
            g.axes
                .iter()
                .find(|a| a.name == name)
                .map(|a| a.values.clone())
                .unwrap_or_default()
        };
        for schedule in values(AxisName::Schedule) {
            let cyclic = schedule == AxisValue::Schedule(ScheduleName::Cyclic);
            let (unit, axis) = if cyclic {
                ("cycles", AxisName::Cycles)
            } else {
                ("epochs", AxisName::Epochs)
            };
            for v in values(axis) {
                if let AxisValue::Int(n) = v {
                    lengths.insert((unit, n as usize));
                }
            }
        }
    }
    let span = raw
        .get_ref()
        .min_epochs
        .as_ref()
        .map_or(raw.span(), |v| v.span());
    let units: std::collections::BTreeSet<_> = lengths.iter().map(|(u, _)| *u).collect();
    if lengths.len() > 1 {
        let listed: Vec<String> = lengths.iter().map(|(u, n)| format!("{n} {u}")).collect();
        let why = if units.len() > 1 {
            "mixes cyclic and other schedules"
        } else {
            "has runs of different lengths"
        };
        return Err(cx.err(
            span,
            "search.min_epochs",
            format!(
                "successive halving compares candidates at the same length, but the sweep {why} ({}); \
                 give every run one length",
                listed.join(", ")
            ),
        ));
    }
    if let Some((unit, n)) = lengths.first()
        && halving.min_epochs > *n
    {
        return Err(cx.err(
            span,
            "search.min_epochs",
            format!(
                "is {}, more than the {n} {unit} the runs train; lower it or train longer",
                halving.min_epochs
            ),
        ));
    }
    Ok(())
}

/// Replaces each grid with distribution axes by `[search] samples` grids, one per draw,
/// each drawn axis holding its drawn value (checked as if written in the file). Draws of
/// grid `g` come from stream `g` of the search seed, draw by draw, each draw's axes in
/// expansion order.
fn draw(
    cx: &Ctx,
    grids: Vec<Grid>,
    search: Option<&SearchSpec>,
    raw: Option<&Spanned<RawSearch>>,
) -> Result<Vec<Grid>, SpecError> {
    let first_drawn = grids.iter().find_map(|g| {
        let (name, _) = g.drawn.first()?;
        g.given.iter().find(|(n, ..)| n == name)
    });
    let samples = search.and_then(|s| s.samples);
    let search = match (samples, first_drawn) {
        (None, None) => return Ok(grids),
        (None, Some((_, span, key))) => {
            return Err(cx.err(
                span.clone(),
                key,
                "is a distribution; say how many draws to make with [search] samples = N",
            ));
        }
        (Some(_), None) => {
            let span = raw
                .and_then(|r| r.get_ref().samples.as_ref())
                .map_or(0..0, |v| v.span());
            return Err(cx.err(
                span,
                "search.samples",
                "draws distribution axes, but no axis is one; write e.g.                  lambda = { log_uniform = [1e-5, 1e-1] }, or remove [search]",
            ));
        }
        (Some(_), Some(_)) => search.expect("samples come from [search]"),
    };
    let samples = samples.expect("matched above");
    let mut out = Vec::new();
    for (g, grid) in grids.into_iter().enumerate() {
        if grid.drawn.is_empty() {
            out.push(grid);
            continue;
        }
        let mut rng = crate::rng::generator(search.seed, crate::rng::Stream::Search(g as u32));
        for _ in 0..samples {
            let mut one = grid.clone();
            for (name, dist) in &grid.drawn {
                let value = dist.draw(&mut rng);
                let (_, span, key) = grid
                    .given
                    .iter()
                    .find(|(n, ..)| n == name)
                    .expect("invariant broken: a drawn axis is given in the file");
                let checked = (name.def().check)(&value)
                    .map_err(|m| cx.err(span.clone(), key, format!("draws {value}, which {m}")))?;
                let axis = one
                    .axes
                    .iter_mut()
                    .find(|a| a.name == *name)
                    .expect("invariant broken: a drawn axis is an axis");
                axis.values = vec![checked];
            }
            combinations(cx, &one.axes, &one.given)?;
            out.push(one);
        }
    }
    Ok(out)
}

fn grid(cx: &Ctx, train: &RawAxes, over: Option<&Spanned<RawAxes>>) -> Result<Grid, SpecError> {
    let mut declared: Vec<(usize, AxisName, &Spanned<Value>, &str)> = Vec::new();
    for name in AxisName::ALL {
        let (value, section) = match over.and_then(|g| g.get_ref().get(name)) {
            Some(v) => (Some(v), "grid"),
            None => (train.get(name), "train"),
        };
        if let Some(v) = value {
            declared.push((v.span().start, name, v, section));
        }
    }
    // Axes expand in the order they are written (by position in the file: a grid's own
    // keys come after [train]'s), except that seeds are always innermost.
    declared.sort_by_key(|&(pos, name, _, _)| (name == AxisName::Seed, pos));
    let mut axes = Vec::new();
    let mut given = Vec::new();
    let mut drawn = Vec::new();
    for (_, name, v, section) in declared {
        let key = format!("{section}.{}", name.key());
        let def = name.def();
        let one_list = def.nested()
            && match v.get_ref() {
                Value::Array(items) => !items.first().is_some_and(Value::is_array),
                _ => true,
            };
        let values = match v.get_ref() {
            Value::Table(t) => {
                let table = axis_table(t).map_err(|m| cx.err(v.span(), &key, m))?;
                match table {
                    AxisTable::Values(list) => list
                        .iter()
                        .map(|x| {
                            (def.check)(x).map_err(|m| {
                                cx.err(v.span(), &key, format!("gives {x}, which {m}"))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    AxisTable::Draw(dist) => {
                        drawn.push((name, dist));
                        vec![drawable(cx, name, dist, v.span(), &key)?]
                    }
                }
            }
            _ if one_list => vec![cx.single(v, &key, def.check)?],
            _ => cx.list(v, &key, def.check)?,
        };
        given.push((name, v.span(), key));
        axes.push(Axis { name, values });
    }
    for name in AxisName::ALL {
        if !axes.iter().any(|a| a.name == name) {
            let default = Axis {
                name,
                values: vec![name.def().default],
            };
            if name == AxisName::Seed {
                axes.push(default);
            } else {
                axes.insert(
                    axes.len() - usize::from(axes.last().is_some_and(|a| a.name == AxisName::Seed)),
                    default,
                );
            }
        }
    }
    combinations(cx, &axes, &given)?;
    Ok(Grid {
        axes,
        given,
        drawn,
        origin: 0,
    })
}

/// Checks that axis `name` can be drawn from `dist`: it is not the seed (seeds are
/// listed), and both bounds are values the axis takes. Returns the low bound, which
/// stands for the axis until the draws replace it.
fn drawable(
    cx: &Ctx,
    name: AxisName,
    dist: Dist,
    span: std::ops::Range<usize>,
    key: &str,
) -> Result<AxisValue, SpecError> {
    if name == AxisName::Seed {
        return Err(cx.err(
            span,
            key,
            "cannot be drawn; list the seeds, e.g. seed = [1, 2, 3]",
        ));
    }
    let check = name.def().check;
    let [low, high] = dist.bounds();
    let whole = matches!(low, Value::Integer(_));
    let takes_whole_only = check(&Value::Integer(1)).is_ok() && check(&Value::Float(0.5)).is_err();
    if !whole && takes_whole_only {
        return Err(cx.err(
            span,
            key,
            format!(
                "takes whole numbers; draw it with int_uniform, not {}",
                dist.key()
            ),
        ));
    }
    for bound in [&low, &high] {
        check(bound).map_err(|m| {
            cx.err(
                span.clone(),
                key,
                format!("`{}` bound {bound}: {m}", dist.key()),
            )
        })?;
    }
    Ok(check(&low).expect("checked above"))
}

/// Refuses keys that no run of a grid can use (a `cycles` where no run is cyclic,
/// `epochs` where every run is, `dropout` with no hidden layer), hidden widths a run
/// cannot have, and a cyclic range upside down. `given` holds each key the grid sets, with
/// its span and its name as written.
fn combinations(
    cx: &Ctx,
    axes: &[Axis],
    given: &[(AxisName, std::ops::Range<usize>, String)],
) -> Result<(), SpecError> {
    let values = |name: AxisName| -> &[AxisValue] {
        axes.iter()
            .find(|a| a.name == name)
            .map_or(&[], |a| a.values.as_slice())
    };
    let schedules: Vec<ScheduleName> = values(AxisName::Schedule)
        .iter()
        .filter_map(|v| match v {
            AxisValue::Schedule(s) => Some(*s),
            _ => None,
        })
        .collect();
    let any_schedule = |s: ScheduleName| schedules.contains(&s);
    let with_hidden = values(AxisName::Hidden)
        .iter()
        .any(|v| matches!(v, AxisValue::Hidden(w) if !w.is_empty()));
    let with_normal = values(AxisName::Init).contains(&AxisValue::Init(Init::Normal));
    let not_cyclic = schedules.iter().any(|&s| s != ScheduleName::Cyclic);
    let with_norm = values(AxisName::BatchNorm).contains(&AxisValue::Bool(true));
    let batch_of_one = values(AxisName::BatchSize).contains(&AxisValue::Int(1));
    for (name, span, key) in given {
        let refusal = match name {
            AxisName::Eta if !not_cyclic => Some(
                "does not apply to a cyclic schedule, whose rate goes from eta_min to eta_max; \
                 remove it or give eta_min and eta_max",
            ),
            AxisName::Epochs if !not_cyclic => Some(
                "does not apply to a cyclic schedule, which trains 2 * step_size * cycles \
                 updates; remove it and set cycles",
            ),
            AxisName::EtaMin | AxisName::EtaMax | AxisName::StepSize | AxisName::Cycles
                if !any_schedule(ScheduleName::Cyclic) =>
            {
                Some("applies only to schedule = \"cyclic\"; remove it or set that schedule")
            }
            AxisName::Decay | AxisName::DecayEvery if !any_schedule(ScheduleName::Step) => {
                Some("applies only to schedule = \"step\"; remove it or set that schedule")
            }
            AxisName::Dropout if !with_hidden => Some(
                "applies only to networks with hidden layers; remove it or set hidden, \
                 e.g. hidden = [50]",
            ),
            AxisName::BatchNorm if !with_hidden => Some(
                "applies only to networks with hidden layers; remove it or set hidden, \
                 e.g. hidden = [50, 50]",
            ),
            AxisName::BatchNorm if with_norm && batch_of_one => Some(
                "needs mini-batches of at least 2 examples (a batch of 1 has no variance \
                 to normalise by); raise batch_size or remove batch_norm",
            ),
            AxisName::BnMomentum | AxisName::BnEps if !(with_norm && with_hidden) => {
                Some("applies only to batch_norm = true; remove it or set batch_norm = true")
            }
            AxisName::InitStd if !with_normal => Some(
                "applies only to init = \"normal\" (xavier and he scale by the fan-in); \
                 remove it",
            ),
            _ => None,
        };
        if let Some(message) = refusal {
            return Err(cx.err(span.clone(), key, message));
        }
    }
    let floats = |name: AxisName| -> Vec<f64> {
        values(name)
            .iter()
            .filter_map(|v| match v {
                AxisValue::Float(x) => Some(*x),
                _ => None,
            })
            .collect()
    };
    let (lows, highs) = (floats(AxisName::EtaMin), floats(AxisName::EtaMax));
    let low = lows.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let high = highs.iter().copied().fold(f64::INFINITY, f64::min);
    if any_schedule(ScheduleName::Cyclic) && low >= high {
        let at = given
            .iter()
            .find(|(n, _, _)| matches!(n, AxisName::EtaMin | AxisName::EtaMax));
        let (span, key) = at.map_or((0..0, "eta_min".to_string()), |(_, s, k)| {
            (s.clone(), k.clone())
        });
        return Err(cx.err(
            span,
            &key,
            format!("eta_min ({low}) must be below eta_max ({high}) for every cyclic run"),
        ));
    }
    Ok(())
}

fn check_section(cx: &Ctx, c: &Spanned<RawCheck>) -> Result<CheckSpec, SpecError> {
    let raw = c.get_ref();
    let ints =
        |v: &Option<Spanned<Value>>, key: &str, default: Vec<u64>| -> Result<Vec<u64>, SpecError> {
            v.as_ref().map_or(Ok(default), |v| {
                cx.list(v, key, |v| int_in(v, "a whole number >= 1", 1, 1 << 40))
            })
        };
    let float =
        |v: &Option<Spanned<Value>>, key: &str, default: f64, what: &str, ok: fn(f64) -> bool| {
            v.as_ref().map_or(Ok(default), |v| {
                cx.single(v, key, |v| float_in(v, what, ok))
            })
        };
    // Batch norm needs batches of 2 or more: its default leaves out the batch of 1.
    let normalised = matches!(
        raw.batch_norm.as_ref().map(|v| v.get_ref()),
        Some(Value::Boolean(true))
    );
    let batch_sizes: Vec<usize> = ints(
        &raw.batch_sizes,
        "gradcheck.batch_sizes",
        if normalised {
            vec![20, 100, 1000]
        } else {
            vec![1, 20, 100, 1000]
        },
    )?
    .into_iter()
    .map(|n| n as usize)
    .collect();
    Ok(CheckSpec {
        bn_eps: check_norm(cx, raw, &batch_sizes)?,
        batch_sizes,
        segments: raw.segments.as_ref().map_or(Ok(3), |v| {
            cx.single(v, "gradcheck.segments", |v| {
                int_in(v, "a whole number from 0 to 1000", 0, 1000)
            })
        })? as u32,
        lambdas: raw.lambda.as_ref().map_or(Ok(vec![0.0]), |v| {
            cx.list(v, "gradcheck.lambda", |v| {
                float_in(v, "a number >= 0", |x| x >= 0.0)
            })
        })?,
        methods: {
            let mut m =
                raw.methods
                    .as_ref()
                    .map_or(Ok(vec![Method::Forward, Method::Centred]), |v| {
                        cx.list(v, "gradcheck.methods", |v| match v {
                            Value::String(s) if s == "forward" => Ok(Method::Forward),
                            Value::String(s) if s == "centred" || s == "centered" => {
                                Ok(Method::Centred)
                            }
                            other => Err(format!(
                                "must be \"forward\" or \"centred\", found {}",
                                describe(other)
                            )),
                        })
                    })?;
            m.dedup();
            m
        },
        step: float(
            &raw.step,
            "gradcheck.step",
            1e-6,
            "a number between 0 and 1",
            |x| x > 0.0 && x < 1.0,
        )?,
        seed: raw.seed.as_ref().map_or(Ok(0), |v| {
            cx.single(v, "gradcheck.seed", |v| {
                int_in(v, "a whole number >= 0", 0, i64::MAX)
            })
        })?,
        eps: float(&raw.eps, "gradcheck.eps", 1e-6, "a number > 0", |x| x > 0.0)?,
        dims: raw
            .dims
            .as_ref()
            .map(|v| {
                cx.single(v, "gradcheck.dims", |v| {
                    int_in(v, "a whole number >= 1", 1, 1 << 40)
                })
            })
            .transpose()?
            .map(|d| d as usize),
        init_std: float(
            &raw.init_std,
            "gradcheck.init_std",
            0.01,
            "a number >= 0",
            |x| x >= 0.0,
        )?,
        hidden: match model_key(cx, &raw.hidden, AxisName::Hidden)? {
            AxisValue::Hidden(w) => w.as_slice().iter().map(|&w| w as usize).collect(),
            other => unreachable!("the hidden check gives widths, not {other:?}"),
        },
        init: match model_key(cx, &raw.init, AxisName::Init)? {
            AxisValue::Init(i) => i,
            other => unreachable!("the init check gives an init, not {other:?}"),
        },
        loss: match model_key(cx, &raw.loss, AxisName::Loss)? {
            AxisValue::Loss(l) => l,
            other => unreachable!("the loss check gives a loss, not {other:?}"),
        },
    })
}

/// The `[gradcheck]` model's batch norm: `batch_norm = true` (with hidden layers and
/// batches of at least 2) and its `bn_eps`, or none.
fn check_norm(cx: &Ctx, raw: &RawCheck, batch_sizes: &[usize]) -> Result<Option<f64>, SpecError> {
    let on = model_key(cx, &raw.batch_norm, AxisName::BatchNorm)? == AxisValue::Bool(true);
    let eps = match model_key(cx, &raw.bn_eps, AxisName::BnEps)? {
        AxisValue::Float(e) => e,
        other => unreachable!("the bn_eps check gives a number, not {other:?}"),
    };
    let at = |v: &Option<Spanned<Value>>| v.as_ref().map_or(0..0, |v| v.span());
    if let (false, Some(v)) = (on, &raw.bn_eps) {
        return Err(cx.err(
            v.span(),
            "gradcheck.bn_eps",
            "applies only to batch_norm = true; remove it or set batch_norm = true",
        ));
    }
    if !on {
        return Ok(None);
    }
    if raw.hidden.is_none() {
        return Err(cx.err(
            at(&raw.batch_norm),
            "gradcheck.batch_norm",
            "applies only to networks with hidden layers; set hidden, e.g. hidden = [50, 50]",
        ));
    }
    if batch_sizes.contains(&1) {
        return Err(cx.err(
            at(&raw.batch_norm),
            "gradcheck.batch_norm",
            "needs batch sizes of at least 2 (a batch of 1 has no variance to normalise \
             by); remove 1 from gradcheck.batch_sizes",
        ));
    }
    Ok(Some(eps))
}

/// A `[gradcheck]` key naming the model checked, read as the `[train]` key `axis` reads
/// one value (one model per check); its default when absent.
fn model_key(cx: &Ctx, v: &Option<Spanned<Value>>, axis: AxisName) -> Result<AxisValue, SpecError> {
    let def = axis.def();
    v.as_ref().map_or(Ok(def.default), |v| {
        cx.single(v, &format!("gradcheck.{}", def.key), def.check)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[data]\ntrain = [\"a.bin\"]\nval = [\"b.bin\"]\n";

    fn parse_str(text: &str) -> Result<ValidSpec, SpecError> {
        parse(Path::new("dir/s.toml"), text, None)
    }

    fn axis(spec: &ValidSpec, g: usize, name: AxisName) -> Vec<AxisValue> {
        spec.grids[g]
            .axes
            .iter()
            .find(|a| a.name == name)
            .unwrap()
            .values
            .clone()
    }

    #[test]
    fn defaults_fill_a_minimal_file() {
        let s = parse_str(BASE).unwrap();
        assert_eq!(s.name, "s");
        assert_eq!(s.data_dir, Path::new("dir"));
        assert_eq!(s.grids.len(), 1);
        assert_eq!(axis(&s, 0, AxisName::Epochs), vec![AxisValue::Int(40)]);
        assert_eq!(s.grids[0].axes.last().unwrap().name, AxisName::Seed);
        assert!(s.gradcheck.is_none());
    }

    #[test]
    fn grids_override_train_and_keep_declared_order_with_seed_last() {
        let text = format!(
            "{BASE}[train]\nseed = [1, 2]\nepochs = 3\n[[grid]]\neta = [0.1, 0.01]\nlambda = 0\n[[grid]]\nepochs = 5\n"
        );
        let s = parse_str(&text).unwrap();
        let names: Vec<_> = s.grids[0].axes.iter().map(|a| a.name).collect();
        assert_eq!(
            &names[..3],
            &[AxisName::Epochs, AxisName::Eta, AxisName::Lambda]
        );
        assert_eq!(*names.last().unwrap(), AxisName::Seed);
        assert_eq!(axis(&s, 1, AxisName::Epochs), vec![AxisValue::Int(5)]);
        assert_eq!(
            axis(&s, 1, AxisName::Seed),
            vec![AxisValue::Int(1), AxisValue::Int(2)]
        );
    }

    #[test]
    fn errors_name_the_key_and_position() {
        let bad = format!("{BASE}[train]\neta = [0.1, -1]\n");
        let e = parse_str(&bad).unwrap_err().to_string();
        assert!(
            e.starts_with("dir/s.toml:5:7: `train.eta` [1] must be a number > 0"),
            "{e}"
        );
        let e = parse_str(&format!("{BASE}[train]\nepochs = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`train.epochs` must be a whole number from 1"),
            "{e}"
        );
        let e = parse_str(&format!("{BASE}[train]\nbatch_size = []\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty list"), "{e}");
        let e = parse_str(&format!("{BASE}[train]\nlearning_rate = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("learning_rate") && e.contains("line 5"), "{e}");
        let e = parse_str("[data]\ntrain = [\"a\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.val"), "{e}");
    }

    #[test]
    fn data_keys_are_refused_with_file_line_column() {
        // (the [data] lines after `train`/`val`, what the error must start with)
        let npy = "[data]\nformat = \"npy\"\ntrain = [{ x = \"x\", y = \"y\" }]\nval_holdout = 1\n";
        let table: [(&str, &str, &str); 8] = [
            (
                npy,
                "classes = 1\n",
                "dir/s.toml:5:11: `data.classes` must be a whole number from 2 to 256, found 1",
            ),
            (
                npy,
                "classes = 257\n",
                "dir/s.toml:5:11: `data.classes` must be a whole number from 2 to 256, found 257",
            ),
            (
                npy,
                "classes = 2.5\n",
                "dir/s.toml:5:11: `data.classes` must be a whole number from 2 to 256, found float 2.5",
            ),
            (
                npy,
                "classes = \"3\"\n",
                "dir/s.toml:5:11: `data.classes` must be a whole number from 2 to 256, found the string \"3\"",
            ),
            (
                BASE,
                "classes = 3\n",
                "dir/s.toml:4:11: `data.classes` is 3, but format cifar10-bin has 10 classes",
            ),
            (
                BASE,
                "format = \"cifar10-python\"\nclasses = 11\n",
                "dir/s.toml:5:11: `data.classes` is 11, but format cifar10-python has 10 classes",
            ),
            (
                BASE,
                "format = \"png\"\n",
                "dir/s.toml:4:10: `data.format` must be \"cifar10-bin\", \"cifar10-python\" or \"npy\", found the string \"png\"",
            ),
            (BASE, "klasses = 3\n", "unknown field `klasses`"),
        ];
        for (data, extra, want) in table {
            let e = parse_str(&format!("{data}{extra}"))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(want) || (want.starts_with("unknown") && e.contains(want)),
                "{data}{extra}: {e}"
            );
        }
        let e = parse_str(&format!("{BASE}klasses = 3\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4") && e.contains("`classes`"), "{e}");
    }

    #[test]
    fn classes_and_formats_are_read() {
        let npy = "[data]\nformat = \"npy\"\ntrain = [{ x = \"x\", y = \"y\" }]\nval_holdout = 1\n";
        assert_eq!(parse_str(npy).unwrap().data.classes, None);
        let s = parse_str(&format!("{npy}classes = 256\n")).unwrap();
        assert_eq!(s.data.classes, Some(256));
        let s = parse_str(&format!("{BASE}classes = 10\n")).unwrap();
        assert_eq!(s.data.classes, Some(10));
        let s = parse_str(&format!("{BASE}format = \"cifar10-python\"\n")).unwrap();
        assert_eq!(s.format, DataFormat::Cifar10Python);
        assert_eq!(
            s.data.train,
            Source::Cifar10Python(vec![PathBuf::from("dir/a.bin")])
        );
    }

    #[test]
    fn a_python_folder_as_dir_infers_the_python_format() {
        let tmp = tempfile::tempdir().unwrap();
        let text = "[data]\ntrain = [\"data_batch_1\"]\nval = [\"test_batch\"]\n";
        let spec = tmp.path().join("s.toml");
        // An empty folder (or one with .bin files) stays the binary default.
        assert_eq!(
            parse(&spec, text, Some(tmp.path())).unwrap().format,
            DataFormat::Cifar10Bin
        );
        std::fs::write(tmp.path().join("data_batch_1.bin"), b"").unwrap();
        assert_eq!(
            parse(&spec, text, Some(tmp.path())).unwrap().format,
            DataFormat::Cifar10Bin
        );
        std::fs::write(tmp.path().join("test_batch"), b"").unwrap();
        let s = parse(&spec, text, Some(tmp.path())).unwrap();
        assert_eq!(s.format, DataFormat::Cifar10Python);
        assert!(
            matches!(&s.data.train, Source::Cifar10Python(f) if f == &[tmp.path().join("data_batch_1")])
        );
        // By the official folder's name alone (its files may still be missing), and
        // through `dir` as well as `--data`.
        let named = tmp.path().join(data::PYTHON_DIR);
        assert_eq!(
            parse(&spec, text, Some(&named)).unwrap().format,
            DataFormat::Cifar10Python
        );
        let with_dir = format!("[data]\ndir = \"{}\"\n{}", data::PYTHON_DIR, &text[7..]);
        assert_eq!(
            parse(&spec, &with_dir, None).unwrap().format,
            DataFormat::Cifar10Python
        );
        // An explicit format wins.
        let bin = format!("[data]\nformat = \"cifar10-bin\"\n{}", &text[7..]);
        assert_eq!(
            parse(&spec, &bin, Some(&named)).unwrap().format,
            DataFormat::Cifar10Bin
        );
    }

    #[test]
    fn the_axis_table_is_complete_and_keys_refuse_like_serde() {
        assert_eq!(AXES.len(), AxisName::ALL.len());
        for (i, axis) in AXES.iter().enumerate() {
            assert_eq!(axis.name as usize, i, "{}", axis.key);
            assert_eq!(AxisName::ALL[i], axis.name);
            assert_eq!(
                (axis.check)(&toml_value(axis.default)),
                Ok(axis.default),
                "{}",
                axis.key
            );
        }
        let e = parse_str(&format!("{BASE}[[grid]]\neta = 0.1\netaa = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 6")
                && e.contains("unknown field `etaa`, expected one of `lambda`, `eta`"),
            "{e}"
        );
    }

    /// The TOML value that writes `v`.
    fn toml_value(v: AxisValue) -> Value {
        match v {
            AxisValue::Float(x) => Value::Float(x),
            AxisValue::Int(x) => Value::Integer(x as i64),
            AxisValue::Bool(x) => Value::Boolean(x),
            AxisValue::Precision(p) => Value::String(p.as_str().into()),
            AxisValue::Hidden(w) => Value::Array(
                w.as_slice()
                    .iter()
                    .map(|&v| Value::Integer(i64::from(v)))
                    .collect(),
            ),
            AxisValue::Init(x) => Value::String(x.as_str().into()),
            AxisValue::Loss(x) => Value::String(x.as_str().into()),
            AxisValue::Schedule(x) => Value::String(x.as_str().into()),
            AxisValue::Augment(x) => Value::String(x.as_str().into()),
        }
    }
}
