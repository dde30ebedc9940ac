//! Test support shared by the unit tests: where the real CIFAR-10 files are.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The real CIFAR-10 binary files in `../shared/data/cifar-10-batches-bin`, if present.
///
/// Absent on a developer's machine, the calling test prints why (past the test harness's
/// capture, so the line shows) and should return; under CI (`CI=true`), which has the
/// files, their absence fails the test instead, so CI cannot skip it by accident.
pub fn shared_cifar10() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cifar-10-batches-bin");
    if dir.join("data_batch_1.bin").is_file() {
        return Some(dir);
    }
    let why = format!("the real CIFAR-10 files are not at {}", dir.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}, and CI=true requires them");
    }
    // Straight to the file descriptor: `eprintln!` would be captured and never shown.
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
    None
}
