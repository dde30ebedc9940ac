//! The sweep file: raw TOML structures (with source spans) and their validation into a
//! [`ValidSpec`].
//!
//! Two layers, as in ripgrep's low/high-level arguments: serde reads the file into `Raw*`
//! structs that only know TOML types and where each value sits in the file; [`load`] then
//! checks every value once and reports the first problem as `file:line:column: key ...`
//! with what is allowed. Nothing downstream re-validates.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::Value;

/// Numeric precision a run trains in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Precision {
    /// Single precision (the default).
    F32,
    F64,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}

/// Input file format of `[data]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    /// CIFAR-10 "binary version" batch files (the default).
    Cifar10Bin,
    /// Pairs of `.npy` files: X (N x d) and y (N).
    Npy,
    /// CIFAR-10 "python version" batch files (`cifar-10-batches-py/`).
    Cifar10Python,
}

/// A value-or-list key of `[train]` or `[[grid]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AxisName {
    Lambda,
    Eta,
    BatchSize,
    Epochs,
    Shuffle,
    Precision,
    InitStd,
    Seed,
}

impl AxisName {
    pub const ALL: [AxisName; 8] = [
        AxisName::Lambda,
        AxisName::Eta,
        AxisName::BatchSize,
        AxisName::Epochs,
        AxisName::Shuffle,
        AxisName::Precision,
        AxisName::InitStd,
        AxisName::Seed,
    ];

    pub fn key(self) -> &'static str {
        match self {
            AxisName::Lambda => "lambda",
            AxisName::Eta => "eta",
            AxisName::BatchSize => "batch_size",
            AxisName::Epochs => "epochs",
            AxisName::Shuffle => "shuffle",
            AxisName::Precision => "precision",
            AxisName::InitStd => "init_std",
            AxisName::Seed => "seed",
        }
    }
}

/// One value of an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AxisValue {
    Float(f64),
    Int(u64),
    Bool(bool),
    Precision(Precision),
}

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
}

/// Where a split's examples come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// CIFAR-10 binary batch files.
    Cifar10Bin(Vec<PathBuf>),
    /// Pairs of (X, y) `.npy` files.
    Npy(Vec<(PathBuf, PathBuf)>),
    /// CIFAR-10 "python version" batch files (pickles).
    Cifar10Python(Vec<PathBuf>),
}

impl Source {
    /// The files this source reads.
    pub fn files(&self) -> Vec<&Path> {
        match self {
            Source::Cifar10Bin(files) | Source::Cifar10Python(files) => {
                files.iter().map(PathBuf::as_path).collect()
            }
            Source::Npy(pairs) => pairs
                .iter()
                .flat_map(|(x, y)| [x.as_path(), y.as_path()])
                .collect(),
        }
    }
}

/// How validation examples are obtained.
#[derive(Debug, Clone, PartialEq)]
pub enum ValSource {
    Files(Source),
    /// The last N training examples, held out before normalisation statistics are taken.
    Holdout(usize),
}

/// Everything needed to build a `data::Dataset`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    pub train: Source,
    pub val: ValSource,
    pub test: Option<Source>,
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
    pub fn as_str(self) -> &'static str {
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
}

/// Why a sweep file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read sweep file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid sweep file:\n{message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}:{line}:{column}: `{key}` {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Option<Spanned<Value>>,
    data: Spanned<RawData>,
    train: Option<RawAxes>,
    grid: Option<Vec<Spanned<RawAxes>>>,
    gradcheck: Option<Spanned<RawCheck>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    format: Option<Spanned<Value>>,
    dir: Option<Spanned<Value>>,
    train: Option<Spanned<Value>>,
    val: Option<Spanned<Value>>,
    val_holdout: Option<Spanned<Value>>,
    test: Option<Spanned<Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAxes {
    lambda: Option<Spanned<Value>>,
    eta: Option<Spanned<Value>>,
    batch_size: Option<Spanned<Value>>,
    epochs: Option<Spanned<Value>>,
    shuffle: Option<Spanned<Value>>,
    precision: Option<Spanned<Value>>,
    init_std: Option<Spanned<Value>>,
    seed: Option<Spanned<Value>>,
}

impl RawAxes {
    fn get(&self, name: AxisName) -> Option<&Spanned<Value>> {
        match name {
            AxisName::Lambda => self.lambda.as_ref(),
            AxisName::Eta => self.eta.as_ref(),
            AxisName::BatchSize => self.batch_size.as_ref(),
            AxisName::Epochs => self.epochs.as_ref(),
            AxisName::Shuffle => self.shuffle.as_ref(),
            AxisName::Precision => self.precision.as_ref(),
            AxisName::InitStd => self.init_std.as_ref(),
            AxisName::Seed => self.seed.as_ref(),
        }
    }
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
}

/// Default value of each axis when neither `[train]` nor a grid sets it.
fn default_axis(name: AxisName) -> AxisValue {
    match name {
        AxisName::Lambda => AxisValue::Float(0.0),
        AxisName::Eta => AxisValue::Float(0.001),
        AxisName::BatchSize => AxisValue::Int(100),
        AxisName::Epochs => AxisValue::Int(40),
        AxisName::Shuffle => AxisValue::Bool(true),
        AxisName::Precision => AxisValue::Precision(Precision::F32),
        AxisName::InitStd => AxisValue::Float(0.01),
        AxisName::Seed => AxisValue::Int(1),
    }
}

/// Largest number of values one axis may list.
pub const MAX_AXIS_VALUES: usize = 10_000;

/// Validation context: the file, to turn byte spans into line:column.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> SpecError {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        SpecError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The value, or each value of a list, checked by `one`. Lists must not be empty.
    fn list<T>(
        &self,
        v: &Spanned<Value>,
        key: &str,
        one: impl Fn(&Value) -> Result<T, String>,
    ) -> Result<Vec<T>, SpecError> {
        let span = v.span();
        match v.get_ref() {
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(self.err(span, key, "is an empty list; give at least one value"));
                }
                if items.len() > MAX_AXIS_VALUES {
                    return Err(self.err(
                        span,
                        key,
                        format!(
                            "lists {} values; at most {MAX_AXIS_VALUES} are allowed",
                            items.len()
                        ),
                    ));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        one(item).map_err(|m| self.err(span.clone(), key, format!("[{i}] {m}")))
                    })
                    .collect()
            }
            single => one(single)
                .map(|x| vec![x])
                .map_err(|m| self.err(span, key, m)),
        }
    }

    fn single<T>(
        &self,
        v: &Spanned<Value>,
        key: &str,
        one: impl Fn(&Value) -> Result<T, String>,
    ) -> Result<T, SpecError> {
        one(v.get_ref()).map_err(|m| self.err(v.span(), key, m))
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Table(_) => "a table".into(),
        other => format!("{} {other}", other.type_str()),
    }
}

fn float_in(v: &Value, what: &str, ok: impl Fn(f64) -> bool) -> Result<f64, String> {
    let x = match v {
        Value::Float(f) => *f,
        Value::Integer(i) => *i as f64,
        other => return Err(format!("must be {what}, found {}", describe(other))),
    };
    if x.is_finite() && ok(x) {
        Ok(x)
    } else {
        Err(format!("must be {what}, found {x}"))
    }
}

fn int_in(v: &Value, what: &str, min: i64, max: i64) -> Result<u64, String> {
    match v {
        Value::Integer(i) if (min..=max).contains(i) => Ok(*i as u64),
        Value::Integer(i) => Err(format!("must be {what}, found {i}")),
        other => Err(format!("must be {what}, found {}", describe(other))),
    }
}

fn axis_value(name: AxisName, v: &Value) -> Result<AxisValue, String> {
    Ok(match name {
        AxisName::Lambda => AxisValue::Float(float_in(v, "a number >= 0", |x| x >= 0.0)?),
        AxisName::Eta => AxisValue::Float(float_in(v, "a number > 0", |x| x > 0.0)?),
        AxisName::InitStd => AxisValue::Float(float_in(v, "a number >= 0", |x| x >= 0.0)?),
        AxisName::BatchSize => AxisValue::Int(int_in(v, "a whole number >= 1", 1, i64::MAX)?),
        AxisName::Epochs => {
            AxisValue::Int(int_in(v, "a whole number from 1 to 100000", 1, 100_000)?)
        }
        AxisName::Seed => AxisValue::Int(int_in(v, "a whole number >= 0", 0, i64::MAX)?),
        AxisName::Shuffle => match v {
            Value::Boolean(b) => AxisValue::Bool(*b),
            other => return Err(format!("must be true or false, found {}", describe(other))),
        },
        AxisName::Precision => match v {
            Value::String(s) if s == "f32" => AxisValue::Precision(Precision::F32),
            Value::String(s) if s == "f64" => AxisValue::Precision(Precision::F64),
            other => {
                return Err(format!(
                    "must be \"f32\" or \"f64\", found {}",
                    describe(other)
                ));
            }
        },
    })
}

fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        other => Err(format!(
            "must be a non-empty string, found {}",
            describe(other)
        )),
    }
}

/// Reads and validates the sweep file at `path`. `data_dir` (the `--data` flag) replaces
/// `[data].dir`.
pub fn load(path: &Path, data_dir: Option<&Path>) -> Result<ValidSpec, SpecError> {
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
            .map(|g| grid(&cx, &train, Some(g)))
            .collect::<Result<_, _>>()?,
    };
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
    })
}

fn data_section(
    cx: &Ctx,
    data: &Spanned<RawData>,
    data_dir: Option<&Path>,
) -> Result<(DataFormat, PathBuf, DataSpec), SpecError> {
    let raw = data.get_ref();
    let format = match &raw.format {
        None => DataFormat::Cifar10Bin,
        Some(v) => cx.single(v, "data.format", |v| match v {
            Value::String(s) if s == "cifar10-bin" => Ok(DataFormat::Cifar10Bin),
            Value::String(s) if s == "npy" => Ok(DataFormat::Npy),
            other => Err(format!(
                "must be \"cifar10-bin\" or \"npy\", found {}",
                describe(other)
            )),
        })?,
    };
    let base = cx.path.parent().unwrap_or(Path::new("."));
    let dir = match (data_dir, &raw.dir) {
        (Some(d), _) => d.to_path_buf(),
        (None, Some(v)) => base.join(cx.single(v, "data.dir", string)?),
        (None, None) => base.to_path_buf(),
    };
    let files = |v: &Spanned<Value>, key: &str| -> Result<Source, SpecError> {
        let names = || -> Result<Vec<PathBuf>, SpecError> {
            Ok(cx
                .list(v, key, |v| {
                    string(v).map_err(|_| format!("must be a file name, found {}", describe(v)))
                })?
                .into_iter()
                .map(|f| dir.join(f))
                .collect())
        };
        match format {
            DataFormat::Cifar10Bin => Ok(Source::Cifar10Bin(names()?)),
            DataFormat::Cifar10Python => Ok(Source::Cifar10Python(names()?)),
            DataFormat::Npy => Ok(Source::Npy(cx.list(v, key, |v| match v {
                Value::Table(t) => match (t.get("x"), t.get("y"), t.len()) {
                    (Some(Value::String(x)), Some(Value::String(y)), 2) => {
                        Ok((dir.join(x), dir.join(y)))
                    }
                    _ => Err("must be a table { x = \"X.npy\", y = \"y.npy\" }".to_string()),
                },
                other => Err(format!(
                    "must be a table {{ x = \"X.npy\", y = \"y.npy\" }}, found {}",
                    describe(other)
                )),
            })?)),
        }
    };
    let train = match &raw.train {
        Some(v) => files(v, "data.train")?,
        None => {
            return Err(cx.err(
                data.span(),
                "data.train",
                "is missing; list the training files",
            ));
        }
    };
    let val = match (&raw.val, &raw.val_holdout) {
        (Some(v), None) => ValSource::Files(files(v, "data.val")?),
        (None, Some(v)) => ValSource::Holdout(cx.single(v, "data.val_holdout", |v| {
            int_in(v, "a whole number >= 1", 1, i64::MAX)
        })? as usize),
        (Some(_), Some(v)) => {
            return Err(cx.err(
                v.span(),
                "data.val_holdout",
                "cannot be used together with data.val; keep one",
            ));
        }
        (None, None) => {
            return Err(cx.err(
                data.span(),
                "data.val",
                "is missing; list validation files or set val_holdout = N to hold out the last N training examples",
            ));
        }
    };
    let test = raw
        .test
        .as_ref()
        .map(|v| files(v, "data.test"))
        .transpose()?;
    Ok((format, dir, DataSpec { train, val, test }))
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
    for (_, name, v, section) in declared {
        let key = format!("{section}.{}", name.key());
        axes.push(Axis {
            name,
            values: cx.list(v, &key, |v| axis_value(name, v))?,
        });
    }
    for name in AxisName::ALL {
        if !axes.iter().any(|a| a.name == name) {
            let default = Axis {
                name,
                values: vec![default_axis(name)],
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
    Ok(Grid { axes })
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
    Ok(CheckSpec {
        batch_sizes: ints(
            &raw.batch_sizes,
            "gradcheck.batch_sizes",
            vec![1, 20, 100, 1000],
        )?
        .into_iter()
        .map(|n| n as usize)
        .collect(),
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
}
