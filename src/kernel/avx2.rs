//! The x86-64 kernels: 256-bit vectors with AVX2 and FMA, in register tiles for 16 vector
//! registers. The tiled loops are generic over the vector type and the tile shape, so the
//! AVX-512 path ([`super::avx512`]) instantiates the same loops, with the same chains, for
//! 32 registers and 512-bit vectors.

/// Calls `$tile::<T, MR, NR>(t)` for the run-time shape `(mr, nr)`, both in 1..=5: the
/// register tiles are const-generic so their accumulators stay in registers.
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

use std::arch::x86_64::*;

use super::{Chain, Mat, Packed, Scalar, reduce_lanes};

pub(super) fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn standardise(row: &mut [f32], factor: &[f32], shift: &[f32]) {
    super::standardise_body(row, factor, shift);
}

/// One 256-bit (or, in `avx512.rs`, 512-bit) vector of `Elem`s. The methods are only
/// called from functions compiled with AVX2 and FMA (and AVX-512F for the 512-bit ones)
/// enabled, after [`has_avx2`] (and [`super::avx512::has_avx512vl`]) said the CPU has
/// them.
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

/// Rows of A and of B per `dot_nt` register tile with 16 vector registers (2 x 5
/// accumulators + 3 operands) and with 32 (AVX-512VL gives 256-bit code the upper 16
/// registers: 4 x 5 accumulators + 5 operands). The larger tile loads 9 vectors per
/// 20 multiply-adds instead of 7 per 10, and in f64 widens each data vector once for
/// 4 rows of A instead of 2. With 5 x 5 or 4 x 6 the compiler stored every
/// accumulator to the stack in the inner loop (40 GF/s instead of 71).
/// (The 32-register shape is `avx512.rs`'s `DOT_MR_512` x `DOT_NR_512`.)
const DOT_MR: usize = 2;
const DOT_NR: usize = 5;
const _: () = assert!(DOT_NR == super::DOT_TILE_ROWS);

/// Bytes of each row of B (the f32 data) one depth block covers: the block of B's
/// current tile stays in L1 while every tile of A's rows passes over it. A's rows
/// cover as many elements (twice the bytes in f64): sized by A's bytes instead, f64
/// took twice the blocks, each costing a round trip of the partial sums, and its
/// 12-run study was 13% slower (32-33 s -> 28 s, alternating binaries). Tuned on a
/// Zen 3 (512 KiB of L2 per core).
const DOT_BLOCK_BYTES: usize = 2048;

/// Bytes of partial sums above which `dot_nt` keeps only one B tile's.
const DOT_PARTIAL_BYTES: usize = 192 << 10;

/// Bytes of A's rows one pass over B reads when the B tiles are the outer loop.
const DOT_A_BYTES: usize = 256 << 10;

#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn dot_nt<T: Scalar>(a: Mat<T>, b: Mat<f32>, c: *mut T, ldc: usize) {
    unsafe { dot_nt_tiled::<T, DOT_MR, DOT_NR>(a, b, c, ldc, DOT_BLOCK_BYTES) }
}

/// Loops: depth blocks; tiles of `NR` rows of B; tiles of `MR` rows of A, so A's
/// block stays in L2 while every tile of B passes over it (read whole per tile, 40
/// rows of W would not stay there). The partial sums of every tile are kept in
/// `partial` between depth blocks, so every element still accumulates its lanes over
/// increasing k. If those sums would not fit in L2 themselves (an f64 evaluation
/// chunk), the B tiles are the outer loop instead and one tile's sums are kept.
///
/// Inlined into the entry points (above, and in `avx512.rs`), which choose the
/// instruction set; no
/// closures here, as they would not inherit it.
#[inline(always)]
pub(super) unsafe fn dot_nt_tiled<T: Scalar, const MR: usize, const NR: usize>(
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
                    *slot = (*a[i].add(done + l)).mul_add(T::from_f32(*b[j].add(done + l)), *slot);
                }
                *t.c.add(i * t.ldc + j) = reduce_lanes(&mut buf[..lanes]);
            }
        }
    }
}

/// Rows of B per `dot_packed` register tile, for panel rows of three, two and one
/// vector registers: 4 x 3, 6 x 2 and 6 x 1 accumulators (with the panel vectors and a
/// broadcast) fit 16 registers (for 32, `avx512.rs`'s `PACKED_MR_512`).
const PACKED_MR: [usize; 3] = [4, 6, 6];
/// Rows of B the tiles of every panel take in turn (a whole number of every tile
/// above): their block stays in L2 while every panel passes over it. With 22 rows and
/// 11-row tiles, as before the 512-bit tiles, 8 + 8 + 6 rows made a short last tile
/// for three-register panels; 24 measured the same or better (109.8 -> 110.5 GF/s,
/// 120 rows).
const PACKED_SUPER: usize = 24;
const _: () = {
    let mut i = 0;
    while i < 3 {
        assert!(PACKED_MR[i] <= PACKED_MR_MAX);
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

/// Loops: depth blocks; blocks of [`PACKED_SUPER`] rows of B; panels; tiles of the
/// panel's rows of B (`mr[3 - r]`, `r` the vector registers a panel row takes: its
/// vectors, or with `WIDE` 512-bit vectors half as many, rounded up). The accumulators
/// of every (row of B, panel) pair are kept in `partial` between depth blocks (a store
/// and a load, which round nothing), so every element is still one chain over k.
#[inline(always)]
pub(super) unsafe fn dot_packed_tiled<T: Scalar, const WIDE: bool>(
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
pub(super) const PACKED_MR_MAX: usize = 12;

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
/// with 16 vector registers (for 32, `avx512.rs`'s `ACC_MR_512` x `ACC_NV_512`).
const ACC_MR: usize = 5;
const ACC_NV: usize = 2;
// The shapes `acc_by_shape!` instantiates.
const _: () = assert!(ACC_MR <= 5 && ACC_NV <= 4);

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

#[inline(always)]
pub(super) unsafe fn acc_nn_tiled<
    T: Scalar,
    V: Vector<Elem = T>,
    const MR: usize,
    const NV: usize,
>(
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
/// to follow (25: a batch of 100 in four; tuned on a Zen 3; the 512-bit tiles take
/// `avx512.rs`'s `ACC_JB_512`).
const ACC_KB: usize = 32;
const ACC_JB: usize = 25;

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
