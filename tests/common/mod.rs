//! Helpers shared by the integration tests of the `sweep` binary: a command for the real
//! binary, sweep files that point at the shipped CIFAR-10 sample, and snapshots of
//! output folders to compare before and after.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use ndarray::{Array1, Array2};
use ndarray_npy::WriteNpyExt;

/// The CIFAR-10 sample that ships in the repository (1,000 records per file).
pub fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/cifar10-sample")
}

/// Training examples in the sample's `data_batch_1.bin`.
pub const SAMPLE_TRAIN: usize = 1000;

/// Bytes per CIFAR-10 binary record: one label byte and 32 x 32 x 3 pixels.
pub const RECORD: usize = 1 + 3072;

/// The real CIFAR-10 binary files in `../shared/data/cifar-10-batches-bin`, if present.
///
/// Absent on a developer's machine, the calling test prints why (past the harness's
/// capture, so the line shows) and should return; under CI (`CI=true`), which has the
/// files, their absence fails the test, so CI cannot skip it by accident.
pub fn shared_cifar10() -> Option<PathBuf> {
    use std::io::Write;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cifar-10-batches-bin");
    if dir.join("data_batch_1.bin").is_file() {
        return Some(dir);
    }
    let why = format!("the real CIFAR-10 files are not at {}", dir.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}, and CI=true requires them");
    }
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
    None
}

/// A small deterministic generator in [0, 1), so the fixtures are the same every run.
pub fn noise(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

/// Writes `X_<split>.npy` (n x d, float32) and `y_<split>.npy` (n labels in 0..classes).
pub fn write_npy_split(dir: &Path, split: &str, n: usize, d: usize, classes: usize, seed: u64) {
    let mut state = seed;
    let y = Array1::<i64>::from_shape_fn(n, |i| (i % classes) as i64);
    // Features that depend on the class a little, so training has something to learn.
    let x = Array2::<f32>::from_shape_fn((n, d), |(i, j)| {
        (noise(&mut state) - 0.5) as f32 + if j == (i % classes) { 1.0 } else { 0.0 }
    });
    x.write_npy(fs::File::create(dir.join(format!("X_{split}.npy"))).unwrap())
        .unwrap();
    y.write_npy(fs::File::create(dir.join(format!("y_{split}.npy"))).unwrap())
        .unwrap();
}

/// The real `sweep` binary, with logging at its default level and no colour, so stderr
/// is plain text that tests can search.
pub fn sweep() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sweep"));
    cmd.env_remove("SWEEP_LOG")
        .env("NO_COLOR", "1")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_COUNT");
    cmd
}

/// The `[data]` section for the sample: train on batch 1, validate on batch 2, test on
/// the test batch (absolute paths, so the sweep file may live anywhere).
pub fn sample_data_section() -> String {
    format!(
        "[data]\nformat = \"cifar10-bin\"\ndir = \"{}\"\ntrain = [\"data_batch_1.bin\"]\nval = [\"data_batch_2.bin\"]\ntest = [\"test_batch.bin\"]\n",
        sample_dir().display()
    )
}

/// Writes `body` after a `name` line and the sample `[data]` section to `dir/file`.
pub fn write_sample_spec(dir: &Path, file: &str, name: &str, body: &str) -> PathBuf {
    let text = format!("name = \"{name}\"\n{}\n{body}", sample_data_section());
    let path = dir.join(file);
    fs::write(&path, text).unwrap();
    path
}

/// One entry of a folder snapshot: a folder, or a file with its bytes, modification time
/// and inode (a file replaced by rename gets a new inode even if its bytes are equal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File {
        bytes: Vec<u8>,
        mtime_ns: i128,
        inode: u64,
    },
}

/// Every folder and file under `root`, by path relative to `root`. An absent `root`
/// gives an empty map.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(root).unwrap().to_path_buf();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            out.insert(rel, Entry::Dir);
            walk(root, &path, out);
        } else {
            out.insert(
                rel,
                Entry::File {
                    bytes: fs::read(&path).unwrap(),
                    mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
                    inode: meta.ino(),
                },
            );
        }
    }
}

/// Whether any component of `rel` starts with a dot (lock files, temporary folders).
pub fn is_hidden(rel: &Path) -> bool {
    rel.components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
}

/// The names in `dir` that do not start with a dot, sorted.
pub fn visible_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// A CSV file as its header and rows of strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn read(path: &Path) -> Table {
        let mut r = csv::Reader::from_path(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let header = r.headers().unwrap().iter().map(String::from).collect();
        let rows = r
            .records()
            .map(|rec| rec.unwrap().iter().map(String::from).collect())
            .collect();
        Table { header, rows }
    }

    /// The index of `column`; panics if it is absent.
    pub fn col(&self, column: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == column)
            .unwrap_or_else(|| panic!("no column {column} in {:?}", self.header))
    }

    /// The values of `column`, in row order.
    pub fn column(&self, column: &str) -> Vec<&str> {
        let i = self.col(column);
        self.rows.iter().map(|r| r[i].as_str()).collect()
    }

    /// The table without `column` (if it has one).
    pub fn without(&self, column: &str) -> Table {
        match self.header.iter().position(|h| h == column) {
            None => self.clone(),
            Some(i) => {
                let drop = |v: &Vec<String>| {
                    let mut v = v.clone();
                    v.remove(i);
                    v
                };
                Table {
                    header: drop(&self.header),
                    rows: self.rows.iter().map(drop).collect(),
                }
            }
        }
    }
}

/// The header of a `.npy` file (format version 1.0): its dtype descr, fortran_order and
/// shape, checked against the data length.
#[derive(Debug, PartialEq)]
pub struct NpyHeader {
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
}

pub fn npy_header(path: &Path) -> NpyHeader {
    let bytes = fs::read(path).unwrap();
    assert_eq!(
        &bytes[..6],
        b"\x93NUMPY",
        "{} is not a .npy file",
        path.display()
    );
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let dict = std::str::from_utf8(&bytes[start..start + len]).unwrap();
    let field = |key: &str| -> &str {
        let at = dict
            .find(&format!("'{key}':"))
            .unwrap_or_else(|| panic!("no {key} in {dict}"));
        dict[at + key.len() + 3..].trim_start()
    };
    let descr = field("descr");
    let descr = descr[1..descr[1..].find('\'').unwrap() + 1].to_string();
    let fortran_order = field("fortran_order").starts_with("True");
    let shape_text = field("shape");
    let shape: Vec<usize> = shape_text[1..shape_text.find(')').unwrap()]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let item = match descr.as_str() {
        "<f4" => 4,
        "<f8" => 8,
        other => panic!("unexpected dtype {other} in {}", path.display()),
    };
    assert_eq!(
        bytes.len() - start - len,
        item * shape.iter().product::<usize>(),
        "{}: data length does not match the header",
        path.display()
    );
    NpyHeader {
        descr,
        fortran_order,
        shape,
    }
}
