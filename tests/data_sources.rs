//! The data sources through the real binary: the CIFAR-10 python version (named or
//! inferred from a `cifar-10-batches-py`-style folder) trains to the same weights as the
//! binary version of the same records; validation or test files that are the training
//! files are warned about; labels beyond the classes are refused naming the file.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{RECORD, sample_dir, sweep};

/// Records per file of the python fixtures (`tests/fixtures/make_pickles.py`): the first
/// 50 of each file of the shipped sample.
const RECORDS: usize = 50;

fn python_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cifar-10-batches-py-mini")
}

/// The first `RECORDS` records of the sample's binary files, in `dir`.
fn binary_head(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    for name in ["data_batch_1.bin", "data_batch_2.bin", "test_batch.bin"] {
        let bytes = fs::read(sample_dir().join(name)).unwrap();
        fs::write(dir.join(name), &bytes[..RECORDS * RECORD]).unwrap();
    }
}

const BODY: &str =
    "[train]\nepochs = 2\nbatch_size = 10\nseed = [1, 2]\n\n[[grid]]\neta = [0.1, 0.01]\n";

/// Runs `sweep run` and returns stderr; the exit code must be `code`.
fn run(spec: &Path, out: &Path, code: i32) -> String {
    let assert = sweep()
        .arg("run")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .assert()
        .code(code);
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

/// Each run's weights and metrics, by run id.
fn weights(sweep_dir: &Path) -> Vec<(String, Vec<Vec<u8>>)> {
    let mut runs: Vec<_> = fs::read_dir(sweep_dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|run| run.join("W.npy").is_file())
        .map(|run| {
            let files = ["W.npy", "b.npy", "metrics.csv"]
                .map(|f| fs::read(run.join(f)).unwrap())
                .to_vec();
            (
                run.file_name().unwrap().to_string_lossy().into_owned(),
                files,
            )
        })
        .collect();
    runs.sort();
    runs
}

#[test]
fn the_python_version_trains_to_the_binary_versions_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    binary_head(&bin);
    let spec = |name: &str, data: String| {
        let path = tmp.path().join(format!("{name}.toml"));
        fs::write(&path, format!("name = \"{name}\"\n{data}\n{BODY}")).unwrap();
        path
    };
    let bin_spec = spec(
        "bin",
        format!(
            "[data]\nformat = \"cifar10-bin\"\ndir = \"{}\"\ntrain = [\"data_batch_1.bin\"]\nval = [\"data_batch_2.bin\"]\ntest = [\"test_batch.bin\"]\n",
            bin.display()
        ),
    );
    let files = "train = [\"data_batch_1\"]\nval = [\"data_batch_2\"]\ntest = [\"test_batch\"]\n";
    let named = spec(
        "named",
        format!(
            "[data]\nformat = \"cifar10-python\"\ndir = \"{}\"\n{files}",
            python_fixtures().display()
        ),
    );
    // No `format`: the folder holds the python version's batch files.
    let inferred = spec(
        "inferred",
        format!("[data]\ndir = \"{}\"\n{files}", python_fixtures().display()),
    );
    let out = tmp.path().join("out");
    for s in [&bin_spec, &named, &inferred] {
        let stderr = run(s, &out, 0);
        assert!(!stderr.contains("WARN"), "{stderr}");
    }
    let want = weights(&out.join("bin"));
    assert_eq!(want.len(), 4);
    assert_eq!(weights(&out.join("named")), want);
    assert_eq!(weights(&out.join("inferred")), want);
    assert!(out.join("inferred/summary.csv").is_file());
}

#[test]
fn validation_or_test_files_that_are_training_files_are_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    binary_head(&bin);
    // The test file is a copy of the training file: the same content by another name.
    fs::copy(bin.join("data_batch_1.bin"), bin.join("copy.bin")).unwrap();
    let path = tmp.path().join("leak.toml");
    fs::write(
        &path,
        format!(
            "[data]\ndir = \"{}\"\ntrain = [\"data_batch_1.bin\"]\nval = [\"./data_batch_1.bin\"]\ntest = [\"copy.bin\"]\n\n[train]\nepochs = 1\nbatch_size = 10\n",
            bin.display()
        ),
    )
    .unwrap();
    let stderr = run(&path, &tmp.path().join("out"), 0);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].contains("validation file")
            && lines[0].contains("./data_batch_1.bin")
            && lines[0].contains("is the training file")
            && lines[0].ends_with("data_batch_1.bin: its scores will not measure generalisation; use examples that are not trained on"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("test file") && lines[1].contains("copy.bin"),
        "{}",
        lines[1]
    );
    // Different files of the same size (every CIFAR-10 batch) are not warned about.
    fs::write(
        &path,
        format!(
            "[data]\ndir = \"{}\"\ntrain = [\"data_batch_1.bin\"]\nval = [\"data_batch_2.bin\"]\n\n[train]\nepochs = 1\nbatch_size = 10\n",
            bin.display()
        ),
    )
    .unwrap();
    let stderr = run(&path, &tmp.path().join("out2"), 0);
    assert!(!stderr.contains("WARN"), "{stderr}");
}

/// Writes `X` (n x 8 float32) and `y` (int64) for `labels` into `dir`.
fn npy(dir: &Path, name: &str, labels: &[i64]) {
    use ndarray_npy::WriteNpyExt;
    let n = labels.len();
    ndarray::Array2::from_shape_fn((n, 8), |(i, j)| ((i * 7 + j * 3) % 11) as f32)
        .write_npy(fs::File::create(dir.join(format!("{name}_x.npy"))).unwrap())
        .unwrap();
    ndarray::Array1::from(labels.to_vec())
        .write_npy(fs::File::create(dir.join(format!("{name}_y.npy"))).unwrap())
        .unwrap();
}

#[test]
fn npy_labels_beyond_the_classes_exit_2_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    npy(d, "train", &[0, 1, 2, 1, 0, 2]);
    npy(d, "val", &[0, 3, 1]);
    let data = format!(
        "[data]\nformat = \"npy\"\ndir = \"{}\"\ntrain = [{{ x = \"train_x.npy\", y = \"train_y.npy\" }}]\nval = [{{ x = \"val_x.npy\", y = \"val_y.npy\" }}]\n",
        d.display()
    );
    let cases = [
        (
            "",
            "val_y.npy: label 3 at index 1 is not one of the 3 classes 0..=2 (the largest training label + 1); set `classes = K` in [data]",
        ),
        (
            "classes = 3\n",
            "val_y.npy: label 3 at index 1 is not a class 0..=2: `classes = 3` in [data] allows 0..=2; raise it, or fix the labels",
        ),
        (
            "classes = 1\n",
            "s.toml:6:11: `data.classes` must be a whole number from 2 to 256, found 1",
        ),
    ];
    for (extra, want) in cases {
        let spec = d.join("s.toml");
        fs::write(
            &spec,
            format!("{data}{extra}\n[train]\nepochs = 1\nbatch_size = 2\n"),
        )
        .unwrap();
        let stderr = run(&spec, &d.join("out"), 2);
        assert!(stderr.contains(want), "{extra}: {stderr}");
        assert!(!d.join("out").exists(), "{extra}: nothing is written");
    }
}
