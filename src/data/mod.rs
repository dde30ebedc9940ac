//! Datasets: reading CIFAR-10 (binary and python versions) and users' `.npy` files,
//! splitting, and the lab's preprocessing.
//!
//! Owns every reader of data files and the [`Dataset`] that runs borrow. May import
//! `spec` (what to read), `kernel` (padded, page-backed matrices) and `rng`/`error`.
//! Inside the folder the dependencies point one way, and nothing imports this file:
//! `cifar10` (facts), `error`, `io`, `npy` and `cifar_python` are leaves; `raw` reads
//! each format into a [`RawSplit`] through them; `fetch` installs the files and uses only
//! `cifar10`. This file makes the [`Dataset`]: class count, label checks, preprocessing.
//!
//! Raw pixels are read once, scaled by 1/255 (uint8 input only), standardised per feature
//! with the training split's mean and standard deviation, and held as one `f32` matrix per
//! split (examples in rows, so each image is contiguous); on CPUs with AVX-512, the
//! training and validation pixels are kept once more, as bytes in blocks of 16 examples,
//! for the evaluation of few runs ([`crate::kernel::Blocked`]). Every run borrows the
//! same [`Dataset`]; nothing is copied per run.

pub mod cifar10;
pub mod cifar_python;
pub mod error;
pub mod fetch;
pub(crate) mod io;
pub mod npy;
mod raw;

use std::path::PathBuf;
use std::sync::OnceLock;

use ndarray::{Array1, Array2, Axis, Zip, s};
use rayon::prelude::*;
use tracing::warn;
use xxhash_rust::xxh3::xxh3_64;

use crate::kernel::{self, Blocked, Pages};
use crate::spec::MAX_CLASSES;
pub use crate::spec::{DataSpec, Source, ValSource};
pub use cifar10::{CIFAR10_CLASSES, NUM_CLASSES};
pub use error::DataError;
use raw::{LabelFiles, read_source};
pub use raw::{RawSplit, parse_cifar10_bin};

/// The number of classes: `[data].classes`, 10 for CIFAR-10, else the largest training
/// label + 1 (refused below 2).
fn class_count(spec: &DataSpec, train: &RawSplit, files: &LabelFiles) -> Result<usize, DataError> {
    if let Some(k) = spec.classes {
        return Ok(k);
    }
    if !matches!(spec.train, Source::Npy(_)) {
        return Ok(NUM_CLASSES);
    }
    let k = usize::from(train.y.iter().copied().max().unwrap_or(0)) + 1;
    if k < 2 {
        return Err(DataError::OneClass {
            files: files
                .iter()
                .map(|(f, _)| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(k)
}

/// Refuses the first label of `y` that is not below `classes`, naming its file.
fn check_labels(
    y: &[u8],
    files: &LabelFiles,
    classes: usize,
    from_key: bool,
) -> Result<(), DataError> {
    for (path, rows) in files {
        if let Some(index) = y[rows.clone()]
            .iter()
            .position(|&l| usize::from(l) >= classes)
        {
            let (why, hint) = if from_key {
                (
                    "set by `classes` in [data]",
                    "raise `classes` to the number of classes, or fix the labels",
                )
            } else {
                (
                    "the largest training label + 1",
                    "set `classes = K` in [data] to the number of classes (at most 256), \
                     or drop the examples of classes the training split lacks",
                )
            };
            return Err(DataError::LabelOutOfRange {
                path: path.clone(),
                index,
                label: y[rows.start + index],
                classes,
                why: why.to_string(),
                hint: hint.to_string(),
            });
        }
    }
    Ok(())
}

/// Warns, one line each, about validation or test files that are training files (by
/// path or by content, [`io::same_file`]): their scores would not measure generalisation.
/// For `.npy` pairs the feature files are compared (a shared label file alone is no leak).
fn warn_reused_files(spec: &DataSpec) {
    let examples = |s: &Source| -> Vec<PathBuf> {
        match s {
            Source::Cifar10Bin(files) | Source::Cifar10Python(files) => files.clone(),
            Source::Npy(pairs) => pairs.iter().map(|(x, _)| x.clone()).collect(),
        }
    };
    let train = examples(&spec.train);
    let others = [
        match &spec.val {
            ValSource::Files(s) => Some(("validation", s)),
            ValSource::Holdout(_) => None,
        },
        spec.test.as_ref().map(|s| ("test", s)),
    ];
    for (what, source) in others.into_iter().flatten() {
        for file in examples(source) {
            if let Some(t) = train.iter().find(|t| io::same_file(&file, t)) {
                warn!(
                    "{what} file {} is the training file {}: its scores will not measure \
                     generalisation; use examples that are not trained on",
                    file.display(),
                    t.display()
                );
            }
        }
    }
}

/// One preprocessed split: standardised features (one example per row) and labels.
#[derive(Debug, Clone)]
pub struct Split {
    pub x: Array2<f32>,
    pub y: Vec<u8>,
    /// For the training and validation splits of uint8 data, on CPUs where the blocked
    /// evaluation is fast: the pixels' standardisation (factor, shift), from which
    /// [`Split::blocked`] makes its copy.
    pixel_std: Option<(Vec<f32>, Vec<f32>)>,
    blocked: OnceLock<Option<Blocked>>,
}

impl Dataset {
    /// The same data cut to its first `dims` features, without a test split: the
    /// gradient check's small model (`dims` as the lab's quick check).
    pub fn first_features(&self, dims: usize) -> Dataset {
        let cut = |split: &Split| Split {
            x: raw::padded(split.x.slice(s![.., ..dims]), Pages::Small),
            y: split.y.clone(),
            pixel_std: None,
            blocked: OnceLock::new(),
        };
        Dataset {
            train: cut(&self.train),
            val: cut(&self.val),
            test: None,
            mean: self.mean.slice(s![..dims]).to_owned(),
            std: self.std.slice(s![..dims]).to_owned(),
            classes: self.classes,
        }
    }
}

impl Split {
    /// The split's pixels in blocks for the f32 evaluation of few models ([`Blocked`]),
    /// the same values as `x` bit for bit; made from `x` the first time it is asked for
    /// (only runs scored alone or in pairs use it, so sweeps of many runs never spend the
    /// memory). `None` for other splits, or if some value of `x` is not a standardised
    /// pixel.
    pub(crate) fn blocked(&self) -> Option<&Blocked> {
        let (factor, shift) = self.pixel_std.as_ref()?;
        self.blocked
            .get_or_init(|| Blocked::from_standardised(self.x.view(), factor, shift))
            .as_ref()
    }

    pub(crate) fn len(&self) -> usize {
        self.y.len()
    }

    pub(crate) fn dim(&self) -> usize {
        self.x.ncols()
    }
}

/// The train, validation and (optional) test splits after preprocessing.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub train: Split,
    pub val: Split,
    pub test: Option<Split>,
    /// Per-feature mean of the training split (after the 1/255 scaling).
    pub mean: Array1<f64>,
    /// Per-feature standard deviation of the training split (population, ddof = 0).
    pub std: Array1<f64>,
    /// K ([`Dataset::classes`]).
    classes: usize,
}

impl Dataset {
    /// Reads every file of `spec` and preprocesses the splits.
    pub(crate) fn load(spec: &DataSpec) -> Result<Dataset, DataError> {
        // The files are read at the same time (each converted on every core as well);
        // errors are reported in split order.
        // npy labels are refused while reading when no class count can hold them: at
        // most `classes` when it is set, else what a byte holds.
        let limit = spec.classes.unwrap_or(MAX_CLASSES);
        let (train, (val, test)) = rayon::join(
            // Only the training split, read in random order, is worth huge pages (and
            // a held-out validation set is copied off it onto small ones).
            || read_source(&spec.train, "training split", limit, Pages::Huge),
            || {
                rayon::join(
                    || match &spec.val {
                        ValSource::Files(src) => {
                            Some(read_source(src, "validation split", limit, Pages::Small))
                        }
                        ValSource::Holdout(_) => None,
                    },
                    || {
                        spec.test
                            .as_ref()
                            .map(|t| read_source(t, "test split", limit, Pages::Small))
                    },
                )
            },
        );
        let (train, train_files) = train?;
        let val = val.transpose()?;
        let test = test.transpose()?;
        let classes = class_count(spec, &train, &train_files)?;
        let from_key = spec.classes.is_some();
        check_labels(&train.y, &train_files, classes, from_key)?;
        for (split, files) in val.iter().chain(&test) {
            check_labels(&split.y, files, classes, from_key)?;
        }
        let val = val.map(|(split, _)| split);
        let test = test.map(|(split, _)| split);
        let (train, val) = match (&spec.val, val) {
            (ValSource::Files(_), val) => (train, val.expect("validation files are read above")),
            (ValSource::Holdout(n), _) => {
                if *n == 0 || *n >= train.y.len() {
                    return Err(DataError::Shape {
                        what: "val_holdout".into(),
                        message: format!(
                            "cannot hold out {n} of {} training examples; use 1..{}",
                            train.y.len(),
                            train.y.len()
                        ),
                    });
                }
                train.split_tail(*n)
            }
        };
        for (what, split) in [("validation", &val)]
            .into_iter()
            .chain(test.iter().map(|t| ("test", t)))
        {
            if split.x.ncols() != train.x.ncols() {
                return Err(DataError::Shape {
                    what: format!("{what} split"),
                    message: format!(
                        "has {} input dimensions but the training split has {}",
                        split.x.ncols(),
                        train.x.ncols()
                    ),
                });
            }
        }
        warn_reused_files(spec);
        Ok(Dataset {
            classes,
            ..Self::preprocess(train, val, test)
        })
    }

    /// The number of classes K: every label of every split is in `0..K`.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The input dimension d (features per example) of every split.
    pub fn dim(&self) -> usize {
        self.train.dim()
    }

    /// Scales uint8 pixels by 1/255 and standardises every split with the training
    /// split's per-feature mean and (population) standard deviation, as the lab does.
    ///
    /// The statistics are computed in f64. Pixels become `fma(pixel, scale, shift)` in
    /// f32, with `scale = (1/255)/std` and `shift = -mean/std` rounded to f32
    /// ([`pixel_standardisation`]): within about one f32 rounding of the exact value, and
    /// a step the blocked evaluation can repeat exactly. Other values are standardised in
    /// f64 and rounded to f32 once. A feature that is constant over the training split
    /// keeps a divisor of 1.
    ///
    /// The class count is the largest label of any split + 1, at least 2 ([`Dataset::load`]
    /// sets the one the sweep file implies).
    pub(crate) fn preprocess(train: RawSplit, val: RawSplit, test: Option<RawSplit>) -> Dataset {
        let dim = train.x.ncols();
        let n = train.x.nrows() as f64;
        let classes = [Some(&train), Some(&val), test.as_ref()]
            .into_iter()
            .flatten()
            .flat_map(|raw| raw.y.iter().copied().max())
            .max()
            .map_or(2, |l| (usize::from(l) + 1).max(2));
        let scale = |raw: &RawSplit| if raw.from_bytes { 1.0 / 255.0 } else { 1.0 };
        let train_scale = scale(&train);
        // Per feature, sums over the examples in order; features are split across threads
        // in blocks, which does not change any feature's sums.
        let blocks: Vec<(Vec<f64>, Vec<f64>)> = (0..dim.div_ceil(256))
            .into_par_iter()
            .map(|block| {
                let x = train
                    .x
                    .slice(s![.., block * 256..((block + 1) * 256).min(dim)]);
                let mut mean = vec![0.0f64; x.ncols()];
                // Row slices, so the per-feature loops vectorise (each feature's sum
                // keeps its order).
                for row in x.rows() {
                    let row = row.to_slice().expect("a row's features are contiguous");
                    for (m, &v) in mean.iter_mut().zip(row) {
                        *m += f64::from(v) * train_scale;
                    }
                }
                mean.iter_mut().for_each(|m| *m /= n);
                let mut var = vec![0.0f64; x.ncols()];
                for row in x.rows() {
                    let row = row.to_slice().expect("a row's features are contiguous");
                    for ((acc, &v), &m) in var.iter_mut().zip(row).zip(&mean) {
                        let d = f64::from(v) * train_scale - m;
                        *acc += d * d;
                    }
                }
                (mean, var)
            })
            .collect();
        let mean: Array1<f64> = blocks.iter().flat_map(|b| b.0.iter().copied()).collect();
        let var: Array1<f64> = blocks.iter().flat_map(|b| b.1.iter().copied()).collect();
        let std = var.mapv(|v| {
            let s = (v / n).sqrt();
            if s > 0.0 { s } else { 1.0 }
        });
        let (mean_s, std_s) = (
            mean.as_slice().expect("contiguous"),
            std.as_slice().expect("contiguous"),
        );
        // Pixels are standardised by one f32 fused multiply-add per value, which the
        // blocked evaluation repeats on the pixels it reads; other values in f64.
        let apply = |raw: RawSplit, evaluated: bool| -> Split {
            let k = scale(&raw);
            let mut x = raw.x;
            if !raw.from_bytes {
                Zip::from(x.rows_mut()).par_for_each(|mut row| {
                    let row = row.as_slice_mut().expect("a row's features are contiguous");
                    for ((v, &m), &s) in row.iter_mut().zip(mean_s).zip(std_s) {
                        *v = ((f64::from(*v) * k - m) / s) as f32;
                    }
                });
                return Split {
                    x,
                    y: raw.y,
                    pixel_std: None,
                    blocked: OnceLock::new(),
                };
            }
            let (factor, shift) = pixel_standardisation(mean_s, std_s, k);
            Zip::from(x.rows_mut()).par_for_each(|mut row| {
                let row = row.as_slice_mut().expect("a row's features are contiguous");
                kernel::standardise(row, &factor, &shift);
            });
            Split {
                x,
                y: raw.y,
                pixel_std: (evaluated && kernel::blocked_fast()).then_some((factor, shift)),
                blocked: OnceLock::new(),
            }
        };
        Dataset {
            train: apply(train, true),
            val: apply(val, true),
            // Scored once, at the end: not worth the memory.
            test: test.map(|t| apply(t, false)),
            mean,
            std,
            classes,
        }
    }
}

/// The f32 factor and shift that standardise feature `k`'s pixels, `x = fma(pixel,
/// factor[k], shift[k])`, for pixels scaled by `pixel_scale` and the training split's
/// `mean` and `std`.
pub(crate) fn pixel_standardisation(
    mean: &[f64],
    std: &[f64],
    pixel_scale: f64,
) -> (Vec<f32>, Vec<f32>) {
    let factor = std.iter().map(|&s| (pixel_scale / s) as f32).collect();
    let shift = mean
        .iter()
        .zip(std)
        .map(|(&m, &s)| (-m / s) as f32)
        .collect();
    (factor, shift)
}

impl Dataset {
    /// A short hex digest of every preprocessed value and label, naming the data a run
    /// was trained on (not cryptographic, only a guard against mixing runs of different
    /// data in one output folder).
    ///
    /// XXH3-64 of each example's values (little-endian f32 bits), on every core, then
    /// XXH3-64 of every split's shape, row digests and labels in order: about 20 ms for
    /// CIFAR-10's 30,000 examples, where the serial FNV-1a of earlier versions took 100 ms
    /// before training could start.
    pub(crate) fn fingerprint(&self) -> String {
        let mut all = Vec::new();
        for split in [Some(&self.train), Some(&self.val), self.test.as_ref()] {
            let Some(s) = split else {
                all.extend_from_slice(&u64::MAX.to_le_bytes());
                continue;
            };
            all.extend_from_slice(&(s.len() as u64).to_le_bytes());
            all.extend_from_slice(&(s.dim() as u64).to_le_bytes());
            let rows: Vec<u64> =
                s.x.axis_iter(Axis(0))
                    .into_par_iter()
                    .map_init(Vec::new, |bytes: &mut Vec<u8>, row| {
                        let row = row.to_slice().expect("a row's features are contiguous");
                        xxh3_64(le_bytes(row, bytes))
                    })
                    .collect();
            all.extend(rows.iter().flat_map(|h| h.to_le_bytes()));
            all.extend_from_slice(&s.y);
        }
        format!("xxh3:{:016x}", xxh3_64(&all))
    }
}

/// The little-endian bytes of `v`: its own memory on a little-endian machine (no copy:
/// hashing the 369 MB of CIFAR-10 took 47 ms with the copy), else converted into `buf`.
fn le_bytes<'a>(v: &'a [f32], buf: &'a mut Vec<u8>) -> &'a [u8] {
    if cfg!(target_endian = "little") {
        // SAFETY: any f32 is 4 initialised bytes, u8 has no alignment requirement, and
        // the slice covers exactly v's memory for v's lifetime.
        unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
    } else {
        buf.clear();
        buf.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::cifar10::{CIFAR10_DIM, CIFAR10_RECORD};
    use super::raw::read_cifar10_bin;
    use super::*;
    use std::fs;
    use std::path::Path;

    fn record(label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![fill; CIFAR10_RECORD];
        r[0] = label;
        r
    }

    #[test]
    fn parses_records_and_labels() {
        let bytes = [record(3, 7), record(9, 200)].concat();
        let raw = parse_cifar10_bin(&bytes, Path::new("t.bin"), Pages::Small).unwrap();
        assert_eq!(raw.y, vec![3, 9]);
        assert_eq!(raw.x.dim(), (2, CIFAR10_DIM));
        assert_eq!(raw.x[[1, 3071]], 200.0);
    }

    #[test]
    fn splits_keep_rows_padded_by_a_cache_line() {
        // The kernels' speed depends on it (see `padded`); the values must not.
        let bytes = [record(3, 7), record(9, 200), record(1, 5)].concat();
        let raw = parse_cifar10_bin(&bytes, Path::new("t.bin"), Pages::Small).unwrap();
        let padded_stride = (CIFAR10_DIM + 16) as isize;
        assert_eq!(raw.x.strides(), &[padded_stride, 1]);
        let both = RawSplit::concat(vec![raw.clone(), raw.clone()], "train", Pages::Small).unwrap();
        assert_eq!(both.x.strides(), &[padded_stride, 1]);
        let (head, tail) = both.split_tail(2);
        for x in [&head.x, &tail.x] {
            assert_eq!(x.strides(), &[padded_stride, 1]);
        }
        assert_eq!(head.x.slice(s![..3, ..]), raw.x);
        assert_eq!(tail.x, raw.x.slice(s![1.., ..]));
        let d = Dataset::preprocess(head, tail, None);
        assert_eq!(d.train.x.strides(), &[padded_stride, 1]);
    }

    #[test]
    fn rejects_truncated_empty_and_bad_labels() {
        let p = Path::new("t.bin");
        let mut cut = record(1, 0);
        cut.pop();
        assert!(matches!(
            parse_cifar10_bin(&cut, p, Pages::Small),
            Err(DataError::Truncated { tail: 3072, .. })
        ));
        assert!(matches!(
            parse_cifar10_bin(&[], p, Pages::Small),
            Err(DataError::Empty { .. })
        ));
        let bad = [record(1, 0), record(10, 0)].concat();
        let err = parse_cifar10_bin(&bad, p, Pages::Small).unwrap_err();
        assert!(matches!(
            err,
            DataError::BadLabel {
                record: 1,
                label: 10,
                ..
            }
        ));
        assert!(err.to_string().contains("record 1"), "{err}");
    }

    /// Pixels: one f32 fused multiply-add each, and the blocked copy (training and
    /// validation splits, where the CPU has AVX-512) holds the same values.
    #[test]
    fn standardises_pixels_by_one_rounding() {
        let raw = |n: usize, seed: usize| RawSplit {
            x: Array2::from_shape_fn((n, 7), |(i, k)| ((i * 31 + k * 17 + seed) % 256) as f32),
            y: vec![0; n],
            from_bytes: true,
        };
        let (train, val, test) = (raw(40, 0), raw(21, 5), raw(3, 9));
        let pixels = [train.x.clone(), val.x.clone(), test.x.clone()];
        let d = Dataset::preprocess(train, val, Some(test));
        let (factor, shift) = pixel_standardisation(
            d.mean.as_slice().unwrap(),
            d.std.as_slice().unwrap(),
            1.0 / 255.0,
        );
        let splits = [&d.train, &d.val, d.test.as_ref().unwrap()];
        for (split, raw) in splits.iter().zip(&pixels) {
            for ((i, k), &p) in raw.indexed_iter() {
                let want = p.mul_add(factor[k], shift[k]);
                assert_eq!(split.x[[i, k]].to_bits(), want.to_bits());
                let exact = (f64::from(p) / 255.0 - d.mean[k]) / d.std[k];
                assert!((f64::from(want) - exact).abs() < 1e-6 * exact.abs().max(1.0));
                if let Some(b) = split.blocked() {
                    assert_eq!(b.value(i, k).to_bits(), want.to_bits());
                }
            }
        }
        assert_eq!(d.train.blocked().is_some(), kernel::blocked_fast());
        assert_eq!(d.val.blocked().is_some(), kernel::blocked_fast());
        assert!(
            d.test.as_ref().unwrap().blocked().is_none(),
            "scored once: not kept"
        );
    }

    #[test]
    fn standardises_with_training_statistics() {
        let raw = |rows: &[[f32; 2]]| RawSplit {
            x: Array2::from_shape_vec((rows.len(), 2), rows.iter().flatten().copied().collect())
                .unwrap(),
            y: vec![0; rows.len()],
            from_bytes: false,
        };
        let train = raw(&[[1.0, 5.0], [3.0, 5.0]]);
        let val = raw(&[[2.0, 6.0]]);
        let d = Dataset::preprocess(train, val, None);
        assert_eq!(d.mean.to_vec(), vec![2.0, 5.0]);
        assert_eq!(d.std.to_vec(), vec![1.0, 1.0]);
        assert_eq!(d.train.x.row(0).to_vec(), vec![-1.0, 0.0]);
        assert_eq!(d.val.x.row(0).to_vec(), vec![0.0, 1.0]);
    }

    #[test]
    fn the_fingerprint_names_every_value_label_and_split() {
        let split = |seed: f32, n: usize| Split {
            x: Array2::from_shape_fn((n, 5), |(i, j)| seed + (i * 5 + j) as f32),
            y: (0..n).map(|i| (i % NUM_CLASSES) as u8).collect(),
            pixel_std: None,
            blocked: OnceLock::new(),
        };
        let base = || Dataset {
            train: split(0.5, 4),
            val: split(-1.0, 3),
            test: Some(split(2.0, 2)),
            mean: Array1::zeros(5),
            std: Array1::ones(5),
            classes: NUM_CLASSES,
        };
        let key = base().fingerprint();
        assert!(key.starts_with("xxh3:") && key.len() == 5 + 16, "{key}");
        assert_eq!(key, base().fingerprint());
        let mut d = base();
        d.val.x[[2, 4]] = f32::from_bits(d.val.x[[2, 4]].to_bits() ^ 1);
        assert_ne!(d.fingerprint(), key, "one value's last bit");
        let mut d = base();
        d.train.y[3] = 9;
        assert_ne!(d.fingerprint(), key, "one label");
        let mut d = base();
        d.test = None;
        assert_ne!(d.fingerprint(), key, "no test split");
        let mut d = base();
        std::mem::swap(&mut d.train, &mut d.val);
        assert_ne!(d.fingerprint(), key, "splits swapped");
    }

    #[test]
    fn loader_matches_the_published_facts() {
        let Some(dir) = crate::testing::shared_cifar10() else {
            return;
        };
        let counts = |y: &[u8]| {
            let mut c = [0usize; 10];
            y.iter().for_each(|&l| c[usize::from(l)] += 1);
            c
        };
        let b1 = read_cifar10_bin(&dir.join("data_batch_1.bin"), Pages::Small).unwrap();
        assert_eq!(b1.y[0], 6);
        let red: Vec<f32> = b1.x.row(0).iter().take(12).copied().collect();
        assert_eq!(
            red,
            [
                59., 43., 50., 68., 98., 119., 139., 145., 149., 149., 131., 125.
            ]
        );
        assert_eq!(
            counts(&b1.y),
            [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]
        );
        let b2 = read_cifar10_bin(&dir.join("data_batch_2.bin"), Pages::Small).unwrap();
        assert_eq!(
            counts(&b2.y),
            [984, 1007, 1010, 995, 1010, 988, 1008, 1026, 987, 985]
        );
        let t = read_cifar10_bin(&dir.join("test_batch.bin"), Pages::Small).unwrap();
        assert_eq!(t.y[0], 3);
        assert_eq!(
            t.x.row(0).iter().take(5).copied().collect::<Vec<_>>(),
            [158., 159., 165., 166., 160.]
        );
        assert_eq!(counts(&t.y), [1000; 10]);
    }

    #[test]
    fn shipped_sample_is_the_head_of_the_real_files() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/cifar10-sample");
        let s = read_cifar10_bin(&sample.join("data_batch_1.bin"), Pages::Small).unwrap();
        assert_eq!(s.y.len(), 1000);
        assert_eq!(s.y[0], 6);
        let Some(dir) = crate::testing::shared_cifar10() else {
            return;
        };
        let full = read_cifar10_bin(&dir.join("data_batch_1.bin"), Pages::Small).unwrap();
        assert_eq!(full.x.slice(s![..1000, ..]), s.x);
    }

    /// Writes an npy pair of `labels.len()` examples with 4 float features.
    fn npy_pair(dir: &Path, name: &str, labels: &[i64]) -> (PathBuf, PathBuf) {
        use ndarray_npy::WriteNpyExt;
        let (x, y) = (
            dir.join(format!("{name}_x.npy")),
            dir.join(format!("{name}_y.npy")),
        );
        let n = labels.len();
        Array2::from_shape_fn((n, 4), |(i, j)| (i * 4 + j) as f32)
            .write_npy(fs::File::create(&x).unwrap())
            .unwrap();
        Array1::from(labels.to_vec())
            .write_npy(fs::File::create(&y).unwrap())
            .unwrap();
        (x, y)
    }

    fn npy_spec(
        train: (PathBuf, PathBuf),
        val: (PathBuf, PathBuf),
        classes: Option<usize>,
    ) -> DataSpec {
        DataSpec {
            train: Source::Npy(vec![train]),
            val: ValSource::Files(Source::Npy(vec![val])),
            test: None,
            classes,
        }
    }

    #[test]
    fn classes_come_from_the_key_or_the_largest_training_label() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let train = npy_pair(d, "train", &[0, 2, 1, 2, 0]);
        let val = npy_pair(d, "val", &[1, 0]);
        let data = Dataset::load(&npy_spec(train.clone(), val.clone(), None)).unwrap();
        assert_eq!((data.classes(), data.dim()), (3, 4));
        let data = Dataset::load(&npy_spec(train.clone(), val.clone(), Some(7))).unwrap();
        assert_eq!(data.classes(), 7);
        // 200 classes: labels beyond CIFAR-10's 0..9 are fine.
        let wide = npy_pair(d, "wide", &[0, 199, 5]);
        assert_eq!(
            Dataset::load(&npy_spec(wide, val.clone(), None))
                .unwrap()
                .classes(),
            200
        );
        // CIFAR-10 has 10 classes whatever labels a subset holds.
        let bin = d.join("two.bin");
        fs::write(&bin, [record(1, 0), record(2, 0)].concat()).unwrap();
        let spec = DataSpec {
            train: Source::Cifar10Bin(vec![bin.clone()]),
            val: ValSource::Files(Source::Cifar10Bin(vec![bin])),
            test: None,
            classes: None,
        };
        assert_eq!(Dataset::load(&spec).unwrap().classes(), NUM_CLASSES);
    }

    #[test]
    fn labels_beyond_the_classes_are_refused_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let train = npy_pair(d, "train", &[0, 1, 1]);
        let val = npy_pair(d, "val", &[1, 0, 2]);
        let err = Dataset::load(&npy_spec(train.clone(), val.clone(), None)).unwrap_err();
        assert!(
            matches!(&err, DataError::LabelOutOfRange { path, index: 2, label: 2, classes: 2, .. } if path == &val.1),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("val_y.npy")
                && text.contains("largest training label + 1")
                && text.contains("set `classes = K`"),
            "{text}"
        );
        // With the key, training labels are checked too (while reading).
        let err = Dataset::load(&npy_spec(val.clone(), train.clone(), Some(2))).unwrap_err();
        assert!(
            err.to_string()
                .contains("label 2 at index 2 is not a class 0..=1"),
            "{err}"
        );
        let zeros = npy_pair(d, "zeros", &[0, 0]);
        let err = Dataset::load(&npy_spec(zeros, val.clone(), None)).unwrap_err();
        assert!(matches!(err, DataError::OneClass { .. }), "{err:?}");
        let big = npy_pair(d, "big", &[0, 256]);
        let err = Dataset::load(&npy_spec(big, val, None)).unwrap_err();
        assert!(err.to_string().contains("at most 256 classes"), "{err}");
    }
}
