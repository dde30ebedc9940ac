//! k-layer networks, the second model behind the seam ([`super::model::Trainer`]):
//! `z_1 = W_1 x + b_1`, `h_l = ReLU(z_l)` (with inverted dropout in training), `z_{l+1} =
//! W_{l+1} h_l + b_{l+1}`, and the scores `s = z_L`, under a loss ([`Loss`]) plus
//! `lambda * sum_l ||W_l||_F^2` (biases not penalised), trained by mini-batch gradient
//! descent with backpropagation.
//!
//! A fused group stacks its members' first layers into one `(R*h_1) x d` matrix, so the
//! two products that read the mini-batch (the first layer's forward pass and its weight
//! gradient) read it once for all runs, with [`crate::kernel`]'s products, which compute
//! every element with one fixed sequence of operations whatever the number of rows. The
//! later layers are small and per run, in plain loops whose order of operations is fixed
//! (each sum runs over its index in ascending order). So a run's bits are the same alone
//! or fused, on any number of threads.

use std::marker::PhantomData;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, Zip, s};
use rayon::prelude::*;

use super::course::{Course, Mark, Members};
use super::eval::{
    ChunkSums, EVAL_CHUNK, eval_chunk_count, eval_chunk_range, first_product, sq_norm,
};
use super::linear::{Mirrored, Source, fan_in_scale};
use super::model::{Scores, Snapshot, Trainer};
use super::norm::{BatchNorm, BnLayer, RunNorm, norm_array_names};
use super::{CrossEntropy, Fitted, Loss, NamedArray, Outcome, Real, SplitMetrics};
use crate::data::{Dataset, Split};
use crate::kernel::{Chain, Packed, Pages, padded_zeros, par_acc_nn_rows, par_dot_nt_rows};
use crate::plan::{Hyper, TrainConfig};
use crate::rng::{self, Stream};
use crate::spec::{Augment, Init};

/// One layer's weights (out x in) and biases (out).
#[derive(Debug, Clone, PartialEq)]
pub struct Layer<T> {
    pub w: Array2<T>,
    pub b: Array1<T>,
}

/// The initial layers of a `dims[0] - dims[1] - ... - dims[L]` network: each W_l then
/// b_l drawn in turn from the `Init` stream of `seed`, from N(0, std^2) for
/// `Init::Normal`; for xavier and he, each W_l from N(0, scale / fan_in) and b_l zero.
pub fn init_layers<T: Real>(init: Init, dims: &[usize], std: f64, seed: u64) -> Vec<Layer<T>> {
    let mut rng = rng::generator(seed, Stream::Init);
    dims.windows(2)
        .map(|io| {
            let (fan_in, out) = (io[0], io[1]);
            let mut w = vec![0.0; out * fan_in];
            let mut b = vec![0.0; out];
            match fan_in_scale(init) {
                None => {
                    rng::fill_normal(&mut rng, std, &mut w);
                    rng::fill_normal(&mut rng, std, &mut b);
                }
                Some(scale) => rng::fill_normal(&mut rng, (scale / fan_in as f64).sqrt(), &mut w),
            }
            Layer {
                w: Array2::from_shape_vec((out, fan_in), w.into_iter().map(T::from_f64).collect())
                    .expect("shape matches"),
                b: b.into_iter().map(T::from_f64).collect(),
            }
        })
        .collect()
}

/// The layers as saved: `W1`, `b1`, `W2`, `b2`, ...
pub fn layer_arrays<T: Real>(layers: Vec<Layer<T>>) -> Vec<NamedArray<T>> {
    layers
        .into_iter()
        .enumerate()
        .flat_map(|(l, layer)| {
            [
                NamedArray::new(&format!("W{}", l + 1), layer.w.into_dyn()),
                NamedArray::new(&format!("b{}", l + 1), layer.b.into_dyn()),
            ]
        })
        .collect()
}

/// A network's arrays as saved: [`layer_arrays`], with each normalised hidden layer's
/// `gamma{l}`, `beta{l}`, `mean{l}`, `var{l}` after its `b{l}`.
pub fn network_arrays<T: Real>(
    layers: Vec<Layer<T>>,
    norm: Option<&[BnLayer<T>]>,
) -> Vec<NamedArray<T>> {
    let mut arrays = layer_arrays(layers);
    for (l, bn) in norm.unwrap_or_default().iter().enumerate().rev() {
        let names = norm_array_names(l + 1);
        let values = [&bn.gamma, &bn.beta, &bn.mean, &bn.var];
        arrays.splice(
            2 * l + 2..2 * l + 2,
            names
                .iter()
                .zip(values)
                .map(|(name, v)| NamedArray::new(name, v.clone().into_dyn())),
        );
    }
    arrays
}

/// Runs `$body(args)` compiled with AVX2 where the CPU has it (the same operations, so
/// the same bits, on 256-bit vectors instead of the baseline's 128-bit ones).
macro_rules! with_avx2 {
    ($plain:ident, $avx2:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        pub(super) fn $plain<T: Real>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                return unsafe { $avx2($($arg),*) };
            }
            $body($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        unsafe fn $avx2<T: Real>($($arg: $ty),*) {
            $body($($arg),*)
        }
    };
}

with_avx2!(forward, forward_avx2, forward_body, (w: ArrayView2<T>, a: ArrayView2<T>, out: ArrayViewMut2<T>));
with_avx2!(backward, backward_avx2, backward_body, (w: ArrayView2<T>, g: ArrayView2<T>, out: ArrayViewMut2<T>));

/// `out = W a` (W is out x in, `a` in x n, `out` out x n): each element the sum over
/// the inputs in ascending order, whatever n.
#[inline(always)]
pub(super) fn forward_body<T: Real>(w: ArrayView2<T>, a: ArrayView2<T>, mut out: ArrayViewMut2<T>) {
    out.fill(T::zero());
    for (mut orow, wrow) in out.rows_mut().into_iter().zip(w.rows()) {
        for (&wv, arow) in wrow.iter().zip(a.rows()) {
            Zip::from(&mut orow)
                .and(arow)
                .for_each(|o, &x| *o = *o + wv * x);
        }
    }
}

/// `out = W^T g` (W is out x in, `g` out x n, `out` in x n), summing over the outputs in
/// ascending order.
#[inline(always)]
pub(super) fn backward_body<T: Real>(
    w: ArrayView2<T>,
    g: ArrayView2<T>,
    mut out: ArrayViewMut2<T>,
) {
    out.fill(T::zero());
    for (wrow, grow) in w.rows().into_iter().zip(g.rows()) {
        for (mut orow, &wv) in out.rows_mut().into_iter().zip(wrow.iter()) {
            Zip::from(&mut orow)
                .and(grow)
                .for_each(|o, &x| *o = *o + wv * x);
        }
    }
}

/// `h = ReLU(z + b)` (`z` alone without `b`), times `1 / (1 - p)` where `keep` keeps the
/// unit and 0 where it drops it (`keep` is unit-major, as `z`).
fn activate<T: Real>(
    mut z: ArrayViewMut2<T>,
    b: Option<ArrayView1<T>>,
    keep: Option<(&[bool], T)>,
) {
    let n = z.ncols();
    for (u, mut row) in z.rows_mut().into_iter().enumerate() {
        let bu = b.map_or(T::zero(), |b| b[u]);
        match keep {
            None => row.iter_mut().for_each(|v| {
                let x = *v + bu;
                *v = if x > T::zero() { x } else { T::zero() };
            }),
            Some((keep, scale)) => {
                for (v, &k) in row.iter_mut().zip(&keep[u * n..(u + 1) * n]) {
                    let x = *v + bu;
                    *v = if k && x > T::zero() {
                        x * scale
                    } else {
                        T::zero()
                    };
                }
            }
        }
    }
}

/// Turns `da`, the gradient with respect to a layer's outputs `h`, into the gradient
/// with respect to its pre-activations: `da` where the unit was active (times the
/// dropout scale), else 0.
fn deactivate<T: Real>(mut da: ArrayViewMut2<T>, h: ArrayView2<T>, scale: Option<T>) {
    Zip::from(&mut da).and(h).for_each(|g, &a| {
        *g = if a > T::zero() {
            scale.map_or(*g, |s| *g * s)
        } else {
            T::zero()
        };
    });
}

/// The gradient of the cost with respect to one weight, from the sum `g` of its examples'
/// terms: `g / n + 2 lambda w` (as the linear model's).
#[inline(always)]
fn weight_gradient<T: Real>(g: T, inv_n: T, two_lambda: T, w: T) -> T {
    g * inv_n + two_lambda * w
}

/// One run's buffers for the layers after the first: activations, score block and
/// gradients.
struct Head<T> {
    /// `h_l` for every hidden layer (h_l x batch), the first included.
    acts: Vec<Array2<T>>,
    /// Scores, then their gradients (K x batch).
    scores: Array2<T>,
    /// The gradient with respect to one hidden layer's outputs (widest x batch).
    back: Array2<T>,
    /// One hidden layer's outputs transposed (batch x widest).
    at: Array2<T>,
    /// Gradients of the layers after the first, and of the first's biases.
    grads: Vec<Layer<T>>,
    db1: Array1<T>,
    /// Each hidden layer's batch-norm buffers (none without batch norm).
    bn: Vec<BatchNorm<T>>,
    col_max: Vec<T>,
    col_sum: Vec<T>,
}

impl<T: Real> Head<T> {
    fn new(widths: &[usize], k: usize, batch: usize, norm: bool) -> Self {
        let mut dims = widths.to_vec();
        dims.push(k);
        Head {
            acts: widths.iter().map(|&h| Array2::zeros((h, batch))).collect(),
            scores: Array2::zeros((k, batch)),
            back: Array2::zeros((widths.iter().copied().max().unwrap_or(0), batch)),
            at: Array2::zeros((batch, widths.iter().copied().max().unwrap_or(0))),
            grads: dims
                .windows(2)
                .map(|io| Layer {
                    w: Array2::zeros((io[1], io[0])),
                    b: Array1::zeros(io[1]),
                })
                .collect(),
            db1: Array1::zeros(widths[0]),
            bn: if norm {
                widths.iter().map(|&h| BatchNorm::new(h, batch)).collect()
            } else {
                Vec::new()
            },
            col_max: vec![T::zero(); batch],
            col_sum: vec![T::zero(); batch],
        }
    }

    /// From one run's first-layer pre-activations `z1` (h_1 x n, bias not added) to the
    /// gradient of the summed loss with respect to them, written over `z1`; the other
    /// layers' summed gradients are left in `grads` and `db1` (and the batch-norm
    /// buffers). `keep` holds each hidden layer's dropout draws (unit-major) with the
    /// scale 1 / (1 - p); `norm` the run's batch-norm layers and eps.
    #[allow(clippy::too_many_arguments)]
    fn forward_backward<L: Loss>(
        &mut self,
        mut z1: ArrayViewMut2<T>,
        b1: ArrayView1<T>,
        layers: &[Layer<T>],
        keep: Option<(&[Vec<bool>], T)>,
        norm: Option<(&[BnLayer<T>], T)>,
        label: impl Fn(usize) -> usize,
    ) {
        let n = z1.ncols();
        let hidden = self.acts.len();
        let keep_of = |l: usize| keep.map(|(k, scale)| (k[l].as_slice(), scale));
        for l in 0..hidden {
            let (before, after) = self.acts.split_at_mut(l);
            let mut z = after[0].slice_mut(s![.., ..n]);
            let b = if l == 0 {
                z.assign(&z1);
                b1
            } else {
                forward(
                    layers[l - 1].w.view(),
                    before[l - 1].slice(s![.., ..n]),
                    z.view_mut(),
                );
                layers[l - 1].b.view()
            };
            match norm {
                Some((bn, eps)) => {
                    self.bn[l].forward(z.view_mut(), b, &bn[l], eps);
                    activate(z, None, keep_of(l));
                }
                None => activate(z, Some(b), keep_of(l)),
            }
        }
        let last = &layers[hidden - 1];
        let mut g = self.scores.slice_mut(s![.., ..n]);
        forward(
            last.w.view(),
            self.acts[hidden - 1].slice(s![.., ..n]),
            g.view_mut(),
        );
        L::score_gradients(
            g.view_mut(),
            last.b.view(),
            label,
            &mut self.col_max,
            &mut self.col_sum,
        );
        // Back through the layers after the first: layer l + 1 (layers[l]) maps h_l to
        // the next, and its gradient is its output gradient times h_l.
        let scale = keep.map(|(_, s)| s);
        for l in (0..hidden).rev() {
            let a = self.acts[l].slice(s![.., ..n]);
            let out_grad = if l + 1 == hidden {
                self.scores.slice(s![.., ..n])
            } else {
                self.back.slice(s![..layers[l + 1].w.ncols(), ..n])
            };
            let grad = &mut self.grads[l];
            // Each element is the sum over the batch in ascending order, from zero; with
            // h_l transposed the chains of a whole row of the gradient advance together
            // (vectorised), where one chain at a time waited on each add.
            let mut at = self.at.slice_mut(s![..n, ..a.nrows()]);
            at.assign(&a.t());
            for (mut drow, grow) in grad.w.rows_mut().into_iter().zip(out_grad.rows()) {
                drow.fill(T::zero());
                for (&gv, arow) in grow.iter().zip(at.rows()) {
                    Zip::from(&mut drow)
                        .and(arow)
                        .for_each(|d, &x| *d = *d + gv * x);
                }
            }
            // A bias before batch norm cancels in z - mu: its gradient is exactly zero.
            let normalised = norm.is_some() && l + 1 < hidden;
            for (db, grow) in grad.b.iter_mut().zip(out_grad.rows()) {
                *db = if normalised { T::zero() } else { grow.sum() };
            }
            // The gradient for h_l, into `back` (or z1 for the first layer's outputs).
            let width = layers[l].w.ncols();
            let mut da = Array2::<T>::zeros((width, n));
            backward(layers[l].w.view(), out_grad, da.view_mut());
            deactivate(da.view_mut(), a, scale);
            if let Some((bn, _)) = norm {
                self.bn[l].backward(da.view_mut(), &bn[l]);
            }
            if l == 0 {
                z1.assign(&da);
            } else {
                self.back.slice_mut(s![..width, ..n]).assign(&da);
            }
        }
        for (db, row) in self.db1.iter_mut().zip(z1.rows()) {
            *db = if norm.is_some() { T::zero() } else { row.sum() };
        }
    }
}

/// A fused group of networks (runs sharing `cfg`) trained by mini-batch gradient
/// descent, span by span ([`Course`]).
pub struct NetTrainer<'d, T, L = CrossEntropy> {
    data: &'d Dataset,
    /// Hidden widths.
    widths: Vec<usize>,
    members: Members,
    two_lambda: Vec<T>,
    /// Every run's first layer, stacked (R*h_1 x d), and its biases.
    pub(super) w1: Array2<T>,
    pub(super) b1: Array1<T>,
    /// Every run's layers after the first.
    pub(super) rest: Vec<Vec<Layer<T>>>,
    course: Course,
    mirrored: Option<Mirrored>,
    dropout: f64,
    /// Every run's batch normalisation (none without it), with eps and momentum.
    pub(super) norms: Vec<RunNorm<T>>,
    bn_consts: Option<(T, T)>,
    dropper: rand_chacha::ChaCha20Rng,
    /// One hidden layer's dropout draws per entry (unit-major, h_l x batch).
    keep: Vec<Vec<bool>>,
    /// First-layer pre-activations, then their gradients (R*h_1 x batch).
    z1: Array2<T>,
    grad_w1: Array2<T>,
    heads: Vec<Head<T>>,
    loss: PhantomData<L>,
}

impl<T: Real, L: Loss> NetTrainer<'_, T, L> {
    fn h1(&self) -> usize {
        self.widths[0]
    }

    /// The gradients of every member on `batch` (read from `src`), summed over the batch:
    /// the first layer's weights in `grad_w1`, the rest in each head.
    fn batch_gradients(&mut self, src: Source, batch: &[u32], dropout: bool) {
        let nb = batch.len();
        let h1 = self.h1();
        par_dot_nt_rows(
            self.w1.view(),
            src.x,
            batch,
            self.z1.slice_mut(s![.., ..nb]),
        );
        let scale = T::one() / T::from_f64(1.0 - self.dropout);
        if dropout {
            for (keep, &h) in self.keep.iter_mut().zip(&self.widths) {
                rng::fill_keep(&mut self.dropper, self.dropout, &mut keep[..h * nb]);
            }
        }
        let keep = dropout.then_some((self.keep.as_slice(), scale));
        let label = |j: usize| usize::from(src.y[batch[j] as usize]);
        let b1 = self.b1.view();
        let (norms, eps) = (&self.norms, self.bn_consts.map(|(eps, _)| eps));
        self.z1
            .slice_mut(s![.., ..nb])
            .axis_chunks_iter_mut(Axis(0), h1)
            .into_par_iter()
            .zip(self.heads.par_iter_mut())
            .zip(self.rest.par_iter())
            .enumerate()
            .for_each(|(r, ((z1, head), layers))| {
                let b1 = b1.slice(s![r * h1..(r + 1) * h1]);
                let norm = eps.map(|eps| (norms[r].layers.as_slice(), eps));
                head.forward_backward::<L>(z1, b1, layers, keep, norm, label);
            });
        par_acc_nn_rows(
            self.z1.slice(s![.., ..nb]),
            src.x,
            batch,
            self.grad_w1.view_mut(),
            Chain::Start,
        );
    }
}

impl<'d, T: Real, L: Loss> Trainer<'d> for NetTrainer<'d, T, L> {
    type Real = T;
    type Snapshot = NetSnapshot<T, L>;

    fn new(data: &'d Dataset, cfg: &TrainConfig, members: &[Hyper]) -> Self {
        let (k, d, n) = (data.classes(), data.train.dim(), data.train.len());
        let widths = cfg.hidden.clone();
        assert!(!widths.is_empty(), "a network has hidden layers");
        let runs = members.len();
        let h1 = widths[0];
        let mut dims = vec![d];
        dims.extend(&widths);
        dims.push(k);
        let mut init = init_layers::<T>(cfg.init, &dims, cfg.init_std, cfg.seed);
        let rest_init = init.split_off(1);
        let mut w1 = padded_zeros::<T>(runs * h1, d, Pages::Small);
        let mut b1 = Array1::<T>::zeros(runs * h1);
        for r in 0..runs {
            w1.slice_mut(s![r * h1..(r + 1) * h1, ..])
                .assign(&init[0].w);
            b1.slice_mut(s![r * h1..(r + 1) * h1]).assign(&init[0].b);
        }
        let course = Course::new(cfg, n);
        let bs = course.batch_size();
        NetTrainer {
            data,
            members: Members::new(members, course.batches(), course.spans()),
            two_lambda: members
                .iter()
                .map(|h| T::from_f64(2.0 * h.lambda))
                .collect(),
            w1,
            b1,
            rest: vec![rest_init; runs],
            mirrored: (cfg.augment == Augment::Flip).then(|| Mirrored::new(bs, d)),
            course,
            dropout: cfg.dropout,
            norms: if cfg.norm.is_some() {
                vec![RunNorm::new(&widths); runs]
            } else {
                Vec::new()
            },
            bn_consts: cfg
                .norm
                .map(|n| (T::from_f64(n.eps), T::from_f64(n.momentum))),
            dropper: rng::generator(cfg.seed, Stream::Dropout),
            keep: widths.iter().map(|&h| vec![true; h * bs]).collect(),
            z1: Array2::zeros((runs * h1, bs)),
            grad_w1: padded_zeros::<T>(runs * h1, d, Pages::Small),
            heads: (0..runs)
                .map(|_| Head::new(&widths, k, bs, cfg.norm.is_some()))
                .collect(),
            widths,
            loss: PhantomData,
        }
    }

    fn rows_per_run(data: &Dataset) -> usize {
        data.classes()
    }

    fn prepare_scoring(data: &Dataset, runs: usize) {
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
        let data = self.data;
        let mut course = std::mem::replace(
            &mut self.course,
            Course::new(&TrainConfig::epochs(1, 0, 0, false, 0.0), 1),
        );
        let mut mirrored = self.mirrored.take();
        let dropout = self.dropout > 0.0;
        course.span(|batch, flips, u| {
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
            self.batch_gradients(src, batch, dropout);
            self.update(batch.len(), &self.members.rates::<T>(u));
        });
        self.course = course;
        self.mirrored = mirrored;
    }

    fn finish(self) -> Vec<Fitted<T>> {
        let test = self.data.test.as_ref().map(|t| {
            let snap = NetSnapshot::<T, L>::take(&[&self]);
            snap.evaluate(t)
        });
        let arrays = self.arrays();
        let Members {
            mut history,
            outcome,
            ..
        } = self.members;
        arrays
            .into_iter()
            .enumerate()
            .map(|(r, arrays)| Fitted {
                arrays,
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
        (0..self.runs())
            .map(|r| network_arrays(self.layers(r), self.norms.get(r).map(|n| &n.layers[..])))
            .collect()
    }

    fn gradients(&mut self, examples: &[u32]) -> Vec<Vec<NamedArray<T>>> {
        let nb = examples.len();
        assert!(nb <= self.z1.ncols(), "at most a batch of examples at once");
        let data = self.data;
        let src = Source {
            x: data.train.x.view(),
            y: &data.train.y,
        };
        self.batch_gradients(src, examples, false);
        let inv_n = T::one() / T::from_f64(nb as f64);
        let h1 = self.h1();
        (0..self.runs())
            .map(|r| {
                let two_l = self.two_lambda[r];
                let rows = r * h1..(r + 1) * h1;
                let w1 = self.w1.slice(s![rows.clone(), ..]);
                let g1 = self.grad_w1.slice(s![rows, ..]);
                let mut layers = vec![Layer {
                    w: Array2::from_shape_fn(w1.dim(), |ij| {
                        weight_gradient(g1[ij], inv_n, two_l, w1[ij])
                    }),
                    b: self.heads[r].db1.mapv(|v| v * inv_n),
                }];
                for (layer, grad) in self.rest[r].iter().zip(&self.heads[r].grads) {
                    layers.push(Layer {
                        w: Array2::from_shape_fn(layer.w.dim(), |ij| {
                            weight_gradient(grad.w[ij], inv_n, two_l, layer.w[ij])
                        }),
                        b: grad.b.mapv(|v| v * inv_n),
                    });
                }
                let mut arrays = layer_arrays(layers);
                // gamma_l and beta_l after b_l (the running averages are not trained).
                for (l, bn) in self.heads[r].bn.iter().enumerate().rev() {
                    let [gamma, beta, _, _] = norm_array_names(l + 1);
                    arrays.splice(
                        2 * l + 2..2 * l + 2,
                        [
                            NamedArray::new(&gamma, bn.dgamma.mapv(|v| v * inv_n).into_dyn()),
                            NamedArray::new(&beta, bn.dbeta.mapv(|v| v * inv_n).into_dyn()),
                        ],
                    );
                }
                arrays
            })
            .collect()
    }
}

impl<T: Real, L: Loss> NetTrainer<'_, T, L> {
    /// Run r's layers now.
    fn layers(&self, r: usize) -> Vec<Layer<T>> {
        let h1 = self.h1();
        let mut layers = vec![Layer {
            w: self.w1.slice(s![r * h1..(r + 1) * h1, ..]).to_owned(),
            b: self.b1.slice(s![r * h1..(r + 1) * h1]).to_owned(),
        }];
        layers.extend(self.rest[r].iter().cloned());
        layers
    }

    /// One gradient step of every member still training, with the batch's summed
    /// gradients (of `nb` examples) and the members' rates `eta`.
    fn update(&mut self, nb: usize, eta: &[T]) {
        let h1 = self.h1();
        let inv_n = T::one() / T::from_f64(nb as f64);
        let members = &self.members;
        let two_lambda = &self.two_lambda;
        let rates = Array1::from_shape_fn(self.w1.nrows(), |i| {
            let r = i / h1;
            (members.training(r), eta[r], two_lambda[r])
        });
        Zip::from(self.w1.rows_mut())
            .and(self.grad_w1.rows())
            .and(&rates)
            .par_for_each(|mut wrow, grow, &(active, lr, two_l)| {
                if active {
                    Zip::from(&mut wrow).and(&grow).for_each(|w, &g| {
                        *w = *w - lr * weight_gradient(g, inv_n, two_l, *w);
                    });
                }
            });
        for r in 0..members.runs() {
            if !members.training(r) {
                continue;
            }
            let (lr, two_l) = (eta[r], two_lambda[r]);
            let head = &self.heads[r];
            for (b, &g) in self
                .b1
                .slice_mut(s![r * h1..(r + 1) * h1])
                .iter_mut()
                .zip(&head.db1)
            {
                *b = *b - lr * (g * inv_n);
            }
            for (layer, grad) in self.rest[r].iter_mut().zip(&head.grads) {
                Zip::from(&mut layer.w).and(&grad.w).for_each(|w, &g| {
                    *w = *w - lr * weight_gradient(g, inv_n, two_l, *w);
                });
                Zip::from(&mut layer.b).and(&grad.b).for_each(|b, &g| {
                    *b = *b - lr * (g * inv_n);
                });
            }
            if let Some((_, momentum)) = self.bn_consts {
                let norm = &mut self.norms[r];
                norm.step(&head.bn, lr, inv_n);
                norm.update_running(&head.bn, momentum);
            }
        }
    }
}

/// Every group's networks at their current span: the first layers stacked into one
/// matrix (so each split is read once for all of them, by the evaluation product), the
/// later layers copied per run. See [`super::linear::LinearSnapshot`] for why it is a
/// copy.
pub struct NetSnapshot<T, L = CrossEntropy> {
    w1: Array2<T>,
    packed: Option<Packed<T>>,
    b1: Array1<T>,
    /// Per run: its first layer's rows in `w1`, and its later layers.
    rest: Vec<Vec<Layer<T>>>,
    /// Per run: its batch normalisation and eps, if it has one.
    norms: Vec<Option<(RunNorm<T>, T)>>,
    h1: Vec<usize>,
    lambdas: Vec<f64>,
    /// Per run: sum of its weight matrices' squared norms.
    sq: Vec<f64>,
    groups: Vec<(Mark, usize)>,
    loss: PhantomData<L>,
}

/// One scoring worker's buffers for [`NetSnapshot`].
pub struct NetScratch<T> {
    z: Array2<T>,
    acts: Vec<Array2<T>>,
    best: Vec<T>,
    arg: Vec<u32>,
    sum: Vec<T>,
}

impl<T: Real, L: Loss> NetSnapshot<T, L> {
    fn scratch(&self) -> NetScratch<T> {
        NetScratch {
            z: Array2::zeros((self.w1.nrows(), EVAL_CHUNK)),
            acts: Vec::new(),
            best: vec![T::zero(); EVAL_CHUNK],
            arg: vec![0; EVAL_CHUNK],
            sum: vec![T::zero(); EVAL_CHUNK],
        }
    }

    /// Every run's loss sum and correct count on examples `range` of `split`.
    fn chunk(
        &self,
        split: &Split,
        range: std::ops::Range<usize>,
        sc: &mut NetScratch<T>,
    ) -> ChunkSums {
        let nc = range.len();
        let labels = &split.y[range.clone()];
        first_product(
            self.w1.view(),
            self.packed.as_ref(),
            split,
            range,
            sc.z.slice_mut(s![.., ..nc]),
        );
        let runs = self.rest.len();
        let mut out = ChunkSums {
            loss: vec![0.0; runs],
            correct: vec![0; runs],
        };
        let mut row0 = 0;
        for r in 0..runs {
            let h1 = self.h1[r];
            let layers = &self.rest[r];
            // Activations of every hidden layer, then the scores (bias not added).
            let mut dims: Vec<usize> = vec![h1];
            dims.extend(layers.iter().map(|l| l.w.nrows()));
            sc.acts.resize_with(dims.len(), || Array2::zeros((0, 0)));
            for (a, &h) in sc.acts.iter_mut().zip(&dims) {
                if a.nrows() != h {
                    *a = Array2::zeros((h, EVAL_CHUNK));
                }
            }
            let norm = self.norms[r].as_ref();
            let hidden_out = |l: usize, mut z: ArrayViewMut2<T>, b: ArrayView1<T>| match norm {
                Some((norm, eps)) => {
                    norm.layers[l].apply_running(z.view_mut(), b, *eps);
                    activate(z, None, None);
                }
                None => activate(z, Some(b), None),
            };
            {
                let mut a = sc.acts[0].slice_mut(s![.., ..nc]);
                a.assign(&sc.z.slice(s![row0..row0 + h1, ..nc]));
                hidden_out(0, a, self.b1.slice(s![row0..row0 + h1]));
            }
            for (l, layer) in layers.iter().enumerate() {
                let (before, after) = sc.acts.split_at_mut(l + 1);
                let mut z = after[0].slice_mut(s![.., ..nc]);
                forward(layer.w.view(), before[l].slice(s![.., ..nc]), z.view_mut());
                if l + 1 < layers.len() {
                    hidden_out(l + 1, z, layer.b.view());
                }
            }
            let scores = sc.acts.last().expect("the score block");
            let rows: Vec<&[T]> = scores
                .rows()
                .into_iter()
                .map(|row| &row.to_slice().expect("contiguous rows")[..nc])
                .collect();
            let bias = layers.last().expect("an output layer").b.view();
            (out.loss[r], out.correct[r]) = L::chunk_sums(
                &rows,
                bias,
                labels,
                &mut sc.best[..nc],
                &mut sc.arg[..nc],
                &mut sc.sum[..nc],
            );
            row0 += h1;
        }
        out
    }

    /// Metrics of every run from one split's chunk sums, added in chunk order.
    fn add_up(&self, n: usize, chunks: &[ChunkSums]) -> Vec<SplitMetrics> {
        (0..self.rest.len())
            .map(|r| {
                let loss: f64 = chunks.iter().map(|c| c.loss[r]).sum();
                let correct: usize = chunks.iter().map(|c| c.correct[r]).sum();
                let mean = loss / n as f64;
                SplitMetrics {
                    loss: mean,
                    cost: mean + self.lambdas[r] * self.sq[r],
                    accuracy: correct as f64 / n as f64,
                }
            })
            .collect()
    }

    /// Metrics of every run on `split`, its chunks scored in parallel.
    fn evaluate(&self, split: &Split) -> Vec<SplitMetrics> {
        let n = split.len();
        let chunks: Vec<ChunkSums> = (0..eval_chunk_count(n))
            .into_par_iter()
            .with_max_len(1)
            .map_init(
                || self.scratch(),
                |sc, j| self.chunk(split, eval_chunk_range(n, j), sc),
            )
            .collect();
        self.add_up(n, &chunks)
    }
}

impl<'d, T: Real, L: Loss> Snapshot<'d, NetTrainer<'d, T, L>> for NetSnapshot<T, L> {
    type Scratch = NetScratch<T>;

    fn take(groups: &[&NetTrainer<'d, T, L>]) -> Self {
        let m: usize = groups.iter().map(|g| g.w1.nrows()).sum();
        let d = groups.first().map_or(0, |g| g.w1.ncols());
        let mut w1 = padded_zeros::<T>(m, d, Pages::Small);
        let mut b1 = Array1::<T>::zeros(m);
        let (mut rest, mut norms, mut h1, mut lambdas, mut sq) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut at = 0;
        for g in groups {
            let rows = at..at + g.w1.nrows();
            w1.slice_mut(s![rows.clone(), ..]).assign(&g.w1);
            b1.slice_mut(s![rows]).assign(&g.b1);
            at += g.w1.nrows();
            for r in 0..g.runs() {
                let h = g.h1();
                h1.push(h);
                let first = g.w1.slice(s![r * h..(r + 1) * h, ..]);
                sq.push(
                    sq_norm(first) + g.rest[r].iter().map(|l| sq_norm(l.w.view())).sum::<f64>(),
                );
                rest.push(g.rest[r].clone());
                norms.push(g.bn_consts.map(|(eps, _)| (g.norms[r].clone(), eps)));
            }
            lambdas.extend_from_slice(&g.members.lambdas);
        }
        NetSnapshot {
            packed: T::PACKED_EVAL.then(|| Packed::new(w1.view())),
            w1,
            b1,
            rest,
            norms,
            h1,
            lambdas,
            sq,
            groups: groups.iter().map(|g| (g.course.mark(), g.runs())).collect(),
            loss: PhantomData,
        }
    }

    fn chunks(&self, data: &Dataset) -> usize {
        eval_chunk_count(data.train.len()) + eval_chunk_count(data.val.len())
    }

    fn score_chunk(
        &self,
        data: &Dataset,
        i: usize,
        scratch: &mut Option<NetScratch<T>>,
    ) -> ChunkSums {
        let on_train = eval_chunk_count(data.train.len());
        let (split, j) = if i < on_train {
            (&data.train, i)
        } else {
            (&data.val, i - on_train)
        };
        let sc = scratch.get_or_insert_with(|| self.scratch());
        self.chunk(split, eval_chunk_range(split.len(), j), sc)
    }

    fn scores(&self, data: &Dataset, chunks: &[ChunkSums]) -> Scores {
        assert_eq!(chunks.len(), self.chunks(data), "every chunk, once");
        let (train, val) = chunks.split_at(eval_chunk_count(data.train.len()));
        Scores {
            train: self.add_up(data.train.len(), train),
            val: self.add_up(data.val.len(), val),
        }
    }

    fn record(&self, scores: &Scores, groups: &mut [&mut NetTrainer<'d, T, L>]) {
        assert_eq!(
            groups.len(),
            self.groups.len(),
            "the groups of the snapshot"
        );
        let (mut run0, mut row0) = (0, 0);
        for (g, &(mark, runs)) in groups.iter_mut().zip(&self.groups) {
            assert_eq!(g.runs(), runs, "the groups of the snapshot");
            let these = run0..run0 + runs;
            let diverged = g
                .members
                .record(mark, &scores.train[these.clone()], &scores.val[these]);
            if g.spans() != mark.span {
                let h = g.h1();
                for r in diverged {
                    let (mine, snap) = (r * h..(r + 1) * h, row0 + r * h..row0 + (r + 1) * h);
                    g.w1.slice_mut(s![mine.clone(), ..])
                        .assign(&self.w1.slice(s![snap.clone(), ..]));
                    g.b1.slice_mut(s![mine]).assign(&self.b1.slice(s![snap]));
                    g.rest[r] = self.rest[run0 + r].clone();
                    if let Some((norm, _)) = &self.norms[run0 + r] {
                        g.norms[r] = norm.clone();
                    }
                }
            }
            row0 += g.w1.nrows();
            run0 += runs;
        }
    }
}

impl<T: Real> Layer<T> {
    /// The layer's arrays in f64, for the gradient check.
    pub fn to_f64(&self) -> Layer<f64> {
        Layer {
            w: self.w.mapv(|v| Real::to_f64(v)),
            b: self.b.mapv(|v| Real::to_f64(v)),
        }
    }
}

/// Run r's layers back from the arrays [`layer_arrays`] made: `W1`, `b1`, ...; `None`
/// if one is missing or of the wrong rank.
pub fn layers_from_arrays<T: Real>(arrays: &[NamedArray<T>]) -> Option<Vec<Layer<T>>> {
    let get = |name: String| {
        arrays
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.array.clone())
    };
    (1..=arrays.len() / 2)
        .map(|l| {
            Some(Layer {
                w: get(format!("W{l}"))?.into_dimensionality().ok()?,
                b: get(format!("b{l}"))?.into_dimensionality().ok()?,
            })
        })
        .collect()
}
