//! CIFAR-10 binary batches: `Ok` exactly for a positive number of whole records whose
//! labels are all below 10.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let valid =
        !data.is_empty() && data.len().is_multiple_of(3073) && data.chunks(3073).all(|r| r[0] < 10);
    match sweep::data::parse_cifar10_bin(data, Path::new("fuzz.bin"), sweep::kernel::Pages::Small) {
        Ok(split) => assert!(valid && split.y.len() == data.len() / 3073),
        Err(_) => assert!(!valid),
    }
});
