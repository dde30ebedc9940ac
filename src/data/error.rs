//! Why a data file could not be used: one error type for every reader of `data/`.
//! Imports only the leaves [`super::cifar10`] and [`super::cifar_python`].

use std::io;
use std::path::{Path, PathBuf};

use super::cifar_python::PickleError;
use super::cifar10::CIFAR10_RECORD;

/// Why a data file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read data file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "data file {path} is missing; looked for it in {dir}; put the CIFAR-10 binary files there \
         (`sweep data fetch cifar10` downloads them) or point `[data].dir`/`--data` at them"
    )]
    Missing { path: PathBuf, dir: PathBuf },
    #[error("data file {path} is empty; it should hold {CIFAR10_RECORD}-byte CIFAR-10 records")]
    Empty { path: PathBuf },
    #[error(
        "data file {path} is {len} bytes, not a multiple of the {CIFAR10_RECORD}-byte CIFAR-10 record: \
         the last record is cut short after {tail} bytes (truncated download?)"
    )]
    Truncated { path: PathBuf, len: u64, tail: u64 },
    #[error(
        "data file {path}, record {record} (byte offset {offset}): label {label} is not a class 0..=9"
    )]
    BadLabel {
        path: PathBuf,
        record: usize,
        offset: usize,
        label: u64,
    },
    #[error("{path}: {message}")]
    Npy { path: PathBuf, message: String },
    #[error("{what}: {message}")]
    Shape { what: String, message: String },
    #[error(transparent)]
    Pickle(#[from] PickleError),
    #[error(
        "data file {path}: label {label} at index {index} is not one of the {classes} classes \
         0..={max} ({why}); {hint}",
        max = classes - 1
    )]
    LabelOutOfRange {
        path: PathBuf,
        index: usize,
        label: u8,
        classes: usize,
        /// Where the class count came from.
        why: String,
        hint: String,
    },
    #[error(
        "the training labels ({files}) are all 0, so there is only one class; a classifier \
         needs at least 2: check the labels, or set `classes = K` in [data]"
    )]
    OneClass { files: String },
}

impl DataError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            DataError::Missing {
                path: path.to_path_buf(),
                dir,
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}
