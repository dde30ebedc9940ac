//! Numerical gradients of a batch-normalised k-layer ReLU network (the third lab), every
//! weight, bias, gamma and beta at full dimension, in training mode (each hidden unit
//! normalised with the batch's mean and biased variance, as [`super::norm`] does).
//!
//! The network: `z_l = W_l a_{l-1} + b_l` with `a_0 = x`; below the top, `a_l =
//! ReLU(gamma_l * (z_l - mu_l) / sqrt(var_l + eps) + beta_l)` per unit over the batch;
//! scores `s = z_L`. The cost is the mean loss plus `lambda * sum_l ||W_l||_F^2`. Each
//! derivative is a finite difference of that cost, forward or centred, but no perturbed
//! cost runs a whole forward pass:
//!
//! - Perturbing `W_l[u][i]`, `b_l[u]`, `gamma_l[u]` or `beta_l[u]` changes one unit of
//!   layer l: its row of `z_l` moves by `δ a_{l-1}[i]` per example (`δ` for the bias),
//!   so only that unit is normalised again, O(n).
//! - Its change reaches every unit of the next layer through one column of `W_{l+1}`,
//!   O(n h_{l+1}); from there up the layers are run as usual, which for the lab's
//!   networks is a small part of a full pass (the first layer's 3072 inputs are never
//!   read again).
//! - The cost change is the sum of the examples' loss changes, each recomputed by the
//!   same code as the unperturbed loss, so a zero step changes nothing, exactly.
//!
//! Each derivative sums its examples in order and is computed alone, so no result
//! depends on the number of threads. The bias of a normalised layer cancels in `z - mu`:
//! its numerical derivative is rounding noise around 0, reported as such by the caller.

use std::time::Instant;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use super::netcheck::{Layer, NetLoss};
use crate::spec::Method;

/// A batch-normalised network: `layers` (L of them), and gamma and beta of each of the
/// L - 1 hidden layers.
pub(crate) struct NormNet<'a> {
    pub layers: &'a [Layer],
    pub gamma: Vec<Array1<f64>>,
    pub beta: Vec<Array1<f64>>,
    pub eps: f64,
}

/// One array's numerical gradient (flattened row-major), and the wall time of its
/// `+h` pass and of its `-h` pass (0 when only forward differences were asked for).
#[derive(Debug, Clone)]
pub(crate) struct ArrayGradient {
    pub name: String,
    pub plus: Vec<f64>,
    pub minus: Option<Vec<f64>>,
    pub seconds: [f64; 2],
}

impl ArrayGradient {
    /// The derivative by `method` with step `h`, from the cost changes kept.
    pub fn by(&self, method: Method, h: f64) -> Vec<f64> {
        match (method, &self.minus) {
            (Method::Forward, _) => self.plus.iter().map(|d| d / h).collect(),
            (Method::Centred, Some(minus)) => self
                .plus
                .iter()
                .zip(minus)
                .map(|(p, m)| (p - m) / (2.0 * h))
                .collect(),
            (Method::Centred, None) => unreachable!("the -h pass runs when centred is asked"),
        }
    }

    /// The wall time `method` took.
    pub fn seconds(&self, method: Method) -> f64 {
        match method {
            Method::Forward => self.seconds[0],
            Method::Centred => self.seconds[0] + self.seconds[1],
        }
    }
}

/// The cost changes for every array of `net`, in training order (`W1`, `b1`, `gamma1`,
/// `beta1`, `W2`, ..., `W_L`, `b_L`), on examples `x` (n x d) labelled `y`, for a step
/// `h`; and for `-h` too when `centred`.
pub(crate) fn cost_changes(
    net: &NormNet,
    x: ArrayView2<f64>,
    y: &[u8],
    lambda: f64,
    loss: NetLoss,
    h: f64,
    centred: bool,
) -> Vec<ArrayGradient> {
    assert!(
        h > 0.0 && h.is_finite(),
        "the step must be a positive number"
    );
    let base = Base::new(net, x, y, loss);
    let depth = net.layers.len();
    let mut out = Vec::new();
    for l in 0..depth {
        let hidden = l + 1 < depth;
        let params: &[Param] = if hidden {
            &[Param::W, Param::B, Param::Gamma, Param::Beta]
        } else {
            &[Param::W, Param::B]
        };
        for &param in params {
            let mut changes = [Vec::new(), Vec::new()];
            let mut seconds = [0.0; 2];
            for (side, step) in [h, -h].into_iter().enumerate() {
                if side == 1 && !centred {
                    continue;
                }
                let start = Instant::now();
                changes[side] = base.changes(l, param, step, lambda);
                seconds[side] = start.elapsed().as_secs_f64();
            }
            let [plus, minus] = changes;
            out.push(ArrayGradient {
                name: format!("{}{}", param.prefix(), l + 1),
                plus,
                minus: centred.then_some(minus),
                seconds,
            });
        }
    }
    out
}

/// The examples of the segment with a hinge margin within `tolerance` of its kink.
pub(crate) fn kinks(net: &NormNet, x: ArrayView2<f64>, y: &[u8], tolerance: f64) -> usize {
    let base = Base::new(net, x, y, NetLoss::Hinge);
    (0..base.n)
        .filter(|&j| {
            let label = usize::from(y[j]);
            let sy = base.scores[[label, j]];
            (0..base.scores.nrows())
                .any(|k| k != label && (base.scores[[k, j]] - sy + 1.0).abs() <= tolerance)
        })
        .count()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    W,
    B,
    Gamma,
    Beta,
}

impl Param {
    fn prefix(self) -> &'static str {
        match self {
            Param::W => "W",
            Param::B => "b",
            Param::Gamma => "gamma",
            Param::Beta => "beta",
        }
    }
}

/// The unperturbed network on the examples.
struct Base<'a> {
    net: &'a NormNet<'a>,
    y: &'a [u8],
    loss: NetLoss,
    n: usize,
    /// `a_0 = x^T` (d x n), then each hidden layer's output (h_l x n).
    acts: Vec<Array2<f64>>,
    /// Each hidden layer's pre-normalisation `z_l` (h_l x n).
    pre: Vec<Array2<f64>>,
    scores: Array2<f64>,
    losses: Vec<f64>,
}

/// Buffers of one worker.
struct Scratch {
    row: Vec<f64>,
    act_row: Vec<f64>,
    /// Pre-normalisation and outputs of the layers above the perturbed one.
    pre: Vec<Array2<f64>>,
    acts: Vec<Array2<f64>>,
    scores: Array2<f64>,
}

impl<'a> Base<'a> {
    fn new(net: &'a NormNet<'a>, x: ArrayView2<f64>, y: &'a [u8], loss: NetLoss) -> Self {
        let n = x.nrows();
        assert!(n >= 2, "batch norm needs at least 2 examples");
        let depth = net.layers.len();
        let mut acts = vec![x.t().as_standard_layout().into_owned()];
        let mut pre = Vec::new();
        for l in 0..depth - 1 {
            let mut z = Array2::zeros((net.layers[l].w.nrows(), n));
            linear(&net.layers[l], acts[l].view(), z.view_mut());
            let mut a = Array2::zeros(z.dim());
            for u in 0..z.nrows() {
                normalise_row(
                    z.row(u).as_slice().expect("standard layout"),
                    net.gamma[l][u],
                    net.beta[l][u],
                    net.eps,
                    a.row_mut(u).into_slice().expect("standard layout"),
                );
            }
            pre.push(z);
            acts.push(a);
        }
        let mut scores = Array2::zeros((net.layers[depth - 1].w.nrows(), n));
        linear(
            &net.layers[depth - 1],
            acts[depth - 1].view(),
            scores.view_mut(),
        );
        let losses = (0..n)
            .map(|j| example_loss(loss, scores.column(j), usize::from(y[j])))
            .collect();
        Base {
            net,
            y,
            loss,
            n,
            acts,
            pre,
            scores,
            losses,
        }
    }

    fn scratch(&self) -> Scratch {
        Scratch {
            row: vec![0.0; self.n],
            act_row: vec![0.0; self.n],
            pre: self.pre.iter().map(|z| Array2::zeros(z.dim())).collect(),
            acts: self.acts.iter().map(|a| Array2::zeros(a.dim())).collect(),
            scores: Array2::zeros(self.scores.dim()),
        }
    }

    /// The cost change of every element of `param` of layer `l` moved by `step`.
    fn changes(&self, l: usize, param: Param, step: f64, lambda: f64) -> Vec<f64> {
        let layer = &self.net.layers[l];
        let units = layer.w.nrows();
        let per_unit = if param == Param::W {
            layer.w.ncols()
        } else {
            1
        };
        let rows: Vec<Vec<f64>> = (0..units)
            .into_par_iter()
            .with_max_len(1)
            .map_init(
                || self.scratch(),
                |sc, u| {
                    (0..per_unit)
                        .map(|i| {
                            let reg = match param {
                                Param::W => lambda * step * (2.0 * layer.w[[u, i]] + step),
                                _ => 0.0,
                            };
                            self.unit_change(l, u, param, i, step, sc) / self.n as f64 + reg
                        })
                        .collect()
                },
            )
            .collect();
        rows.concat()
    }

    /// The summed loss change when element `i` of `param` of unit `u` of layer `l` moves
    /// by `step`.
    fn unit_change(
        &self,
        l: usize,
        u: usize,
        param: Param,
        i: usize,
        step: f64,
        sc: &mut Scratch,
    ) -> f64 {
        let depth = self.net.layers.len();
        if l + 1 == depth {
            // A score row moves: by step * a_{L-1}[i] (W) or step (b).
            sc.scores.assign(&self.scores);
            let mut row = sc.scores.row_mut(u);
            match param {
                Param::W => {
                    let a = self.acts[l].row(i);
                    row.iter_mut().zip(a).for_each(|(s, &a)| *s += step * a);
                }
                _ => row.iter_mut().for_each(|s| *s += step),
            }
            return self.loss_change(&sc.scores);
        }
        let z = self.pre[l].row(u);
        let (mut gamma, mut beta) = (self.net.gamma[l][u], self.net.beta[l][u]);
        match param {
            Param::W => {
                let a = self.acts[l].row(i);
                for ((r, &z), &a) in sc.row.iter_mut().zip(z).zip(a) {
                    *r = z + step * a;
                }
            }
            Param::B => {
                for (r, &z) in sc.row.iter_mut().zip(z) {
                    *r = z + step;
                }
            }
            Param::Gamma | Param::Beta => {
                sc.row
                    .copy_from_slice(z.as_slice().expect("standard layout"));
                if param == Param::Gamma {
                    gamma += step;
                } else {
                    beta += step;
                }
            }
        }
        normalise_row(&sc.row, gamma, beta, self.net.eps, &mut sc.act_row);
        // The unit's output change, through column u of the next layer.
        let next = &self.net.layers[l + 1];
        let old = self.acts[l + 1].row(u);
        let delta: Vec<f64> = sc.act_row.iter().zip(old).map(|(a, o)| a - o).collect();
        if l + 2 == depth {
            sc.scores.assign(&self.scores);
            add_column(next.w.column(u), &delta, sc.scores.view_mut());
            return self.loss_change(&sc.scores);
        }
        let above = l + 1;
        sc.pre[above].assign(&self.pre[above]);
        add_column(next.w.column(u), &delta, sc.pre[above].view_mut());
        self.run_above(above, sc)
    }

    /// The summed loss change with hidden layer `k`'s pre-normalisation in `sc.pre[k]`,
    /// running the layers above it.
    fn run_above(&self, k: usize, sc: &mut Scratch) -> f64 {
        let depth = self.net.layers.len();
        let mut k = k;
        loop {
            let (pre, acts) = (&sc.pre[k], &mut sc.acts[k + 1]);
            for u in 0..pre.nrows() {
                normalise_row(
                    pre.row(u).as_slice().expect("standard layout"),
                    self.net.gamma[k][u],
                    self.net.beta[k][u],
                    self.net.eps,
                    acts.row_mut(u).into_slice().expect("standard layout"),
                );
            }
            let next = &self.net.layers[k + 1];
            if k + 2 == depth {
                linear(next, sc.acts[k + 1].view(), sc.scores.view_mut());
                return self.loss_change(&sc.scores);
            }
            linear(next, sc.acts[k + 1].view(), sc.pre[k + 1].view_mut());
            k += 1;
        }
    }

    fn loss_change(&self, scores: &Array2<f64>) -> f64 {
        (0..self.n)
            .map(|j| {
                example_loss(self.loss, scores.column(j), usize::from(self.y[j])) - self.losses[j]
            })
            .sum()
    }
}

/// `out = W a + b` (W out x in, `a` in x n), each element summed over the inputs in
/// ascending order.
fn linear(layer: &Layer, a: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
    for ((mut orow, wrow), &b) in out.rows_mut().into_iter().zip(layer.w.rows()).zip(&layer.b) {
        orow.fill(0.0);
        for (&w, arow) in wrow.iter().zip(a.rows()) {
            orow.iter_mut().zip(arow).for_each(|(o, &x)| *o += w * x);
        }
        orow.iter_mut().for_each(|o| *o += b);
    }
}

/// `out[v] += w[v] * delta` for every unit v of the next layer.
fn add_column(w: ArrayView1<f64>, delta: &[f64], mut out: ArrayViewMut2<f64>) {
    for (&wv, mut row) in w.iter().zip(out.rows_mut()) {
        row.iter_mut().zip(delta).for_each(|(o, &d)| *o += wv * d);
    }
}

/// `ReLU(gamma * (z - mean) / sqrt(var + eps) + beta)` of one unit's row over the batch.
fn normalise_row(z: &[f64], gamma: f64, beta: f64, eps: f64, out: &mut [f64]) {
    let n = z.len() as f64;
    let mean = z.iter().sum::<f64>() / n;
    let var = z.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for (o, &v) in out.iter_mut().zip(z) {
        *o = (gamma * ((v - mean) * inv) + beta).max(0.0);
    }
}

/// One example's loss on its scores.
fn example_loss(loss: NetLoss, s: ArrayView1<f64>, y: usize) -> f64 {
    match loss {
        NetLoss::CrossEntropy => {
            let top = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = s.iter().map(|v| (v - top).exp()).sum();
            top + sum.ln() - s[y]
        }
        NetLoss::Hinge => s
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != y)
            .map(|(_, v)| (v - s[y] + 1.0).max(0.0))
            .sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cost by a plain forward pass, for the brute-force comparison.
    fn cost(net: &NormNet, x: ArrayView2<f64>, y: &[u8], lambda: f64, loss: NetLoss) -> f64 {
        let base = Base::new(net, x, y, loss);
        let reg: f64 = net
            .layers
            .iter()
            .map(|l| l.w.iter().map(|w| w * w).sum::<f64>())
            .sum();
        base.losses.iter().sum::<f64>() / base.n as f64 + lambda * reg
    }

    /// Layers, gamma and beta per hidden layer, examples and labels.
    type Toy = (
        Vec<Layer>,
        Vec<Array1<f64>>,
        Vec<Array1<f64>>,
        Array2<f64>,
        Vec<u8>,
    );

    fn toy() -> Toy {
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let dims = [6, 5, 4, 3];
        let layers: Vec<Layer> = dims
            .windows(2)
            .map(|io| Layer {
                w: Array2::from_shape_fn((io[1], io[0]), |_| next()),
                b: Array1::from_shape_fn(io[1], |_| 0.1 * next()),
            })
            .collect();
        let gamma = (1..3)
            .map(|l| Array1::from_shape_fn(dims[l], |_| 1.0 + next()))
            .collect();
        let beta = (1..3)
            .map(|l| Array1::from_shape_fn(dims[l], |_| next()))
            .collect();
        let x = Array2::from_shape_fn((9, 6), |_| 2.0 * next());
        let y = (0..9).map(|j| (j % 3) as u8).collect();
        (layers, gamma, beta, x, y)
    }

    #[test]
    fn bncheck_matches_a_forward_pass_per_perturbed_cost() {
        let (layers, gamma, beta, x, y) = toy();
        for loss in [NetLoss::CrossEntropy, NetLoss::Hinge] {
            let net = NormNet {
                layers: &layers,
                gamma: gamma.clone(),
                beta: beta.clone(),
                eps: 1e-5,
            };
            let (h, lambda) = (1e-5, 0.1);
            let base = cost(&net, x.view(), &y, lambda, loss);
            let got = cost_changes(&net, x.view(), &y, lambda, loss, h, false);
            let names: Vec<&str> = got.iter().map(|g| g.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"
                ]
            );
            let mut it = got.iter();
            for l in 0..3 {
                let perturbed = |f: &dyn Fn(&mut Vec<Layer>, &mut NormNet)| {
                    let mut ls = layers.clone();
                    let mut n2 = NormNet {
                        layers: &[],
                        gamma: gamma.clone(),
                        beta: beta.clone(),
                        eps: 1e-5,
                    };
                    f(&mut ls, &mut n2);
                    let n3 = NormNet {
                        layers: &ls,
                        gamma: n2.gamma,
                        beta: n2.beta,
                        eps: 1e-5,
                    };
                    cost(&n3, x.view(), &y, lambda, loss) - base
                };
                let w = it.next().unwrap();
                for (k, d) in w.plus.iter().enumerate() {
                    let cols = layers[l].w.ncols();
                    let want = perturbed(&|ls, _| ls[l].w[[k / cols, k % cols]] += h);
                    assert!((d - want).abs() < 1e-12, "W{} {k}: {d} vs {want}", l + 1);
                }
                let b = it.next().unwrap();
                for (u, d) in b.plus.iter().enumerate() {
                    let want = perturbed(&|ls, _| ls[l].b[u] += h);
                    assert!((d - want).abs() < 1e-12, "b{} {u}", l + 1);
                    if l < 2 {
                        assert!(d.abs() < 1e-12, "a bias before batch norm changes nothing");
                    }
                }
                if l < 2 {
                    for p in 0..2 {
                        let g = it.next().unwrap();
                        for (u, d) in g.plus.iter().enumerate() {
                            let want = perturbed(&|_, n| {
                                if p == 0 {
                                    n.gamma[l][u] += h
                                } else {
                                    n.beta[l][u] += h
                                }
                            });
                            assert!((d - want).abs() < 1e-12, "{} {u}", g.name);
                        }
                    }
                }
            }
        }
    }
}
