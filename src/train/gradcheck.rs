//! The gradient check: the gradients training uses against finite differences.
//!
//! The analytic side is the trainer's own ([`Trainer::gradients`]: the code an update
//! runs, in f64), not a second implementation, so a bug in training cannot hide from the
//! check. As in the lab, the check runs in f64 at freshly initialised W and b (drawn from
//! the check's own seed, as training draws them), on the first n training examples and on random segments of n
//! examples, and reports for W and b the norm of the difference (the lab's metric), the
//! largest absolute difference and the largest relative error.
//!
//! The numerical derivatives are the usual finite differences of the cost,
//! forward `(J(theta + h e) - J(theta)) / h` and centred `(J(theta + h e) - J(theta - h e)) / 2h`,
//! but the perturbed cost is computed smartly: changing `W[i][j]` only changes row i of the
//! scores `S = W X + b`, by `h * X[j, :]`, so each example's log-sum-exp is rebuilt from
//! the precomputed sum of the other rows' exponentials in O(1), and a cost evaluation
//! costs O(n) instead of the O(n K d) of recomputing `W X`. The unperturbed cost in the
//! forward difference is evaluated by the same formula, so both terms round alike.

use std::time::Instant;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, Axis};
use rayon::prelude::*;

use crate::data::Dataset;
use crate::plan::{Hyper, Norm, TrainConfig};
use crate::rng::{self, Stream};
use crate::spec::LossName;
pub use crate::spec::{CheckSpec, Method};
use crate::train::bncheck::{self, NormNet};
use crate::train::netcheck::{self, NetLoss};
use crate::train::{Hinge, LinearTrainer, NamedArray, NetTrainer, Params, Trainer};

/// Which examples a check uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// The first n training examples (the lab's choice).
    First,
    /// n examples drawn at random from the training split (1-based number).
    Random(u32),
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Segment::First => f.write_str("first"),
            Segment::Random(i) => write!(f, "random-{i}"),
        }
    }
}

/// One line of the gradient-check table.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRow {
    pub batch_size: usize,
    pub segment: Segment,
    pub lambda: f64,
    pub method: Method,
    /// The parameter array (`W`, `b`), as training names it.
    pub param: String,
    /// `||g_analytic - g_numerical||_2`.
    pub norm_diff: f64,
    pub max_abs_diff: f64,
    /// `max |ga - gn| / max(eps, |ga| + |gn|)`.
    pub max_rel_err: f64,
    /// Wall time of the numerical gradient (not reproducible; excluded from comparisons).
    pub seconds: f64,
    /// For the hinge loss: the examples of the segment with a margin within
    /// [`KINK_STEPS`] steps of its kink, where a difference may straddle it (`None` for
    /// the smooth cross-entropy).
    pub kinks: Option<usize>,
    /// The analytic gradient is exactly zero by construction (a bias followed by batch
    /// norm cancels in `z - mu`): `max_rel_err` is then meaningless and left out (NaN),
    /// and `max_abs_diff` is the numerical gradient's own size, its rounding noise.
    pub zero_by_construction: bool,
}

/// How near a hinge margin must be to 0, in steps `h`, to count as at a kink.
pub const KINK_STEPS: f64 = 100.0;

/// Precomputed pieces of the scores from which perturbed costs are rebuilt.
///
/// With `M_k` the largest score of example k, the loss of example k is
/// `M_k + ln(sum_c exp(S[c][k] - M_k)) - S[y_k][k]`. Shifting row i by `delta_k` gives
/// `M_k + ln(z[i][k] + e[i][k] * exp(delta_k)) - S[y_k][k] - [y_k = i] delta_k`, where
/// `z[i][k]` sums the other rows' exponentials and `e[i][k] = exp(S[i][k] - M_k)`.
struct Scores {
    n: usize,
    /// `sum_k (M_k - S[y_k][k])`, the part of the summed loss no shift changes.
    constant: f64,
    /// Per row i, `z[i][k]` (contiguous over k).
    z: Vec<Vec<f64>>,
    /// Per row i, `e[i][k]`.
    e: Vec<Vec<f64>>,
    /// Per row i, the examples labelled i.
    labelled: Vec<Vec<usize>>,
}

/// Factors multiplied before one logarithm is taken: each factor lies in [1, K], so a
/// product of 8 stays far from overflow, and 8 logarithms cost one.
const LOG_BATCH: usize = 8;

impl Scores {
    fn new(params: &Params<f64>, x: &Array2<f64>, y: &[u8]) -> Self {
        let (kc, n) = (params.w.nrows(), x.nrows());
        let mut s = Array2::<f64>::zeros((kc, n));
        general_mat_mul(1.0, &params.w, &x.t(), 0.0, &mut s);
        for mut col in s.axis_iter_mut(Axis(1)) {
            col += &params.b;
        }
        let max = s.map_axis(Axis(0), |c| c.fold(f64::NEG_INFINITY, |m, &v| m.max(v)));
        let mut z = vec![vec![0.0; n]; kc];
        let mut e = vec![vec![0.0; n]; kc];
        let mut constant = 0.0;
        for k in 0..n {
            for i in 0..kc {
                e[i][k] = (s[[i, k]] - max[k]).exp();
                z[i][k] = (0..kc)
                    .filter(|&c| c != i)
                    .map(|c| (s[[c, k]] - max[k]).exp())
                    .sum();
            }
            constant += max[k] - s[[usize::from(y[k]), k]];
        }
        let labelled = (0..kc)
            .map(|i| (0..n).filter(|&k| usize::from(y[k]) == i).collect())
            .collect();
        Scores {
            n,
            constant,
            z,
            e,
            labelled,
        }
    }

    /// `sum_k ln(z[i][k] + e[i][k] * growth(k))`.
    fn log_sum(&self, i: usize, growth: impl Fn(usize) -> f64) -> f64 {
        let (z, e) = (&self.z[i], &self.e[i]);
        let mut total = 0.0;
        let mut k = 0;
        while k < self.n {
            let end = (k + LOG_BATCH).min(self.n);
            let mut product = 1.0;
            for m in k..end {
                product *= z[m] + e[m] * growth(m);
            }
            total += product.ln();
            k = end;
        }
        total
    }

    /// Mean loss after adding `step * xj[k]` to row i of the scores (`exp_step[k]` is
    /// `exp(step * xj[k])`).
    fn loss_w(&self, i: usize, step: f64, xj: &[f64], exp_step: &[f64]) -> f64 {
        let lin: f64 = self.labelled[i].iter().map(|&k| xj[k]).sum();
        (self.constant + self.log_sum(i, |k| exp_step[k]) - step * lin) / self.n as f64
    }

    /// Mean loss after adding `step` to row i of the scores.
    fn loss_b(&self, i: usize, step: f64) -> f64 {
        let g = step.exp();
        (self.constant + self.log_sum(i, |_| g) - step * self.labelled[i].len() as f64)
            / self.n as f64
    }
}

/// Columns of W handled by one parallel task.
const COLUMN_CHUNK: usize = 64;

/// Numerical gradients of the cost by `method` with step `h`.
fn numerical_gradients(
    params: &Params<f64>,
    xt: &Array2<f64>,
    lambda: f64,
    method: Method,
    h: f64,
    scores: &Scores,
) -> (Params<f64>, f64, f64) {
    let (kc, d) = params.w.dim();
    let n = scores.n;
    let reg0: f64 = params.w.iter().map(|v| v * v).sum();
    let start = Instant::now();
    let base: Vec<f64> = (0..kc)
        .map(|i| scores.log_sum(i, |_| 1.0) / n as f64)
        .collect();
    let base: Vec<f64> = base
        .iter()
        .map(|&b| b + scores.constant / n as f64 + lambda * reg0)
        .collect();
    let columns: Vec<Vec<f64>> = (0..d)
        .collect::<Vec<_>>()
        .par_chunks(COLUMN_CHUNK)
        .map(|js| {
            let mut out = vec![0.0; js.len() * kc];
            let (mut up, mut down) = (vec![0.0; n], vec![0.0; n]);
            for (c, &j) in js.iter().enumerate() {
                let xj = xt.row(j);
                let xj = xj
                    .as_slice()
                    .expect("rows of a standard-layout array are contiguous");
                up.iter_mut().zip(xj).for_each(|(u, &x)| *u = (h * x).exp());
                if method == Method::Centred {
                    down.iter_mut()
                        .zip(xj)
                        .for_each(|(u, &x)| *u = (-h * x).exp());
                }
                for i in 0..kc {
                    let wij = params.w[[i, j]];
                    let cost = |step: f64, exp_step: &[f64]| {
                        scores.loss_w(i, step, xj, exp_step)
                            + lambda * (reg0 + 2.0 * step * wij + step * step)
                    };
                    out[c * kc + i] = match method {
                        Method::Forward => (cost(h, &up) - base[i]) / h,
                        Method::Centred => (cost(h, &up) - cost(-h, &down)) / (2.0 * h),
                    };
                }
            }
            out
        })
        .collect();
    let mut w = Array2::<f64>::zeros((kc, d));
    for (chunk, values) in columns.iter().enumerate() {
        for (c, col) in values.chunks(kc).enumerate() {
            for (i, &v) in col.iter().enumerate() {
                w[[i, chunk * COLUMN_CHUNK + c]] = v;
            }
        }
    }
    let w_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let b: Vec<f64> = (0..kc)
        .map(|i| {
            let cost = |step: f64| scores.loss_b(i, step) + lambda * reg0;
            match method {
                Method::Forward => (cost(h) - base[i]) / h,
                Method::Centred => (cost(h) - cost(-h)) / (2.0 * h),
            }
        })
        .collect();
    let b_seconds = start.elapsed().as_secs_f64();
    (
        Params {
            w,
            b: Array1::from(b),
        },
        w_seconds,
        b_seconds,
    )
}

/// `(||a - n||_2, max |a - n|, max |a - n| / max(eps, |a| + |n|))`.
pub fn compare<'a>(
    a: impl IntoIterator<Item = &'a f64>,
    n: impl IntoIterator<Item = &'a f64>,
    eps: f64,
) -> (f64, f64, f64) {
    let (mut sq, mut max_abs, mut max_rel) = (0.0f64, 0.0f64, 0.0f64);
    for (&ga, &gn) in a.into_iter().zip(n) {
        let diff = (ga - gn).abs();
        sq += diff * diff;
        max_abs = max_abs.max(diff);
        max_rel = max_rel.max(diff / eps.max(ga.abs() + gn.abs()));
    }
    (sq.sqrt(), max_abs, max_rel)
}

/// Why a gradient check could not run.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(
        "gradcheck batch size {batch_size} is larger than the {available} training examples; use at most {available}"
    )]
    TooFewExamples { batch_size: usize, available: usize },
    #[error("gradcheck dims = {dims} exceeds the data's {available} input dimensions")]
    TooManyDims { dims: usize, available: usize },
}

/// The linear model's W and b from its named arrays.
fn linear_params(arrays: &[NamedArray<f64>]) -> Params<f64> {
    Params::from_arrays(arrays).expect("the linear model has W and b")
}

/// Runs every check of `spec` on the training split of `data`. Rows come in the order
/// batch size, segment, lambda, method, parameter (W then b).
pub fn run(spec: &CheckSpec, data: &Dataset) -> Result<Vec<CheckRow>, CheckError> {
    let (available, len) = (data.train.dim(), data.train.len());
    let dims = spec.dims.unwrap_or(available);
    if dims > available {
        return Err(CheckError::TooManyDims { dims, available });
    }
    if let Some(&bad) = spec.batch_sizes.iter().find(|&&n| n > len) {
        return Err(CheckError::TooFewExamples {
            batch_size: bad,
            available: len,
        });
    }
    let cut;
    let data = if dims < available {
        cut = data.first_features(dims);
        &cut
    } else {
        data
    };
    let train = &data.train;
    // One group of one member per lambda: the check's seed and scale draw the weights
    // as training would; the rate is never used.
    let members: Vec<Hyper> = spec
        .lambdas
        .iter()
        .map(|&lambda| Hyper::constant(lambda, 0.0))
        .collect();
    match (spec.bn_eps, spec.loss) {
        (Some(eps), LossName::CrossEntropy) => {
            return Ok(run_norm::<NetTrainer<f64>>(spec, data, &members, eps));
        }
        (Some(eps), LossName::Hinge) => {
            return Ok(run_norm::<NetTrainer<f64, Hinge>>(
                spec, data, &members, eps,
            ));
        }
        (None, _) => {}
    }
    match (spec.hidden.is_empty(), spec.loss) {
        (true, LossName::CrossEntropy) => {}
        (true, LossName::Hinge) => {
            return Ok(run_layers::<LinearTrainer<f64, Hinge>>(
                spec, data, &members,
            ));
        }
        (false, LossName::CrossEntropy) => {
            return Ok(run_layers::<NetTrainer<f64>>(spec, data, &members));
        }
        (false, LossName::Hinge) => {
            return Ok(run_layers::<NetTrainer<f64, Hinge>>(spec, data, &members));
        }
    }
    let mut rows = Vec::new();
    for &n in &spec.batch_sizes {
        let cfg = TrainConfig::epochs(n, 0, spec.seed, false, spec.init_std);
        let mut trainer = LinearTrainer::<f64>::new(data, &cfg, &members);
        let params = linear_params(&trainer.arrays()[0]);
        let segments =
            std::iter::once(Segment::First).chain((1..=spec.segments).map(Segment::Random));
        for segment in segments {
            let idx: Vec<usize> = match segment {
                Segment::First => (0..n).collect(),
                Segment::Random(i) => {
                    let mut g = rng::generator(spec.seed, Stream::CheckSegment(i));
                    rng::sample_indices(&mut g, len, n)
                }
            };
            let examples: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
            let analytic = trainer.gradients(&examples);
            let x = Array2::from_shape_fn((n, dims), |(r, c)| f64::from(train.x[[idx[r], c]]));
            let y: Vec<u8> = idx.iter().map(|&i| train.y[i]).collect();
            let xt = x.t().as_standard_layout().into_owned();
            let scores = Scores::new(&params, &x, &y);
            for (&lambda, analytic) in spec.lambdas.iter().zip(&analytic) {
                let analytic = linear_params(analytic);
                for &method in &spec.methods {
                    let (num, w_sec, b_sec) =
                        numerical_gradients(&params, &xt, lambda, method, spec.step, &scores);
                    for (param, a, g, seconds) in [
                        ("W", analytic.w.as_slice(), num.w.as_slice(), w_sec),
                        ("b", analytic.b.as_slice(), num.b.as_slice(), b_sec),
                    ] {
                        let (norm_diff, max_abs_diff, max_rel_err) =
                            compare(a.expect("contiguous"), g.expect("contiguous"), spec.eps);
                        rows.push(CheckRow {
                            batch_size: n,
                            segment,
                            lambda,
                            method,
                            param: param.to_string(),
                            norm_diff,
                            max_abs_diff,
                            max_rel_err,
                            seconds,
                            kinks: None,
                            zero_by_construction: false,
                        });
                    }
                }
            }
        }
    }
    Ok(rows)
}

/// The examples of `segment` for batch size `n`: the first n, or n drawn from the
/// check's seed.
fn segment_examples(spec: &CheckSpec, segment: Segment, len: usize, n: usize) -> Vec<usize> {
    match segment {
        Segment::First => (0..n).collect(),
        Segment::Random(i) => {
            let mut g = rng::generator(spec.seed, Stream::CheckSegment(i));
            rng::sample_indices(&mut g, len, n)
        }
    }
}

/// The segments of each batch size: the first n examples, then `spec.segments` random.
fn segments(spec: &CheckSpec) -> impl Iterator<Item = Segment> {
    std::iter::once(Segment::First).chain((1..=spec.segments).map(Segment::Random))
}

/// A segment's examples: their indices (for the trainer), and in f64 their inputs
/// (n x d) and labels (for the numerical side).
fn segment_batch(
    spec: &CheckSpec,
    segment: Segment,
    train: &crate::data::Split,
    n: usize,
) -> (Vec<u32>, Array2<f64>, Vec<u8>) {
    let idx = segment_examples(spec, segment, train.len(), n);
    let x = Array2::from_shape_fn((n, train.dim()), |(r, c)| f64::from(train.x[[idx[r], c]]));
    let y = idx.iter().map(|&i| train.y[i]).collect();
    (idx.iter().map(|&i| i as u32).collect(), x, y)
}

/// The training configuration a network check builds its trainer with, at batch n.
fn network_config(spec: &CheckSpec, n: usize) -> TrainConfig {
    let mut cfg = TrainConfig::epochs(n, 0, spec.seed, false, spec.init_std);
    cfg.hidden = spec.hidden.clone();
    cfg.init = spec.init;
    cfg.loss = spec.loss;
    cfg
}

fn net_loss(loss: LossName) -> NetLoss {
    match loss {
        LossName::CrossEntropy => NetLoss::CrossEntropy,
        LossName::Hinge => NetLoss::Hinge,
    }
}

/// The check of any model by [`netcheck`]: the trainer `M` (built with the check's
/// hidden widths, init and loss) gives the weights and the analytic gradients; every
/// array of every layer is compared, at the full input dimension.
fn run_layers<'d, M: Trainer<'d, Real = f64>>(
    spec: &CheckSpec,
    data: &'d Dataset,
    members: &[Hyper],
) -> Vec<CheckRow> {
    let train = &data.train;
    let loss = net_loss(spec.loss);
    let mut rows = Vec::new();
    for &n in &spec.batch_sizes {
        let mut trainer = M::new(data, &network_config(spec, n), members);
        let arrays = trainer.arrays().swap_remove(0);
        let layers = netcheck_layers(&arrays);
        for segment in segments(spec) {
            let (examples, x, y) = segment_batch(spec, segment, train, n);
            let analytic = trainer.gradients(&examples);
            let kinks = (spec.loss == LossName::Hinge)
                .then(|| netcheck::kinks(&layers, x.view(), &y, KINK_STEPS * spec.step));
            for (&lambda, analytic) in spec.lambdas.iter().zip(&analytic) {
                for &method in &spec.methods {
                    let numerical = netcheck::numerical_gradients(
                        &layers,
                        x.view(),
                        &y,
                        lambda,
                        loss,
                        method,
                        spec.step,
                    );
                    // The arrays come as W1, b1, W2, b2, ... (W, b for one layer).
                    let pairs = numerical.iter().flat_map(|g| {
                        [
                            (g.grad.w.as_slice().expect("contiguous"), g.w_seconds),
                            (g.grad.b.as_slice().expect("contiguous"), g.b_seconds),
                        ]
                    });
                    for (a, (num, seconds)) in analytic.iter().zip(pairs) {
                        let a_flat: Vec<f64> = a.array.iter().copied().collect();
                        let (norm_diff, max_abs_diff, max_rel_err) =
                            compare(&a_flat, num, spec.eps);
                        rows.push(CheckRow {
                            batch_size: n,
                            segment,
                            lambda,
                            method,
                            param: a.name.clone(),
                            norm_diff,
                            max_abs_diff,
                            max_rel_err,
                            seconds,
                            kinks,
                            zero_by_construction: false,
                        });
                    }
                }
            }
        }
    }
    rows
}

/// The check of a batch-normalised network by [`bncheck`]: as [`run_layers`], with
/// gamma and beta checked too, and each bias before batch norm reported as zero by
/// construction. Both methods share the `+h` costs.
fn run_norm<'d, M: Trainer<'d, Real = f64>>(
    spec: &CheckSpec,
    data: &'d Dataset,
    members: &[Hyper],
    eps: f64,
) -> Vec<CheckRow> {
    let train = &data.train;
    let loss = net_loss(spec.loss);
    let centred = spec.methods.contains(&Method::Centred);
    let mut rows = Vec::new();
    for &n in &spec.batch_sizes {
        let mut cfg = network_config(spec, n);
        cfg.norm = Some(Norm { momentum: 0.9, eps });
        let mut trainer = M::new(data, &cfg, members);
        let arrays = trainer.arrays().swap_remove(0);
        let get = |name: &str| {
            arrays
                .iter()
                .find(|a| a.name == name)
                .unwrap_or_else(|| panic!("a normalised network has {name}"))
                .array
                .clone()
                .into_dimensionality::<ndarray::Ix1>()
                .expect("a vector")
        };
        let weights: Vec<NamedArray<f64>> = arrays
            .iter()
            .filter(|a| {
                a.name.starts_with('W') || a.name.starts_with('b') && !a.name.starts_with("beta")
            })
            .cloned()
            .collect();
        let layers = netcheck_layers(&weights);
        let hidden = layers.len() - 1;
        let net = NormNet {
            layers: &layers,
            gamma: (1..=hidden).map(|l| get(&format!("gamma{l}"))).collect(),
            beta: (1..=hidden).map(|l| get(&format!("beta{l}"))).collect(),
            eps,
        };
        for segment in segments(spec) {
            let (examples, x, y) = segment_batch(spec, segment, train, n);
            let analytic = trainer.gradients(&examples);
            let kinks = (spec.loss == LossName::Hinge)
                .then(|| bncheck::kinks(&net, x.view(), &y, KINK_STEPS * spec.step));
            for (&lambda, analytic) in spec.lambdas.iter().zip(&analytic) {
                let numerical =
                    bncheck::cost_changes(&net, x.view(), &y, lambda, loss, spec.step, centred);
                for &method in &spec.methods {
                    for (a, num) in analytic.iter().zip(&numerical) {
                        assert_eq!(a.name, num.name, "the arrays in training order");
                        let a_flat: Vec<f64> = a.array.iter().copied().collect();
                        let g = num.by(method, spec.step);
                        let zero = a.name.starts_with('b')
                            && !a.name.starts_with("beta")
                            && a.name[1..].parse::<usize>().is_ok_and(|l| l <= hidden);
                        let (norm_diff, max_abs_diff, max_rel_err) = compare(&a_flat, &g, spec.eps);
                        if zero {
                            assert!(a_flat.iter().all(|&v| v == 0.0), "{} is zero", a.name);
                        }
                        rows.push(CheckRow {
                            batch_size: n,
                            segment,
                            lambda,
                            method,
                            param: a.name.clone(),
                            norm_diff,
                            max_abs_diff,
                            max_rel_err: if zero { f64::NAN } else { max_rel_err },
                            seconds: num.seconds(method),
                            kinks,
                            zero_by_construction: zero,
                        });
                    }
                }
            }
        }
    }
    rows
}

/// A model's named arrays (`W`, `b` or `W1`, `b1`, `W2`, ...) as [`netcheck`]'s layers.
fn netcheck_layers(arrays: &[NamedArray<f64>]) -> Vec<netcheck::Layer> {
    arrays
        .chunks(2)
        .map(|pair| {
            let [w, b] = pair else {
                panic!("a model's arrays come in (W, b) pairs")
            };
            netcheck::Layer {
                w: w.array
                    .clone()
                    .into_dimensionality()
                    .expect("a weight array is a matrix"),
                b: b.array
                    .clone()
                    .into_dimensionality()
                    .expect("a bias array is a vector"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::NUM_CLASSES;
    use crate::train::tests::toy_dataset;
    use ndarray::s;

    /// Naive centred differences: recompute the whole cost for each perturbation.
    fn naive_cost(p: &Params<f64>, x: &Array2<f64>, y: &[u8], lambda: f64) -> f64 {
        let mut loss = 0.0;
        for (j, row) in x.rows().into_iter().enumerate() {
            let s: Vec<f64> = (0..p.w.nrows())
                .map(|i| p.w.row(i).dot(&row) + p.b[i])
                .collect();
            let (lse, _) = crate::train::loss::log_sum_exp(s.iter().copied());
            loss += lse - s[usize::from(y[j])];
        }
        loss / x.nrows() as f64 + lambda * p.w.iter().map(|v| v * v).sum::<f64>()
    }

    fn small_problem(seed: u64) -> (Params<f64>, Array2<f64>, Vec<u8>) {
        let data = toy_dataset(40, 12, seed);
        let x = data.train.x.slice(s![..8, ..]).mapv(f64::from);
        let y = data.train.y[..8].to_vec();
        let mut p = Params::<f64>::init(NUM_CLASSES, 12, 0.5, seed);
        p.b.mapv_inplace(|v| v * 3.0);
        (p, x, y)
    }

    #[test]
    fn training_gradients_match_naive_centred_differences() {
        for (seed, lambda) in [(1, 0.0), (2, 0.1), (3, 1.0)] {
            let data = toy_dataset(40, 12, seed);
            let cfg = TrainConfig::epochs(40, 1, seed, false, 0.5);
            let mut trainer =
                LinearTrainer::<f64>::new(&data, &cfg, &[Hyper::constant(lambda, 0.1)]);
            trainer.b.mapv_inplace(|v| v * 3.0);
            let p = linear_params(&trainer.arrays()[0]);
            let examples: Vec<u32> = (0..8).collect();
            let a = linear_params(&trainer.gradients(&examples)[0]);
            let x = data.train.x.slice(s![..8, ..]).mapv(f64::from);
            let y = data.train.y[..8].to_vec();
            let h = 1e-5;
            let mut worst: f64 = 0.0;
            for i in 0..p.w.nrows() {
                for j in 0..p.w.ncols() {
                    let (mut plus, mut minus) = (p.clone(), p.clone());
                    plus.w[[i, j]] += h;
                    minus.w[[i, j]] -= h;
                    let g = (naive_cost(&plus, &x, &y, lambda)
                        - naive_cost(&minus, &x, &y, lambda))
                        / (2.0 * h);
                    worst = worst
                        .max((a.w[[i, j]] - g).abs() / 1e-6f64.max(a.w[[i, j]].abs() + g.abs()));
                }
                let (mut plus, mut minus) = (p.clone(), p.clone());
                plus.b[i] += h;
                minus.b[i] -= h;
                let g = (naive_cost(&plus, &x, &y, lambda) - naive_cost(&minus, &x, &y, lambda))
                    / (2.0 * h);
                worst = worst.max((a.b[i] - g).abs() / 1e-6f64.max(a.b[i].abs() + g.abs()));
            }
            assert!(worst < 1e-6, "lambda {lambda}: max relative error {worst}");
        }
    }

    #[test]
    fn an_update_moves_the_weights_by_exactly_eta_times_the_checked_gradient() {
        // The check's gradients are the update's: one epoch of one full batch (130
        // examples: two halves, several pieces) is W - eta * gradient, bit for bit.
        let data = toy_dataset(130, 24, 3);
        let cfg = TrainConfig::epochs(130, 1, 4, false, 0.1);
        let members = [Hyper::constant(0.05, 0.2), Hyper::constant(0.0, 0.03)];
        let mut trainer = LinearTrainer::<f64>::new(&data, &cfg, &members);
        let before = trainer.arrays();
        let all: Vec<u32> = (0..130).collect();
        let grads = trainer.gradients(&all);
        trainer.train_span();
        for ((h, (p, g)), now) in members
            .iter()
            .zip(before.iter().zip(&grads))
            .zip(trainer.arrays())
        {
            for ((p, g), now) in p.iter().zip(g).zip(&now) {
                assert_eq!((&p.name, &g.name), (&now.name, &now.name));
                let crate::plan::Rate::Constant { eta } = h.rate else {
                    unreachable!("constant rates")
                };
                let want = &p.array - &(&g.array * eta);
                assert_eq!(want, now.array, "{} of eta {eta}", now.name);
            }
        }
    }

    #[test]
    fn fast_differences_equal_naive_differences() {
        let (p, x, y) = small_problem(4);
        let xt = x.t().as_standard_layout().into_owned();
        let scores = Scores::new(&p, &x, &y);
        let h = 1e-5;
        let (fast, _, _) = numerical_gradients(&p, &xt, 0.3, Method::Centred, h, &scores);
        for i in 0..p.w.nrows() {
            for j in 0..p.w.ncols() {
                let (mut plus, mut minus) = (p.clone(), p.clone());
                plus.w[[i, j]] += h;
                minus.w[[i, j]] -= h;
                let naive =
                    (naive_cost(&plus, &x, &y, 0.3) - naive_cost(&minus, &x, &y, 0.3)) / (2.0 * h);
                assert!(
                    (fast.w[[i, j]] - naive).abs() < 1e-8,
                    "W[{i}][{j}]: {} vs {naive}",
                    fast.w[[i, j]]
                );
            }
        }
    }

    #[test]
    fn check_table_is_small_for_correct_gradients_and_ordered() {
        let data = toy_dataset(60, 16, 5);
        let spec = CheckSpec {
            batch_sizes: vec![1, 10],
            segments: 2,
            lambdas: vec![0.0, 0.5],
            methods: vec![Method::Forward, Method::Centred],
            step: 1e-6,
            seed: 0,
            eps: 1e-6,
            dims: None,
            init_std: 0.01,
            hidden: Vec::new(),
            init: crate::spec::Init::Normal,
            loss: LossName::CrossEntropy,
            bn_eps: None,
        };
        let rows = run(&spec, &data).unwrap();
        assert_eq!(rows.len(), 2 * 3 * 2 * 2 * 2);
        assert_eq!(
            (rows[0].batch_size, rows[0].segment, rows[0].param.as_str()),
            (1, Segment::First, "W")
        );
        assert_eq!(rows[8].segment, Segment::Random(1));
        for r in &rows {
            // Forward differences carry an O(h) truncation error (lambda * h alone from the
            // penalty), which makes relative errors of near-zero entries large; centred
            // differences are O(h^2) plus rounding of about 1e-16 * J / h.
            match r.method {
                Method::Forward => assert!(r.max_abs_diff < 1e-5 && r.norm_diff < 1e-4, "{r:?}"),
                Method::Centred => assert!(r.max_rel_err < 1e-5 && r.norm_diff < 1e-8, "{r:?}"),
            }
        }
        let too_big = CheckSpec {
            batch_sizes: vec![61],
            ..spec
        };
        assert!(matches!(
            run(&too_big, &data),
            Err(CheckError::TooFewExamples { .. })
        ));
    }

    #[test]
    fn batch_normalised_networks_check_gamma_beta_and_report_zero_biases() {
        let data = toy_dataset(60, 16, 5);
        for loss in [LossName::CrossEntropy, LossName::Hinge] {
            let spec = CheckSpec {
                batch_sizes: vec![10, 30],
                segments: 1,
                lambdas: vec![0.0, 0.5],
                methods: vec![Method::Forward, Method::Centred],
                step: 1e-5,
                seed: 0,
                eps: 1e-6,
                dims: None,
                init_std: 0.01,
                hidden: vec![7, 5],
                init: crate::spec::Init::He,
                loss,
                bn_eps: Some(1e-5),
            };
            let rows = run(&spec, &data).unwrap();
            let names: Vec<&str> = rows[..10].iter().map(|r| r.param.as_str()).collect();
            assert_eq!(
                names,
                [
                    "W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"
                ]
            );
            assert_eq!(rows.len(), 2 * 2 * 2 * 2 * 10);
            for r in &rows {
                let zero = r.param == "b1" || r.param == "b2";
                assert_eq!(r.zero_by_construction, zero, "{r:?}");
                if zero {
                    assert!(r.max_rel_err.is_nan() && r.max_abs_diff < 1e-9, "{r:?}");
                } else if r.method == Method::Centred && r.kinks.is_none_or(|k| k == 0) {
                    // Relative errors of near-zero entries reach the cost's rounding
                    // noise (about 1e-11 absolute at this step); either bound is tight.
                    assert!(r.max_rel_err < 1e-5 || r.max_abs_diff < 1e-10, "{r:?}");
                }
                assert_eq!(r.kinks.is_some(), loss == LossName::Hinge);
            }
        }
    }

    #[test]
    fn networks_are_checked_array_by_array_with_hinge_kinks_counted() {
        let data = toy_dataset(60, 16, 5);
        for (hidden, loss) in [
            (vec![7], LossName::CrossEntropy),
            (vec![7, 5], LossName::Hinge),
            (vec![], LossName::Hinge),
        ] {
            let spec = CheckSpec {
                batch_sizes: vec![1, 10],
                segments: 1,
                lambdas: vec![0.0, 0.5],
                methods: vec![Method::Forward, Method::Centred],
                step: 1e-6,
                seed: 0,
                eps: 1e-6,
                dims: None,
                init_std: 0.01,
                hidden: hidden.clone(),
                init: crate::spec::Init::He,
                loss,
                bn_eps: None,
            };
            let rows = run(&spec, &data).unwrap();
            let arrays = 2 * (hidden.len() + 1);
            assert_eq!(rows.len(), 2 * 2 * 2 * 2 * arrays, "{hidden:?}");
            let names: Vec<&str> = rows[..arrays].iter().map(|r| r.param.as_str()).collect();
            let want: Vec<String> = if hidden.is_empty() {
                vec!["W".into(), "b".into()]
            } else {
                (1..=hidden.len() + 1)
                    .flat_map(|l| [format!("W{l}"), format!("b{l}")])
                    .collect()
            };
            assert_eq!(names, want);
            for r in &rows {
                assert_eq!(r.kinks.is_some(), loss == LossName::Hinge, "{r:?}");
                if r.method == Method::Centred && r.kinks.is_none_or(|k| k == 0) {
                    assert!(r.max_rel_err < 1e-6, "{hidden:?} {r:?}");
                }
            }
        }
    }
}
