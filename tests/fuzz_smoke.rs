//! Bounded fuzzing of every parser of untrusted input, run by `cargo test` (the long
//! runs live in `fuzz/`, see `.ci/fuzz.sh`): the sweep-file parser and planner, the
//! CIFAR-10 binary parser, the `.npy` readers and the CIFAR-10 python (pickle) reader.
//!
//! Inputs are structured mutations of valid inputs (truncations, byte flips, spliced
//! fragments, headers claiming huge sizes). Each must give `Ok` or `Err`, never a panic;
//! and a counting global allocator checks that no input makes a reader ask for a huge
//! block of memory (a header's claimed size must be checked against the real length
//! before anything is allocated).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::Config;

/// Largest single allocation request seen by this test binary.
static LARGEST: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// No input here is larger than a few hundred KB, and a valid one decodes to at most a
/// few MB; anything far above means a size was trusted from a header.
const ALLOCATION_LIMIT: usize = 64 << 20;

fn check_allocations() {
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest < ALLOCATION_LIMIT,
        "an input made a reader allocate {largest} bytes at once"
    );
}

const CASES: u32 = 2000;

fn config() -> Config {
    Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A mutation of a valid input.
#[derive(Debug, Clone)]
enum Mutation {
    /// Keep the first `n` per mille of the bytes.
    Truncate(u16),
    /// XOR bytes at (per-mille position, within `window` bytes of the start) with a mask.
    Flip(Vec<(u16, u8)>),
    /// Overwrite bytes near the start (headers live there) with random bytes.
    Head(usize, Vec<u8>),
    /// Insert random bytes at a per-mille position.
    Insert(u16, Vec<u8>),
    /// Append random bytes.
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0u16..=1000).prop_map(Mutation::Truncate),
        prop::collection::vec((0u16..1000, 1u8..=255), 1..8).prop_map(Mutation::Flip),
        (0usize..400, prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, b)| Mutation::Head(at, b)),
        (0u16..1000, prop::collection::vec(any::<u8>(), 1..32))
            .prop_map(|(at, b)| Mutation::Insert(at, b)),
        prop::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Append),
    ]
}

fn at(len: usize, per_mille: u16) -> usize {
    len * usize::from(per_mille) / 1000
}

fn mutate(valid: &[u8], ms: &[Mutation]) -> Vec<u8> {
    let mut b = valid.to_vec();
    for m in ms {
        match m {
            Mutation::Truncate(n) => b.truncate(at(b.len(), *n)),
            Mutation::Flip(flips) => {
                for &(p, mask) in flips {
                    if !b.is_empty() {
                        let i = at(b.len() - 1, p);
                        b[i] ^= mask;
                    }
                }
            }
            Mutation::Head(start, bytes) => {
                for (i, &x) in bytes.iter().enumerate() {
                    if let Some(slot) = b.get_mut(start + i) {
                        *slot = x;
                    }
                }
            }
            Mutation::Insert(p, bytes) => {
                let i = at(b.len(), *p);
                b.splice(i..i, bytes.iter().copied());
            }
            Mutation::Append(bytes) => b.extend_from_slice(bytes),
        }
    }
    b
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

/// Lines of the shipped sample sweep file, plus lines that stress the planner and
/// validator (huge grids, wrong types, odd TOML).
fn spec_fragments() -> Vec<String> {
    let sample = std::fs::read_to_string(root().join("sweeps/sample.toml")).unwrap();
    let mut lines: Vec<String> = sample.lines().map(str::to_string).collect();
    lines.extend(
        [
            "seed = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]",
            "lambda = [0.0, 1e-300, 1e300, -1.0, inf, nan]",
            "eta = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]",
            "batch_size = [0, 1, 18446744073709551615, -1, 9223372036854775807]",
            "epochs = 1000000000000",
            "epochs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]",
            "precision = \"f16\"",
            "shuffle = \"yes\"",
            "init_std = -0.5",
            "segments = 100000",
            "dims = 0",
            "batch_sizes = []",
            "name = \"../../etc\"",
            "name = \"\"",
            "[[grid]]",
            "[grid]",
            "[train]",
            "[data]",
            "[gradcheck]",
            "format = \"npy\"",
            "format = \"cifar10-python\"",
            "val = 0.1",
            "val = 1.5",
            "x = \"a\"",
            "y = [\"b\"]",
            "lambda = { a = 1 }",
            "eta = [[0.1]]",
            "seed = 18446744073709551615",
            "\"\u{0}\" = 1",
            "a.b.c = 1",
            "dir = \"\"",
        ]
        .map(str::to_string),
    );
    lines
}

proptest! {
    #![proptest_config(config())]

    /// Sweep files assembled from fragments, and mutations of the sample: parsing and
    /// planning never panic, and a plan that expands is capped in size.
    #[test]
    fn spec_parser_never_panics(
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
        ms in prop::option::of(mutations()),
    ) {
        let fragments = spec_fragments();
        let text = match &ms {
            None => picks
                .iter()
                .map(|i| fragments[i.index(fragments.len())].as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            Some(ms) => {
                let sample = std::fs::read(root().join("sweeps/sample.toml")).unwrap();
                String::from_utf8_lossy(&mutate(&sample, ms)).into_owned()
            }
        };
        let path = root().join("sweeps/fuzz.toml");
        if let Ok(spec) = sweep::spec::parse(&path, &text, None)
            && let Ok(plan) = sweep::plan::expand(&spec)
        {
            prop_assert!(!plan.runs.is_empty());
        }
        check_allocations();
    }

    /// CIFAR-10 binary files: `Ok` exactly when the length is a positive multiple of a
    /// record and every label byte is below 10, and then with one label per record.
    #[test]
    fn cifar10_bin_parser_matches_its_rules(ms in mutations(), records in 1usize..4) {
        let sample = std::fs::read(root().join("data/cifar10-sample/data_batch_1.bin")).unwrap();
        let bytes = mutate(&sample[..records * 3073], &ms);
        let valid = !bytes.is_empty()
            && bytes.len().is_multiple_of(3073)
            && bytes.chunks(3073).all(|r| r[0] < 10);
        match sweep::data::parse_cifar10_bin(&bytes, Path::new("fuzz.bin"), sweep::kernel::Pages::Small) {
            Ok(split) => {
                prop_assert!(valid);
                prop_assert_eq!(split.y.len(), bytes.len() / 3073);
            }
            Err(_) => prop_assert!(!valid),
        }
        check_allocations();
    }
}

/// Valid `.npy` files of the dtypes and ranks the readers accept.
fn npy_seeds() -> Vec<Vec<u8>> {
    use ndarray::{Array1, Array2};
    use ndarray_npy::WriteNpyExt;
    let mut seeds = Vec::new();
    let mut push = |write: &dyn Fn(&mut Vec<u8>)| {
        let mut b = Vec::new();
        write(&mut b);
        seeds.push(b);
    };
    push(&|b| Array2::<f32>::from_elem((3, 4), 0.5).write_npy(b).unwrap());
    push(&|b| Array2::<f64>::from_elem((2, 5), -1.0).write_npy(b).unwrap());
    push(&|b| Array2::<u8>::from_elem((4, 3), 7).write_npy(b).unwrap());
    push(&|b| Array1::<i64>::from(vec![0, 3, 9]).write_npy(b).unwrap());
    push(&|b| Array1::<u8>::from(vec![1, 2]).write_npy(b).unwrap());
    push(&|b| Array1::<i32>::from(vec![5; 6]).write_npy(b).unwrap());
    seeds
}

/// A valid header with its shape replaced by one claiming a huge size.
fn huge_header(seed: &[u8], shape: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(seed).into_owned();
    let start = text.find("'shape': (").unwrap() + "'shape': (".len();
    let end = start + text[start..].find(')').unwrap();
    let mut out = text.as_bytes()[..start].to_vec();
    out.extend_from_slice(shape.as_bytes());
    out.extend_from_slice(&seed[end..]);
    out
}

proptest! {
    #![proptest_config(config())]

    /// `.npy` features and labels read from a file: never a panic, never a huge
    /// allocation, and a header claiming more data than the file holds is an error.
    #[test]
    fn npy_readers_never_panic(
        seed in 0usize..6,
        ms in mutations(),
        huge in prop::option::of(prop_oneof![
            Just("1000000000000, 3072"),
            Just("18446744073709551615, 2"),
            Just("4611686018427387904,"),
            Just("99999999999,"),
            Just("65536, 65536"),
        ]),
    ) {
        let seeds = npy_seeds();
        let bytes = match huge {
            Some(shape) => huge_header(&seeds[seed], shape),
            None => mutate(&seeds[seed], &ms),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        std::fs::write(&path, &bytes).unwrap();
        let x = sweep::data::npy::read_features(&path);
        let y = sweep::data::npy::read_labels(&path, 10);
        if huge.is_some() {
            prop_assert!(x.is_err() && y.is_err());
        }
        if let Ok((x, _)) = x {
            prop_assert!(x.iter().all(|v| v.is_finite()));
        }
        if let Ok(y) = y {
            prop_assert!(y.iter().all(|&l| l < 10));
        }
        check_allocations();
    }

    /// CIFAR-10 python batches (pickles) from the fixtures, mutated mostly in their
    /// opcodes (the first and last few hundred bytes; the middle is pixel data).
    #[test]
    fn cifar_python_reader_never_panics(
        which in 0usize..2,
        ms in mutations(),
        tail_flips in prop::collection::vec((0usize..400, 1u8..=255), 0..4),
    ) {
        let name = ["cifar-10-batches-py-mini/data_batch_1", "cifar-10-batches-py2-style/data_batch_1"][which];
        let valid = std::fs::read(root().join("tests/fixtures").join(name)).unwrap();
        let mut bytes = mutate(&valid, &ms);
        let n = bytes.len();
        for (back, mask) in tail_flips {
            if back < n {
                bytes[n - 1 - back] ^= mask;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data_batch_1");
        std::fs::write(&path, &bytes).unwrap();
        if let Ok((x, y)) = sweep::data::cifar_python::read_batch(&path) {
            prop_assert_eq!(x.nrows(), y.len());
            prop_assert_eq!(x.ncols(), 3072);
            prop_assert!(y.iter().all(|&l| l < 10));
        }
        check_allocations();
    }
}
