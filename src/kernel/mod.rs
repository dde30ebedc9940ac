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
//! chain whatever the width; chosen at run time) and the portable path compute exactly these operations, so
//! they agree bit for bit (tested on every path the CPU has), and results do not depend
//! on the machine's vector width or register count either.

pub mod exp;

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

mod blocked;
pub use blocked::{BLOCK, Blocked, blocked_fast, blocked_pays, dot_nt_blocked};
use num_traits::Float;

/// A float type the kernels handle: f32 or f64.
pub trait Scalar: Float + Send + Sync + std::fmt::Debug + 'static {
    /// Partial sums per `dot_nt` element (one 256-bit vector).
    const LANES: usize;
    /// The data value `v` (exact: f32 converts to f64 without rounding).
    fn from_f32(v: f32) -> Self;
    #[cfg(target_arch = "x86_64")]
    #[doc(hidden)]
    type V: avx::Vector<Elem = Self>;
    /// One 512-bit vector, for the kernels whose bits do not depend on the vector width.
    #[cfg(target_arch = "x86_64")]
    #[doc(hidden)]
    type Z: avx::Vector<Elem = Self>;
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

/// Bytes added after every row by [`padded_zeros`].
const ROW_PAD_BYTES: usize = 64;

/// How the memory of a large matrix is backed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pages {
    /// The default 4 KiB pages.
    Small,
    /// Transparent huge pages where Linux allows them on request ([`advise_huge_pages`]).
    ///
    /// Worth it for the training split alone, whose mini-batches read rows at random: the
    /// gradient product ran 9% more cycles on small pages (f32 study, perf samples). On the
    /// KVM guests this project is measured on, a fresh huge page costs about 5 times as
    /// much as 512 small ones to fault in (a C loop: 0.5 against 2.5 GB/s, as freed 2 MiB
    /// blocks go back to the host), so the evaluation splits, read in order, stay small.
    Huge,
}

/// An `rows x cols` matrix of zeros whose rows are one cache line longer than needed.
///
/// Without the padding a 3072-float row is exactly 3 x 4096 bytes, so the same column of
/// every row maps to the same L1 cache set, and the rows a tile reads at once evict each
/// other (`examples/kernels.rs` with `PAD=16` against `PAD=0` ran the 40-row products
/// about 30% faster; end to end the effect is within this VM's run-to-run noise).
pub fn padded_zeros<T: Scalar>(rows: usize, cols: usize, pages: Pages) -> ndarray::Array2<T> {
    let pad = ROW_PAD_BYTES / std::mem::size_of::<T>();
    let full = ndarray::Array2::<T>::zeros((rows, cols + pad));
    if pages == Pages::Huge {
        // The zeros come from a fresh mapping that no page of has been touched yet, so
        // the advice applies when the data is first written.
        advise_huge_pages(full.as_slice().expect("a new array is contiguous"));
    }
    full.slice_move(ndarray::s![.., ..cols])
}

/// Asks Linux to back the 2 MiB-aligned part of `v` with transparent huge pages, if `v`
/// spans at least a few of them; a no-op elsewhere, or if the kernel declines.
///
/// A mini-batch reads one cache line from each of 100 scattered rows at a time, on 100
/// different 4 KiB pages, more than the first-level TLB holds; with 2 MiB pages the whole
/// training split needs about 60 entries. `examples/kernels.rs` measures the effect.
pub fn advise_huge_pages<T>(v: &[T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let end = start + std::mem::size_of_val(v);
        let (lo, hi) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if hi >= lo + 2 * HUGE {
            // SAFETY: [lo, hi) lies within `v`'s allocation; MADV_HUGEPAGE changes how
            // pages are backed, never their contents. A failure only means no huge pages.
            unsafe {
                libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// `row[k] = fma(row[k], factor[k], shift[k])` in f32, one rounding per value (the
/// pixel standardisation; vectorised where the CPU has FMA, with the same bits).
///
/// Panics if the lengths differ.
pub fn standardise(row: &mut [f32], factor: &[f32], shift: &[f32]) {
    assert!(
        row.len() == factor.len() && row.len() == shift.len(),
        "standardise: lengths differ"
    );
    #[cfg(target_arch = "x86_64")]
    if avx::has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe { avx::standardise(row, factor, shift) };
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
pub fn reduce_lanes<T: Scalar>(lanes: &mut [T]) -> T {
    let mut h = lanes.len() / 2;
    while h > 0 {
        for i in 0..h {
            lanes[i] = lanes[i] + lanes[i + h];
        }
        h /= 2;
    }
    lanes[0]
}

/// Raw view of a row-major matrix whose rows may be strided but whose elements within a
/// row are contiguous; with `idx` non-null, row `r` is row `idx[r]` of the storage.
#[derive(Clone, Copy)]
struct Mat<T> {
    ptr: *const T,
    rows: usize,
    cols: usize,
    ld: usize,
    idx: *const u32,
}

impl<T> Mat<T> {
    /// Start of row `r`.
    ///
    /// # Safety
    /// `r < self.rows`.
    #[inline(always)]
    unsafe fn row(&self, r: usize) -> *const T {
        unsafe {
            if self.idx.is_null() {
                self.ptr.add(r * self.ld)
            } else {
                self.ptr.add(*self.idx.add(r) as usize * self.ld)
            }
        }
    }

    /// Rows `r0..` (a view of the same storage).
    ///
    /// # Safety
    /// `r0 <= self.rows`.
    #[inline(always)]
    unsafe fn skip_rows(self, r0: usize) -> Self {
        unsafe {
            if self.idx.is_null() {
                Mat {
                    ptr: self.ptr.add(r0 * self.ld),
                    rows: self.rows - r0,
                    ..self
                }
            } else {
                Mat {
                    idx: self.idx.add(r0),
                    rows: self.rows - r0,
                    ..self
                }
            }
        }
    }
}

fn raw<T>(v: &ArrayView2<T>, what: &str) -> Mat<T> {
    let (rows, cols) = v.dim();
    assert!(
        cols <= 1 || v.strides()[1] == 1,
        "{what}: elements within a row must be contiguous"
    );
    assert!(v.strides()[0] >= 0, "{what}: negative row stride");
    Mat {
        ptr: v.as_ptr(),
        rows,
        cols,
        ld: v.strides()[0] as usize,
        idx: std::ptr::null(),
    }
}

/// `x`'s rows `rows`, without copying them.
fn raw_rows<'a, T>(x: &ArrayView2<'a, T>, rows: &'a [u32]) -> Mat<T> {
    let all = raw(x, "right operand");
    assert!(
        rows.iter().all(|&r| (r as usize) < all.rows),
        "row index out of range"
    );
    Mat {
        rows: rows.len(),
        idx: rows.as_ptr(),
        ..all
    }
}

fn raw_mut<T>(v: &mut ArrayViewMut2<T>) -> (*mut T, usize) {
    assert!(
        v.ncols() <= 1 || v.strides()[1] == 1,
        "output: elements within a row must be contiguous"
    );
    assert!(v.strides()[0] >= 0, "output: negative row stride");
    (v.as_mut_ptr(), v.strides()[0] as usize)
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
        if avx::has_avx2() {
            paths.push(Path::Avx2);
            if avx::has_avx512vl() {
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

/// [`dot_nt`] with `b` = rows `rows` of `x`, read in place (no gathered copy).
pub fn dot_nt_rows<T: Scalar>(
    a: ArrayView2<T>,
    x: ArrayView2<f32>,
    rows: &[u32],
    c: ArrayViewMut2<T>,
) {
    dot_nt_raw(a, raw_rows(&x, rows), c, Path::best());
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
            Path::Avx512 => avx::dot_nt_512::<T>(am, bm, cp, ldc),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => avx::dot_nt::<T>(am, bm, cp, ldc),
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
            Path::Avx512 => avx::acc_nn_512::<T>(gm, bm, cp, ldc, chain),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => avx::acc_nn::<T>(gm, bm, cp, ldc, chain),
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
/// time in `avx`); [`par_dot_nt_rows`] splits at multiples of it.
const DOT_TILE_ROWS: usize = 5;

/// [`dot_nt_rows`], split over the rows of `b` (the columns of `c`) across the current
/// rayon pool. Every element is computed as in the sequential call, so the bits are the
/// same for any number of threads.
pub fn par_dot_nt_rows<T: Scalar>(
    a: ArrayView2<T>,
    x: ArrayView2<f32>,
    rows: &[u32],
    c: ArrayViewMut2<T>,
) {
    if rows.len() < 2 * SPLIT_ROWS || a.nrows() * rows.len() * a.ncols() < GRAIN {
        return dot_nt_rows(a, x, rows, c);
    }
    // Split at whole register tiles of B's rows.
    let h = rows.len() / 2 / DOT_TILE_ROWS * DOT_TILE_ROWS;
    let (c1, c2) = c.split_at(Axis(1), h);
    rayon::join(
        || par_dot_nt_rows(a, x, &rows[..h], c1),
        || par_dot_nt_rows(a, x, &rows[h..], c2),
    );
}

/// [`acc_nn_rows`], split over the columns of `x` and `c` across the current rayon pool;
/// the same bits for any number of threads.
pub fn par_acc_nn_rows<T: Scalar>(
    g: ArrayView2<T>,
    x: ArrayView2<f32>,
    rows: &[u32],
    c: ArrayViewMut2<T>,
    chain: Chain,
) {
    let cols = x.ncols();
    if cols < 2 * T::LANES || g.nrows() * rows.len() * cols < GRAIN {
        return acc_nn_rows(g, x, rows, c, chain);
    }
    // Split at a whole vector, so both halves run the vector code.
    let h = cols / 2 / T::LANES * T::LANES;
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

/// `A` (m x d) laid out for [`dot_nt_packed`]: its transpose, in panels of a few vectors
/// of rows ([`panel_vectors`]; the last vector padded with zero rows), each panel
/// depth-major, so the kernel reads one panel row of every depth index with whole vector
/// loads. The panels' widths suit the CPU's widest vectors; the results do not depend on
/// them.
#[derive(Debug, Clone)]
pub struct Packed<T> {
    data: Vec<T>,
    rows: usize,
    cols: usize,
    /// Every panel's first vector and number of vectors, in order.
    panels: Vec<(usize, usize)>,
}

/// How [`Packed`] cuts `vectors` (256-bit) vectors of rows into panels of at most
/// `widest` (3 or 6) vectors.
///
/// Up to three vectors (16 registers, or 32 with 256-bit arithmetic): panels of three
/// (one register tile of the packed product covers a whole panel row, and three vectors
/// take 11 loads per 24 multiply-adds against 14 for two), the rest in panels of two
/// (never one, which would load once per multiply-add), or one panel of one if that is
/// all. Panels used to be two vectors each, with the last padded: 40 rows (5 vectors of
/// f32) took as long as 48 (kernels example, one thread, packed evaluation: 40 rows 87.7
/// GF/s, 48 rows 102.9; 99 after).
///
/// Up to six (512-bit vectors, each two of these): panels of five, two 512-bit vectors and
/// one 256-bit vector a row, whose register tiles are all of 8 rows of B (for 120 rows,
/// kernels example, one thread: 110 GF/s, against 106-108 for 6 + 6 + 3 and 106 for
/// 4 + 4 + 4 + 3); what remains as one more panel of three or four, or, for one or two
/// vectors left, a last panel of six or a 4 + 3 pair instead of a narrow one.
pub fn panel_vectors(vectors: usize, widest: usize) -> Vec<usize> {
    if vectors <= 1 {
        return vec![vectors; vectors];
    }
    if widest >= 6 {
        if vectors <= 6 {
            return vec![vectors];
        }
        let fives = vectors / 5;
        let (fives, rest) = match vectors % 5 {
            0 => (fives, vec![]),
            1 => (fives - 1, vec![6]),
            2 => (fives - 1, vec![4, 3]),
            r => (fives, vec![r]),
        };
        let mut widths = vec![5; fives];
        widths.extend(rest);
        return widths;
    }
    let (threes, twos) = match vectors % 3 {
        0 => (vectors / 3, 0),
        1 => (vectors / 3 - 1, 2),
        _ => (vectors / 3, 1),
    };
    let mut widths = vec![3; threes];
    widths.extend(std::iter::repeat_n(2, twos));
    widths
}

impl<T: Scalar> Packed<T> {
    /// Packs `a` for this CPU's packed product. Panics if its rows are not contiguous.
    pub fn new(a: ArrayView2<T>) -> Self {
        Self::for_path(a, Path::best())
    }

    /// Packs `a` in panels `path` takes.
    fn for_path(a: ArrayView2<T>, path: Path) -> Self {
        let (rows, cols) = a.dim();
        let lanes = T::LANES;
        let vectors = rows.div_ceil(lanes);
        let mut panels = Vec::new();
        let mut first = 0;
        for nv in panel_vectors(vectors, path.widest_panel()) {
            panels.push((first, nv));
            first += nv;
        }
        let mut data = vec![T::zero(); vectors * lanes * cols];
        for &(first, nv) in &panels {
            let width = nv * lanes;
            let panel = &mut data[first * lanes * cols..][..width * cols];
            let top = first * lanes;
            for (l, row) in a
                .slice(ndarray::s![top..rows.min(top + width), ..])
                .rows()
                .into_iter()
                .enumerate()
            {
                for (slot, &v) in panel.iter_mut().skip(l).step_by(width).zip(row) {
                    *slot = v;
                }
            }
        }
        Packed {
            data,
            rows,
            cols,
            panels,
        }
    }

    pub fn nrows(&self) -> usize {
        self.rows
    }

    /// Element `(i, k)` of A.
    fn at(&self, i: usize, k: usize) -> T {
        let lanes = T::LANES;
        let v = i / lanes;
        let &(first, nv) = self
            .panels
            .iter()
            .find(|&&(first, nv)| v < first + nv)
            .expect("row within the panels");
        let width = nv * lanes;
        self.data[first * lanes * self.cols + k * width + (i - first * lanes)]
    }
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
            Path::Avx512 => avx::dot_packed_512::<T>(a, bm, cp, ldc),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => avx::dot_packed::<T>(a, bm, cp, ldc),
            _ => portable::dot_packed(a, bm, cp, ldc),
        }
    }
}

/// The reference implementation of the contract: scalar code, one element at a time.
mod portable {
    use super::{Chain, Mat, Packed, Scalar, reduce_lanes};

    pub(super) unsafe fn dot_nt<T: Scalar>(a: Mat<T>, b: Mat<f32>, c: *mut T, ldc: usize) {
        let lanes = T::LANES;
        let mut acc = [T::zero(); 8];
        for i in 0..a.rows {
            for j in 0..b.rows {
                acc[..lanes].fill(T::zero());
                for k in 0..a.cols {
                    // SAFETY: i < a.rows, j < b.rows, k < cols.
                    let (x, y) = unsafe { (*a.row(i).add(k), T::from_f32(*b.row(j).add(k))) };
                    acc[k % lanes] = x.mul_add(y, acc[k % lanes]);
                }
                // SAFETY: c is a.rows x b.rows.
                unsafe { *c.add(i * ldc + j) = reduce_lanes(&mut acc[..lanes]) };
            }
        }
    }

    pub(super) unsafe fn dot_packed<T: Scalar>(a: &Packed<T>, b: Mat<f32>, c: *mut T, ldc: usize) {
        for i in 0..a.rows {
            for j in 0..b.rows {
                let mut acc = T::zero();
                for k in 0..a.cols {
                    // SAFETY: j < b.rows, k < cols.
                    let y = T::from_f32(unsafe { *b.row(j).add(k) });
                    acc = a.at(i, k).mul_add(y, acc);
                }
                // SAFETY: c is a.rows x b.rows.
                unsafe { *c.add(i * ldc + j) = acc };
            }
        }
    }

    pub(super) unsafe fn acc_nn<T: Scalar>(
        g: Mat<T>,
        b: Mat<f32>,
        c: *mut T,
        ldc: usize,
        chain: Chain,
    ) {
        for i in 0..g.rows {
            for k in 0..b.cols {
                let mut acc = match chain {
                    Chain::Start => T::zero(),
                    // SAFETY: c is g.rows x b.cols.
                    Chain::Continue => unsafe { *c.add(i * ldc + k) },
                };
                for j in 0..g.cols {
                    // SAFETY: i < g.rows, j < g.cols = b.rows, k < b.cols.
                    let (x, y) = unsafe { (*g.row(i).add(j), T::from_f32(*b.row(j).add(k))) };
                    acc = x.mul_add(y, acc);
                }
                // SAFETY: c is g.rows x b.cols.
                unsafe { *c.add(i * ldc + k) = acc };
            }
        }
    }
}

/// Calls `$tile::<T, MR, NR>(t)` for the run-time shape `(mr, nr)`, both in 1..=5: the
/// register tiles are const-generic so their accumulators stay in registers.
#[cfg(target_arch = "x86_64")]
macro_rules! tile_by_shape {
    ($tile:ident, $T:ty, $t:expr, $mr:expr, $nr:expr) => {
        tile_by_shape!(@rows $tile, $T, $t, $mr, $nr, [1 2 3 4 5], [1 2 3 4 5])
    };
    (@rows $tile:ident, $T:ty, $t:expr, $mr:expr, $nr:expr, [$($m:literal)*], $ns:tt) => {
        match $mr {
            $($m => tile_by_shape!(@cols $tile, $T, $t, $m, $nr, $ns),)*
            _ => unreachable!("tile rows"),
        }
    };
    (@cols $tile:ident, $T:ty, $t:expr, $m:literal, $nr:expr, [$($n:literal)*]) => {
        match $nr {
            $($n => $tile::<$T, $m, $n>($t),)*
            _ => unreachable!("tile columns"),
        }
    };
}

/// Calls `packed_tile::<T, n, 0, nv>(tile)` for the run-time panel vectors `nv` (1..=3) and
/// tile rows `n` (1..=8 for three vectors, else 1..=12).
#[cfg(target_arch = "x86_64")]
macro_rules! packed_by_shape {
    ($t:expr, $T:ty, $nv:expr, $n:expr) => {
        match $nv {
            3 => packed_by_shape!(@rows $t, $T, 3, $n, [1 2 3 4 5 6 7 8]),
            2 => packed_by_shape!(@rows $t, $T, 2, $n, [1 2 3 4 5 6 7 8 9 10 11 12]),
            1 => packed_by_shape!(@rows $t, $T, 1, $n, [1 2 3 4 5 6 7 8 9 10 11 12]),
            _ => unreachable!("panel vectors"),
        }
    };
    (@rows $t:expr, $T:ty, $nv:literal, $n:expr, [$($m:literal)*]) => {
        match $n {
            $($m => packed_tile::<$T, $m, 0, $nv>($t),)*
            _ => unreachable!("tile rows"),
        }
    };
}

/// Calls `acc_tile::<T, V, n, nv>(tile)` for the run-time tile rows `n` (1..=5) and
/// vectors `nv` (1..=4).
#[cfg(target_arch = "x86_64")]
macro_rules! acc_by_shape {
    ($V:ty, $T:ty, $t:expr, $mr:expr, $nv:expr) => {
        acc_by_shape!(@rows $V, $T, $t, $mr, $nv, [1 2 3 4 5], [1 2 3 4])
    };
    (@rows $V:ty, $T:ty, $t:expr, $mr:expr, $nv:expr, [$($m:literal)*], $ns:tt) => {
        match $mr {
            $($m => acc_by_shape!(@cols $V, $T, $t, $m, $nv, $ns),)*
            _ => unreachable!("tile rows"),
        }
    };
    (@cols $V:ty, $T:ty, $t:expr, $m:literal, $nv:expr, [$($n:literal)*]) => {
        match $nv {
            $($n => acc_tile::<$T, $V, $m, $n>($t),)*
            _ => unreachable!("tile vectors"),
        }
    };
}

/// Calls `packed_tile::<T, n, nz, ny>(tile)` for the run-time panel vectors `nv`
/// (1..=6, as `nz` 512-bit and `ny` 256-bit vectors) and tile rows `n` (1..=8 for panels
/// of three 512-bit registers, else 1..=12).
#[cfg(target_arch = "x86_64")]
macro_rules! packed_wide_by_shape {
    ($t:expr, $T:ty, $nv:expr, $n:expr) => {
        match $nv {
            6 => packed_wide_by_shape!(@rows $t, $T, 3, 0, $n, [1 2 3 4 5 6 7 8]),
            5 => packed_wide_by_shape!(@rows $t, $T, 2, 1, $n, [1 2 3 4 5 6 7 8]),
            4 => packed_wide_by_shape!(@rows $t, $T, 2, 0, $n, [1 2 3 4 5 6 7 8 9 10 11 12]),
            3 => packed_wide_by_shape!(@rows $t, $T, 1, 1, $n, [1 2 3 4 5 6 7 8 9 10 11 12]),
            2 => packed_wide_by_shape!(@rows $t, $T, 1, 0, $n, [1 2 3 4 5 6 7 8 9 10 11 12]),
            1 => packed_wide_by_shape!(@rows $t, $T, 0, 1, $n, [1 2 3 4 5 6 7 8 9 10 11 12]),
            _ => unreachable!("panel vectors"),
        }
    };
    (@rows $t:expr, $T:ty, $nz:literal, $ny:literal, $n:expr, [$($m:literal)*]) => {
        match $n {
            $($m => packed_tile::<$T, $m, $nz, $ny>($t),)*
            _ => unreachable!("tile rows"),
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    use super::{Chain, Mat, Packed, Scalar, reduce_lanes};

    pub(super) fn has_avx2() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn standardise(row: &mut [f32], factor: &[f32], shift: &[f32]) {
        super::standardise_body(row, factor, shift);
    }

    pub(super) fn has_avx512vl() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl")
    }

    /// One 256-bit (or, below, 512-bit) vector of `Elem`s. The methods are only called
    /// from functions compiled with AVX2 and FMA (and AVX-512F for the 512-bit ones)
    /// enabled, after [`has_avx2`] (and [`has_avx512vl`]) said the CPU has them.
    pub trait Vector: Copy {
        type Elem: Scalar;
        /// Elements per vector.
        const LANES: usize;
        unsafe fn zero() -> Self;
        unsafe fn load(p: *const Self::Elem) -> Self;
        /// `LANES` consecutive data values, converted to `Elem`.
        unsafe fn load_data(p: *const f32) -> Self;
        /// The data value at `p`, converted to `Elem`, in every lane.
        unsafe fn splat_data(p: *const f32) -> Self;
        unsafe fn splat(v: Self::Elem) -> Self;
        /// `a * b + c`, rounded once.
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self;
        unsafe fn store(self, p: *mut Self::Elem);
    }

    impl Vector for __m256 {
        type Elem = f32;
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { _mm256_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn load_data(p: *const f32) -> Self {
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn splat_data(p: *const f32) -> Self {
            unsafe { _mm256_broadcast_ss(&*p) }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            unsafe { _mm256_set1_ps(v) }
        }
        #[inline(always)]
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
            unsafe { _mm256_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm256_storeu_ps(p, self) }
        }
    }

    impl Vector for __m256d {
        type Elem = f64;
        const LANES: usize = 4;
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { _mm256_setzero_pd() }
        }
        #[inline(always)]
        unsafe fn load(p: *const f64) -> Self {
            unsafe { _mm256_loadu_pd(p) }
        }
        #[inline(always)]
        unsafe fn load_data(p: *const f32) -> Self {
            unsafe { _mm256_cvtps_pd(_mm_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn splat_data(p: *const f32) -> Self {
            unsafe { _mm256_set1_pd(f64::from(*p)) }
        }
        #[inline(always)]
        unsafe fn splat(v: f64) -> Self {
            unsafe { _mm256_set1_pd(v) }
        }
        #[inline(always)]
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
            unsafe { _mm256_fmadd_pd(a, b, c) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f64) {
            unsafe { _mm256_storeu_pd(p, self) }
        }
    }

    /// 512-bit vectors: only called from functions compiled with AVX-512F enabled, after
    /// [`has_avx512vl`] said the CPU has it.
    impl Vector for __m512 {
        type Elem = f32;
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { _mm512_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn load_data(p: *const f32) -> Self {
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn splat_data(p: *const f32) -> Self {
            unsafe { _mm512_set1_ps(*p) }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            unsafe { _mm512_set1_ps(v) }
        }
        #[inline(always)]
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
            unsafe { _mm512_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm512_storeu_ps(p, self) }
        }
    }

    impl Vector for __m512d {
        type Elem = f64;
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { _mm512_setzero_pd() }
        }
        #[inline(always)]
        unsafe fn load(p: *const f64) -> Self {
            unsafe { _mm512_loadu_pd(p) }
        }
        #[inline(always)]
        unsafe fn load_data(p: *const f32) -> Self {
            unsafe { _mm512_cvtps_pd(_mm256_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn splat_data(p: *const f32) -> Self {
            unsafe { _mm512_set1_pd(f64::from(*p)) }
        }
        #[inline(always)]
        unsafe fn splat(v: f64) -> Self {
            unsafe { _mm512_set1_pd(v) }
        }
        #[inline(always)]
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
            unsafe { _mm512_fmadd_pd(a, b, c) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f64) {
            unsafe { _mm512_storeu_pd(p, self) }
        }
    }

    /// Rows of A and of B per `dot_nt` register tile with 16 vector registers (2 x 5
    /// accumulators + 3 operands) and with 32 (AVX-512VL gives 256-bit code the upper 16
    /// registers: 4 x 5 accumulators + 5 operands). The larger tile loads 9 vectors per
    /// 20 multiply-adds instead of 7 per 10, and in f64 widens each data vector once for
    /// 4 rows of A instead of 2. With 5 x 5 or 4 x 6 the compiler stored every
    /// accumulator to the stack in the inner loop (40 GF/s instead of 71).
    const DOT_MR: usize = 2;
    const DOT_NR: usize = 5;
    const DOT_MR_512: usize = 4;
    const DOT_NR_512: usize = 5;
    const _: () = assert!(DOT_NR == super::DOT_TILE_ROWS && DOT_NR_512 == super::DOT_TILE_ROWS);

    /// Bytes of each row of B (the f32 data) one depth block covers: the block of B's
    /// current tile stays in L1 while every tile of A's rows passes over it. A's rows
    /// cover as many elements (twice the bytes in f64): sized by A's bytes instead, f64
    /// took twice the blocks, each costing a round trip of the partial sums, and its
    /// 12-run study was 13% slower (32-33 s -> 28 s, alternating binaries). Tuned on a
    /// Zen 3 (512 KiB of L2 per core).
    const DOT_BLOCK_BYTES: usize = 2048;
    /// The same for the 32-register path: no depth blocks at all (a whole 3072-float
    /// row), so no partial sums go back and forth. Measured on a Zen 4 (1 MiB of L2,
    /// where 40 rows of W stay), kernels example, two alternations: forward at 40 rows
    /// 70 -> 83-88 GF/s, at 10 rows 41 -> 48-55; f64 forward at 40 rows 45 -> 50, f64
    /// evaluation at 120 rows 36-48 -> 52-53. CPUs with AVX-512 have 1-2 MiB of L2.
    const DOT_BLOCK_BYTES_512: usize = 1 << 30;

    /// Bytes of partial sums above which `dot_nt` keeps only one B tile's.
    const DOT_PARTIAL_BYTES: usize = 192 << 10;

    /// Bytes of A's rows one pass over B reads when the B tiles are the outer loop.
    const DOT_A_BYTES: usize = 256 << 10;

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_nt<T: Scalar>(a: Mat<T>, b: Mat<f32>, c: *mut T, ldc: usize) {
        unsafe { dot_nt_tiled::<T, DOT_MR, DOT_NR>(a, b, c, ldc, DOT_BLOCK_BYTES) }
    }

    #[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
    pub(super) unsafe fn dot_nt_512<T: Scalar>(a: Mat<T>, b: Mat<f32>, c: *mut T, ldc: usize) {
        unsafe { dot_nt_tiled::<T, DOT_MR_512, DOT_NR_512>(a, b, c, ldc, DOT_BLOCK_BYTES_512) }
    }

    /// Loops: depth blocks; tiles of `NR` rows of B; tiles of `MR` rows of A, so A's
    /// block stays in L2 while every tile of B passes over it (read whole per tile, 40
    /// rows of W would not stay there). The partial sums of every tile are kept in
    /// `partial` between depth blocks, so every element still accumulates its lanes over
    /// increasing k. If those sums would not fit in L2 themselves (an f64 evaluation
    /// chunk), the B tiles are the outer loop instead and one tile's sums are kept.
    ///
    /// Inlined into the entry points above, which choose the instruction set; no
    /// closures here, as they would not inherit it.
    #[inline(always)]
    unsafe fn dot_nt_tiled<T: Scalar, const MR: usize, const NR: usize>(
        a: Mat<T>,
        b: Mat<f32>,
        c: *mut T,
        ldc: usize,
        block_bytes: usize,
    ) {
        let chunks = a.cols / T::LANES;
        let per_block = (block_bytes / std::mem::size_of::<f32>() / T::LANES).max(1);
        let tiles = b.rows.div_ceil(NR);
        let per_tile = a.rows * NR;
        let blocks_outer = tiles * per_tile * std::mem::size_of::<T::V>() <= DOT_PARTIAL_BYTES;
        let kept = if blocks_outer { tiles } else { 1 };
        // Left uninitialised: a tile writes its sums at the end of a depth block before
        // the next block reads them (zeroing them cost 3% of an f64 study).
        let mut partial = Vec::<T::V>::with_capacity(kept * per_tile);
        let partial = partial.as_mut_ptr();
        // Depth blocks start at 0, per_block, ...; an empty depth is one (empty) block.
        let blocks = chunks.max(1).div_ceil(per_block);
        let (outer, inner) = if blocks_outer {
            (blocks, tiles)
        } else {
            (tiles, blocks)
        };
        // With the B tiles outer, A is read whole for every tile of B: in row blocks
        // that fit in L2 it is read from there, not from L3 (an f64 evaluation chunk's
        // W is 2.9 MB at 120 rows); the data tiles are then read once per row block.
        let rows_per_pass = if blocks_outer {
            a.rows
        } else {
            (DOT_A_BYTES / (a.cols * std::mem::size_of::<T>()).max(1) / MR * MR).max(MR)
        };
        let mut r0 = 0;
        while r0 < a.rows {
            let r1 = (r0 + rows_per_pass).min(a.rows);
            for o in 0..outer {
                for i in 0..inner {
                    let (block, t) = if blocks_outer { (o, i) } else { (i, o) };
                    let q0 = block * per_block;
                    let q1 = (q0 + per_block).min(chunks);
                    let j0 = t * NR;
                    let nr = NR.min(b.rows - j0);
                    let sums = if blocks_outer { t * per_tile } else { 0 };
                    let mut i0 = r0;
                    while i0 < r1 {
                        let mr = MR.min(r1 - i0);
                        // SAFETY: the tile lies within a, b, c and partial.
                        unsafe {
                            let t = DotTile {
                                a: a.skip_rows(i0),
                                b: b.skip_rows(j0),
                                chunks: q0..q1,
                                last: q1 == chunks,
                                partial: partial.add(sums + i0 * NR),
                                stride: NR,
                                c: c.add(i0 * ldc + j0),
                                ldc,
                            };
                            tile_by_shape!(dot_tile, T, t, mr, nr);
                        }
                        i0 += mr;
                    }
                }
            }
            r0 = r1;
        }
    }

    /// One register tile over one depth block.
    struct DotTile<T: Scalar> {
        a: Mat<T>,
        b: Mat<f32>,
        /// Vector chunks of the depth this call covers.
        chunks: std::ops::Range<usize>,
        /// Whether this is the last block: then the tail is added, the lanes reduced and
        /// the result written to `c`; otherwise the sums go back to `partial`.
        last: bool,
        /// MR rows of `stride` vectors of partial sums (read unless the block starts
        /// at 0).
        partial: *mut T::V,
        stride: usize,
        c: *mut T,
        ldc: usize,
    }

    #[inline(always)]
    unsafe fn dot_tile<T: Scalar, const MR: usize, const NR: usize>(t: DotTile<T>) {
        let depth = t.a.cols;
        let lanes = T::LANES;
        let done = depth / lanes * lanes;
        // SAFETY (whole body): rows < MR of a and < NR of b, columns < depth, and the
        // MR x stride block of partial.
        unsafe {
            let mut a = [std::ptr::null(); MR];
            for (i, p) in a.iter_mut().enumerate() {
                *p = t.a.row(i);
            }
            let mut b = [std::ptr::null(); NR];
            for (j, p) in b.iter_mut().enumerate() {
                *p = t.b.row(j);
            }
            let mut acc = [[T::V::zero(); NR]; MR];
            if t.chunks.start > 0 {
                for (i, row) in acc.iter_mut().enumerate() {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = *t.partial.add(i * t.stride + j);
                    }
                }
            }
            for q in t.chunks {
                let off = q * lanes;
                let mut av = [T::V::zero(); MR];
                for (i, v) in av.iter_mut().enumerate() {
                    *v = T::V::load(a[i].add(off));
                }
                for j in 0..NR {
                    let bv = T::V::load_data(b[j].add(off));
                    for i in 0..MR {
                        acc[i][j] = T::V::fma(av[i], bv, acc[i][j]);
                    }
                }
            }
            if !t.last {
                for (i, row) in acc.iter().enumerate() {
                    for (j, v) in row.iter().enumerate() {
                        *t.partial.add(i * t.stride + j) = *v;
                    }
                }
                return;
            }
            let mut buf = [T::zero(); 8];
            for i in 0..MR {
                for j in 0..NR {
                    acc[i][j].store(buf.as_mut_ptr());
                    for (l, slot) in buf[..depth - done].iter_mut().enumerate() {
                        *slot =
                            (*a[i].add(done + l)).mul_add(T::from_f32(*b[j].add(done + l)), *slot);
                    }
                    *t.c.add(i * t.ldc + j) = reduce_lanes(&mut buf[..lanes]);
                }
            }
        }
    }

    /// Rows of B per `dot_packed` register tile, for panel rows of three, two and one
    /// vector registers: 4 x 3, 6 x 2 and 6 x 1 accumulators (with the panel vectors and a
    /// broadcast) fit 16 registers; 8 x 3 and 12 x 2 or 12 x 1 fit 32 (on that path the
    /// registers are 512-bit where they can be, see `packed_tile`).
    const PACKED_MR: [usize; 3] = [4, 6, 6];
    const PACKED_MR_512: [usize; 3] = [8, 12, 12];
    /// Rows of B the tiles of every panel take in turn (a whole number of every tile
    /// above): their block stays in L2 while every panel passes over it. With 22 rows and
    /// 11-row tiles, as before the 512-bit tiles, 8 + 8 + 6 rows made a short last tile
    /// for three-register panels; 24 measured the same or better (109.8 -> 110.5 GF/s,
    /// 120 rows).
    const PACKED_SUPER: usize = 24;
    const _: () = {
        let mut i = 0;
        while i < 3 {
            assert!(PACKED_MR[i] <= PACKED_MR_MAX && PACKED_MR_512[i] <= PACKED_MR_MAX);
            i += 1;
        }
    };
    /// Bytes of the panels one depth block covers: the block of every panel stays in L2
    /// while a tile of B passes over all panels; the longer the block, the longer the
    /// runs in which B's rows are read sequentially.
    const PACKED_BLOCK_BYTES: usize = 256 << 10;

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_packed<T: Scalar>(a: &Packed<T>, b: Mat<f32>, c: *mut T, ldc: usize) {
        unsafe { dot_packed_tiled::<T, false>(a, b, c, ldc, PACKED_MR) }
    }

    #[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
    pub(super) unsafe fn dot_packed_512<T: Scalar>(
        a: &Packed<T>,
        b: Mat<f32>,
        c: *mut T,
        ldc: usize,
    ) {
        unsafe { dot_packed_tiled::<T, true>(a, b, c, ldc, PACKED_MR_512) }
    }

    /// Loops: depth blocks; blocks of [`PACKED_SUPER`] rows of B; panels; tiles of the
    /// panel's rows of B (`mr[3 - r]`, `r` the vector registers a panel row takes: its
    /// vectors, or with `WIDE` 512-bit vectors half as many, rounded up). The accumulators
    /// of every (row of B, panel) pair are kept in `partial` between depth blocks (a store
    /// and a load, which round nothing), so every element is still one chain over k.
    #[inline(always)]
    unsafe fn dot_packed_tiled<T: Scalar, const WIDE: bool>(
        a: &Packed<T>,
        b: Mat<f32>,
        c: *mut T,
        ldc: usize,
        mr: [usize; 3],
    ) {
        let (lanes, depth) = (T::LANES, a.cols);
        let vectors = a.rows.div_ceil(lanes);
        if depth == 0 {
            for i in 0..a.rows {
                for j in 0..b.rows {
                    // SAFETY: c is a.rows x b.rows.
                    unsafe { *c.add(i * ldc + j) = T::zero() };
                }
            }
            return;
        }
        let per_k = vectors * lanes * std::mem::size_of::<T>();
        let kc = (PACKED_BLOCK_BYTES / per_k).max(64);
        // Uninitialised, as in `dot_nt_tiled`: only a tile's first block (which writes
        // them) does not read its sums.
        let mut partial = Vec::<T::V>::with_capacity(b.rows * vectors);
        let partial = partial.as_mut_ptr();
        let mut k0 = 0;
        while k0 < depth {
            let k1 = (k0 + kc).min(depth);
            for j0 in (0..b.rows).step_by(PACKED_SUPER) {
                let j1 = (j0 + PACKED_SUPER).min(b.rows);
                for &(first, nv) in &a.panels {
                    let width = nv * lanes;
                    let mut j = j0;
                    while j < j1 {
                        let regs = if WIDE { nv.div_ceil(2) } else { nv };
                        let n = mr[3 - regs].min(j1 - j);
                        let mut x = [std::ptr::null::<f32>(); PACKED_MR_MAX];
                        for (r, p) in x[..n].iter_mut().enumerate() {
                            // SAFETY: row j + r < b.rows and k0 < cols.
                            *p = unsafe { b.row(j + r).add(k0) };
                        }
                        // SAFETY: the tile lies within the packed panel, b, c and partial.
                        unsafe {
                            let tile = PackedTile {
                                w: a.data.as_ptr().add(first * lanes * depth + k0 * width),
                                x,
                                kc: k1 - k0,
                                first: k0 == 0,
                                last: k1 == depth,
                                partial: partial.add(j * vectors + first),
                                stride: vectors,
                                c: c.add(first * lanes * ldc + j),
                                ldc,
                                rows: width.min(a.rows - first * lanes),
                            };
                            if WIDE {
                                packed_wide_by_shape!(tile, T, nv, n);
                            } else {
                                packed_by_shape!(tile, T, nv, n);
                            }
                        }
                        j += n;
                    }
                }
            }
            k0 = k1;
        }
    }

    /// The largest `dot_packed` tile.
    const PACKED_MR_MAX: usize = 12;

    struct PackedTile<T: Scalar> {
        /// The panel at depth `k0` (`kc` rows of its width).
        w: *const T,
        /// The tile's rows of B at depth `k0` (null past the tile's rows).
        x: [*const f32; PACKED_MR_MAX],
        kc: usize,
        /// Whether the accumulators start at zero (else they are read from `partial`).
        first: bool,
        /// Whether to write the sums to `c` (else they go back to `partial`).
        last: bool,
        /// The first tile row's sums; row r's start `r * stride` vectors later.
        partial: *mut T::V,
        stride: usize,
        c: *mut T,
        ldc: usize,
        /// Rows of this panel that are rows of A (the rest is padding, not written).
        rows: usize,
    }

    /// One register tile of the packed product: MR rows of B times a panel of `2 NZ + NY`
    /// 256-bit vectors, held as NZ 512-bit vectors and NY 256-bit ones (NZ = 0 without
    /// AVX-512; with it, NY is 0 or 1 and the 512-bit vectors take half the loads and
    /// instructions per multiply-add, for the same chains). Each element's chain over
    /// k continues from `partial` unless `first`, and goes back there unless `last`.
    #[inline(always)]
    unsafe fn packed_tile<T: Scalar, const MR: usize, const NZ: usize, const NY: usize>(
        t: PackedTile<T>,
    ) {
        let (zl, yl) = (<T::Z as Vector>::LANES, T::LANES);
        let width = NZ * zl + NY * yl;
        // SAFETY (whole body): rows < MR of b, depths k0..k0+kc, the panel's kc rows of
        // `width` elements, MR rows of partial sums (`stride` 256-bit vectors apart), and
        // `rows` rows x MR columns of c.
        unsafe {
            let x = t.x;
            let partial = t.partial.cast::<T>();
            let row_sums = |j: usize| partial.add(j * t.stride * yl);
            let mut az = [[T::Z::zero(); NZ]; MR];
            let mut ay = [[T::V::zero(); NY]; MR];
            if !t.first {
                for j in 0..MR {
                    for (z, a) in az[j].iter_mut().enumerate() {
                        *a = T::Z::load(row_sums(j).add(z * zl));
                    }
                    for (y, a) in ay[j].iter_mut().enumerate() {
                        *a = T::V::load(row_sums(j).add(NZ * zl + y * yl));
                    }
                }
            }
            let mut w = t.w;
            for k in 0..t.kc {
                let mut wz = [T::Z::zero(); NZ];
                for (z, slot) in wz.iter_mut().enumerate() {
                    *slot = T::Z::load(w.add(z * zl));
                }
                let mut wy = [T::V::zero(); NY];
                for (y, slot) in wy.iter_mut().enumerate() {
                    *slot = T::V::load(w.add(NZ * zl + y * yl));
                }
                for j in 0..MR {
                    if NZ > 0 {
                        let sz = T::Z::splat_data(x[j].add(k));
                        for z in 0..NZ {
                            az[j][z] = T::Z::fma(sz, wz[z], az[j][z]);
                        }
                    }
                    if NY > 0 {
                        let sy = T::V::splat_data(x[j].add(k));
                        for y in 0..NY {
                            ay[j][y] = T::V::fma(sy, wy[y], ay[j][y]);
                        }
                    }
                }
                w = w.add(width);
            }
            if !t.last {
                for j in 0..MR {
                    for (z, a) in az[j].iter().enumerate() {
                        a.store(row_sums(j).add(z * zl));
                    }
                    for (y, a) in ay[j].iter().enumerate() {
                        a.store(row_sums(j).add(NZ * zl + y * yl));
                    }
                }
                return;
            }
            let mut buf = [T::zero(); 48];
            for j in 0..MR {
                for (z, a) in az[j].iter().enumerate() {
                    a.store(buf.as_mut_ptr().add(z * zl));
                }
                for (y, a) in ay[j].iter().enumerate() {
                    a.store(buf.as_mut_ptr().add(NZ * zl + y * yl));
                }
                for (l, &v) in buf[..t.rows].iter().enumerate() {
                    *t.c.add(l * t.ldc + j) = v;
                }
            }
        }
    }

    /// Rows of G per `acc_nn` tile, and vectors of B's row per tile: 5 x 2 accumulators
    /// with 16 vector registers, 5 x 4 with 32 (7 loads per 10 multiply-adds, against 9
    /// per 20). With AVX-512 the vectors are 512-bit (each element is still its own chain
    /// over the rows of B, so the width changes no bits): on a Zen 4, which splits each
    /// 512-bit multiply-add in two, the tile issues half the loads and instructions for the
    /// same work (`examples/kernels.rs`, 40 rows: gradient on a batch in cache 95 -> 99
    /// GF/s, on shuffled batches 48 -> 69; 4 x 4, 6 x 4 and 8 x 3 tiles were no better).
    const ACC_MR: usize = 5;
    const ACC_NV: usize = 2;
    const ACC_MR_512: usize = 5;
    const ACC_NV_512: usize = 4;
    // The shapes `acc_by_shape!` instantiates.
    const _: () = assert!(ACC_MR <= 5 && ACC_MR_512 <= 5 && ACC_NV <= 4 && ACC_NV_512 <= 4);

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn acc_nn<T: Scalar>(
        g: Mat<T>,
        b: Mat<f32>,
        c: *mut T,
        ldc: usize,
        chain: Chain,
    ) {
        unsafe { acc_nn_tiled::<T, T::V, ACC_MR, ACC_NV>(g, b, c, ldc, chain, ACC_JB) }
    }

    #[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
    pub(super) unsafe fn acc_nn_512<T: Scalar>(
        g: Mat<T>,
        b: Mat<f32>,
        c: *mut T,
        ldc: usize,
        chain: Chain,
    ) {
        unsafe { acc_nn_tiled::<T, T::Z, ACC_MR_512, ACC_NV_512>(g, b, c, ldc, chain, ACC_JB_512) }
    }

    #[inline(always)]
    unsafe fn acc_nn_tiled<T: Scalar, V: Vector<Elem = T>, const MR: usize, const NV: usize>(
        g: Mat<T>,
        b: Mat<f32>,
        c: *mut T,
        ldc: usize,
        chain: Chain,
        jb: usize,
    ) {
        let lanes = V::LANES;
        let width = b.cols;
        let vectors = width / lanes;
        // Column blocks of ACC_KB 256-bit vectors' worth; within each, blocks of `jb` rows
        // of B, so only that many rows are read at once, each along its block's columns.
        let mut k0 = 0;
        while k0 < vectors {
            let k1 = (k0 + ACC_KB * T::LANES / lanes).min(vectors);
            let mut j0 = 0;
            loop {
                let j1 = (j0 + jb).min(b.rows);
                let mut v0 = k0;
                while v0 < k1 {
                    let nv = NV.min(k1 - v0);
                    let mut i0 = 0;
                    while i0 < g.rows {
                        let mr = MR.min(g.rows - i0);
                        // SAFETY: the tile lies within g, b and c.
                        unsafe {
                            let t = AccTile {
                                g: g.skip_rows(i0),
                                b,
                                rows: j0..j1,
                                from_c: j0 > 0 || chain == Chain::Continue,
                                col: v0 * lanes,
                                c: c.add(i0 * ldc + v0 * lanes),
                                ldc,
                            };
                            acc_by_shape!(V, T, t, mr, nv);
                        }
                        i0 += mr;
                    }
                    v0 += nv;
                }
                if j1 >= b.rows {
                    break;
                }
                j0 = j1;
            }
            k0 = k1;
        }
        // Columns past the last whole vector: the same chain, one element at a time.
        for i in 0..g.rows {
            for k in vectors * lanes..width {
                let mut acc = match chain {
                    Chain::Start => T::zero(),
                    // SAFETY: c is g.rows x width.
                    Chain::Continue => unsafe { *c.add(i * ldc + k) },
                };
                for j in 0..g.cols {
                    // SAFETY: i < g.rows, j < g.cols = b.rows, k < width.
                    unsafe {
                        acc = (*g.row(i).add(j)).mul_add(T::from_f32(*b.row(j).add(k)), acc);
                    }
                }
                // SAFETY: c is g.rows x width.
                unsafe { *c.add(i * ldc + k) = acc };
            }
        }
    }

    /// 256-bit vectors' worth of columns per column block (16 512-bit vectors) and rows of
    /// B per row block of `acc_nn`: a block of C (40 rows x 1 KiB in a 4-run f32 group)
    /// stays in L2, and the B rows being read are few enough for the hardware prefetchers
    /// to follow (25: a batch of 100 in four; tuned on a Zen 3). With 512-bit tiles on a
    /// Zen 4, one row block of up to a whole batch was faster: it reloads no accumulators
    /// (`examples/kernels.rs`, 40 rows, gradient on a batch in cache 94-100 GF/s with 25
    /// rows, 107 with 50, 111 with 100; on shuffled batches 68-69, 73-74, 75).
    const ACC_KB: usize = 32;
    const ACC_JB: usize = 25;
    const ACC_JB_512: usize = 100;

    /// One `acc_nn` register tile over rows `rows` of B.
    struct AccTile<T: Scalar> {
        g: Mat<T>,
        b: Mat<f32>,
        rows: std::ops::Range<usize>,
        /// Whether the chain continues from the values in `c` (else from zero).
        from_c: bool,
        col: usize,
        c: *mut T,
        ldc: usize,
    }

    #[inline(always)]
    unsafe fn acc_tile<T: Scalar, V: Vector<Elem = T>, const MR: usize, const NV: usize>(
        t: AccTile<T>,
    ) {
        let AccTile {
            g: gm,
            b: bm,
            rows,
            from_c,
            col,
            c,
            ldc,
        } = t;
        let lanes = V::LANES;
        // SAFETY (whole body): rows < MR of g, j < n, NV vectors of each row of b and c.
        unsafe {
            let mut g = [std::ptr::null(); MR];
            for (i, p) in g.iter_mut().enumerate() {
                *p = gm.row(i);
            }
            let mut acc = [[V::zero(); NV]; MR];
            if from_c {
                for (i, row) in acc.iter_mut().enumerate() {
                    for (v, x) in row.iter_mut().enumerate() {
                        *x = V::load(c.add(i * ldc + v * lanes));
                    }
                }
            }
            for j in rows {
                let row = bm.row(j).add(col);
                let mut bv = [V::zero(); NV];
                for (v, x) in bv.iter_mut().enumerate() {
                    *x = V::load_data(row.add(v * lanes));
                }
                for i in 0..MR {
                    let s = V::splat(*g[i].add(j));
                    for v in 0..NV {
                        acc[i][v] = V::fma(s, bv[v], acc[i][v]);
                    }
                }
            }
            for (i, row) in acc.iter().enumerate() {
                for (v, x) in row.iter().enumerate() {
                    x.store(c.add(i * ldc + v * lanes));
                }
            }
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
    fn panels_cover_every_vector_in_the_widths_each_path_takes() {
        assert_eq!(panel_vectors(0, 3), Vec::<usize>::new());
        assert_eq!(panel_vectors(1, 3), [1]);
        assert_eq!(panel_vectors(2, 3), [2]);
        assert_eq!(panel_vectors(4, 3), [2, 2]);
        assert_eq!(panel_vectors(5, 3), [3, 2]);
        assert_eq!(panel_vectors(15, 3), [3; 5]);
        assert_eq!(panel_vectors(5, 6), [5]);
        assert_eq!(panel_vectors(6, 6), [6]);
        assert_eq!(panel_vectors(7, 6), [4, 3]);
        assert_eq!(panel_vectors(8, 6), [5, 3]);
        assert_eq!(panel_vectors(11, 6), [5, 6]);
        assert_eq!(panel_vectors(12, 6), [5, 4, 3]);
        assert_eq!(panel_vectors(15, 6), [5, 5, 5]);
        for v in 0..100 {
            let p = panel_vectors(v, 3);
            assert_eq!(p.iter().sum::<usize>(), v);
            assert!(v < 2 || p.iter().all(|&w| w == 2 || w == 3), "{v}: {p:?}");
            let p = panel_vectors(v, 6);
            assert_eq!(p.iter().sum::<usize>(), v);
            assert!(
                v < 3 || p.iter().all(|&w| (3..=6).contains(&w)),
                "{v}: {p:?}"
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
