//! The one-layer softmax classifier, the first model behind the seam
//! ([`super::model::Trainer`]): scores `s = W x + b` (W is K x d, b is K), a loss on
//! them ([`Loss`]; the cross-entropy of the softmax by default) with an L2 penalty
//! `lambda * ||W||_F^2` (b not penalised), and mini-batch gradient descent.
//!
//! A group of runs trains at once: runs that see the same examples in the same order
//! (same seed, batch size, epochs, shuffling and initialisation) differ only in their
//! [`Hyper`], so their weight matrices are stacked into one `(R*K) x d` matrix and every
//! matrix product reads a mini-batch once for all of them. The products are
//! [`crate::kernel`]'s, which compute every output element with one fixed sequence of
//! operations whatever the number of rows, and all scaling happens in separate
//! element-wise passes; so a run's numbers are bit-identical whether it trains alone or
//! fused with others.

use std::marker::PhantomData;
use std::ops::Range;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, Zip, s};

use super::course::{Course, Mark, Members};
use super::eval::{
    ChunkSums, EvalScratch, add_up, eval_chunk, eval_chunk_count, eval_chunk_range, evaluate,
};
use super::model::{Scores, Snapshot, Trainer};
use super::{CrossEntropy, Fitted, Loss, NamedArray, Outcome, Real, SplitMetrics};
use crate::data::{Dataset, Split};
use crate::kernel::{Chain, Packed, Pages, padded_zeros, par_acc_nn_rows, par_dot_nt_rows};
use crate::plan::{Hyper, TrainConfig};
use crate::rng::{self, Stream};
use crate::spec::Init;

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

    /// The initial parameters of `init`: [`Params::init`] for `Init::Normal`; else W from
    /// N(0, 1/d) (xavier) or N(0, 2/d) (he), drawn as `init` draws it, and b zero.
    pub fn init_with(init: Init, classes: usize, dim: usize, std: f64, seed: u64) -> Self {
        match fan_in_scale(init) {
            None => Self::init(classes, dim, std, seed),
            Some(scale) => {
                let mut rng = rng::generator(seed, Stream::Init);
                let mut w = vec![0.0; classes * dim];
                rng::fill_normal(&mut rng, (scale / dim as f64).sqrt(), &mut w);
                Params {
                    w: Array2::from_shape_vec(
                        (classes, dim),
                        w.into_iter().map(T::from_f64).collect(),
                    )
                    .expect("shape matches"),
                    b: Array1::zeros(classes),
                }
            }
        }
    }

    /// W and b back from the arrays [`Params::arrays`] made; `None` if either is
    /// missing or of the wrong rank.
    pub fn from_arrays(arrays: &[NamedArray<T>]) -> Option<Self> {
        let get = |name: &str| {
            arrays
                .iter()
                .find(|a| a.name == name)
                .map(|a| a.array.clone())
        };
        Some(Params {
            w: get("W")?.into_dimensionality().ok()?,
            b: get("b")?.into_dimensionality().ok()?,
        })
    }

    /// The arrays as saved: `W` (K x d) and `b` (K).
    pub fn arrays(self) -> Vec<NamedArray<T>> {
        vec![
            NamedArray::new("W", self.w.into_dyn()),
            NamedArray::new("b", self.b.into_dyn()),
        ]
    }
}

/// The variance of a weight times its fan-in under `init`: 1 (xavier), 2 (he); `None`
/// for the fixed `init_std` of `Init::Normal`.
pub(crate) fn fan_in_scale(init: Init) -> Option<f64> {
    match init {
        Init::Normal => None,
        Init::Xavier => Some(1.0),
        Init::He => Some(2.0),
    }
}

/// Where a mini-batch's examples are read: rows of `x`, with labels `y` (the training
/// split itself, or a mirrored copy of a batch's images).
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    pub(crate) x: ArrayView2<'a, f32>,
    pub(crate) y: &'a [u8],
}

/// A copy of a mini-batch's images, each mirrored left-right where `flips` says so, and
/// its labels: read by the products as rows `0..n`.
pub(crate) struct Mirrored {
    x: Array2<f32>,
    y: Vec<u8>,
    rows: Vec<u32>,
    /// Feature i of a mirrored image is feature `mirror[i]` of the original.
    mirror: Vec<usize>,
}

/// Side of the square images `augment = "flip"` mirrors (3 planes of 32 x 32).
pub const FLIP_SIDE: usize = 32;
/// Input dimension of such images.
pub const FLIP_DIM: usize = 3 * FLIP_SIDE * FLIP_SIDE;

impl Mirrored {
    pub(crate) fn new(batch: usize, dim: usize) -> Self {
        assert_eq!(
            dim, FLIP_DIM,
            "flips need 3 x 32 x 32 images (checked when loading)"
        );
        let mirror = (0..dim)
            .map(|i| {
                let (plane_row, col) = (i / FLIP_SIDE, i % FLIP_SIDE);
                plane_row * FLIP_SIDE + (FLIP_SIDE - 1 - col)
            })
            .collect();
        Mirrored {
            x: padded_zeros::<f32>(batch, dim, Pages::Small),
            y: vec![0; batch],
            rows: (0..batch as u32).collect(),
            mirror,
        }
    }

    /// Copies `batch` of `train`, mirroring image j where `flips[j]`; returns where the
    /// products read it and its rows.
    pub(crate) fn fill<'a>(
        &'a mut self,
        train: &Split,
        batch: &[u32],
        flips: &[bool],
    ) -> (Source<'a>, &'a [u32]) {
        for (j, (&e, &flip)) in batch.iter().zip(flips).enumerate() {
            let from = train.x.row(e as usize);
            let mut to = self.x.row_mut(j);
            if flip {
                for (t, &m) in to.iter_mut().zip(&self.mirror) {
                    *t = from[m];
                }
            } else {
                to.assign(&from);
            }
            self.y[j] = train.y[e as usize];
        }
        let n = batch.len();
        (
            Source {
                x: self.x.view(),
                y: &self.y,
            },
            &self.rows[..n],
        )
    }
}

/// Metrics of one model on `split`, under the cross-entropy loss.
pub fn metrics<T: Real>(params: &Params<T>, lambda: f64, split: &Split) -> SplitMetrics {
    evaluate::<T, CrossEntropy>(&params.w, &params.b, &[lambda], split)[0]
}

/// The gradient of the cost with respect to one weight, from the sum `g` of its
/// examples' score gradients times their inputs: `g / n + 2 lambda w`. The update and
/// the gradient check both call this, so the check sees the update's gradient.
#[inline(always)]
fn weight_gradient<T: Real>(g: T, inv_n: T, two_lambda: T, w: T) -> T {
    g * inv_n + two_lambda * w
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
pub(super) fn piece_rows<T>(w_rows: usize) -> usize {
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
pub(super) fn batch_split(n: usize) -> usize {
    if n < 2 * SPLIT_MIN_ROWS {
        n
    } else {
        n / 2 / 5 * 5
    }
}

/// One half of a mini-batch: its examples, and the score columns, weight gradient and
/// loss scratch that are its alone.
struct Half<'a, T> {
    rows: &'a [u32],
    scores: ArrayViewMut2<'a, T>,
    grad: ArrayViewMut2<'a, T>,
    col_max: &'a mut [T],
    col_sum: &'a mut [T],
}

impl<T: Real> Half<'_, T> {
    /// Scores this half with the stacked weights `w` (K rows per run) and biases `b`,
    /// turns the scores into the score gradients (`P - Y` for the cross-entropy), and
    /// accumulates the weight gradient `(P - Y) X`, in pieces of [`piece_rows`] examples:
    /// the gradient's multiply-add chains continue from piece to piece, so the pieces'
    /// size never changes its bits.
    fn forward_backward<L: Loss>(self, k: usize, w: ArrayView2<T>, b: ArrayView1<T>, src: Source) {
        let Half {
            rows,
            mut scores,
            mut grad,
            col_max,
            col_sum,
        } = self;
        let runs = w.nrows() / k;
        let x = src.x;
        // As many pieces of at least piece_rows as fit, of equal size (a 50-row half
        // with 40-row pieces is one piece, not 40 + 10).
        let pieces = (rows.len() / piece_rows::<T>(w.nrows())).max(1);
        let size = rows.len().div_ceil(pieces).max(1);
        for (p, piece) in rows.chunks(size).enumerate() {
            let cols = p * size..p * size + piece.len();
            let mut g = scores.slice_mut(s![.., cols]);
            par_dot_nt_rows(w, x, piece, g.view_mut());
            for r in 0..runs {
                L::score_gradients(
                    g.slice_mut(s![r * k..(r + 1) * k, ..]),
                    b.slice(s![r * k..(r + 1) * k]),
                    |j| usize::from(src.y[piece[j] as usize]),
                    col_max,
                    col_sum,
                );
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

/// The score gradients (in `scores`' first columns) and the two halves' weight
/// gradients (`grad_w`) of the stacked models `w`, `b` on the training examples `batch`:
/// the first half of the work of an update. Returns where the batch was split
/// ([`batch_split`]); the second half's gradient is unused when that is the whole batch.
#[allow(clippy::too_many_arguments)]
fn batch_gradients<T: Real, L: Loss>(
    k: usize,
    w: ArrayView2<T>,
    b: ArrayView1<T>,
    src: Source,
    batch: &[u32],
    scores: &mut Array2<T>,
    grad_w: &mut [Array2<T>; 2],
    col_max: &mut [T],
    col_sum: &mut [T],
) -> usize {
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
    if rows1.is_empty() {
        half0.forward_backward::<L>(k, w, b, src);
    } else {
        rayon::join(
            || half0.forward_backward::<L>(k, w, b, src),
            || half1.forward_backward::<L>(k, w, b, src),
        );
    }
    h
}

/// A fused group of linear models (runs sharing `cfg`) being trained by mini-batch
/// gradient descent, span by span ([`Course`]).
///
/// Each epoch visits the training examples in a fresh permutation drawn from the
/// `Shuffle` stream of `cfg.seed` (or in file order when `cfg.shuffle` is false), in
/// batches of `cfg.batch_size` (the last batch may be smaller). Metrics are recorded at
/// the start and after every span by a [`LinearSnapshot`], which scores several groups at
/// once; a member whose training or validation cost is not finite then stops there, as
/// diverged.
pub struct LinearTrainer<'d, T, L = CrossEntropy> {
    data: &'d Dataset,
    /// Classes K: rows of W per run.
    k: usize,
    members: Members,
    two_lambda: Vec<T>,
    pub(super) w: Array2<T>,
    pub(super) b: Array1<T>,
    course: Course,
    /// The mirrored copy of each batch, when flipping.
    mirrored: Option<Mirrored>,
    scores: Array2<T>,
    /// The weight gradients of the two halves of a mini-batch (see [`batch_split`]).
    grad_w: [Array2<T>; 2],
    col_max: Vec<T>,
    col_sum: Vec<T>,
    loss: PhantomData<L>,
}

impl<'d, T: Real, L: Loss> Trainer<'d> for LinearTrainer<'d, T, L> {
    type Real = T;
    type Snapshot = LinearSnapshot<T, L>;

    fn new(data: &'d Dataset, cfg: &TrainConfig, members: &[Hyper]) -> Self {
        let (k, d, n) = (data.classes(), data.train.dim(), data.train.len());
        let runs = members.len();
        let m = runs * k;
        let init = Params::<T>::init_with(cfg.init, k, d, cfg.init_std, cfg.seed);
        let mut w = padded_zeros::<T>(m, d, Pages::Small);
        let mut b = Array1::<T>::zeros(m);
        for r in 0..runs {
            w.slice_mut(s![r * k..(r + 1) * k, ..]).assign(&init.w);
            b.slice_mut(s![r * k..(r + 1) * k]).assign(&init.b);
        }
        let course = Course::new(cfg, n);
        let bs = course.batch_size();
        LinearTrainer {
            data,
            k,
            members: Members::new(members, course.batches(), course.spans()),
            two_lambda: members
                .iter()
                .map(|h| T::from_f64(2.0 * h.lambda))
                .collect(),
            w,
            b,
            mirrored: (cfg.augment == crate::spec::Augment::Flip).then(|| Mirrored::new(bs, d)),
            course,
            scores: Array2::<T>::zeros((m, bs)),
            grad_w: [
                padded_zeros::<T>(m, d, Pages::Small),
                padded_zeros::<T>(m, d, Pages::Small),
            ],
            col_max: vec![T::zero(); bs],
            col_sum: vec![T::zero(); bs],
            loss: PhantomData,
        }
    }

    fn rows_per_run(data: &Dataset) -> usize {
        data.classes()
    }

    fn prepare_scoring(data: &Dataset, runs: usize) {
        // Makes, on two threads at once, a split's pixels in blocks when scoring so few
        // rows reads them ([`Split::blocked`]); else the first evaluation would make them,
        // one split at a time, while the other thread waits.
        if T::reads_blocks(runs * data.classes()) {
            rayon::join(|| data.train.blocked(), || data.val.blocked());
        }
    }

    fn runs(&self) -> usize {
        self.members.runs()
    }

    fn spans(&self) -> usize {
        self.course.mark().span
    }

    fn recorded(&self) -> Option<usize> {
        self.members.recorded
    }

    fn wants_span(&self) -> bool {
        self.members.wants_span(&self.course)
    }

    fn done(&self) -> bool {
        self.members.done(&self.course)
    }

    fn pause_at(&mut self, update: usize) {
        self.course.pause_at(update);
    }

    fn stop(&mut self, r: usize) {
        self.members.stop(r, self.course.mark());
    }

    fn history(&self, r: usize) -> &[super::EpochMetrics] {
        &self.members.history[r]
    }

    fn train_span(&mut self) {
        let k = self.k;
        let data = self.data;
        let LinearTrainer {
            w,
            b,
            scores,
            grad_w,
            col_max,
            col_sum,
            members,
            two_lambda,
            course,
            mirrored,
            ..
        } = self;
        course.span(|batch, flips, u| {
            let eta: Vec<T> = members.rates(u);
            let (src, batch) = match (flips, mirrored.as_mut()) {
                (Some(flips), Some(m)) => m.fill(&data.train, batch, flips),
                _ => (
                    Source {
                        x: data.train.x.view(),
                        y: &data.train.y,
                    },
                    batch,
                ),
            };
            let nb = batch.len();
            let h = batch_gradients::<T, L>(
                k,
                w.view(),
                b.view(),
                src,
                batch,
                scores,
                grad_w,
                col_max,
                col_sum,
            );
            // Per row of W: whether its run still trains, its eta and 2 lambda.
            let rates = Array1::from_shape_fn(w.nrows(), |i| {
                let r = i / k;
                (members.training(r), eta[r], two_lambda[r])
            });
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
                        *wv = *wv - lr * weight_gradient(gv, inv_n, two_l, *wv);
                    }),
                    Some(g1) => Zip::from(&mut wrow)
                        .and(&g0)
                        .and(g1)
                        .for_each(|wv, &a, &b| {
                            *wv = *wv - lr * weight_gradient(a + b, inv_n, two_l, *wv);
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
            for (r, &lr) in eta.iter().enumerate() {
                if !members.training(r) {
                    continue;
                }
                let rows = r * k..(r + 1) * k;
                for (bias, grow) in b
                    .slice_mut(s![rows.clone()])
                    .iter_mut()
                    .zip(g.slice(s![rows, ..]).rows())
                {
                    let db = grow.sum() * inv_n;
                    *bias = *bias - lr * db;
                }
            }
        });
    }

    fn finish(self) -> Vec<Fitted<T>> {
        let k = self.k;
        let test = self
            .data
            .test
            .as_ref()
            .map(|t| evaluate::<T, L>(&self.w, &self.b, &self.members.lambdas, t));
        let LinearTrainer { w, b, members, .. } = self;
        let Members {
            mut history,
            outcome,
            ..
        } = members;
        let mut w_rows = w.axis_chunks_iter(Axis(0), k);
        (0..outcome.len())
            .map(|r| Fitted {
                arrays: Params {
                    w: w_rows.next().expect("one block per run").to_owned(),
                    b: b.slice(s![r * k..(r + 1) * k]).to_owned(),
                }
                .arrays(),
                history: std::mem::take(&mut history[r]),
                test: match outcome[r] {
                    Outcome::Completed => test.as_ref().map(|t| t[r]),
                    Outcome::Diverged { .. } | Outcome::Stopped { .. } => None,
                },
                outcome: outcome[r],
            })
            .collect()
    }

    fn arrays(&self) -> Vec<Vec<NamedArray<T>>> {
        let k = self.k;
        (0..self.runs())
            .map(|r| {
                Params {
                    w: self.w.slice(s![r * k..(r + 1) * k, ..]).to_owned(),
                    b: self.b.slice(s![r * k..(r + 1) * k]).to_owned(),
                }
                .arrays()
            })
            .collect()
    }

    fn gradients(&mut self, examples: &[u32]) -> Vec<Vec<NamedArray<T>>> {
        let k = self.k;
        let nb = examples.len();
        assert!(
            nb <= self.scores.ncols(),
            "at most a batch of examples at once"
        );
        let train = Source {
            x: self.data.train.x.view(),
            y: &self.data.train.y,
        };
        let h = batch_gradients::<T, L>(
            k,
            self.w.view(),
            self.b.view(),
            train,
            examples,
            &mut self.scores,
            &mut self.grad_w,
            &mut self.col_max,
            &mut self.col_sum,
        );
        let inv_n = T::one() / T::from_f64(nb as f64);
        let (d, g) = (self.w.ncols(), self.scores.slice(s![.., ..nb]));
        (0..self.runs())
            .map(|r| {
                let rows = r * k..(r + 1) * k;
                let two_l = self.two_lambda[r];
                let dw = Array2::from_shape_fn((k, d), |(i, j)| {
                    let (row, w) = (r * k + i, self.w[[r * k + i, j]]);
                    let sum = if h == nb {
                        self.grad_w[0][[row, j]]
                    } else {
                        self.grad_w[0][[row, j]] + self.grad_w[1][[row, j]]
                    };
                    weight_gradient(sum, inv_n, two_l, w)
                });
                let db = Array1::from_iter(
                    g.slice(s![rows, ..])
                        .rows()
                        .into_iter()
                        .map(|grow| grow.sum() * inv_n),
                );
                Params { w: dw, b: db }.arrays()
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
pub struct LinearSnapshot<T, L = CrossEntropy> {
    w: Array2<T>,
    /// `w` laid out for the evaluation product, if the precision uses it.
    packed: Option<Packed<T>>,
    b: Array1<T>,
    lambdas: Vec<f64>,
    /// Per group: where it stood when taken, and its number of runs.
    groups: Vec<(Mark, usize)>,
    /// Classes K: rows of W per run.
    k: usize,
    loss: PhantomData<L>,
}

impl<'d, T: Real, L: Loss> Snapshot<'d, LinearTrainer<'d, T, L>> for LinearSnapshot<T, L> {
    type Scratch = EvalScratch<T>;

    fn take(groups: &[&LinearTrainer<'d, T, L>]) -> Self {
        let m: usize = groups.iter().map(|g| g.w.nrows()).sum();
        let d = groups.first().map_or(0, |g| g.w.ncols());
        let k = groups.first().map_or(1, |g| g.k);
        let mut w = padded_zeros::<T>(m, d, Pages::Small);
        let mut b = Array1::<T>::zeros(m);
        let mut lambdas = Vec::new();
        let mut at = 0;
        for g in groups {
            debug_assert!(std::ptr::eq(g.data, groups[0].data));
            let rows = at..at + g.w.nrows();
            w.slice_mut(s![rows.clone(), ..]).assign(&g.w);
            b.slice_mut(s![rows]).assign(&g.b);
            lambdas.extend_from_slice(&g.members.lambdas);
            at += g.w.nrows();
        }
        LinearSnapshot {
            packed: T::PACKED_EVAL.then(|| Packed::new(w.view())),
            w,
            b,
            lambdas,
            groups: groups.iter().map(|g| (g.course.mark(), g.runs())).collect(),
            k,
            loss: PhantomData,
        }
    }

    fn chunks(&self, data: &Dataset) -> usize {
        eval_chunk_count(data.train.len()) + eval_chunk_count(data.val.len())
    }

    /// Scores chunk `i`: the training split's chunks, then the validation split's.
    fn score_chunk(
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
        let range: Range<usize> = eval_chunk_range(split.len(), j);
        let sc = scratch.get_or_insert_with(|| EvalScratch::new(self.w.nrows()));
        eval_chunk::<T, L>(
            self.lambdas.len(),
            self.w.view(),
            self.packed.as_ref(),
            self.b.view(),
            split,
            range,
            sc,
        )
    }

    fn scores(&self, data: &Dataset, chunks: &[ChunkSums]) -> Scores {
        assert_eq!(chunks.len(), self.chunks(data), "every chunk, once");
        let (train, val) = chunks.split_at(eval_chunk_count(data.train.len()));
        Scores {
            train: add_up(&self.w, &self.lambdas, data.train.len(), train),
            val: add_up(&self.w, &self.lambdas, data.val.len(), val),
        }
    }

    fn record(&self, scores: &Scores, groups: &mut [&mut LinearTrainer<'d, T, L>]) {
        assert_eq!(
            groups.len(),
            self.groups.len(),
            "the groups of the snapshot"
        );
        let (k, mut run0) = (self.k, 0);
        for (g, &(mark, runs)) in groups.iter_mut().zip(&self.groups) {
            assert_eq!(g.runs(), runs, "the groups of the snapshot");
            let these = run0..run0 + runs;
            let diverged = g
                .members
                .record(mark, &scores.train[these.clone()], &scores.val[these]);
            if g.spans() != mark.span {
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
