//! The AVX-512 path: the tiled loops of [`super::avx2`], instantiated for 32 vector
//! registers (AVX-512VL gives 256-bit code the upper 16), so with larger register tiles,
//! and with 512-bit vectors in `acc_nn` and the packed product, whose elements are each one
//! chain whatever the width. `dot_nt` keeps 256-bit lanes, as its lanes are part of the
//! contract. Only this file's tile shapes and block sizes differ from `avx2.rs`: the
//! arithmetic of every element is the same, and so are its bits.

use std::arch::x86_64::*;

use super::avx2::{PACKED_MR_MAX, Vector, acc_nn_tiled, dot_nt_tiled, dot_packed_tiled};
use super::pairs::Pairs;
use super::{Chain, Mat, Packed, Scalar, reduce_lanes};

pub(super) fn has_avx512vl() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl")
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

/// Rows of A and of B per `dot_nt` register tile with 32 vector registers: 4 x 5
/// accumulators + 5 operands (against 2 x 5 with 16, `avx2.rs`). The larger tile loads
/// 9 vectors per 20 multiply-adds instead of 7 per 10, and in f64 widens each data vector
/// once for 4 rows of A instead of 2. With 5 x 5 or 4 x 6 the compiler stored every
/// accumulator to the stack in the inner loop (40 GF/s instead of 71).
const DOT_MR_512: usize = 4;
const DOT_NR_512: usize = 5;
const _: () = assert!(DOT_NR_512 == super::DOT_TILE_ROWS);

/// Bytes of each row of B one `dot_nt` depth block covers (`avx2.rs` takes 2048): no
/// depth blocks at all (a whole 3072-float
/// row), so no partial sums go back and forth. Measured on a Zen 4 (1 MiB of L2,
/// where 40 rows of W stay), kernels example, two alternations: forward at 40 rows
/// 70 -> 83-88 GF/s, at 10 rows 41 -> 48-55; f64 forward at 40 rows 45 -> 50, f64
/// evaluation at 120 rows 36-48 -> 52-53. CPUs with AVX-512 have 1-2 MiB of L2.
const DOT_BLOCK_BYTES_512: usize = 1 << 30;

/// Rows of B per `dot_packed` register tile, for panel rows of three, two and one
/// vector registers: 8 x 3 and 12 x 2 or 12 x 1 accumulators fit 32 registers (which
/// are 512-bit where they can be, see `packed_tile` in `avx2.rs`).
const PACKED_MR_512: [usize; 3] = [8, 12, 12];
const _: () = {
    let mut i = 0;
    while i < 3 {
        assert!(PACKED_MR_512[i] <= PACKED_MR_MAX);
        i += 1;
    }
};

/// Rows of G per `acc_nn` tile, and 512-bit vectors of B's row per tile: 5 x 4
/// accumulators with 32 vector registers (7 loads per 10 multiply-adds, against 9 per
/// 20 for `avx2.rs`'s 5 x 2 of 256-bit vectors). Each element is still its own chain over
/// the rows of B, so the width changes no bits: on a Zen 4, which splits each 512-bit
/// multiply-add in two, the tile issues half the loads and instructions for the same work
/// (`examples/kernels.rs`, 40 rows: gradient on a batch in cache 95 -> 99 GF/s, on
/// shuffled batches 48 -> 69; 4 x 4, 6 x 4 and 8 x 3 tiles were no better).
const ACC_MR_512: usize = 5;
const ACC_NV_512: usize = 4;
// The shapes `acc_by_shape!` instantiates.
const _: () = assert!(ACC_MR_512 <= 5 && ACC_NV_512 <= 4);

/// Rows of B per row block of `acc_nn` (`avx2.rs` takes 25). With 512-bit tiles on a
/// Zen 4, one row block of up to a whole batch was faster: it reloads no accumulators
/// (`examples/kernels.rs`, 40 rows, gradient on a batch in cache 94-100 GF/s with 25
/// rows, 107 with 50, 111 with 100; on shuffled batches 68-69, 73-74, 75).
const ACC_JB_512: usize = 100;

#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
pub(super) unsafe fn dot_nt<T: Scalar>(a: Mat<T>, b: Mat<f32>, c: *mut T, ldc: usize) {
    unsafe { dot_nt_tiled::<T, DOT_MR_512, DOT_NR_512>(a, b, c, ldc, DOT_BLOCK_BYTES_512) }
}

#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
pub(super) unsafe fn dot_packed<T: Scalar>(a: &Packed<T>, b: Mat<f32>, c: *mut T, ldc: usize) {
    unsafe { dot_packed_tiled::<T, true>(a, b, c, ldc, PACKED_MR_512) }
}

#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
pub(super) unsafe fn acc_nn<T: Scalar>(
    g: Mat<T>,
    b: Mat<f32>,
    c: *mut T,
    ldc: usize,
    chain: Chain,
) {
    unsafe { acc_nn_tiled::<T, T::Z, ACC_MR_512, ACC_NV_512>(g, b, c, ldc, chain, ACC_JB_512) }
}

/// A 512-bit vector seen as two 256-bit halves, for [`dot_pairs`]: each half holds the
/// lanes of a different element of `dot_nt`'s output, so the 512-bit multiply-adds run
/// the 256-bit chains of two elements at once and change no bits.
pub trait Halves: Vector {
    /// The 256 bits at `p` in both halves.
    unsafe fn load_both(p: *const Self::Elem) -> Self;
}

impl Halves for __m512 {
    #[inline(always)]
    unsafe fn load_both(p: *const f32) -> Self {
        // The bits are moved, not converted: AVX-512F's broadcast of four doubles (the
        // eight-float one needs AVX-512DQ).
        unsafe { _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_loadu_pd(p.cast()))) }
    }
}

impl Halves for __m512d {
    #[inline(always)]
    unsafe fn load_both(p: *const f64) -> Self {
        unsafe { _mm512_broadcast_f64x4(_mm256_loadu_pd(p)) }
    }
}

/// Rows of A and pairs of B's rows per [`dot_pairs`] register tile: 4 x 4 accumulators of
/// 512 bits, 4 broadcast rows of A and one pair; 8 loads per 16 multiply-adds, each doing
/// twice the work of `dot_nt`'s. `examples/kernels.rs`, 400 rows, shuffled batches, packing
/// included (Zen 5): 4 x 4 172-178 GF/s, 4 x 5 159-161, 3 x 4 159-168, 5 x 4 159, 4 x 3
/// 165, 3 x 5 169; `dot_nt`'s 256-bit tile 124.
const PAIR_MR: usize = 4;
const PAIR_NP: usize = 4;
const _: () = assert!(2 * PAIR_NP == super::PAIR_SPLIT_ROWS);

/// Vector chunks of the depth per depth block of [`dot_pairs`], and rows of A per pass:
/// a block of B's tile (8 rows) and of A's tile stay in L1, the pass's block of A in L2,
/// and its partial sums (rows x pairs vectors) too. (Same tile, 400 and 120 rows: 64
/// chunks and 96 rows 172-176 / 156 GF/s; 128 and 96 172-174 / 159-165; 128 and 200 167
/// / 161-168; no blocks and a single pass 152-154 / 138-140.)
const PAIR_BLOCK_CHUNKS: usize = 128;
const PAIR_PASS_ROWS: usize = 96;

/// [`super::dot_nt`] with B packed in pairs of rows: the same bits, at the throughput of
/// 512-bit vectors.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
pub(super) unsafe fn dot_pairs<T: Scalar>(a: Mat<T>, b: &Pairs<'_>, c: *mut T, ldc: usize) {
    unsafe {
        dot_pairs_tiled::<T, PAIR_MR, PAIR_NP>(a, b, c, ldc, PAIR_BLOCK_CHUNKS, PAIR_PASS_ROWS)
    }
}

/// Loops: passes over rows of A; depth blocks; tiles of pairs of B; tiles of A's rows.
/// Between depth blocks every accumulator goes to `partial` and back (a store and a load,
/// which round nothing), so each lane is still one chain over increasing k.
#[inline(always)]
unsafe fn dot_pairs_tiled<T: Scalar, const MR: usize, const NP: usize>(
    a: Mat<T>,
    b: &Pairs<'_>,
    c: *mut T,
    ldc: usize,
    block_chunks: usize,
    pass_rows: usize,
) {
    let chunks = b.chunks;
    let pairs = b.rows.div_ceil(2);
    let blocks = chunks.max(1).div_ceil(block_chunks);
    let pass_rows = pass_rows.max(MR) / MR * MR;
    let mut partial = Vec::<T::Z>::with_capacity(if blocks > 1 {
        pass_rows.min(a.rows) * pairs
    } else {
        0
    });
    let partial = partial.as_mut_ptr();
    let mut r0 = 0;
    while r0 < a.rows {
        let r1 = (r0 + pass_rows).min(a.rows);
        for block in 0..blocks {
            let q0 = block * block_chunks;
            let q1 = (q0 + block_chunks).min(chunks);
            let mut p0 = 0;
            while p0 < pairs {
                let np = NP.min(pairs - p0);
                let mut i0 = r0;
                while i0 < r1 {
                    let mr = MR.min(r1 - i0);
                    // SAFETY: the tile lies within a, b, c and partial (pass rows x
                    // pairs vectors, written by block 0 before later blocks read them).
                    unsafe {
                        let t = PairTile {
                            a: a.skip_rows(i0),
                            b: b.skip_pairs(p0),
                            chunks: q0..q1,
                            last: q1 == chunks,
                            partial: partial.add((i0 - r0) * pairs + p0),
                            stride: pairs,
                            c: c.add(i0 * ldc + 2 * p0),
                            ldc,
                        };
                        tile_by_shape!(pair_tile, T, t, mr, np);
                    }
                    i0 += mr;
                }
                p0 += np;
            }
        }
        r0 = r1;
    }
}

/// One register tile of [`dot_pairs_tiled`] over one depth block.
struct PairTile<'p, T: Scalar> {
    a: Mat<T>,
    b: Pairs<'p>,
    chunks: std::ops::Range<usize>,
    /// Whether this block ends the depth: then the tail is added, each half's lanes
    /// reduced and the results written to `c`; otherwise the sums go to `partial`.
    last: bool,
    partial: *mut T::Z,
    stride: usize,
    c: *mut T,
    ldc: usize,
}

// Indexed loops over the register tile, as in `avx2.rs`'s tiles.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn pair_tile<T: Scalar, const MR: usize, const NP: usize>(t: PairTile<'_, T>) {
    let lanes = T::LANES;
    let depth = t.a.cols;
    let done = t.b.chunks * lanes;
    let per_pair = t.b.chunks * 2 * lanes;
    // SAFETY (whole body): rows < MR of a, pairs < NP of b, columns < depth, and the
    // MR x stride block of partial.
    unsafe {
        let mut a = [std::ptr::null(); MR];
        for (i, p) in a.iter_mut().enumerate() {
            *p = t.a.row(i);
        }
        let bp = t.b.data.as_ptr();
        let mut acc = [[T::Z::zero(); NP]; MR];
        if t.chunks.start > 0 {
            for (i, row) in acc.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = *t.partial.add(i * t.stride + j);
                }
            }
        }
        for q in t.chunks {
            let mut av = [T::Z::zero(); MR];
            for (i, v) in av.iter_mut().enumerate() {
                *v = T::Z::load_both(a[i].add(q * lanes));
            }
            for p in 0..NP {
                let bv = T::Z::load_data(bp.add(p * per_pair + q * 2 * lanes));
                for i in 0..MR {
                    acc[i][p] = T::Z::fma(av[i], bv, acc[i][p]);
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
        let mut buf = [T::zero(); 16];
        for i in 0..MR {
            for p in 0..NP {
                acc[i][p].store(buf.as_mut_ptr());
                for h in 0..2 {
                    let j = 2 * p + h;
                    if j >= t.b.rows {
                        break;
                    }
                    let row = t.b.src.row(j);
                    let half = &mut buf[h * lanes..(h + 1) * lanes];
                    for (l, slot) in half[..depth - done].iter_mut().enumerate() {
                        *slot =
                            (*a[i].add(done + l)).mul_add(T::from_f32(*row.add(done + l)), *slot);
                    }
                    *t.c.add(i * t.ldc + j) = reduce_lanes(half);
                }
            }
        }
    }
}
