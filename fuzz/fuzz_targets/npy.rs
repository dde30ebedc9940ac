//! `.npy` readers (they read from a path, so each input is written to a scratch file):
//! never a panic, and whatever is accepted satisfies the readers' promises.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("sweep-fuzz-{}.npy", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("scratch file");
    if let Ok((x, _)) = sweep::data::npy::read_features(path) {
        assert!(x.iter().all(|v| v.is_finite()));
    }
    if let Ok(y) = sweep::data::npy::read_labels(path, 10) {
        assert!(!y.is_empty() && y.iter().all(|&l| l < 10));
    }
});
