//! The two matrix products training needs, for its skinny shapes, with every output
//! element computed by one fixed sequence of operations.
//!
//! * [`dot_nt`]: `C = A Bᵀ` with A (m x d) and B (n x d) both row-major: the forward pass
//!   and the evaluation (`S = W Xᵀ`, each image a contiguous row of X).
//! * [`acc_nn`]: `C = G B` with G (m x n) and B (n x d): the weight gradient `G X`.
//! * [`dot_nt_packed`]: `dot_nt` with A packed once ([`Packed`]): the f32 evaluation,
//!   where one packing of W serves a whole split.
//!
//! B is always the data, held once in f32; in f64 runs it is widened on load (exactly), so
//! no converted copy of a batch or a split is ever made.
//!
//! Why not a general GEMM: here one side has 10 rows per run, and general GEMMs re-pack the
//! whole other operand (a mini-batch, or the full split) on every call, then use each
//! packed element in only 10 multiply-adds. Here the data is never packed: `dot_nt` and
//! `acc_nn` read both operands where they lie, and `dot_nt_packed` packs only the small
//! side (W, in panels), broadcasting the data values from their rows (see
//! `../shared/notes/gemm.md`, `examples/kernels.rs` and BENCHMARKS.md for measurements).
//!
//! The order of operations is part of the contract, because it is what makes a run's
//! numbers independent of what it is fused with, of the thread count and of sharding:
//!
//! * `dot_nt`: element `(i, j)` keeps [`Scalar::LANES`] partial sums; lane `l` accumulates
//!   the products of the depth indices `k ≡ l (mod LANES)`, in increasing `k`, each with
//!   one fused multiply-add; the lanes are then added by a fixed pairwise tree
//!   ([`reduce_lanes`]).
//! * `acc_nn`: element `(i, k)` is the fused multiply-add chain over `j = 0, 1, ..., n-1`,
//!   starting from zero, or, with [`Chain::Continue`], from the value in `c`: a chain over
//!   the rows of several calls in turn is the chain over all of them in one call.
//! * `dot_nt_packed`: element `(i, j)` is the fused multiply-add chain over
//!   `k = 0, 1, ..., d-1`, starting from zero.
//!
//! Neither depends on m, on n, on which tile an element lands in, or on how the work is
//! split across threads. The SIMD paths (x86-64 with AVX2 and FMA; and, where AVX-512VL
//! is present, the same 256-bit arithmetic with 32 vector registers and so larger register
//! tiles, and 512-bit vectors in `acc_nn` and `dot_nt_packed`, whose elements are each one
//! chain whatever the width, and in `dot_nt` on B packed in pairs of rows, each half of a
//! vector one element's 256-bit lanes; chosen at run time) and the portable path compute exactly these operations, so
//! they agree bit for bit (tested on every path the CPU has), and results do not depend
//! on the machine's vector width or register count either.

//!
//! The folder: this file holds the contract, the [`Scalar`] types, the run-time choice of
//! a path ([`Path`]) and the public entry points, which check shapes and dispatch;
//! `portable.rs` is the scalar reference, `avx2.rs` the AVX2/FMA register tiles and
//! `avx512.rs` their AVX-512 instantiations, `packed.rs` the packed left operand,
//! `blocked.rs` the f32 evaluation read from the pixels, `storage.rs` how the matrices lie
//! in memory, and `exp.rs` the exponential. The kernels import nothing from the rest of the
//! crate, which may use them from any stage.

pub(crate) mod exp;

#[cfg(target_arch = "x86_64")]
#[macro_use]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod blocked;
mod packed;
#[cfg(target_arch = "x86_64")]
mod pairs;
mod portable;
mod storage;

use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use num_traits::Float;

pub(crate) use blocked::{BLOCK, blocked_fast, blocked_pays};
pub use blocked::{Blocked, dot_nt_blocked};
pub use packed::Packed;
pub(crate) use storage::padded_zeros;
use storage::{Mat, raw, raw_mut, raw_rows};
pub use storage::{Pages, advise_huge_pages};

/// A float type the kernels handle: f32 or f64.
pub trait Scalar: Float + Send + Sync + std::fmt::Debug + 'static {
    /// Partial sums per `dot_nt` element (one 256-bit vector).
    const LANES: usize;
    /// The data value `v` (exact: f32 converts to f64 without rounding).
    fn from_f32(v: f32) -> Self;
    #[cfg(target_arch = "x86_64")]
    #[doc(hidden)]
    type V: avx2::Vector<Elem = Self>;
    /// One 512-bit vector, for the kernels whose bits do not depend on the vector width.
    #[cfg(target_arch = "x86_64")]
    #[doc(hidden)]
    type Z: avx512::Halves<Elem = Self>;
}

impl Scalar for f32 {
    const LANES: usize = 8;
    fn from_f32(v: f32) -> Self {
        v
    }
    #[cfg(target_arch = "x86_64")]
    type V = std::arch::x86_64::__m256;
    #[cfg(target_arch = "x86_64")]
    type Z = std::arch::x86_64::__m512;
}

impl Scalar for f64 {
    const LANES: usize = 4;
    fn from_f32(v: f32) -> Self {
        f64::from(v)
    }
    #[cfg(target_arch = "x86_64")]
    type V = std::arch::x86_64::__m256d;
    #[cfg(target_arch = "x86_64")]
    type Z = std::arch::x86_64::__m512d;
}

/// `row[k] = fma(row[k], factor[k], shift[k])` in f32, one rounding per value (the
/// pixel standardisation; vectorised where the CPU has FMA, with the same bits).
///
/// Panics if the lengths differ.
pub(crate) fn standardise(row: &mut [f32], factor: &[f32], shift: &[f32]) {
    assert!(
        row.len() == factor.len() && row.len() == shift.len(),
        "standardise: lengths differ"
    );
    #[cfg(target_arch = "x86_64")]
    if avx2::has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe { avx2::standardise(row, factor, shift) };
        return;
    }
    standardise_body(row, factor, shift);
}

#[inline(always)]
fn standardise_body(row: &mut [f32], factor: &[f32], shift: &[f32]) {
    for ((v, &a), &c) in row.iter_mut().zip(factor).zip(shift) {
        *v = v.mul_add(a, c);
    }
}

/// Adds the lanes of `dot_nt` partial sums by halves: `l[i] += l[i + h]` for
/// `h = LANES/2, LANES/4, ..., 1`; the result is `l[0]`.
fn reduce_lanes<T: Scalar>(lanes: &mut [T]) -> T {
    let mut h = lanes.len() / 2;
    while h > 0 {
        for i in 0..h {
            lanes[i] = lanes[i] + lanes[i + h];
        }
        h /= 2;
    }
    lanes[0]
}

/// Which code computes the products; every path computes the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// Scalar loops: the reference.
    Portable,
    /// 256-bit vectors, 16 vector registers (AVX2 and FMA).
    Avx2,
    /// AVX-512F and VL: 32 vector registers, for larger register tiles, and 512-bit
    /// vectors in the products whose bits do not depend on the width (`acc_nn` and the
    /// packed product; `dot_nt` keeps 256-bit lanes).
    Avx512,
}

impl Path {
    /// The fastest path this CPU runs, detected once.
    fn best() -> Path {
        static BEST: std::sync::OnceLock<Path> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| Path::available().pop().unwrap_or(Path::Portable))
    }

    /// The widest [`Packed`] panel, in 256-bit vectors of rows, this path's packed
    /// product takes: with 512-bit vectors a panel row is up to three of them.
    fn widest_panel(self) -> usize {
        match self {
            Path::Avx512 => 6,
            _ => 3,
        }
    }

    /// Every path this CPU runs, slowest first.
    fn available() -> Vec<Path> {
        let mut paths = vec![Path::Portable];
        #[cfg(target_arch = "x86_64")]
        if avx2::has_avx2() {
            paths.push(Path::Avx2);
            if avx512::has_avx512vl() {
                paths.push(Path::Avx512);
            }
        }
        paths
    }
}

/// `c[i][j] = Σ_k a[i][k] b[j][k]`, in the order described in the module docs.
///
/// Panics if the shapes disagree or a row is not contiguous.
pub fn dot_nt<T: Scalar>(a: ArrayView2<T>, b: ArrayView2<f32>, c: ArrayViewMut2<T>) {
    dot_nt_raw(a, raw(&b, "right operand"), c, Path::best());
}

/// [`dot_nt`] with `b` = rows `rows` of `x`, read in place (no gathered copy; on the
/// AVX-512 path with `a` tall, copied in pairs of rows, see [`PAIR_MIN_ROWS`]).
pub fn dot_nt_rows<T: Scalar>(
    a: ArrayView2<T>,
    x: ArrayView2<f32>,
    rows: &[u32],
    c: ArrayViewMut2<T>,
) {
    dot_nt_rows_on(a, raw_rows(&x, rows), c, Path::best(), pairs_pay(a.nrows()));
}

/// Whether B goes in pairs of rows for an `a` of `rows` rows.
fn pairs_pay(rows: usize) -> bool {
    Path::best() == Path::Avx512 && rows >= PAIR_MIN_ROWS
}

fn dot_nt_rows_on<T: Scalar>(
    a: ArrayView2<T>,
    bm: Mat<f32>,
    c: ArrayViewMut2<T>,
    path: Path,
    paired: bool,
) {
    if paired {
        dot_nt_paired(a, bm, c)
    } else {
        dot_nt_raw(a, bm, c, path)
    }
}

fn dot_nt_raw<T: Scalar>(a: ArrayView2<T>, bm: Mat<f32>, mut c: ArrayViewMut2<T>, path: Path) {
    let am = raw(&a, "left operand");
    assert_eq!(am.cols, bm.cols, "dot_nt: depths differ");
    assert_eq!(c.dim(), (am.rows, bm.rows), "dot_nt: output shape");
    let (cp, ldc) = raw_mut(&mut c);
    // SAFETY: `raw`, `raw_rows` and the asserts guarantee every index the kernels touch
    // is in bounds: rows < rows (row indices checked), columns < cols, and c is m x n
    // with contiguous rows.
    unsafe {
        match path {
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => avx512::dot_nt::<T>(am, bm, cp, ldc),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => avx2::dot_nt::<T>(am, bm, cp, ldc),
            _ => portable::dot_nt(am, bm, cp, ldc),
        }
    }
}

/// Where the multiply-add chains of an `acc_nn` product start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    /// From zero: `c = G B`.
    Start,
    /// From the values in `c`, as if B's rows followed those of the call that left them:
    /// `c += G B`, with the same bits as one call over all the rows.
    Continue,
}

/// [`acc_nn`] with `b` = rows `rows` of `x`, read in place (no gathered copy), and the
/// chains starting as `chain` says.
pub fn acc_nn_rows<T: Scalar>(
    g: ArrayView2<T>,
    x: ArrayView2<f32>,
    rows: &[u32],
    c: ArrayViewMut2<T>,
    chain: Chain,
) {
    acc_nn_raw(g, raw_rows(&x, rows), c, chain, Path::best());
}

fn acc_nn_raw<T: Scalar>(
    g: ArrayView2<T>,
    bm: Mat<f32>,
    mut c: ArrayViewMut2<T>,
    chain: Chain,
    path: Path,
) {
    let gm = raw(&g, "left operand");
    assert_eq!(gm.cols, bm.rows, "acc_nn: inner dimensions differ");
    assert_eq!(c.dim(), (gm.rows, bm.cols), "acc_nn: output shape");
    let (cp, ldc) = raw_mut(&mut c);
    // SAFETY: as in `dot_nt_raw`.
    unsafe {
        match path {
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => avx512::acc_nn::<T>(gm, bm, cp, ldc, chain),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => avx2::acc_nn::<T>(gm, bm, cp, ldc, chain),
            _ => portable::acc_nn(gm, bm, cp, ldc, chain),
        }
    }
}

/// Multiply-adds below which [`par_dot_nt_rows`] and [`par_acc_nn_rows`] stop splitting.
const GRAIN: usize = 1 << 20;

/// Rows of B below which [`par_dot_nt_rows`] stops splitting: each piece reads all of A,
/// so pieces of a few rows read A many times over for little work.
const SPLIT_ROWS: usize = 20;

/// Rows of B per `dot_nt` register tile, the same on every SIMD path (checked at compile
/// time in `avx2.rs` and `avx512.rs`); [`par_dot_nt_rows`] splits at multiples of it.
const DOT_TILE_ROWS: usize = 5;

/// Columns of C below which [`par_acc_nn_rows`] stops splitting, and the multiple it
/// splits at: a whole 512-bit register tile of 4 vectors of f32 (and 8 of f64). Narrower
/// pieces leave their columns to the scalar tail loop: with 400 rows of G (8 fused
/// networks of 50 hidden units) the work-based grain alone cut the gradient into
/// 24-column pieces, and it ran at 19 GF/s instead of 200.
const ACC_SPLIT_COLS: usize = 256;
const ACC_SPLIT_AT: usize = 64;

/// Rows of A from which [`par_dot_nt_rows`] packs B in pairs of rows on the AVX-512
/// path (the packing is a copy of B, paid back by 512-bit multiply-adds once A is tall),
/// and the multiple of B's rows it then splits at: a whole register tile of pairs.
const PAIR_MIN_ROWS: usize = 80;
const PAIR_SPLIT_ROWS: usize = 8;

/// [`dot_nt_rows`], split over the rows of `b` (the columns of `c`) across the current
/// rayon pool. Every element is computed as in the sequential call, so the bits are the
/// same for any number of threads.
pub(crate) fn par_dot_nt_rows<T: Scalar>(
    a: ArrayView2<T>,
    x: ArrayView2<f32>,
    rows: &[u32],
    c: ArrayViewMut2<T>,
) {
    par_dot_nt_rows_on(a, x, rows, c, Path::best(), pairs_pay(a.nrows()));
}

fn par_dot_nt_rows_on<T: Scalar>(
    a: ArrayView2<T>,
    x: ArrayView2<f32>,
    rows: &[u32],
    c: ArrayViewMut2<T>,
    path: Path,
    paired: bool,
) {
    if rows.len() < 2 * SPLIT_ROWS || a.nrows() * rows.len() * a.ncols() < GRAIN {
        return dot_nt_rows_on(a, raw_rows(&x, rows), c, path, paired);
    }
    // Split at whole register tiles of B's rows.
    let at = if paired {
        PAIR_SPLIT_ROWS
    } else {
        DOT_TILE_ROWS
    };
    let h = (rows.len() / 2 / at * at).max(at);
    let (c1, c2) = c.split_at(Axis(1), h);
    rayon::join(
        || par_dot_nt_rows_on(a, x, &rows[..h], c1, path, paired),
        || par_dot_nt_rows_on(a, x, &rows[h..], c2, path, paired),
    );
}

/// [`dot_nt`] on the AVX-512 path with B packed in pairs of rows ([`pairs`]).
fn dot_nt_paired<T: Scalar>(a: ArrayView2<T>, bm: Mat<f32>, mut c: ArrayViewMut2<T>) {
    #[cfg(target_arch = "x86_64")]
    {
        assert!(Path::best() == Path::Avx512, "dot_nt_paired needs AVX-512");
        let am = raw(&a, "left operand");
        assert_eq!(am.cols, bm.cols, "dot_nt: depths differ");
        assert_eq!(c.dim(), (am.rows, bm.rows), "dot_nt: output shape");
        let (cp, ldc) = raw_mut(&mut c);
        // SAFETY: as in `dot_nt_raw`; the pairs cover B's rows in whole chunks.
        pairs::with_pairs(bm, T::LANES, |b| unsafe {
            avx512::dot_pairs::<T>(am, b, cp, ldc)
        });
    }
    #[cfg(not(target_arch = "x86_64"))]
    dot_nt_raw(a, bm, c, Path::Portable);
}

/// [`acc_nn_rows`], split over the columns of `x` and `c` across the current rayon pool;
/// the same bits for any number of threads.
pub(crate) fn par_acc_nn_rows<T: Scalar>(
    g: ArrayView2<T>,
    x: ArrayView2<f32>,
    rows: &[u32],
    c: ArrayViewMut2<T>,
    chain: Chain,
) {
    let cols = x.ncols();
    if cols < 2 * ACC_SPLIT_COLS || g.nrows() * rows.len() * cols < GRAIN {
        return acc_nn_rows(g, x, rows, c, chain);
    }
    // Split at a whole register tile, so both halves run the full-width vector code.
    let h = cols / 2 / ACC_SPLIT_AT * ACC_SPLIT_AT;
    let (x1, x2) = x.split_at(Axis(1), h);
    let (c1, c2) = c.split_at(Axis(1), h);
    rayon::join(
        || par_acc_nn_rows(g, x1, rows, c1, chain),
        || par_acc_nn_rows(g, x2, rows, c2, chain),
    );
}

/// `c[i][k] = Σ_j g[i][j] b[j][k]`, in the order described in the module docs.
///
/// Panics if the shapes disagree or a row is not contiguous.
pub fn acc_nn<T: Scalar>(g: ArrayView2<T>, b: ArrayView2<f32>, c: ArrayViewMut2<T>) {
    acc_nn_raw(g, raw(&b, "right operand"), c, Chain::Start, Path::best());
}

/// `c[i][j] = Σ_k a[i][k] b[j][k]` with A packed: the evaluation product. Unlike
/// [`dot_nt`], element `(i, j)` is the single fused multiply-add chain over
/// `k = 0, 1, ..., d-1` starting from zero, which suits a register tile of whole panel
/// rows times a few rows of B (each of their values broadcast); it does not depend on m,
/// n, the panel an element lands in, or the thread count either.
///
/// Panics if the shapes disagree or a row of `b` or `c` is not contiguous.
pub fn dot_nt_packed<T: Scalar>(a: &Packed<T>, b: ArrayView2<f32>, c: ArrayViewMut2<T>) {
    dot_packed_raw(a, b, c, Path::best());
}

fn dot_packed_raw<T: Scalar>(
    a: &Packed<T>,
    b: ArrayView2<f32>,
    mut c: ArrayViewMut2<T>,
    path: Path,
) {
    let bm = raw(&b, "right operand");
    assert_eq!(a.cols, bm.cols, "dot_nt_packed: depths differ");
    assert_eq!(c.dim(), (a.rows, bm.rows), "dot_nt_packed: output shape");
    assert!(
        a.panels.iter().all(|&(_, nv)| nv <= path.widest_panel()) || path == Path::Portable,
        "dot_nt_packed: panels packed for a wider path"
    );
    let (cp, ldc) = raw_mut(&mut c);
    // SAFETY: as in `dot_nt_raw`; the packed data holds every panel in full.
    unsafe {
        match path {
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => avx512::dot_packed::<T>(a, bm, cp, ldc),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => avx2::dot_packed::<T>(a, bm, cp, ldc),
            _ => portable::dot_packed(a, bm, cp, ldc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};

    /// The vectorised standardisation rounds once per value, like the scalar `mul_add`.
    #[test]
    fn standardise_is_one_fused_multiply_add_per_value() {
        let r = random(3, 1000, 5);
        let (v, a, c) = (r.row(0), r.row(1), r.row(2));
        let pixels: Vec<f32> = v
            .iter()
            .map(|x| ((x + 1.0) * 127.5).round() as f32)
            .collect();
        let factor: Vec<f32> = a.iter().map(|x| (0.01 + x.abs() * 0.02) as f32).collect();
        let shift: Vec<f32> = c.iter().map(|&x| x as f32).collect();
        let mut got = pixels.clone();
        standardise(&mut got, &factor, &shift);
        for k in 0..pixels.len() {
            let want = pixels[k].mul_add(factor[k], shift[k]);
            assert_eq!(got[k].to_bits(), want.to_bits(), "value {k}");
        }
    }

    fn random(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Array2::from_shape_fn((rows, cols), |_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
    }

    fn portable_dot<T: Scalar>(a: &Array2<T>, b: &Array2<f32>) -> Array2<T> {
        let mut c = Array2::from_elem((a.nrows(), b.nrows()), T::nan());
        let (am, bm) = (raw(&a.view(), "a"), raw(&b.view(), "b"));
        let mut cv = c.view_mut();
        let (cp, ldc) = raw_mut(&mut cv);
        unsafe { portable::dot_nt(am, bm, cp, ldc) };
        c
    }

    fn portable_packed<T: Scalar>(a: &Packed<T>, b: &Array2<f32>) -> Array2<T> {
        let mut c = Array2::from_elem((a.nrows(), b.nrows()), T::nan());
        let bm = raw(&b.view(), "b");
        let mut cv = c.view_mut();
        let (cp, ldc) = raw_mut(&mut cv);
        unsafe { portable::dot_packed(a, bm, cp, ldc) };
        c
    }

    fn portable_acc<T: Scalar>(g: &Array2<T>, b: &Array2<f32>) -> Array2<T> {
        let mut c = Array2::from_elem((g.nrows(), b.ncols()), T::nan());
        let (gm, bm) = (raw(&g.view(), "g"), raw(&b.view(), "b"));
        let mut cv = c.view_mut();
        let (cp, ldc) = raw_mut(&mut cv);
        unsafe { portable::acc_nn(gm, bm, cp, ldc, Chain::Start) };
        c
    }

    fn bits<T: Scalar + Into<f64>>(c: &Array2<T>) -> Vec<u64> {
        c.iter().map(|&v| v.into().to_bits()).collect()
    }

    /// Shapes around every tile edge, including depths that are not a multiple of the lanes.
    const SHAPES: [(usize, usize, usize); 15] = [
        (10, 100, 3072),
        // Packed panels of 3 + 2 vectors (f32; 3 + 3 + 2 + 2 in f64), rows of B past a
        // multiple of the tiles', two depth blocks in f64.
        (40, 50, 3072),
        // Panels of 2 + 2 (f32), of 3 x 5 (f32) and of 3 + 2 + 2 (f32).
        (30, 29, 100),
        (120, 31, 70),
        (56, 25, 33),
        // Partial sums of every tile of B would exceed L2: dot_nt's tile-outer order,
        // over two depth blocks.
        (40, 200, 600),
        // The same, with A too long to stay in L2: A in passes of a few rows.
        (40, 160, 1700),
        (40, 13, 600),
        (17, 6, 256),
        (1, 1, 1),
        (3, 7, 13),
        (11, 9, 37),
        (40, 23, 64),
        (7, 1, 5),
        (2, 5, 17),
    ];

    fn check_against_portable<T: Scalar + Into<f64>>(path: Path, cast: impl Fn(f64) -> T) {
        let close = |c: &Array2<T>, reference: &Array2<f64>| {
            for (x, y) in c.iter().zip(reference) {
                assert!(
                    ((*x).into() - y).abs() <= 1e-4 * (1.0 + y.abs()),
                    "{path:?}: {x:?} vs {y}"
                );
            }
        };
        for (s, &(m, n, d)) in SHAPES.iter().enumerate() {
            let a = random(m, d, s as u64).mapv(&cast);
            let b = random(n, d, 100 + s as u64).mapv(|v| v as f32);
            let mut c = Array2::from_elem((m, n), T::nan());
            dot_nt_raw(a.view(), raw(&b.view(), "b"), c.view_mut(), path);
            assert_eq!(
                bits(&c),
                bits(&portable_dot(&a, &b)),
                "{path:?} dot_nt {m}x{n}x{d}"
            );
            let reference = a.mapv(Into::into).dot(&b.mapv(f64::from).t());
            close(&c, &reference);
            if path == Path::Avx512 {
                let mut c = Array2::from_elem((m, n), T::nan());
                dot_nt_paired(a.view(), raw(&b.view(), "b"), c.view_mut());
                assert_eq!(
                    bits(&c),
                    bits(&portable_dot(&a, &b)),
                    "dot_nt on B in pairs {m}x{n}x{d}"
                );
            }

            let packed = Packed::for_path(a.view(), path);
            let mut c = Array2::from_elem((m, n), T::nan());
            dot_packed_raw(&packed, b.view(), c.view_mut(), path);
            assert_eq!(
                bits(&c),
                bits(&portable_packed(&packed, &b)),
                "{path:?} dot_nt_packed {m}x{n}x{d}"
            );
            close(&c, &reference);

            let g = random(m, n, 200 + s as u64).mapv(&cast);
            let x = random(n, d, 300 + s as u64).mapv(|v| v as f32);
            let mut c = Array2::from_elem((m, d), T::nan());
            acc_nn_raw(
                g.view(),
                raw(&x.view(), "x"),
                c.view_mut(),
                Chain::Start,
                path,
            );
            assert_eq!(
                bits(&c),
                bits(&portable_acc(&g, &x)),
                "{path:?} acc_nn {m}x{n}x{d}"
            );
            close(&c, &g.mapv(Into::into).dot(&x.mapv(f64::from)));

            // The same chains over B's rows in two calls, the second continuing the first.
            let cut = n / 3;
            let mut parts = Array2::from_elem((m, d), T::nan());
            for (range, chain) in [(0..cut, Chain::Start), (cut..n, Chain::Continue)] {
                let gp = g.slice(s![.., range.clone()]).to_owned();
                let xp = x.slice(s![range, ..]);
                acc_nn_raw(gp.view(), raw(&xp, "x"), parts.view_mut(), chain, path);
            }
            assert_eq!(
                bits(&parts),
                bits(&c),
                "{path:?} acc_nn in two calls {m}x{n}x{d}"
            );
        }
    }

    #[test]
    fn simd_and_portable_paths_agree_bit_for_bit_and_with_a_reference_product() {
        let paths = Path::available();
        // Say which paths this CPU let the test cover (an older CPU skips the wider ones).
        println!("kernel paths tested: {paths:?}");
        for path in paths {
            check_against_portable::<f32>(path, |v| v as f32);
            check_against_portable::<f64>(path, |v| v);
        }
    }

    #[test]
    fn each_output_row_and_column_is_independent_of_the_others() {
        // Rows 3..13 of a 40-row product equal the 10-row product of those rows, and
        // columns computed in a sub-view equal the full product's: what fusing runs and
        // splitting work across threads rely on.
        let a = random(40, 3072, 7).mapv(|v| v as f32);
        let b = random(100, 3072, 8).mapv(|v| v as f32);
        let mut full = Array2::zeros((40, 100));
        dot_nt(a.view(), b.view(), full.view_mut());
        let mut part = Array2::zeros((10, 37));
        dot_nt(
            a.slice(s![3..13, ..]),
            b.slice(s![50..87, ..]),
            part.view_mut(),
        );
        assert_eq!(bits(&part), bits(&full.slice(s![3..13, 50..87]).to_owned()));

        // The same for the packed product: rows 3..13 sit across a panel edge in the
        // full product and at the start of a panel alone.
        let mut full = Array2::zeros((40, 100));
        dot_nt_packed(&Packed::new(a.view()), b.view(), full.view_mut());
        let mut part = Array2::zeros((10, 37));
        dot_nt_packed(
            &Packed::new(a.slice(s![3..13, ..])),
            b.slice(s![50..87, ..]),
            part.view_mut(),
        );
        assert_eq!(bits(&part), bits(&full.slice(s![3..13, 50..87]).to_owned()));

        let g = random(40, 100, 9).mapv(|v| v as f32);
        let mut full = Array2::zeros((40, 3072));
        acc_nn(g.view(), b.view(), full.view_mut());
        let mut part = Array2::zeros((7, 1001));
        acc_nn(
            g.slice(s![30..37, ..]),
            b.slice(s![.., 1000..2001]),
            part.view_mut(),
        );
        assert_eq!(
            bits(&part),
            bits(&full.slice(s![30..37, 1000..2001]).to_owned())
        );
    }

    #[test]
    fn row_indexed_and_parallel_products_equal_the_product_of_the_gathered_rows() {
        let x = random(300, 3072, 11).mapv(|v| v as f32);
        let w = random(40, 3072, 12).mapv(|v| v as f32);
        let rows: Vec<u32> = (0..100).map(|i| (i * 37 % 300) as u32).collect();
        let gathered = x.select(
            ndarray::Axis(0),
            &rows.iter().map(|&r| r as usize).collect::<Vec<_>>(),
        );
        let mut s_ref = Array2::zeros((40, 100));
        dot_nt(w.view(), gathered.view(), s_ref.view_mut());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let mut s_par = Array2::zeros((40, 100));
        pool.install(|| par_dot_nt_rows(w.view(), x.view(), &rows, s_par.view_mut()));
        assert_eq!(bits(&s_par), bits(&s_ref));
        if Path::best() == Path::Avx512 {
            // B in pairs, split across the pool into pieces of whole and odd pairs.
            for n in [100, 37] {
                let mut s_pairs = Array2::zeros((40, n));
                pool.install(|| {
                    let c = s_pairs.view_mut();
                    par_dot_nt_rows_on(w.view(), x.view(), &rows[..n], c, Path::Avx512, true)
                });
                assert_eq!(bits(&s_pairs), bits(&s_ref.slice(s![.., ..n]).to_owned()));
            }
        }

        let mut d_ref = Array2::zeros((40, 3072));
        acc_nn(s_ref.view(), gathered.view(), d_ref.view_mut());
        let mut d_par = Array2::zeros((40, 3072));
        pool.install(|| {
            par_acc_nn_rows(
                s_ref.view(),
                x.view(),
                &rows,
                d_par.view_mut(),
                Chain::Start,
            )
        });
        assert_eq!(bits(&d_par), bits(&d_ref));

        // Continued over the batch in pieces, on the pool: still the one chain.
        let mut d_pieces = Array2::zeros((40, 3072));
        for (p, piece) in rows.chunks(30).enumerate() {
            let g = s_ref.slice(s![.., p * 30..p * 30 + piece.len()]);
            let chain = if p == 0 {
                Chain::Start
            } else {
                Chain::Continue
            };
            pool.install(|| par_acc_nn_rows(g, x.view(), piece, d_pieces.view_mut(), chain));
        }
        assert_eq!(bits(&d_pieces), bits(&d_ref));
    }

    #[test]
    #[should_panic(expected = "row index out of range")]
    fn a_row_index_past_the_end_is_refused() {
        let x = Array2::<f32>::zeros((3, 8));
        let mut c = Array2::zeros((1, 1));
        dot_nt_rows(
            Array2::<f32>::zeros((1, 8)).view(),
            x.view(),
            &[3],
            c.view_mut(),
        );
    }

    #[test]
    fn lanes_are_added_by_halves() {
        let mut l = [1.0f64, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
        assert_eq!(reduce_lanes(&mut l), 255.0);
        let mut l = [1e16f64, 1.0, -1e16, 1.0];
        // (1e16 + -1e16) + (1 + 1) = 2, whereas a left-to-right sum gives 1.
        assert_eq!(reduce_lanes(&mut l), 2.0);
    }
}
