//! The f32 evaluation read from the pixels: [`dot_nt_blocked`], the same products and
//! the same bits as [`super::dot_nt_packed`] on the standardised rows, from a split's
//! uint8 pixels laid out in blocks of [`BLOCK`] examples ([`Blocked`]).
//!
//! Why: the packed product puts W's rows in the vector lanes and broadcasts each data
//! value. With one run's 10 rows, 6 of every 16 lanes are padding, so the evaluation of
//! one run (half its work) ran at about 65 GF/s, against 116 at the FMA rate. Here the
//! lanes hold 16 examples instead, and W's values are broadcast, so every lane is used
//! whatever the number of rows. That needs the examples' values of one feature side by
//! side, which the row-major f32 data does not have; rather than transpose it on every
//! pass (which cost as much as the products, see BENCHMARKS.md), the pixels are kept once
//! more in that order, as bytes: a quarter of the f32 split's memory and of its reads.
//! Each pixel is standardised on load with the very operation that made the f32 data,
//! `x = fma(pixel, scale[k], shift[k])` in f32 (`crate::data`), so the products see the
//! same values, and element `(i, j)` is the same chain over `k` as `dot_nt_packed`'s.

use std::ops::Range;

use ndarray::{ArrayView2, ArrayViewMut2};

use super::Packed;

/// Examples per block: one 512-bit vector of f32.
pub const BLOCK: usize = 16;

/// A split's pixels for [`dot_nt_blocked`]: blocks of [`BLOCK`] examples, each block
/// feature-major (the block's 16 pixels of feature 0, then of feature 1, ...), the last
/// block padded with zero pixels; and the per-feature standardisation.
#[derive(Clone)]
pub struct Blocked {
    data: Vec<u8>,
    rows: usize,
    cols: usize,
    scale: Vec<f32>,
    shift: Vec<f32>,
}

/// Shape only: the bytes are the split's pixels, too many to print.
impl std::fmt::Debug for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocked")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}

impl Blocked {
    /// Lays out `pixels` (one example per row; every value a whole number in 0..=255) with
    /// the standardisation `x = fma(pixel, scale[k], shift[k])`: standardises a copy and
    /// takes it through [`Blocked::from_standardised`].
    ///
    /// Panics if a value is not a pixel or the lengths disagree.
    pub fn new(pixels: ArrayView2<f32>, scale: &[f32], shift: &[f32]) -> Blocked {
        assert_eq!(scale.len(), pixels.ncols(), "one scale per feature");
        let mut x = pixels.to_owned();
        for mut row in x.rows_mut() {
            let row = row
                .as_slice_mut()
                .expect("an owned array's rows are contiguous");
            super::standardise(row, scale, shift);
        }
        Blocked::from_standardised(x.view(), scale, shift)
            .expect("not a pixel: a value of `pixels`")
    }

    /// The blocks of a split already standardised, `x = fma(pixel, scale[k], shift[k])`
    /// ([`super::standardise`]): each pixel is recovered from its value and checked to
    /// give it again, bit for bit. `None` if some value is not such a pixel's.
    pub fn from_standardised(x: ArrayView2<f32>, scale: &[f32], shift: &[f32]) -> Option<Blocked> {
        let (rows, cols) = x.dim();
        assert!(
            scale.len() == cols && shift.len() == cols,
            "one scale and shift per feature"
        );
        // The estimate only has to land within 0.5 of the pixel: the check below is exact.
        let inverse: Vec<f32> = scale.iter().map(|&a| 1.0 / a).collect();
        let mut data = vec![0u8; rows.div_ceil(BLOCK) * BLOCK * cols];
        let (mut pixels, mut again) = (vec![0u8; cols], vec![0.0f32; cols]);
        for (i, row) in x.rows().into_iter().enumerate() {
            let row = row.to_slice().expect("rows are contiguous");
            for (((p, &v), &c), &inv) in pixels.iter_mut().zip(row).zip(shift).zip(&inverse) {
                // `as` saturates (and takes NaN to 0); adding 0.5 rounds to nearest.
                *p = ((v - c) * inv + 0.5) as u8;
            }
            for (v, &p) in again.iter_mut().zip(&pixels) {
                *v = f32::from(p);
            }
            super::standardise(&mut again, scale, shift);
            if again
                .iter()
                .zip(row)
                .any(|(a, b)| a.to_bits() != b.to_bits())
            {
                return None;
            }
            let block = &mut data[(i / BLOCK) * BLOCK * cols..][..BLOCK * cols];
            for (k, &p) in pixels.iter().enumerate() {
                block[k * BLOCK + i % BLOCK] = p;
            }
        }
        Some(Blocked {
            data,
            rows,
            cols,
            scale: scale.to_vec(),
            shift: shift.to_vec(),
        })
    }

    /// The standardised value of example `i`, feature `k`.
    pub fn value(&self, i: usize, k: usize) -> f32 {
        let p = self.data[(i / BLOCK) * BLOCK * self.cols + k * BLOCK + i % BLOCK];
        f32::from(p).mul_add(self.scale[k], self.shift[k])
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Start of block `b`.
    fn block(&self, b: usize) -> *const u8 {
        self.data[b * BLOCK * self.cols..].as_ptr()
    }
}

/// Whether this CPU runs [`dot_nt_blocked`] faster than [`super::dot_nt_packed`] could:
/// it has AVX-512 (elsewhere the blocked product runs its scalar reference, so it is
/// not worth keeping the pixels).
pub fn blocked_fast() -> bool {
    super::Path::best() == super::Path::Avx512
}

/// Whether [`dot_nt_blocked`] beats [`super::dot_nt_packed`] for `rows` rows of W: when
/// the packed panels would be less than 85% rows, the rest padding. One thread, 10,000
/// examples, `examples/kernels.rs` (GF/s, blocked vs packed): 10 rows 85.9 vs 65.8, 12
/// rows 89.6 vs 78.7, 20 rows 88.3 vs 80.7; but 16 rows 83.7 vs 104.3, 30 rows 88.9 vs
/// 99.9, 40 rows 88.7 vs 107.7. The blocked product standardises every pixel it reads (a
/// conversion and a multiply-add per 16 values, shared by at most 12 rows), which caps it
/// near 90.
pub fn blocked_pays(rows: usize) -> bool {
    let lanes = <f32 as super::Scalar>::LANES;
    rows > 0 && rows * 100 < rows.div_ceil(lanes) * lanes * 85
}

/// `c[i][j - examples.start] = Σ_k a[i][k] x[j][k]` for the examples `j` in `examples`,
/// with `x` the standardised values of `blocked`: element `(i, j)` is the fused
/// multiply-add chain over `k = 0, 1, ..., d-1` starting from zero, exactly as in
/// [`super::dot_nt_packed`].
///
/// Panics if `examples` does not start on a block or runs past the split, or if the
/// shapes disagree.
pub fn dot_nt_blocked(
    a: &Packed<f32>,
    blocked: &Blocked,
    examples: Range<usize>,
    mut c: ArrayViewMut2<f32>,
) {
    assert_eq!(a.cols, blocked.cols, "dot_nt_blocked: depths differ");
    assert!(
        examples.start.is_multiple_of(BLOCK) && examples.start <= examples.end,
        "dot_nt_blocked: examples must start on a block"
    );
    assert!(
        examples.end <= blocked.rows,
        "dot_nt_blocked: examples out of range"
    );
    assert_eq!(
        c.dim(),
        (a.rows, examples.len()),
        "dot_nt_blocked: output shape"
    );
    assert!(
        c.ncols() <= 1 || c.strides()[1] == 1,
        "dot_nt_blocked: output rows must be contiguous"
    );
    #[cfg(target_arch = "x86_64")]
    if blocked_fast() {
        // SAFETY: the CPU has AVX-512F (`blocked_fast`); the asserts above bound every
        // index the kernel touches.
        unsafe { avx512::dot_blocked(a, blocked, examples, &mut c) };
        return;
    }
    portable(a, blocked, examples, &mut c);
}

/// The reference: one element at a time.
fn portable(a: &Packed<f32>, x: &Blocked, examples: Range<usize>, c: &mut ArrayViewMut2<f32>) {
    for i in 0..a.rows {
        for (jc, j) in examples.clone().enumerate() {
            let mut acc = 0.0f32;
            for k in 0..a.cols {
                acc = a.at(i, k).mul_add(x.value(j, k), acc);
            }
            c[[i, jc]] = acc;
        }
    }
}

/// Rows of W per register tile: with two blocks of examples, 2 x 12 accumulators, two
/// data vectors, the standardisation and one broadcast value of W fill the 32 registers.
const TILE_ROWS: usize = 12;

/// `n` rows cut into the fewest tiles of at most [`TILE_ROWS`], as even as possible.
fn tiles(n: usize) -> impl Iterator<Item = Range<usize>> {
    let count = n.div_ceil(TILE_ROWS);
    let (base, extra) = (n / count.max(1), n % count.max(1));
    (0..count).scan(0, move |start, t| {
        let len = base + usize::from(t < extra);
        let r = *start..*start + len;
        *start += len;
        Some(r)
    })
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use ndarray::ArrayViewMut2;

    use super::{BLOCK, Blocked, Packed, tiles};

    /// One register tile: `R` rows of W (at `w`, `width` floats per depth index) times
    /// the two blocks at `x0` and `x1`.
    struct Tile {
        w: *const f32,
        width: usize,
        x: [*const u8; 2],
        scale: *const f32,
        shift: *const f32,
        depth: usize,
    }

    /// Calls `store(&tile::<n>(t))` for the run-time tile rows `n` (1..=12).
    macro_rules! by_rows {
        ($t:expr, $n:expr, $store:ident, [$($m:literal)*]) => {
            match $n {
                $($m => $store(&tile::<$m>($t)),)*
                _ => unreachable!("tile rows"),
            }
        };
    }

    /// # Safety
    /// The CPU has AVX-512F; `examples` starts on a block and ends within the split, and
    /// `c` is `a.rows` x `examples.len()` with contiguous rows.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dot_blocked(
        a: &Packed<f32>,
        x: &Blocked,
        examples: Range<usize>,
        c: &mut ArrayViewMut2<f32>,
    ) {
        let lanes = <f32 as crate::kernel::Scalar>::LANES;
        let first_block = examples.start / BLOCK;
        let blocks = examples.len().div_ceil(BLOCK);
        for pair in (0..blocks).step_by(2) {
            let b0 = first_block + pair;
            // An odd last block is paired with itself, and its copy is not stored.
            let b1 = if pair + 1 < blocks { b0 + 1 } else { b0 };
            let valid = |b: usize| (examples.end - b * BLOCK).min(BLOCK);
            for &(first, nv) in &a.panels {
                let width = nv * lanes;
                let top = first * lanes;
                let panel_rows = a.rows.min(top + width) - top;
                for rows in tiles(panel_rows) {
                    let t = Tile {
                        // SAFETY: the panel holds `width` values of every depth index.
                        w: unsafe { a.data.as_ptr().add(top * a.cols + rows.start) },
                        width,
                        x: [x.block(b0), x.block(b1)],
                        scale: x.scale.as_ptr(),
                        shift: x.shift.as_ptr(),
                        depth: a.cols,
                    };
                    let mut store = |acc: &[[__m512; 2]]| {
                        for (r, pair_acc) in acc.iter().enumerate() {
                            let i = top + rows.start + r;
                            for (h, &v) in pair_acc.iter().enumerate() {
                                if h == 1 && b1 == b0 {
                                    continue;
                                }
                                let b = b0 + h;
                                let col = b * BLOCK - examples.start;
                                let n = valid(b);
                                let mask: __mmask16 = if n == BLOCK { !0 } else { (1 << n) - 1 };
                                // SAFETY: row i < a.rows and columns col..col + n are
                                // within the output's examples.
                                unsafe {
                                    _mm512_mask_storeu_ps(
                                        c.as_mut_ptr().add(i * c.strides()[0] as usize + col),
                                        mask,
                                        v,
                                    )
                                };
                            }
                        }
                    };
                    // SAFETY: as for the function.
                    unsafe { by_rows!(&t, rows.len(), store, [1 2 3 4 5 6 7 8 9 10 11 12]) };
                }
            }
        }
    }

    /// The accumulators of one tile: `R` rows of W times two blocks, every element one
    /// chain over the depth.
    #[inline(always)]
    unsafe fn tile<const R: usize>(t: &Tile) -> [[__m512; 2]; R] {
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; R];
            for k in 0..t.depth {
                let pixels = |x: *const u8| {
                    _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(
                        x.add(k * BLOCK) as *const __m128i
                    )))
                };
                let scale = _mm512_set1_ps(*t.scale.add(k));
                let shift = _mm512_set1_ps(*t.shift.add(k));
                let v0 = _mm512_fmadd_ps(pixels(t.x[0]), scale, shift);
                let v1 = _mm512_fmadd_ps(pixels(t.x[1]), scale, shift);
                let wk = t.w.add(k * t.width);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let w = _mm512_set1_ps(*wk.add(r));
                    acc[0] = _mm512_fmadd_ps(w, v0, acc[0]);
                    acc[1] = _mm512_fmadd_ps(w, v1, acc[1]);
                }
            }
            acc
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, s};

    use super::*;
    use crate::kernel::dot_nt_packed;

    fn pixels(rows: usize, cols: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, k)| {
            ((i * 37 + k * 11 + i * k) % 256) as f32
        })
    }

    fn standardisation(cols: usize) -> (Vec<f32>, Vec<f32>) {
        let scale = (0..cols)
            .map(|k| 1.0 / (255.0 * (0.2 + 0.01 * k as f32)))
            .collect();
        let shift = (0..cols).map(|k| -0.4 - 0.003 * k as f32).collect();
        (scale, shift)
    }

    #[test]
    fn tiles_cover_the_rows_evenly() {
        let all: Vec<Vec<usize>> = [0, 1, 10, 12, 13, 24, 40]
            .iter()
            .map(|&n| tiles(n).map(|r| r.len()).collect())
            .collect();
        assert_eq!(
            all,
            vec![
                vec![],
                vec![1],
                vec![10],
                vec![12],
                vec![7, 6],
                vec![12, 12],
                vec![10, 10, 10, 10]
            ]
        );
        assert!(tiles(37).flatten().eq(0..37));
    }

    #[test]
    fn pays_where_the_panels_are_padded() {
        let pays: Vec<usize> = (1..=48).filter(|&m| blocked_pays(m)).collect();
        assert!(pays.contains(&10) && pays.contains(&20), "{pays:?}");
        assert!(
            ![16, 24, 30, 40].iter().any(|m| pays.contains(m)),
            "{pays:?}"
        );
    }

    #[test]
    fn debug_prints_the_shape_not_the_pixels() {
        let (scale, shift) = standardisation(9);
        let b = Blocked::new(pixels(37, 9).view(), &scale, &shift);
        assert_eq!(format!("{b:?}"), "Blocked { rows: 37, cols: 9, .. }");
    }

    #[test]
    fn layout_round_trips() {
        let p = pixels(37, 9);
        let (scale, shift) = standardisation(9);
        let b = Blocked::new(p.view(), &scale, &shift);
        assert_eq!(b.bytes(), 48 * 9);
        for ((i, k), &v) in p.indexed_iter() {
            assert_eq!(b.value(i, k), v.mul_add(scale[k], shift[k]), "({i}, {k})");
        }
    }

    #[test]
    fn recovers_the_pixels_of_standardised_values() {
        let p = pixels(37, 9);
        let (scale, shift) = standardisation(9);
        let mut x = p.clone();
        x.rows_mut().into_iter().for_each(|mut r| {
            crate::kernel::standardise(r.as_slice_mut().unwrap(), &scale, &shift)
        });
        let b = Blocked::from_standardised(x.view(), &scale, &shift).expect("pixels");
        for ((i, k), &v) in x.indexed_iter() {
            assert_eq!(b.value(i, k).to_bits(), v.to_bits(), "({i}, {k})");
            assert_eq!(
                f32::from(b.data[(i / BLOCK) * BLOCK * 9 + k * BLOCK + i % BLOCK]),
                p[[i, k]]
            );
        }
        // One value off by its last bit is no standardised pixel.
        x[[30, 4]] = f32::from_bits(x[[30, 4]].to_bits() ^ 1);
        assert!(Blocked::from_standardised(x.view(), &scale, &shift).is_none());
    }

    #[test]
    #[should_panic(expected = "not a pixel")]
    fn refuses_values_that_are_not_pixels() {
        let mut p = pixels(3, 4);
        p[[2, 1]] = 0.5;
        let (scale, shift) = standardisation(4);
        Blocked::new(p.view(), &scale, &shift);
    }

    /// Every row count up to two register tiles and more, odd and partial blocks, and a
    /// chunk that starts inside the split: the same bits as the packed product on the
    /// standardised rows (on this CPU's path, and on the reference).
    #[test]
    fn same_bits_as_the_packed_product() {
        let (n, d) = (83, 37);
        let p = pixels(n, d);
        let (scale, shift) = standardisation(d);
        let blocked = Blocked::new(p.view(), &scale, &shift);
        let x = Array2::from_shape_fn((n, d), |(i, k)| blocked.value(i, k));
        for m in [1, 7, 10, 12, 13, 20, 25, 40, 51] {
            let w = Array2::from_shape_fn((m, d), |(i, k)| {
                ((i * 7 + k * 3) % 19) as f32 / 19.0 - 0.45 + 1e-3 * k as f32
            });
            let packed = Packed::new(w.view());
            for range in [0..n, 16..83, 32..48, 64..65, 0..0] {
                let mut want = Array2::zeros((m, range.len()));
                dot_nt_packed(&packed, x.slice(s![range.clone(), ..]), want.view_mut());
                let mut got = Array2::from_elem((m, range.len()), f32::NAN);
                dot_nt_blocked(&packed, &blocked, range.clone(), got.view_mut());
                let same = want
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "m = {m}, examples {range:?}");
                let mut reference = Array2::from_elem((m, range.len()), f32::NAN);
                portable(&packed, &blocked, range.clone(), &mut reference.view_mut());
                assert_eq!(
                    reference.mapv(f32::to_bits),
                    want.mapv(f32::to_bits),
                    "reference, m = {m}, examples {range:?}"
                );
            }
        }
    }

    #[test]
    #[should_panic(expected = "start on a block")]
    fn refuses_a_chunk_that_starts_inside_a_block() {
        let (scale, shift) = standardisation(4);
        let blocked = Blocked::new(pixels(40, 4).view(), &scale, &shift);
        let packed = Packed::new(Array2::<f32>::zeros((10, 4)).view());
        dot_nt_blocked(&packed, &blocked, 3..20, Array2::zeros((10, 17)).view_mut());
    }
}
