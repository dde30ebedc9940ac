//! Scoring splits with stacked models: every run's K score rows are computed by one
//! product over the split, in chunks of `EVAL_CHUNK` examples, and summed by the
//! run's loss ([`Loss::chunk_sums`]). The chunks' sums are added in chunk order, so the
//! metrics never depend on which thread scored which chunk.

use std::ops::Range;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, s};
use rayon::prelude::*;

use super::{Loss, Real, SplitMetrics};
use crate::data::Split;
use crate::kernel::{BLOCK, Packed, dot_nt, dot_nt_packed};

/// Examples per chunk when scoring a whole split (keeps the score block in cache); whole
/// blocks of the blocked evaluation.
pub(crate) const EVAL_CHUNK: usize = 512;
const _: () = assert!(EVAL_CHUNK.is_multiple_of(BLOCK));

/// Squared Frobenius norm, accumulated in f64.
pub(crate) fn sq_norm<T: Real>(w: ArrayView2<T>) -> f64 {
    w.iter().map(|&v| v.to_f64() * v.to_f64()).sum()
}

/// Per-run loss sums and correct counts of the stacked models on one chunk of a split.
pub struct ChunkSums {
    pub(crate) loss: Vec<f64>,
    pub(crate) correct: Vec<usize>,
}

/// Scratch buffers of one evaluation worker: the score block and the per-column maximum,
/// argmax and exponential sum of one run.
pub struct EvalScratch<T> {
    scores: Array2<T>,
    best: Vec<T>,
    arg: Vec<u32>,
    sum: Vec<T>,
}

impl<T: Real> EvalScratch<T> {
    pub(crate) fn new(m: usize) -> Self {
        EvalScratch {
            scores: Array2::zeros((m, EVAL_CHUNK)),
            best: vec![T::zero(); EVAL_CHUNK],
            arg: vec![0; EVAL_CHUNK],
            sum: vec![T::zero(); EVAL_CHUNK],
        }
    }
}

/// Scores examples `range` of `split` with every stacked model and sums their losses
/// ([`Loss::chunk_sums`]); `w` stacks `runs` models of K rows each.
pub(crate) fn eval_chunk<T: Real, L: Loss>(
    runs: usize,
    w: ArrayView2<T>,
    packed: Option<&Packed<T>>,
    b: ArrayView1<T>,
    split: &Split,
    range: Range<usize>,
    sc: &mut EvalScratch<T>,
) -> ChunkSums {
    let k = w.nrows() / runs;
    let nc = range.len();
    let labels = &split.y[range.clone()];
    let EvalScratch {
        scores,
        best,
        arg,
        sum,
    } = sc;
    first_product(w, packed, split, range, scores.slice_mut(s![.., ..nc]));
    let all = scores.as_slice().expect("the score block is contiguous");
    let (best, arg, sum) = (&mut best[..nc], &mut arg[..nc], &mut sum[..nc]);
    let mut out = ChunkSums {
        loss: vec![0.0; runs],
        correct: vec![0; runs],
    };
    for r in 0..runs {
        let rows: Vec<&[T]> = (0..k)
            .map(|c| &all[(r * k + c) * EVAL_CHUNK..][..nc])
            .collect();
        let bias = b.slice(s![r * k..(r + 1) * k]);
        (out.loss[r], out.correct[r]) = L::chunk_sums(&rows, bias, labels, best, arg, sum);
    }
    out
}

/// `out = w X^T` over examples `range` of `split` (one column each), by the product the
/// precision scores with: packed, from blocked pixels where that pays, or `dot_nt`.
pub(crate) fn first_product<T: Real>(
    w: ArrayView2<T>,
    packed: Option<&Packed<T>>,
    split: &Split,
    range: Range<usize>,
    mut out: ndarray::ArrayViewMut2<T>,
) {
    let blocked = packed.is_some_and(|p| T::score_blocked(p, split, range.clone(), out.view_mut()));
    if !blocked {
        let xc = split.x.slice(s![range, ..]);
        match packed {
            Some(p) => dot_nt_packed(p, xc, out),
            None => dot_nt(w, xc, out),
        }
    }
}

/// How many chunks a split of `n` examples is scored in.
pub(crate) fn eval_chunk_count(n: usize) -> usize {
    n.div_ceil(EVAL_CHUNK)
}

/// The examples of chunk `j` of a split of `n` examples.
pub(crate) fn eval_chunk_range(n: usize, j: usize) -> Range<usize> {
    j * EVAL_CHUNK..((j + 1) * EVAL_CHUNK).min(n)
}

/// Metrics of every stacked model (rows `r*K..(r+1)*K` of `w`, one per `lambdas`) on
/// `split`.
///
/// Chunks are scored in parallel on the current rayon pool, and their sums are added in
/// chunk order afterwards ([`add_up`]), so the result does not depend on the number of
/// threads.
pub(crate) fn evaluate<T: Real, L: Loss>(
    w: &Array2<T>,
    b: &Array1<T>,
    lambdas: &[f64],
    split: &Split,
) -> Vec<SplitMetrics> {
    let packed = T::PACKED_EVAL.then(|| Packed::new(w.view()));
    let n = split.len();
    let chunks: Vec<ChunkSums> = (0..eval_chunk_count(n))
        .into_par_iter()
        .with_max_len(1)
        .map_init(
            || EvalScratch::<T>::new(w.nrows()),
            |sc, j| {
                let range = eval_chunk_range(n, j);
                eval_chunk::<T, L>(
                    lambdas.len(),
                    w.view(),
                    packed.as_ref(),
                    b.view(),
                    split,
                    range,
                    sc,
                )
            },
        )
        .collect();
    add_up(w, lambdas, split.len(), &chunks)
}

/// The metrics of every stacked model from the sums of all `chunks` of a split of `n`
/// examples, added in the order given.
pub(crate) fn add_up<T: Real>(
    w: &Array2<T>,
    lambdas: &[f64],
    n: usize,
    chunks: &[ChunkSums],
) -> Vec<SplitMetrics> {
    let runs = lambdas.len();
    let k = w.nrows() / runs;
    let mut loss = vec![0.0f64; runs];
    let mut correct = vec![0usize; runs];
    for c in chunks {
        for r in 0..runs {
            loss[r] += c.loss[r];
            correct[r] += c.correct[r];
        }
    }
    (0..runs)
        .map(|r| {
            let mean = loss[r] / n as f64;
            let reg = lambdas[r] * sq_norm(w.slice(s![r * k..(r + 1) * k, ..]));
            SplitMetrics {
                loss: mean,
                cost: mean + reg,
                accuracy: correct[r] as f64 / n as f64,
            }
        })
        .collect()
}
