//! Losses on the scores: the seam a new loss plugs into ([`Loss`]), the cross-entropy
//! of the softmax ([`CrossEntropy`]) and the multi-class hinge ([`Hinge`]).
//!
//! A loss is used twice: in training it turns a run's scores into their gradients
//! ([`Loss::score_gradients`]), and in evaluation it sums the loss and counts the
//! correct examples of a chunk ([`Loss::chunk_sums`]). Both work on one run's K x n
//! block of scores, bias not yet added, class row by class row, so their loops run over
//! contiguous memory.

use ndarray::{ArrayView1, ArrayViewMut1, ArrayViewMut2};

use super::Real;

/// A loss on a run's scores. Implementations are zero-sized markers; a trainer is
/// generic over its loss, so the loops compile for each loss.
pub trait Loss: Copy + Default + Send + Sync + std::fmt::Debug + 'static {
    /// The loss's name in sweep files and outputs.
    const NAME: &'static str;

    /// Adds `bias` to one run's scores `s` (K x n, one example per column) and replaces
    /// each column by the gradient of that example's loss with respect to its scores
    /// (not divided by n). `label(j)` is column j's label; `max` and `sum` are scratch
    /// of length >= n.
    fn score_gradients<T: Real>(
        s: ArrayViewMut2<T>,
        bias: ArrayView1<T>,
        label: impl Fn(usize) -> usize,
        max: &mut [T],
        sum: &mut [T],
    );

    /// The loss sum and the correct count of one run on one chunk, from its K score
    /// `rows` (bias not yet added); `best`, `arg` and `sum` are scratch of the chunk's
    /// length.
    fn chunk_sums<T: Real>(
        rows: &[&[T]],
        bias: ArrayView1<T>,
        labels: &[u8],
        best: &mut [T],
        arg: &mut [u32],
        sum: &mut [T],
    ) -> (f64, usize);
}

/// The cross-entropy of the softmax of the scores: `-ln p_y`, `p = softmax(s)`; its
/// score gradient is `p - onehot(y)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrossEntropy;

impl Loss for CrossEntropy {
    const NAME: &'static str = "cross-entropy";

    fn score_gradients<T: Real>(
        mut s: ArrayViewMut2<T>,
        bias: ArrayView1<T>,
        label: impl Fn(usize) -> usize,
        max: &mut [T],
        sum: &mut [T],
    ) {
        softmax_columns(s.view_mut(), bias, max, sum);
        for j in 0..s.ncols() {
            let y = label(j);
            s[[y, j]] = s[[y, j]] - T::one();
        }
    }

    fn chunk_sums<T: Real>(
        rows: &[&[T]],
        bias: ArrayView1<T>,
        labels: &[u8],
        best: &mut [T],
        arg: &mut [u32],
        sum: &mut [T],
    ) -> (f64, usize) {
        run_sums(rows, bias, labels, best, arg, sum)
    }
}

/// The multi-class SVM loss (Weston and Watkins; the course's first-lab bonus):
/// `sum over j != y of max(0, s_j - s_y + 1)`. Its score gradient is 1 for every class
/// whose margin is positive and minus their count for the label; at a margin of exactly
/// 0 (a kink) the gradient taken is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hinge;

impl Loss for Hinge {
    const NAME: &'static str = "hinge";

    fn score_gradients<T: Real>(
        mut s: ArrayViewMut2<T>,
        bias: ArrayView1<T>,
        label: impl Fn(usize) -> usize,
        max: &mut [T],
        sum: &mut [T],
    ) {
        let n = s.ncols();
        let (truth, count) = (&mut max[..n], &mut sum[..n]);
        for (mut row, &bc) in s.rows_mut().into_iter().zip(bias) {
            row.iter_mut().for_each(|v| *v = *v + bc);
        }
        for (j, t) in truth.iter_mut().enumerate() {
            *t = s[[label(j), j]];
        }
        count.fill(T::zero());
        for (c, mut row) in s.rows_mut().into_iter().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                let active = c != label(j) && *v - truth[j] + T::one() > T::zero();
                *v = if active { T::one() } else { T::zero() };
                count[j] = count[j] + *v;
            }
        }
        for j in 0..n {
            s[[label(j), j]] = -count[j];
        }
    }

    fn chunk_sums<T: Real>(
        rows: &[&[T]],
        bias: ArrayView1<T>,
        labels: &[u8],
        best: &mut [T],
        arg: &mut [u32],
        sum: &mut [T],
    ) -> (f64, usize) {
        // best/arg: the first highest score (as the cross-entropy's); sum: the margins.
        best.iter_mut()
            .zip(rows[0])
            .for_each(|(m, &v)| *m = v + bias[0]);
        arg.fill(0);
        for (c, row) in rows.iter().enumerate().skip(1) {
            let (bc, class) = (bias[c], c as u32);
            for ((m, a), &v) in best.iter_mut().zip(arg.iter_mut()).zip(row.iter()) {
                let v = v + bc;
                let above = v > *m;
                *m = if above { v } else { *m };
                *a = if above { class } else { *a };
            }
        }
        sum.fill(T::zero());
        for (c, (row, &bc)) in rows.iter().zip(bias).enumerate() {
            for (j, (acc, &v)) in sum.iter_mut().zip(row.iter()).enumerate() {
                let y = usize::from(labels[j]);
                let margin = v + bc - (rows[y][j] + bias[y]) + T::one();
                if c != y && margin > T::zero() {
                    *acc = *acc + margin;
                }
            }
        }
        let (mut loss, mut correct) = (0.0, 0);
        for (j, &label) in labels.iter().enumerate() {
            loss += sum[j].to_f64();
            correct += usize::from(arg[j] as usize == usize::from(label));
        }
        (loss, correct)
    }
}

/// Log-sum-exp of `s` with the maximum subtracted first, so no exponent overflows
/// (the standard stabilisation; e.g. Goodfellow, Bengio and Courville, *Deep Learning*,
/// section 4.1). Returns `(lse, index of the first maximum)`.
pub fn log_sum_exp<T: Real>(s: impl Iterator<Item = T> + Clone) -> (T, usize) {
    let (mut best, mut arg) = (T::neg_infinity(), 0);
    for (k, v) in s.clone().enumerate() {
        if v > best || (k == 0) {
            best = v;
            arg = k;
        }
    }
    let sum = s.fold(T::zero(), |acc, v| acc + (v - best).fixed_exp());
    (best + sum.ln(), arg)
}

/// Softmax of `s` in place (max subtracted, then normalised).
pub fn softmax_in_place<T: Real>(mut s: ArrayViewMut1<T>) {
    let max = s
        .iter()
        .fold(T::neg_infinity(), |m, &v| if v > m { v } else { m });
    let mut sum = T::zero();
    s.mapv_inplace(|v| {
        let e = (v - max).fixed_exp();
        sum = sum + e;
        e
    });
    s.mapv_inplace(|v| v / sum);
}

/// Adds `bias` to the scores `s` (K x n, one example per column) and replaces every
/// column by its softmax.
///
/// Works class row by class row over all columns, so the inner loops run over contiguous
/// memory, but performs exactly the operations of [`softmax_in_place`] on each column, in
/// the same order, and so gives the same bits. `max` and `sum` are scratch of length >= n.
///
/// Compiled twice, plainly and with AVX2, as [`run_sums`] (tested to give the same bits).
pub(crate) fn softmax_columns<T: Real>(
    s: ArrayViewMut2<T>,
    bias: ArrayView1<T>,
    max: &mut [T],
    sum: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { softmax_columns_avx2(s, bias, max, sum) };
    }
    softmax_columns_body(s, bias, max, sum)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn softmax_columns_avx2<T: Real>(
    s: ArrayViewMut2<T>,
    bias: ArrayView1<T>,
    max: &mut [T],
    sum: &mut [T],
) {
    softmax_columns_body(s, bias, max, sum)
}

#[inline(always)]
pub(crate) fn softmax_columns_body<T: Real>(
    mut s: ArrayViewMut2<T>,
    bias: ArrayView1<T>,
    max: &mut [T],
    sum: &mut [T],
) {
    let n = s.ncols();
    let (max, sum) = (&mut max[..n], &mut sum[..n]);
    max.fill(T::neg_infinity());
    for (mut row, &bc) in s.rows_mut().into_iter().zip(bias) {
        let row = row.as_slice_mut().expect("score rows are contiguous");
        for (v, m) in row.iter_mut().zip(max.iter_mut()) {
            *v = *v + bc;
            if *v > *m {
                *m = *v;
            }
        }
    }
    sum.fill(T::zero());
    for mut row in s.rows_mut() {
        let row = row.as_slice_mut().expect("score rows are contiguous");
        for ((v, &m), acc) in row.iter_mut().zip(max.iter()).zip(sum.iter_mut()) {
            *v = (*v - m).fixed_exp();
            *acc = *acc + *v;
        }
    }
    for mut row in s.rows_mut() {
        let row = row.as_slice_mut().expect("score rows are contiguous");
        for (v, &total) in row.iter_mut().zip(sum.iter()) {
            *v = *v / total;
        }
    }
}

/// The loss sum and the correct count of one run on one chunk, from its K score `rows`.
///
/// Compiled twice, plainly and with AVX2, chosen at run time: its loops are vectorised,
/// and as no multiply and add are fused, both give the same bits (tested).
pub(crate) fn run_sums<T: Real>(
    rows: &[&[T]],
    bias: ArrayView1<T>,
    labels: &[u8],
    best: &mut [T],
    arg: &mut [u32],
    sum: &mut [T],
) -> (f64, usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { run_sums_avx2(rows, bias, labels, best, arg, sum) };
    }
    run_sums_body(rows, bias, labels, best, arg, sum)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn run_sums_avx2<T: Real>(
    rows: &[&[T]],
    bias: ArrayView1<T>,
    labels: &[u8],
    best: &mut [T],
    arg: &mut [u32],
    sum: &mut [T],
) -> (f64, usize) {
    run_sums_body(rows, bias, labels, best, arg, sum)
}

/// See [`run_sums`]. The log-sum-exp of each example is computed class row by class
/// row over all columns at once, but with exactly the operations of [`log_sum_exp`], in
/// the same order, so the result does not change.
#[inline(always)]
pub(crate) fn run_sums_body<T: Real>(
    rows: &[&[T]],
    bias: ArrayView1<T>,
    labels: &[u8],
    best: &mut [T],
    arg: &mut [u32],
    sum: &mut [T],
) -> (f64, usize) {
    best.iter_mut()
        .zip(rows[0])
        .for_each(|(m, &v)| *m = v + bias[0]);
    arg.fill(0);
    for (c, row) in rows.iter().enumerate().skip(1) {
        let (bc, class) = (bias[c], c as u32);
        // Selects, not branches: the comparisons are unpredictable, and this way the
        // loop is vectorised.
        for ((m, a), &v) in best.iter_mut().zip(arg.iter_mut()).zip(row.iter()) {
            let v = v + bc;
            let above = v > *m;
            *m = if above { v } else { *m };
            *a = if above { class } else { *a };
        }
    }
    sum.fill(T::zero());
    for (row, &bc) in rows.iter().zip(bias) {
        for ((acc, &m), &v) in sum.iter_mut().zip(best.iter()).zip(row.iter()) {
            *acc = *acc + (v + bc - m).fixed_exp();
        }
    }
    let (mut loss, mut correct) = (0.0, 0);
    for (j, &label) in labels.iter().enumerate() {
        let y = usize::from(label);
        let lse = best[j] + sum[j].ln();
        loss += (lse - (rows[y][j] + bias[y])).to_f64();
        correct += usize::from(arg[j] as usize == y);
    }
    (loss, correct)
}
