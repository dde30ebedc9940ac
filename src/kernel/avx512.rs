//! The AVX-512 path: the tiled loops of [`super::avx2`], instantiated for 32 vector
//! registers (AVX-512VL gives 256-bit code the upper 16), so with larger register tiles,
//! and with 512-bit vectors in `acc_nn` and the packed product, whose elements are each one
//! chain whatever the width. `dot_nt` keeps 256-bit lanes, as its lanes are part of the
//! contract. Only this file's tile shapes and block sizes differ from `avx2.rs`: the
//! arithmetic of every element is the same, and so are its bits.

use std::arch::x86_64::*;

use super::avx2::{PACKED_MR_MAX, Vector, acc_nn_tiled, dot_nt_tiled, dot_packed_tiled};
use super::{Chain, Mat, Packed, Scalar};

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
