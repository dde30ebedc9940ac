//! Raw examples as read from disk, one reader per format (CIFAR-10 binary and python
//! versions, `.npy` pairs) into [`RawSplit`]s on padded rows. Imports the leaves of
//! `data/` (`cifar10`, `error`, `npy`, `cifar_python`), `spec` (the sources) and `kernel`
//! (padded matrices); never `data/mod.rs`.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ndarray::{Array2, Zip, s};
use rayon::prelude::*;

use super::cifar10::{CIFAR10_DIM, CIFAR10_RECORD, NUM_CLASSES};
use super::error::DataError;
use super::{cifar_python, npy};
use crate::kernel::{Pages, padded_zeros};
use crate::spec::Source;

/// `x` copied into rows padded by one cache line ([`padded_zeros`]).
///
/// Every split is held this way. Unpadded, a CIFAR-10 row is exactly 3 x 4096 bytes, so
/// the same feature of every example falls in the same L1 cache set, and the gradient
/// product, which reads one feature range of all the rows of a batch at once, misses L1
/// on nearly every load.
pub(crate) fn padded(x: ndarray::ArrayView2<f32>, pages: Pages) -> Array2<f32> {
    let mut out = padded_zeros(x.nrows(), x.ncols(), pages);
    out.assign(&x);
    out
}

/// Raw examples as read from disk: pixel values (uint8 files give 0..=255) and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSplit {
    /// One example per row.
    pub x: Array2<f32>,
    /// The label of each row, in `0..K` (K = [`Dataset::classes`]).
    pub y: Vec<u8>,
    /// Whether `x` came from uint8 pixels (and so is scaled by 1/255 before use).
    pub from_bytes: bool,
}

impl RawSplit {
    pub(crate) fn concat(
        parts: Vec<RawSplit>,
        what: &str,
        pages: Pages,
    ) -> Result<RawSplit, DataError> {
        let Some(first) = parts.first() else {
            return Err(DataError::Shape {
                what: what.to_string(),
                message: "no files given".into(),
            });
        };
        let (dim, from_bytes) = (first.x.ncols(), first.from_bytes);
        if let Some(bad) = parts.iter().find(|p| p.x.ncols() != dim) {
            return Err(DataError::Shape {
                what: what.to_string(),
                message: format!(
                    "files disagree on the input dimension ({dim} vs {})",
                    bad.x.ncols()
                ),
            });
        }
        if parts.len() == 1 {
            return Ok(parts.into_iter().next().expect("one part"));
        }
        let rows = parts.iter().map(|p| p.x.nrows()).sum();
        let mut x = padded_zeros(rows, dim, pages);
        let mut start = 0;
        for p in &parts {
            x.slice_mut(s![start..start + p.x.nrows(), ..]).assign(&p.x);
            start += p.x.nrows();
        }
        let y = parts.iter().flat_map(|p| p.y.iter().copied()).collect();
        Ok(RawSplit {
            x,
            y,
            from_bytes: from_bytes && parts.iter().all(|p| p.from_bytes),
        })
    }

    /// The last `n` examples split off into a second set. Only they are copied (onto
    /// small pages): the first keep their rows, and pages, in place, as the training split.
    pub(crate) fn split_tail(self, n: usize) -> (RawSplit, RawSplit) {
        let keep = self.x.nrows() - n;
        let tail_x = padded(self.x.slice(s![keep.., ..]), Pages::Small);
        let head = RawSplit {
            x: self.x.slice_move(s![..keep, ..]),
            y: self.y[..keep].to_vec(),
            from_bytes: self.from_bytes,
        };
        let tail = RawSplit {
            x: tail_x,
            y: self.y[keep..].to_vec(),
            from_bytes: self.from_bytes,
        };
        (head, tail)
    }
}

/// Reads one CIFAR-10 binary batch file, checking its length and every label; the
/// examples go on `pages`.
pub(crate) fn read_cifar10_bin(path: &Path, pages: Pages) -> Result<RawSplit, DataError> {
    let bytes = fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_cifar10_bin(&bytes, path, pages)
}

/// Parses the bytes of a CIFAR-10 binary batch file (`path` only names it in errors).
pub fn parse_cifar10_bin(bytes: &[u8], path: &Path, pages: Pages) -> Result<RawSplit, DataError> {
    let y = cifar10_labels(bytes, path)?;
    let mut x = padded_zeros::<f32>(y.len(), CIFAR10_DIM, pages);
    cifar10_pixels(bytes, x.view_mut());
    Ok(RawSplit {
        x,
        y,
        from_bytes: true,
    })
}

/// The labels of a CIFAR-10 binary batch file's bytes, after checking its length and
/// every label.
fn cifar10_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    if bytes.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    if !bytes.len().is_multiple_of(CIFAR10_RECORD) {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
            tail: (bytes.len() % CIFAR10_RECORD) as u64,
        });
    }
    let y: Vec<u8> = bytes.chunks_exact(CIFAR10_RECORD).map(|r| r[0]).collect();
    if let Some(record) = y.iter().position(|&l| usize::from(l) >= NUM_CLASSES) {
        return Err(DataError::BadLabel {
            path: path.to_path_buf(),
            record,
            offset: record * CIFAR10_RECORD,
            label: u64::from(y[record]),
        });
    }
    Ok(y)
}

/// Writes the pixels of a checked batch's records into the rows of `x`, on every core:
/// the first write to each fresh page of `x` is where the kernel zeroes it, a large part
/// of loading.
fn cifar10_pixels(bytes: &[u8], mut x: ndarray::ArrayViewMut2<f32>) {
    x.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .zip(bytes.par_chunks_exact(CIFAR10_RECORD))
        .for_each(|(mut row, record)| {
            for (dst, &src) in row.iter_mut().zip(&record[1..]) {
                *dst = f32::from(src);
            }
        });
}

/// Several CIFAR-10 binary batch files as one split on `pages`: the files' bytes are
/// read and checked first, then converted straight into the split's rows, so the split
/// is the only f32 copy ever made (five training batches: 0.6 GB, where converting each
/// file and then concatenating held 1.2 GB at once).
fn read_cifar10_bins(files: &[PathBuf], pages: Pages) -> Result<(RawSplit, LabelFiles), DataError> {
    let mut parts = Vec::with_capacity(files.len());
    for f in files {
        let bytes = fs::read(f).map_err(|e| DataError::io(f, e))?;
        let y = cifar10_labels(&bytes, f)?;
        parts.push((bytes, y));
    }
    let rows = parts.iter().map(|(_, y)| y.len()).sum();
    let mut x = padded_zeros::<f32>(rows, CIFAR10_DIM, pages);
    let (mut start, mut label_files, mut labels) = (0, Vec::new(), Vec::with_capacity(rows));
    for ((bytes, y), f) in parts.into_iter().zip(files) {
        let range = start..start + y.len();
        cifar10_pixels(&bytes, x.slice_mut(s![range.clone(), ..]));
        labels.extend_from_slice(&y);
        label_files.push((f.clone(), range));
        start += y.len();
    }
    let split = RawSplit {
        x,
        y: labels,
        from_bytes: true,
    };
    Ok((split, label_files))
}

/// Reads one CIFAR-10 python-version batch (a pickle, parsed without executing code).
pub(crate) fn read_cifar10_python(path: &Path, pages: Pages) -> Result<RawSplit, DataError> {
    if !path.exists() {
        return Err(DataError::io(
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let (x, y) = cifar_python::read_batch(path)?;
    let mut xf = padded_zeros(x.nrows(), x.ncols(), pages);
    Zip::from(&mut xf)
        .and(&x)
        .for_each(|d, &v| *d = f32::from(v));
    Ok(RawSplit {
        x: xf,
        y,
        from_bytes: true,
    })
}

/// Reads a users' `.npy` pair: X (N x d; uint8, float32 or float64) and y (N integer
/// labels, each below `classes`).
pub(crate) fn read_npy_pair(
    x_path: &Path,
    y_path: &Path,
    classes: usize,
    pages: Pages,
) -> Result<RawSplit, DataError> {
    let (x, from_bytes) = npy::read_features(x_path)?;
    let y = npy::read_labels(y_path, classes)?;
    if x.nrows() != y.len() {
        return Err(DataError::Shape {
            what: format!("{} and {}", x_path.display(), y_path.display()),
            message: format!(
                "X has {} rows but y has {} labels; they must describe the same examples",
                x.nrows(),
                y.len()
            ),
        });
    }
    Ok(RawSplit {
        x: padded(x.view(), pages),
        y,
        from_bytes,
    })
}

/// The file that holds each example's label, as rows of a split: one entry per file read.
pub(crate) type LabelFiles = Vec<(PathBuf, Range<usize>)>;

/// Reads every file of this source into one split on `pages` (the parts too, when
/// there is only one), with the file each label came from. npy labels must be below
/// `classes`.
pub(crate) fn read_source(
    source: &Source,
    what: &str,
    classes: usize,
    pages: Pages,
) -> Result<(RawSplit, LabelFiles), DataError> {
    // Several parts are copied into one split: only that copy needs `pages`.
    let single = match source {
        Source::Cifar10Bin(files) | Source::Cifar10Python(files) => files.len() == 1,
        Source::Npy(pairs) => pairs.len() == 1,
    };
    let part_pages = if single { pages } else { Pages::Small };
    let (parts, label_files): (Vec<RawSplit>, Vec<PathBuf>) = match source {
        Source::Cifar10Bin(files) if !single => return read_cifar10_bins(files, pages),
        Source::Cifar10Bin(files) => files
            .iter()
            .map(|f| Ok((read_cifar10_bin(f, part_pages)?, f.clone())))
            .collect::<Result<Vec<_>, DataError>>()?,
        Source::Npy(pairs) => pairs
            .iter()
            .map(|(x, y)| Ok((read_npy_pair(x, y, classes, part_pages)?, y.clone())))
            .collect::<Result<Vec<_>, DataError>>()?,
        Source::Cifar10Python(files) => files
            .iter()
            .map(|f| Ok((read_cifar10_python(f, part_pages)?, f.clone())))
            .collect::<Result<Vec<_>, DataError>>()?,
    }
    .into_iter()
    .unzip();
    let mut start = 0;
    let rows = label_files
        .into_iter()
        .zip(&parts)
        .map(|(file, part)| {
            start += part.y.len();
            (file, start - part.y.len()..start)
        })
        .collect();
    Ok((RawSplit::concat(parts, what, pages)?, rows))
}
