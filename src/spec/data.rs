//! The `[data]` section: which files, in which format, and how many classes. Only names
//! files (and looks into `dir` to infer the python version's format); reading them is
//! `crate::data`'s. Imports only [`super::values`].

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::Value;

use super::values::{Ctx, SpecError, describe, int_in, string};

/// Input file format of `[data]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    /// CIFAR-10 "binary version" batch files (the default, unless `dir` holds the python
    /// version, [`is_python_dir`]).
    Cifar10Bin,
    /// Pairs of `.npy` files: X (N x d) and y (N).
    Npy,
    /// CIFAR-10 "python version" batch files (`cifar-10-batches-py/`).
    Cifar10Python,
}

impl DataFormat {
    /// The value of `format` that selects it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DataFormat::Cifar10Bin => "cifar10-bin",
            DataFormat::Npy => "npy",
            DataFormat::Cifar10Python => "cifar10-python",
        }
    }
}

/// The folder name inside the official `cifar-10-python.tar.gz`.
pub(crate) const PYTHON_DIR: &str = "cifar-10-batches-py";

/// The batch file names of the python version, which have no extension.
pub(crate) const PYTHON_BATCH_FILES: [&str; 6] = [
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
];

/// Tells whether `dir` holds the python version: at least one of
/// `data_batch_1` ... `data_batch_5` or `test_batch`, without extension.
pub fn is_python_dir(dir: &Path) -> bool {
    PYTHON_BATCH_FILES
        .iter()
        .any(|name| dir.join(name).is_file())
}

/// The most classes a data set may have: labels are held as bytes.
pub(crate) const MAX_CLASSES: usize = 256;

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

/// How validation examples are obtained.
#[derive(Debug, Clone, PartialEq)]
pub enum ValSource {
    Files(Source),
    /// The last N training examples, held out before normalisation statistics are taken.
    Holdout(usize),
}

/// Everything needed to build a `Dataset`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    pub train: Source,
    pub val: ValSource,
    pub test: Option<Source>,
    /// `classes = K` (2..=256), if given; else K is 10 for CIFAR-10 and the largest
    /// training label + 1 for npy.
    pub classes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawData {
    format: Option<Spanned<Value>>,
    dir: Option<Spanned<Value>>,
    train: Option<Spanned<Value>>,
    val: Option<Spanned<Value>>,
    val_holdout: Option<Spanned<Value>>,
    test: Option<Spanned<Value>>,
    classes: Option<Spanned<Value>>,
}

/// Checks `[data]`: its format, folder (`data_dir`, the `--data` flag, replaces `dir`)
/// and files.
pub(crate) fn data_section(
    cx: &Ctx,
    data: &Spanned<RawData>,
    data_dir: Option<&Path>,
) -> Result<(DataFormat, PathBuf, DataSpec), SpecError> {
    let raw = data.get_ref();
    let explicit = raw
        .format
        .as_ref()
        .map(|v| {
            cx.single(v, "data.format", |v| {
                let all = [
                    DataFormat::Cifar10Bin,
                    DataFormat::Cifar10Python,
                    DataFormat::Npy,
                ];
                let found = match v {
                    Value::String(s) => all.into_iter().find(|f| f.as_str() == s),
                    _ => None,
                };
                found.ok_or_else(|| {
                    format!(
                        "must be \"cifar10-bin\", \"cifar10-python\" or \"npy\", found {}",
                        describe(v)
                    )
                })
            })
        })
        .transpose()?;
    let base = cx.path.parent().unwrap_or(Path::new("."));
    let dir = match (data_dir, &raw.dir) {
        (Some(d), _) => d.to_path_buf(),
        (None, Some(v)) => base.join(cx.single(v, "data.dir", string)?),
        (None, None) => base.to_path_buf(),
    };
    // "Or just point `dir` at it" (README): without `format`, a folder named like the
    // official one, or holding its extensionless batch files, is the python version.
    let format = explicit.unwrap_or(
        if dir.file_name().is_some_and(|n| n == PYTHON_DIR) || is_python_dir(&dir) {
            DataFormat::Cifar10Python
        } else {
            DataFormat::Cifar10Bin
        },
    );
    let classes = raw
        .classes
        .as_ref()
        .map(|v| {
            let k = cx.single(v, "data.classes", |v| {
                int_in(v, "a whole number from 2 to 256", 2, MAX_CLASSES as i64)
            })? as usize;
            if format != DataFormat::Npy && k != 10 {
                return Err(cx.err(
                    v.span(),
                    "data.classes",
                    format!(
                        "is {k}, but format {} has 10 classes; remove `classes`",
                        format.as_str()
                    ),
                ));
            }
            Ok(k)
        })
        .transpose()?;
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
    Ok((
        format,
        dir,
        DataSpec {
            train,
            val,
            test,
            classes,
        },
    ))
}
