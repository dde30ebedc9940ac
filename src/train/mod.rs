//! The one-layer softmax classifier: scores `s = W x + b`, `p = softmax(s)`, the
//! cross-entropy cost with an L2 penalty `lambda * ||W||_F^2` (b not penalised), its
//! analytic gradients, and mini-batch gradient descent.
//!
//! Training is generic over the float type ([`Real`]: f32 or f64) and trains a *group* of
//! runs at once: runs that see the same examples in the same order (same seed, batch
//! size, epochs, shuffling and initialisation) differ only in `lambda` and `eta`, so their
//! weight matrices are stacked into one `(R*K) x d` matrix and every matrix product reads a
//! mini-batch once for all of them. The products are [`crate::kernel`]'s, which compute
//! every output element with one fixed sequence of operations whatever the number of rows,
//! and all scaling happens in separate element-wise passes; so a run's numbers are
//! bit-identical whether it trains alone or fused with others.

pub mod gradcheck;

use std::fmt::{Debug, Display};
use std::ops::Range;

use ndarray::{
    Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, LinalgScalar, Zip,
    s,
};
use ndarray_npy::WritableElement;
use num_traits::Float;
use rayon::prelude::*;

use crate::data::{Dataset, NUM_CLASSES, Split};
use crate::kernel::{
    BLOCK, Chain, Packed, Pages, Scalar, blocked_pays, dot_nt, dot_nt_blocked, dot_nt_packed,
    padded_zeros, par_acc_nn_rows, par_dot_nt_rows,
};
pub use crate::plan::{Hyper, TrainConfig};
use crate::rng::{self, Stream};

/// The revision of training's arithmetic, recorded with every run: raised whenever a
/// change to sweep changes the bits of any result (the order of an operation, where a
/// sum is split). A folder's runs of another revision are not reused next to runs trained
/// now (`sweep run` stops and says so; `--force` retrains them), so one sweep's results
/// always come from one arithmetic.
///
/// 1: until November 2026. 2: each mini-batch's weight gradient is the sum of its two
/// halves' (`batch_split`). 3: the softmax and the log-sum-exp use sweep's own
/// exponential ([`crate::kernel::exp`]) instead of the C library's. 4: pixels are standardised
/// by one f32 fused multiply-add ([`crate::data::pixel_standardisation`]), and splits
/// are scored in chunks of 512 examples instead of 500.
pub const ARITHMETIC: u32 = 4;

/// A float type training can run in.
pub trait Real:
    LinalgScalar + Float + Scalar + Send + Sync + Debug + Display + WritableElement + 'static
{
    /// `"f32"` or `"f64"`.
    const NAME: &'static str;
    /// Whether evaluation scores with [`dot_nt_packed`] (else [`dot_nt`]). Measured with
    /// `examples/kernels.rs`: in f32 the packed product is 1.4-2x faster on the
    /// evaluation shapes; in f64, where every broadcast data value is widened, it is
    /// about as fast with 40 rows and half as fast with 10, so f64 keeps `dot_nt`.
    /// Each type always uses the same product, so results never depend on the group.
    const PACKED_EVAL: bool;
    /// Scores examples `range` of `split` from its pixels in blocks into `out`, if that
    /// is the faster way for `packed`'s rows (f32 only, see [`blocked_pays`]) and the
    /// split has them ([`Split::blocked`]): the same bits as [`dot_nt_packed`] on the
    /// split's rows. Returns whether it did.
    fn score_blocked(
        packed: &Packed<Self>,
        split: &Split,
        range: Range<usize>,
        out: ArrayViewMut2<Self>,
    ) -> bool;
    /// Whether scoring `rows` rows of W reads a split's pixels in blocks (see
    /// [`Real::score_blocked`]).
    fn reads_blocks(rows: usize) -> bool;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    /// `e^self` by [`crate::kernel::exp`]: vectorisable, and the same bits on every machine.
    fn fixed_exp(self) -> Self;
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    const PACKED_EVAL: bool = true;
    fn score_blocked(
        packed: &Packed<f32>,
        split: &Split,
        range: Range<usize>,
        out: ArrayViewMut2<f32>,
    ) -> bool {
        // The rows first: asking for the blocks makes them.
        let Some(blocked) = Self::reads_blocks(packed.nrows())
            .then(|| split.blocked())
            .flatten()
        else {
            return false;
        };
        dot_nt_blocked(packed, blocked, range, out);
        true
    }
    fn reads_blocks(rows: usize) -> bool {
        blocked_pays(rows)
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn fixed_exp(self) -> Self {
        crate::kernel::exp::exp_f32(self)
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    const PACKED_EVAL: bool = false;
    fn score_blocked(_: &Packed<f64>, _: &Split, _: Range<usize>, _: ArrayViewMut2<f64>) -> bool {
        false
    }
    fn reads_blocks(_: usize) -> bool {
        false
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn fixed_exp(self) -> Self {
        crate::kernel::exp::exp_f64(self)
    }
}

/// Weights `W` (K x d) and biases `b` (K).
#[derive(Debug, Clone, PartialEq)]
pub struct Params<T> {
    pub w: Array2<T>,
    pub b: Array1<T>,
}

impl<T: Real> Params<T> {
    /// Draws W then b, row by row, from N(0, std^2) with the `Init` stream of `seed`.
    pub fn init(classes: usize, dim: usize, std: f64, seed: u64) -> Self {
        let mut rng = rng::generator(seed, Stream::Init);
        let mut w = vec![0.0; classes * dim];
        let mut b = vec![0.0; classes];
        rng::fill_normal(&mut rng, std, &mut w);
        rng::fill_normal(&mut rng, std, &mut b);
        Params {
            w: Array2::from_shape_vec((classes, dim), w.into_iter().map(T::from_f64).collect())
                .expect("shape matches"),
            b: Array1::from_iter(b.into_iter().map(T::from_f64)),
        }
    }
}

/// Loss, cost and accuracy of a model on one split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitMetrics {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Loss plus `lambda * ||W||_F^2`.
    pub cost: f64,
    /// Fraction of examples whose highest score is their label.
    pub accuracy: f64,
}

/// Metrics on the training and validation splits after `epoch` epochs (0 = at init).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train: SplitMetrics,
    pub val: SplitMetrics,
}

/// How a training run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// The training or validation cost was not finite after this epoch; training stopped.
    Diverged {
        epoch: usize,
    },
}

/// A trained run: final parameters, per-epoch history and test metrics.
#[derive(Debug, Clone)]
pub struct Fitted<T> {
    params: Params<T>,
    history: Vec<EpochMetrics>,
    test: Option<SplitMetrics>,
    outcome: Outcome,
}

impl<T> Fitted<T> {
    pub fn params(&self) -> &Params<T> {
        &self.params
    }
    pub fn history(&self) -> &[EpochMetrics] {
        &self.history
    }
    pub fn test(&self) -> Option<SplitMetrics> {
        self.test
    }
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }
}

/// Examples per chunk when scoring a whole split (keeps the score block in cache); whole
/// blocks of the blocked evaluation.
const EVAL_CHUNK: usize = 512;
const _: () = assert!(EVAL_CHUNK.is_multiple_of(BLOCK));

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
fn softmax_columns<T: Real>(
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
unsafe fn softmax_columns_avx2<T: Real>(
    s: ArrayViewMut2<T>,
    bias: ArrayView1<T>,
    max: &mut [T],
    sum: &mut [T],
) {
    softmax_columns_body(s, bias, max, sum)
}

#[inline(always)]
fn softmax_columns_body<T: Real>(
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

/// Squared Frobenius norm, accumulated in f64.
fn sq_norm<T: Real>(w: ArrayView2<T>) -> f64 {
    w.iter().map(|&v| v.to_f64() * v.to_f64()).sum()
}

/// Per-run loss sums and correct counts of the stacked models on one chunk of a split.
pub struct ChunkSums {
    loss: Vec<f64>,
    correct: Vec<usize>,
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
    fn new(m: usize) -> Self {
        EvalScratch {
            scores: Array2::zeros((m, EVAL_CHUNK)),
            best: vec![T::zero(); EVAL_CHUNK],
            arg: vec![0; EVAL_CHUNK],
            sum: vec![T::zero(); EVAL_CHUNK],
        }
    }
}

/// Scores examples `range` of `split` with every stacked model and sums their losses
/// ([`run_sums`]).
fn eval_chunk<T: Real>(
    w: ArrayView2<T>,
    packed: Option<&Packed<T>>,
    b: ArrayView1<T>,
    split: &Split,
    range: Range<usize>,
    sc: &mut EvalScratch<T>,
) -> ChunkSums {
    let (m, k) = (w.nrows(), NUM_CLASSES);
    let runs = m / k;
    let nc = range.len();
    let labels = &split.y[range.clone()];
    let EvalScratch {
        scores,
        best,
        arg,
        sum,
    } = sc;
    let out = scores.slice_mut(s![.., ..nc]);
    let blocked = packed.is_some_and(|p| T::score_blocked(p, split, range.clone(), out));
    if !blocked {
        let (xc, out) = (split.x.slice(s![range, ..]), scores.slice_mut(s![.., ..nc]));
        match packed {
            Some(p) => dot_nt_packed(p, xc, out),
            None => dot_nt(w, xc, out),
        }
    }
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
        (out.loss[r], out.correct[r]) = run_sums(&rows, bias, labels, best, arg, sum);
    }
    out
}

/// The loss sum and the correct count of one run on one chunk, from its K score `rows`.
///
/// Compiled twice, plainly and with AVX2, chosen at run time: its loops are vectorised,
/// and as no multiply and add are fused, both give the same bits (tested).
fn run_sums<T: Real>(
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
unsafe fn run_sums_avx2<T: Real>(
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
fn run_sums_body<T: Real>(
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

/// How many chunks a split of `n` examples is scored in.
fn eval_chunk_count(n: usize) -> usize {
    n.div_ceil(EVAL_CHUNK)
}

/// The examples of chunk `j` of a split of `n` examples.
fn eval_chunk_range(n: usize, j: usize) -> Range<usize> {
    j * EVAL_CHUNK..((j + 1) * EVAL_CHUNK).min(n)
}

/// Metrics of every stacked model (rows `r*K..(r+1)*K` of `w`) on `split`.
///
/// Chunks are scored in parallel on the current rayon pool, and their sums are added in
/// chunk order afterwards ([`add_up`]), so the result does not depend on the number of
/// threads.
fn evaluate<T: Real>(
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
                eval_chunk(w.view(), packed.as_ref(), b.view(), split, range, sc)
            },
        )
        .collect();
    add_up(w, lambdas, split.len(), &chunks)
}

/// The metrics of every stacked model from the sums of all `chunks` of a split of `n`
/// examples, added in the order given.
fn add_up<T: Real>(
    w: &Array2<T>,
    lambdas: &[f64],
    n: usize,
    chunks: &[ChunkSums],
) -> Vec<SplitMetrics> {
    let (runs, k) = (w.nrows() / NUM_CLASSES, NUM_CLASSES);
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

/// Metrics of one model on `split`.
pub fn metrics<T: Real>(params: &Params<T>, lambda: f64, split: &Split) -> SplitMetrics {
    evaluate(&params.w, &params.b, &[lambda], split)[0]
}

/// Rows of a mini-batch below which it is not split in two: smaller halves would cost
/// more to hand to another thread than they save.
const SPLIT_MIN_ROWS: usize = 20;

/// Rows of a mini-batch half taken through the forward and the gradient product at once,
/// so that they are still in L2 when the gradient reads them again: at least
/// [`PIECE_MIN_ROWS`], and at least as many bytes of data as W has, since every piece
/// reads W and updates the whole gradient once more. Alternating binaries: 25-row pieces
/// against 50 were level on one f32 run (W of 120 KiB); on the f64 study (groups of 40
/// rows, W of 960 KiB) 50 took 5% less CPU.
fn piece_rows<T>(w_rows: usize) -> usize {
    PIECE_MIN_ROWS.max(w_rows * std::mem::size_of::<T>() / std::mem::size_of::<f32>())
}

/// 25 CIFAR-10 images are 300 KiB in f32.
const PIECE_MIN_ROWS: usize = 25;

/// Where a mini-batch of `n` examples is split into the two halves whose weight gradients
/// are computed apart (on two threads, if there are two) and then added.
///
/// It depends on `n` alone, never on the thread count, so the sums, and so every result,
/// are the same however many threads train. The split falls on a multiple of 5, the data
/// rows of a `dot_nt` register tile.
fn batch_split(n: usize) -> usize {
    if n < 2 * SPLIT_MIN_ROWS {
        n
    } else {
        n / 2 / 5 * 5
    }
}

/// One half of a mini-batch: its examples, and the score columns, weight gradient and
/// softmax scratch that are its alone.
struct Half<'a, T> {
    rows: &'a [u32],
    scores: ArrayViewMut2<'a, T>,
    grad: ArrayViewMut2<'a, T>,
    col_max: &'a mut [T],
    col_sum: &'a mut [T],
}

impl<T: Real> Half<'_, T> {
    /// Scores this half with the stacked weights `w` and biases `b`, turns the scores into
    /// the score gradients `P - Y`, and accumulates the weight gradient `(P - Y) X`, in
    /// pieces of [`piece_rows`] examples: the gradient's multiply-add chains continue from
    /// piece to piece, so the pieces' size never changes its bits.
    fn forward_backward(self, w: ArrayView2<T>, b: ArrayView1<T>, train: &Split) {
        let Half {
            rows,
            mut scores,
            mut grad,
            col_max,
            col_sum,
        } = self;
        let (k, runs) = (NUM_CLASSES, w.nrows() / NUM_CLASSES);
        let x = train.x.view();
        // As many pieces of at least piece_rows as fit, of equal size (a 50-row half
        // with 40-row pieces is one piece, not 40 + 10).
        let pieces = (rows.len() / piece_rows::<T>(w.nrows())).max(1);
        let size = rows.len().div_ceil(pieces).max(1);
        for (p, piece) in rows.chunks(size).enumerate() {
            let cols = p * size..p * size + piece.len();
            let mut g = scores.slice_mut(s![.., cols]);
            par_dot_nt_rows(w, x, piece, g.view_mut());
            for r in 0..runs {
                softmax_columns(
                    g.slice_mut(s![r * k..(r + 1) * k, ..]),
                    b.slice(s![r * k..(r + 1) * k]),
                    col_max,
                    col_sum,
                );
            }
            for (j, &example) in piece.iter().enumerate() {
                let y = usize::from(train.y[example as usize]);
                for r in 0..runs {
                    g[[r * k + y, j]] = g[[r * k + y, j]] - T::one();
                }
            }
            let chain = if p == 0 {
                Chain::Start
            } else {
                Chain::Continue
            };
            par_acc_nn_rows(g.view(), x, piece, grad.view_mut(), chain);
        }
    }
}

/// A fused group (runs sharing `cfg`) being trained by mini-batch gradient descent, one
/// epoch at a time.
///
/// Each epoch visits the training examples in a fresh permutation drawn from the
/// `Shuffle` stream of `cfg.seed` (or in file order when `cfg.shuffle` is false), in
/// batches of `cfg.batch_size` (the last batch may be smaller). Metrics are recorded at
/// epoch 0 and after every epoch by [`record_together`], which scores several groups at
/// once; a member whose training or validation cost is not finite after an epoch stops
/// there, as diverged. [`train_group`] drives one group from start to end.
pub struct GroupTrainer<'d, T> {
    data: &'d Dataset,
    cfg: TrainConfig,
    lambdas: Vec<f64>,
    two_lambda: Vec<T>,
    eta: Vec<T>,
    w: Array2<T>,
    b: Array1<T>,
    /// Epochs trained so far.
    epoch: usize,
    /// The last epoch recorded.
    recorded: Option<usize>,
    history: Vec<Vec<EpochMetrics>>,
    outcome: Vec<Outcome>,
    order: Vec<u32>,
    shuffler: rand_chacha::ChaCha20Rng,
    scores: Array2<T>,
    /// The weight gradients of the two halves of a mini-batch (see [`batch_split`]).
    grad_w: [Array2<T>; 2],
    col_max: Vec<T>,
    col_sum: Vec<T>,
}

impl<'d, T: Real> GroupTrainer<'d, T> {
    /// Initialises every member with the weights drawn from `cfg.seed`; nothing recorded.
    pub fn new(data: &'d Dataset, cfg: &TrainConfig, members: &[Hyper]) -> Self {
        let (k, d, n) = (NUM_CLASSES, data.train.dim(), data.train.len());
        let runs = members.len();
        let m = runs * k;
        let init = Params::<T>::init(k, d, cfg.init_std, cfg.seed);
        let mut w = padded_zeros::<T>(m, d, Pages::Small);
        let mut b = Array1::<T>::zeros(m);
        for r in 0..runs {
            w.slice_mut(s![r * k..(r + 1) * k, ..]).assign(&init.w);
            b.slice_mut(s![r * k..(r + 1) * k]).assign(&init.b);
        }
        let bs = cfg.batch_size.min(n);
        GroupTrainer {
            data,
            cfg: cfg.clone(),
            lambdas: members.iter().map(|h| h.lambda).collect(),
            two_lambda: members
                .iter()
                .map(|h| T::from_f64(2.0 * h.lambda))
                .collect(),
            eta: members.iter().map(|h| T::from_f64(h.eta)).collect(),
            w,
            b,
            epoch: 0,
            recorded: None,
            history: vec![Vec::with_capacity(cfg.epochs + 1); runs],
            outcome: vec![Outcome::Completed; runs],
            order: (0..n as u32).collect(),
            shuffler: rng::generator(cfg.seed, Stream::Shuffle),
            scores: Array2::<T>::zeros((m, bs)),
            grad_w: [
                padded_zeros::<T>(m, d, Pages::Small),
                padded_zeros::<T>(m, d, Pages::Small),
            ],
            col_max: vec![T::zero(); bs],
            col_sum: vec![T::zero(); bs],
        }
    }

    /// Members of the group.
    pub fn runs(&self) -> usize {
        self.lambdas.len()
    }

    /// Epochs trained so far.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Every epoch trained and recorded, or every member diverged.
    pub fn done(&self) -> bool {
        self.recorded == Some(self.cfg.epochs) || !self.any_training()
    }

    /// Whether [`GroupTrainer::train_epoch`] has an epoch left to train: this may be
    /// before the last epoch is recorded (see [`Snapshot`]).
    pub fn wants_epoch(&self) -> bool {
        self.epoch < self.cfg.epochs && self.any_training()
    }

    fn any_training(&self) -> bool {
        self.outcome.contains(&Outcome::Completed)
    }

    /// The last epoch whose metrics are recorded (0: the initial weights), if any.
    pub fn recorded(&self) -> Option<usize> {
        self.recorded
    }

    /// Trains one more epoch.
    pub fn train_epoch(&mut self) {
        let k = NUM_CLASSES;
        let data = self.data;
        let bs = self.scores.ncols();
        let GroupTrainer {
            w,
            b,
            order,
            shuffler,
            scores,
            grad_w,
            col_max,
            col_sum,
            outcome,
            ..
        } = self;
        if self.cfg.shuffle {
            order
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = i as u32);
            rng::shuffle(shuffler, order);
        }
        // Per row of W: whether its run still trains, its eta and 2 lambda.
        let rates = Array1::from_shape_fn(w.nrows(), |i| {
            let r = i / k;
            (
                outcome[r] == Outcome::Completed,
                self.eta[r],
                self.two_lambda[r],
            )
        });
        for batch in order.chunks(bs) {
            let nb = batch.len();
            let h = batch_split(nb);
            let (rows0, rows1) = batch.split_at(h);
            let (g0, g1) = scores.slice_mut(s![.., ..nb]).split_at(Axis(1), h);
            let (max0, max1) = col_max.split_at_mut(h);
            let (sum0, sum1) = col_sum.split_at_mut(h);
            let [grad0, grad1] = grad_w;
            let half0 = Half {
                rows: rows0,
                scores: g0,
                grad: grad0.view_mut(),
                col_max: max0,
                col_sum: sum0,
            };
            let half1 = Half {
                rows: rows1,
                scores: g1,
                grad: grad1.view_mut(),
                col_max: max1,
                col_sum: sum1,
            };
            let (w_now, b_now) = (w.view(), b.view());
            if rows1.is_empty() {
                half0.forward_backward(w_now, b_now, &data.train);
            } else {
                rayon::join(
                    || half0.forward_backward(w_now, b_now, &data.train),
                    || half1.forward_backward(w_now, b_now, &data.train),
                );
            }
            let g = scores.slice(s![.., ..nb]);
            let inv_n = T::one() / T::from_f64(nb as f64);
            // W's rows are updated on every thread (each element on its own, so the bits
            // do not depend on how they are shared out).
            let step = |mut wrow: ArrayViewMut1<T>,
                        g0: ArrayView1<T>,
                        g1: Option<ArrayView1<T>>,
                        &(active, lr, two_l): &(bool, T, T)| {
                if !active {
                    return;
                }
                match g1 {
                    None => Zip::from(&mut wrow).and(&g0).for_each(|wv, &gv| {
                        *wv = *wv - lr * (gv * inv_n + two_l * *wv);
                    }),
                    Some(g1) => Zip::from(&mut wrow)
                        .and(&g0)
                        .and(g1)
                        .for_each(|wv, &a, &b| {
                            *wv = *wv - lr * ((a + b) * inv_n + two_l * *wv);
                        }),
                }
            };
            let update = Zip::from(w.rows_mut()).and(grad_w[0].rows()).and(&rates);
            if h == nb {
                update.par_for_each(|wrow, g0, rate| step(wrow, g0, None, rate));
            } else {
                update
                    .and(grad_w[1].rows())
                    .par_for_each(|wrow, g0, rate, g1| step(wrow, g0, Some(g1), rate));
            }
            for (r, status) in outcome.iter().enumerate() {
                if *status != Outcome::Completed {
                    continue;
                }
                let rows = r * k..(r + 1) * k;
                let lr = self.eta[r];
                for (bias, grow) in b
                    .slice_mut(s![rows.clone()])
                    .iter_mut()
                    .zip(g.slice(s![rows, ..]).rows())
                {
                    let db = grow.sum() * inv_n;
                    *bias = *bias - lr * db;
                }
            }
        }
        self.epoch += 1;
    }

    /// Appends the metrics of `epoch` of the members still training and marks those whose
    /// cost is not finite as diverged; returns which members it marked.
    fn record(&mut self, epoch: usize, train: &[SplitMetrics], val: &[SplitMetrics]) -> Vec<usize> {
        self.recorded = Some(epoch);
        let mut diverged = Vec::new();
        for r in 0..self.runs() {
            if self.outcome[r] != Outcome::Completed {
                continue;
            }
            self.history[r].push(EpochMetrics {
                epoch,
                train: train[r],
                val: val[r],
            });
            if !(train[r].cost.is_finite() && val[r].cost.is_finite()) {
                self.outcome[r] = Outcome::Diverged { epoch };
                diverged.push(r);
            }
        }
        diverged
    }

    /// The trained members, with their test metrics (if the data has a test split).
    pub fn finish(self) -> Vec<Fitted<T>> {
        let k = NUM_CLASSES;
        let test = self
            .data
            .test
            .as_ref()
            .map(|t| evaluate(&self.w, &self.b, &self.lambdas, t));
        let GroupTrainer {
            w,
            b,
            mut history,
            outcome,
            ..
        } = self;
        let mut w_rows = w.axis_chunks_iter(Axis(0), k);
        (0..outcome.len())
            .map(|r| Fitted {
                params: Params {
                    w: w_rows.next().expect("one block per run").to_owned(),
                    b: b.slice(s![r * k..(r + 1) * k]).to_owned(),
                },
                history: std::mem::take(&mut history[r]),
                test: match outcome[r] {
                    Outcome::Completed => test.as_ref().map(|t| t[r]),
                    Outcome::Diverged { .. } => None,
                },
                outcome: outcome[r],
            })
            .collect()
    }
}

/// Every group's weights and biases at its current epoch, stacked into one matrix, so
/// that each split is scored once for all of them, by a product with more rows (faster
/// per row). A run's metrics are the same as when its group is scored alone, since the
/// products compute every element independently of the other rows.
///
/// The snapshot is a copy: the groups may train their next epoch while it is scored
/// (`exec` overlaps the two, since scoring one run mostly waits on memory and training
/// mostly on arithmetic), and [`Snapshot::record`] puts a member that turns out to have
/// diverged back to the weights it diverged with.
pub struct Snapshot<T> {
    w: Array2<T>,
    /// `w` laid out for the evaluation product, if the precision uses it.
    packed: Option<Packed<T>>,
    b: Array1<T>,
    lambdas: Vec<f64>,
    /// Per group: its epoch when taken, and its number of runs.
    groups: Vec<(usize, usize)>,
}

/// A [`Snapshot`]'s training and validation metrics, one per run.
pub struct Scores {
    train: Vec<SplitMetrics>,
    val: Vec<SplitMetrics>,
}

impl<T: Real> Snapshot<T> {
    /// Copies the current weights of `groups`, which must all train on the same data.
    pub fn take(groups: &[&GroupTrainer<'_, T>]) -> Self {
        let m: usize = groups.iter().map(|g| g.w.nrows()).sum();
        let d = groups.first().map_or(0, |g| g.w.ncols());
        let mut w = padded_zeros::<T>(m, d, Pages::Small);
        let mut b = Array1::<T>::zeros(m);
        let mut lambdas = Vec::new();
        let mut at = 0;
        for g in groups {
            debug_assert!(std::ptr::eq(g.data, groups[0].data));
            let rows = at..at + g.w.nrows();
            w.slice_mut(s![rows.clone(), ..]).assign(&g.w);
            b.slice_mut(s![rows]).assign(&g.b);
            lambdas.extend_from_slice(&g.lambdas);
            at += g.w.nrows();
        }
        Snapshot {
            packed: T::PACKED_EVAL.then(|| Packed::new(w.view())),
            w,
            b,
            lambdas,
            groups: groups.iter().map(|g| (g.epoch, g.runs())).collect(),
        }
    }

    /// Scores every run on the training and validation splits of `data`, in parallel on
    /// the current rayon pool.
    pub fn score(&self, data: &Dataset) -> Scores {
        let chunks: Vec<ChunkSums> = (0..self.chunks(data))
            .into_par_iter()
            .with_max_len(1)
            .map_init(|| None, |sc, i| self.score_chunk(data, i, sc))
            .collect();
        self.scores(data, &chunks)
    }

    /// The chunks scoring is split into, for callers that schedule them themselves:
    /// [`Snapshot::score_chunk`] scores one, on any thread and in any order, and
    /// [`Snapshot::scores`] adds them up.
    pub fn chunks(&self, data: &Dataset) -> usize {
        eval_chunk_count(data.train.len()) + eval_chunk_count(data.val.len())
    }

    /// Scores chunk `i` (of [`Snapshot::chunks`]: the training split's, then the
    /// validation split's) with every run; `scratch` is the calling worker's, made on
    /// its first chunk.
    pub fn score_chunk(
        &self,
        data: &Dataset,
        i: usize,
        scratch: &mut Option<EvalScratch<T>>,
    ) -> ChunkSums {
        let on_train = eval_chunk_count(data.train.len());
        let (split, j) = if i < on_train {
            (&data.train, i)
        } else {
            (&data.val, i - on_train)
        };
        let range = eval_chunk_range(split.len(), j);
        let sc = scratch.get_or_insert_with(|| EvalScratch::new(self.w.nrows()));
        eval_chunk(
            self.w.view(),
            self.packed.as_ref(),
            self.b.view(),
            split,
            range,
            sc,
        )
    }

    /// The scores from every chunk's sums, in chunk order: the same bits however the
    /// chunks were scheduled.
    pub fn scores(&self, data: &Dataset, chunks: &[ChunkSums]) -> Scores {
        assert_eq!(chunks.len(), self.chunks(data), "every chunk, once");
        let (train, val) = chunks.split_at(eval_chunk_count(data.train.len()));
        Scores {
            train: add_up(&self.w, &self.lambdas, data.train.len(), train),
            val: add_up(&self.w, &self.lambdas, data.val.len(), val),
        }
    }

    /// Records `scores` as the snapshot's epoch of each group (`groups` in the order
    /// taken). A member whose cost is not finite stops as diverged at that epoch, with
    /// the weights it had then, even if its group has trained on since.
    pub fn record(&self, scores: &Scores, groups: &mut [&mut GroupTrainer<'_, T>]) {
        assert_eq!(
            groups.len(),
            self.groups.len(),
            "the groups of the snapshot"
        );
        let (k, mut run0) = (NUM_CLASSES, 0);
        for (g, &(epoch, runs)) in groups.iter_mut().zip(&self.groups) {
            assert_eq!(g.runs(), runs, "the groups of the snapshot");
            let these = run0..run0 + runs;
            let diverged = g.record(epoch, &scores.train[these.clone()], &scores.val[these]);
            if g.epoch != epoch {
                for r in diverged {
                    let (mine, snap) = (r * k..(r + 1) * k, (run0 + r) * k..(run0 + r + 1) * k);
                    g.w.slice_mut(s![mine.clone(), ..])
                        .assign(&self.w.slice(s![snap.clone(), ..]));
                    g.b.slice_mut(s![mine]).assign(&self.b.slice(s![snap]));
                }
            }
            run0 += runs;
        }
    }
}

/// Makes, on two threads at once, what scoring `rows` stacked rows of W on `data` will
/// read: a split's pixels in blocks when it scores so few rows ([`Split::blocked`]);
/// else nothing. Otherwise the first evaluation would make them, one split at a time,
/// while the other thread waits for them.
pub fn prepare_scoring<T: Real>(data: &Dataset, rows: usize) {
    if T::reads_blocks(rows) {
        rayon::join(|| data.train.blocked(), || data.val.blocked());
    }
}

/// Records the current epoch's training and validation metrics of every group in
/// `groups`, scoring them together (see [`Snapshot`]). Every group must train on the same
/// `Dataset`.
pub fn record_together<T: Real>(groups: &mut [&mut GroupTrainer<'_, T>]) {
    let Some(first) = groups.first() else { return };
    let data = first.data;
    let snap = Snapshot::take(&groups.iter().map(|g| &**g).collect::<Vec<_>>());
    let scores = snap.score(data);
    snap.record(&scores, groups);
}

/// Trains every member of a group (runs sharing `cfg`) on `data` from start to end,
/// recording metrics at epoch 0 and after every epoch (see [`GroupTrainer`]).
/// `on_epoch` is called after each epoch with the number of epochs done.
pub fn train_group<T: Real>(
    data: &Dataset,
    cfg: &TrainConfig,
    members: &[Hyper],
    on_epoch: &(dyn Fn(usize) + Sync),
) -> Vec<Fitted<T>> {
    let mut group = GroupTrainer::<T>::new(data, cfg, members);
    record_together(&mut [&mut group]);
    while !group.done() {
        group.train_epoch();
        record_together(&mut [&mut group]);
        on_epoch(group.epoch());
    }
    group.finish()
}

/// Trains a single run; the same as a group of one.
pub fn fit<T: Real>(data: &Dataset, cfg: &TrainConfig, hyper: Hyper) -> Fitted<T> {
    train_group::<T>(data, cfg, &[hyper], &|_| {})
        .pop()
        .expect("one member")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::RawSplit;

    /// A small learnable problem: class-dependent means plus seeded noise.
    pub(crate) fn toy_dataset(n: usize, dim: usize, seed: u64) -> Dataset {
        toy(n, dim, seed, false)
    }

    /// [`toy_dataset`] as uint8 pixels, which the f32 evaluation of few runs reads in
    /// blocks where the CPU has AVX-512.
    fn toy_pixels(n: usize, dim: usize, seed: u64) -> Dataset {
        toy(n, dim, seed, true)
    }

    fn toy(n: usize, dim: usize, seed: u64, pixels: bool) -> Dataset {
        let mut rng = rng::generator(seed, Stream::CheckParams);
        let make = |rng: &mut rand_chacha::ChaCha20Rng, n: usize| {
            let mut noise = vec![0.0; n * dim];
            rng::fill_normal(rng, 1.0, &mut noise);
            let y: Vec<u8> = (0..n).map(|i| (i % NUM_CLASSES) as u8).collect();
            let x = Array2::from_shape_fn((n, dim), |(i, j)| {
                (noise[i * dim + j]
                    + if j % NUM_CLASSES == usize::from(y[i]) {
                        2.0
                    } else {
                        0.0
                    }) as f32
            });
            let x = if pixels {
                x.mapv(|v| (128.0 + 40.0 * v).round().clamp(0.0, 255.0))
            } else {
                x
            };
            RawSplit {
                x,
                y,
                from_bytes: pixels,
            }
        };
        let train = make(&mut rng, n);
        let val = make(&mut rng, n / 2);
        let test = make(&mut rng, n / 2);
        Dataset::preprocess(train, val, Some(test))
    }

    fn cfg(seed: u64) -> TrainConfig {
        TrainConfig {
            batch_size: 16,
            epochs: 5,
            seed,
            shuffle: true,
            init_std: 0.01,
        }
    }

    #[test]
    fn evaluation_sums_are_the_same_with_and_without_avx2() {
        // Scores spread over a wide range (so some exponentials underflow) and ties.
        let (k, n) = (NUM_CLASSES, 203);
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let scores: Vec<Vec<f32>> = (0..k)
            .map(|_| {
                (0..n)
                    .map(|_| ((next() - 0.5) * 60.0).round() as f32 / 3.0)
                    .collect()
            })
            .collect();
        let labels: Vec<u8> = (0..n).map(|_| (next() * k as f64) as u8).collect();
        let bias = Array1::from_iter((0..k).map(|c| c as f32 * 0.25 - 1.0));
        let rows: Vec<&[f32]> = scores.iter().map(|r| r.as_slice()).collect();
        let scratch = || (vec![0.0f32; n], vec![0u32; n], vec![0.0f32; n]);
        let (mut best, mut arg, mut sum) = scratch();
        let plain = run_sums_body(&rows, bias.view(), &labels, &mut best, &mut arg, &mut sum);
        // The plain result is the textbook one.
        let mut want = (0.0f64, 0usize);
        for (j, &y) in labels.iter().enumerate() {
            let s: Vec<f32> = (0..k).map(|c| scores[c][j] + bias[c]).collect();
            let (lse, top) = log_sum_exp(s.iter().copied());
            want.0 += f64::from(lse - s[usize::from(y)]);
            want.1 += usize::from(top == usize::from(y));
        }
        assert_eq!((plain.0.to_bits(), plain.1), (want.0.to_bits(), want.1));
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let (mut best, mut arg, mut sum) = scratch();
            let wide = unsafe {
                run_sums_avx2(&rows, bias.view(), &labels, &mut best, &mut arg, &mut sum)
            };
            assert_eq!((wide.0.to_bits(), wide.1), (plain.0.to_bits(), plain.1));
        } else {
            println!("no AVX2 on this CPU: only the plain evaluation sums were tested");
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_survive_large_scores() {
        let mut s = Array1::from(vec![1000.0f64, 999.0, -5.0, 0.0]);
        softmax_in_place(s.view_mut());
        assert!((s.sum() - 1.0).abs() < 1e-15);
        assert!(s.iter().all(|p| p.is_finite() && *p >= 0.0));
        let (lse, arg) = log_sum_exp([1000.0f64, 999.0].into_iter());
        assert_eq!(arg, 0);
        assert!((lse - (1000.0 + (1.0 + (-1.0f64).exp()).ln())).abs() < 1e-12);
    }

    #[test]
    fn column_softmax_matches_the_per_column_softmax_bit_for_bit() {
        let data = toy_dataset(60, 12, 7);
        let s0 = Array2::from_shape_fn((NUM_CLASSES, 37), |(c, j)| {
            data.train.x[[j, c]] * 3.0 - 1.5 * c as f32
        });
        let bias = Array1::from_shape_fn(NUM_CLASSES, |c| 0.1 * c as f32 - 0.3);
        let mut fast = s0.clone();
        let (mut max, mut sum) = (vec![0.0; 40], vec![0.0; 40]);
        softmax_columns(fast.view_mut(), bias.view(), &mut max, &mut sum);
        // The plain build of it, whichever the CPU chose above.
        let mut plain = s0.clone();
        softmax_columns_body(plain.view_mut(), bias.view(), &mut max, &mut sum);
        let mut slow = s0.clone();
        for mut col in slow.columns_mut() {
            col += &bias;
            softmax_in_place(col);
        }
        let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&slow));
        assert_eq!(bits(&plain), bits(&slow));
    }

    #[test]
    fn evaluation_matches_the_reference_and_ignores_the_thread_count() {
        let data = toy_dataset(1300, 24, 8);
        let params = Params::<f64>::init(NUM_CLASSES, 24, 0.5, 3);
        let reference = {
            let (mut loss, mut correct) = (0.0, 0usize);
            for (x, &y) in data.train.x.rows().into_iter().zip(&data.train.y) {
                let s = params.w.dot(&x.mapv(f64::from)) + &params.b;
                let (lse, arg) = log_sum_exp(s.iter().copied());
                loss += lse - s[usize::from(y)];
                correct += usize::from(arg == usize::from(y));
            }
            (loss / 1300.0, correct as f64 / 1300.0)
        };
        let on = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| metrics(&params, 0.5, &data.train))
        };
        let one = on(1);
        assert_eq!(one, on(3));
        assert!(
            (one.loss - reference.0).abs() < 1e-12,
            "{one:?} {reference:?}"
        );
        assert_eq!(one.accuracy, reference.1);
        assert!((one.cost - one.loss - 0.5 * sq_norm(params.w.view())).abs() < 1e-12);
    }

    #[test]
    fn one_step_on_a_split_batch_is_the_gradient_step_on_the_whole_batch() {
        // 130 examples in one batch: halves of 65 (batch_split), each in pieces of
        // piece_rows, so the gradient is summed from several pieces and both halves.
        let n = 130;
        assert!(batch_split(n) < n && batch_split(n) > piece_rows::<f64>(NUM_CLASSES));
        let data = toy_dataset(n, 24, 3);
        let cfg = TrainConfig {
            batch_size: n,
            epochs: 1,
            seed: 4,
            shuffle: false,
            init_std: 0.1,
        };
        let (lambda, eta) = (0.05, 0.2);
        let step = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut group = GroupTrainer::<f64>::new(&data, &cfg, &[Hyper { lambda, eta }]);
            let before = (group.w.clone(), group.b.clone());
            pool.install(|| group.train_epoch());
            (before, group.w.clone(), group.b.clone())
        };
        let ((w0, b0), w1, b1) = step(1);
        let (_, w3, b3) = step(3);
        assert_eq!(w1, w3, "the thread count changed the weights");
        assert_eq!(b1, b3);

        // The textbook step, in plain ndarray: P = softmax(W X^T + b), G = P - Y.
        let x = data.train.x.mapv(f64::from);
        let mut g = w0.dot(&x.t()) + b0.view().insert_axis(Axis(1));
        for (mut col, &y) in g.columns_mut().into_iter().zip(&data.train.y) {
            softmax_in_place(col.view_mut());
            col[usize::from(y)] -= 1.0;
        }
        let grad_w = g.dot(&x) / n as f64 + &w0 * (2.0 * lambda);
        let grad_b = g.sum_axis(Axis(1)) / n as f64;
        let (w_ref, b_ref) = (&w0 - &(grad_w * eta), &b0 - &(grad_b * eta));
        let worst = |a: &Array2<f64>, b: &Array2<f64>| {
            a.iter()
                .zip(b)
                .map(|(u, v)| (u - v).abs())
                .fold(0.0, f64::max)
        };
        assert!(
            worst(&w1, &w_ref) < 1e-13,
            "W off by {}",
            worst(&w1, &w_ref)
        );
        let b_err = b1
            .iter()
            .zip(&b_ref)
            .map(|(u, v)| (u - v).abs())
            .fold(0.0, f64::max);
        assert!(b_err < 1e-13, "b off by {b_err}");
        assert!(worst(&w1, &w0) > 1e-4, "the step moved nothing");
    }

    #[test]
    fn training_lowers_the_cost_and_learns() {
        let data = toy_dataset(200, 30, 1);
        let fitted = fit::<f64>(
            &data,
            &cfg(1),
            Hyper {
                lambda: 0.01,
                eta: 0.1,
            },
        );
        let h = fitted.history();
        assert_eq!(h.len(), 6);
        assert!(h[5].train.cost < h[0].train.cost * 0.5, "{h:?}");
        assert!(h[5].val.accuracy > 0.8, "{h:?}");
        assert_eq!(fitted.outcome(), Outcome::Completed);
        assert!(fitted.test().unwrap().accuracy > 0.8);
    }

    #[test]
    fn same_seed_gives_bit_identical_weights() {
        let data = toy_dataset(100, 20, 2);
        let a = fit::<f32>(
            &data,
            &cfg(5),
            Hyper {
                lambda: 0.1,
                eta: 0.05,
            },
        );
        let b = fit::<f32>(
            &data,
            &cfg(5),
            Hyper {
                lambda: 0.1,
                eta: 0.05,
            },
        );
        assert_eq!(a.params(), b.params());
        let c = fit::<f32>(
            &data,
            &cfg(6),
            Hyper {
                lambda: 0.1,
                eta: 0.05,
            },
        );
        assert_ne!(a.params(), c.params());
    }

    #[test]
    fn fused_and_solo_runs_are_bit_identical() {
        fused_and_solo_agree(&toy_dataset(150, 40, 3));
    }

    /// Solo, an f32 run is scored from the blocked pixels; in a group of three (30 rows),
    /// from the standardised rows by the packed product.
    #[test]
    fn fused_and_solo_runs_are_bit_identical_on_pixels() {
        let data = toy_pixels(150, 40, 3);
        assert_eq!(
            data.train.blocked().is_some(),
            crate::kernel::blocked_fast()
        );
        assert!(blocked_pays(NUM_CLASSES) && !blocked_pays(3 * NUM_CLASSES));
        fused_and_solo_agree(&data);
    }

    fn fused_and_solo_agree(data: &Dataset) {
        let members = [
            Hyper {
                lambda: 0.0,
                eta: 0.1,
            },
            Hyper {
                lambda: 0.1,
                eta: 0.01,
            },
            Hyper {
                lambda: 1.0,
                eta: 0.001,
            },
        ];
        for (r, h) in members.iter().enumerate() {
            let fused32 = &train_group::<f32>(data, &cfg(9), &members, &|_| {})[r];
            let solo32 = fit::<f32>(data, &cfg(9), *h);
            assert_eq!(fused32.params(), solo32.params(), "f32 member {r}");
            assert_eq!(fused32.history(), solo32.history());
            let fused64 = &train_group::<f64>(data, &cfg(9), &members, &|_| {})[r];
            let solo64 = fit::<f64>(data, &cfg(9), *h);
            assert_eq!(fused64.params(), solo64.params(), "f64 member {r}");
        }
    }

    #[test]
    fn a_diverging_member_is_reported_and_does_not_disturb_the_others() {
        let data = toy_dataset(100, 20, 4);
        let members = [
            Hyper {
                lambda: 1.0,
                eta: 10.0,
            },
            Hyper {
                lambda: 0.0,
                eta: 0.05,
            },
        ];
        let out = train_group::<f32>(&data, &cfg(1), &members, &|_| {});
        assert!(matches!(out[0].outcome(), Outcome::Diverged { epoch } if epoch >= 1));
        assert!(out[0].test().is_none());
        let solo = fit::<f32>(&data, &cfg(1), members[1]);
        assert_eq!(out[1].params(), solo.params());
        assert_eq!(out[1].outcome(), Outcome::Completed);
    }

    #[test]
    fn scoring_while_the_next_epoch_trains_changes_nothing_even_for_a_diverging_member() {
        let data = toy_dataset(100, 20, 4);
        let cfg = TrainConfig {
            epochs: 12,
            ..cfg(1)
        };
        let members = [
            // Weight decay that overshoots by 2000x per step: the squared norm overflows
            // f64 (a non-finite cost) while the weights are still finite and still change.
            Hyper {
                lambda: 1.0,
                eta: 1000.0,
            },
            Hyper {
                lambda: 0.0,
                eta: 0.05,
            },
        ];
        // As `exec` does: snapshot, train the next epoch, then score and record the
        // snapshot.
        let mut group = GroupTrainer::<f64>::new(&data, &cfg, &members);
        let overlapped = loop {
            let snap = Snapshot::take(&[&group]);
            if group.wants_epoch() {
                group.train_epoch();
            }
            let scores = snap.score(&data);
            snap.record(&scores, &mut [&mut group]);
            if group.done() {
                break group.finish();
            }
        };
        let sequential = train_group::<f64>(&data, &cfg, &members, &|_| {});
        assert!(matches!(overlapped[0].outcome(), Outcome::Diverged { epoch } if epoch < 12));
        assert!(overlapped[0].params().w.iter().all(|v| v.is_finite()));
        for (a, b) in overlapped.iter().zip(&sequential) {
            assert_eq!(a.outcome(), b.outcome());
            // Bit patterns: a diverged member's weights may be NaN.
            let bits = |p: &Params<f64>| {
                let w = p.w.iter().map(|v| v.to_bits());
                w.chain(p.b.iter().map(|v| v.to_bits())).collect::<Vec<_>>()
            };
            assert!(
                bits(a.params()) == bits(b.params()),
                "weights of {:?}",
                a.outcome()
            );
            // Debug text, which shows NaN metrics as equal.
            assert_eq!(format!("{:?}", a.history()), format!("{:?}", b.history()));
            assert_eq!(a.test(), b.test());
        }
    }

    #[test]
    fn groups_recorded_together_match_groups_trained_alone() {
        let data = toy_dataset(150, 40, 5);
        let hyper = |lambda, eta| Hyper { lambda, eta };
        let a = [hyper(0.0, 0.1), hyper(0.1, 0.01)];
        let b = [hyper(1.0, 10.0)];
        let short = TrainConfig {
            epochs: 3,
            batch_size: 7,
            ..cfg(2)
        };
        let mut ga = GroupTrainer::<f32>::new(&data, &cfg(9), &a);
        let mut gb = GroupTrainer::<f32>::new(&data, &short, &b);
        record_together(&mut [&mut ga, &mut gb]);
        while !ga.done() {
            ga.train_epoch();
            if gb.done() {
                record_together(&mut [&mut ga]);
            } else {
                gb.train_epoch();
                record_together(&mut [&mut gb, &mut ga]);
            }
        }
        let (fa, fb) = (ga.finish(), gb.finish());
        for (fused, alone) in fa
            .iter()
            .zip(train_group::<f32>(&data, &cfg(9), &a, &|_| {}))
        {
            assert_eq!(fused.params(), alone.params());
            assert_eq!(fused.history(), alone.history());
            assert_eq!(fused.test(), alone.test());
        }
        let alone = &train_group::<f32>(&data, &short, &b, &|_| {})[0];
        // It diverges: its history ends in NaN, so compare the printed values.
        assert!(matches!(fb[0].outcome(), Outcome::Diverged { .. }));
        assert_eq!(fb[0].outcome(), alone.outcome());
        assert_eq!(
            format!("{:?}", fb[0].history()),
            format!("{:?}", alone.history())
        );
    }
}
