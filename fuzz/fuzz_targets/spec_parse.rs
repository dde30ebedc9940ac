//! Sweep files: parsing, validation and plan expansion never panic or hang.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = sweep::spec::parse(Path::new("sweeps/fuzz.toml"), text, None) {
        let _ = sweep::plan::expand(&spec);
    }
});
