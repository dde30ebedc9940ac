//! The python-version reader against fixture pickles written by real Python
//! (`tests/fixtures/make_pickles.py`) from the first 50 records of the binary
//! sample in `data/cifar10-sample/`.

use std::path::{Path, PathBuf};

use sweep::data::cifar_python::{self, IMAGE_BYTES, PickleError};

const RECORDS: usize = 50;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn mini(name: &str) -> PathBuf {
    root()
        .join("tests/fixtures/cifar-10-batches-py-mini")
        .join(name)
}

/// Reads the first `RECORDS` records of a binary-version file directly.
fn binary_records(name: &str) -> (Vec<u8>, Vec<u8>) {
    let raw = std::fs::read(root().join("data/cifar10-sample").join(name)).unwrap();
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for record in raw.chunks_exact(1 + IMAGE_BYTES).take(RECORDS) {
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    (pixels, labels)
}

#[test]
fn python_and_binary_versions_load_to_identical_arrays() {
    for (py, bin) in [
        ("data_batch_1", "data_batch_1.bin"),
        ("data_batch_2", "data_batch_2.bin"),
        ("test_batch", "test_batch.bin"),
    ] {
        let (pixels, labels) = cifar_python::read_batch(&mini(py)).unwrap();
        let (want_pixels, want_labels) = binary_records(bin);
        assert_eq!(pixels.dim(), (RECORDS, IMAGE_BYTES), "{py}");
        assert_eq!(pixels.as_slice().unwrap(), want_pixels.as_slice(), "{py}");
        assert_eq!(labels, want_labels, "{py}");
    }
}

#[test]
fn known_first_records() {
    // Facts from shared/data/README.md about the official files.
    let (pixels, labels) = cifar_python::read_batch(&mini("data_batch_1")).unwrap();
    assert_eq!(labels[0], 6);
    let red: Vec<u8> = pixels.row(0).iter().take(12).copied().collect();
    assert_eq!(red, [59, 43, 50, 68, 98, 119, 139, 145, 149, 149, 131, 125]);
    let (pixels, labels) = cifar_python::read_batch(&mini("test_batch")).unwrap();
    assert_eq!(labels[0], 3);
    let red: Vec<u8> = pixels.row(0).iter().take(5).copied().collect();
    assert_eq!(red, [158, 159, 165, 166, 160]);
}

#[test]
fn python2_encoding_of_the_official_files_reads_the_same() {
    let py2 = root().join("tests/fixtures/cifar-10-batches-py2-style/data_batch_1");
    let a = cifar_python::read_batch(&py2).unwrap();
    let b = cifar_python::read_batch(&mini("data_batch_1")).unwrap();
    assert_eq!(a, b);
}

#[test]
fn label_names_from_batches_meta() {
    let names = cifar_python::read_label_names(&mini("batches.meta")).unwrap();
    assert_eq!(names, sweep::data::CIFAR10_CLASSES);
}

#[test]
fn batches_meta_is_not_a_batch() {
    let err = cifar_python::read_batch(&mini("batches.meta")).unwrap_err();
    assert!(matches!(err, PickleError::Structure { .. }), "{err}");
    assert!(err.to_string().contains("batches.meta"), "{err}");
}

#[test]
fn truncated_and_corrupted_files_are_errors() {
    let full = std::fs::read(mini("data_batch_1")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_1");
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    let err = cifar_python::read_batch(&path).unwrap_err();
    assert!(matches!(err, PickleError::Truncated { .. }), "{err}");

    let mut bad = full.clone();
    bad[1] = 5;
    std::fs::write(&path, &bad).unwrap();
    let err = cifar_python::read_batch(&path).unwrap_err();
    assert!(
        matches!(err, PickleError::UnsupportedProtocol { protocol: 5, .. }),
        "{err}"
    );
}

#[test]
fn python_layout_detection() {
    assert!(cifar_python::is_python_dir(&mini("")));
    assert!(!cifar_python::is_python_dir(
        &root().join("data/cifar10-sample")
    ));
    assert!(!cifar_python::is_python_dir(Path::new("/nonexistent")));
}
