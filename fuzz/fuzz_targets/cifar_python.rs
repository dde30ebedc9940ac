//! CIFAR-10 python batches (pickles, read without executing code): never a panic, and an
//! accepted batch has one label below 10 per 3072-byte row.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("sweep-fuzz-{}.pkl", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("scratch file");
    if let Ok((x, y)) = sweep::data::cifar_python::read_batch(path) {
        assert_eq!(x.nrows(), y.len());
        assert_eq!(x.ncols(), 3072);
        assert!(y.iter().all(|&l| l < 10));
    }
});
