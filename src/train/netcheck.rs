//! Numerical gradients of a k-layer ReLU network, every weight and bias at full dimension.
//!
//! The network has layers `l = 1..L`, each `W_l` (out x in) and `b_l`: `z_l = W_l h_{l-1} +
//! b_l` with `h_0 = x`, `h_l = max(0, z_l)` below the top, and scores `s = z_L`. The cost is
//! the mean loss over the n examples plus `lambda * sum_l ||W_l||_F^2` (biases are not
//! penalised), with the loss of [`NetLoss`]. Each derivative is the finite difference of
//! that cost, forward `(J(θ + h e) - J(θ)) / h` or centred `(J(θ + h e) - J(θ - h e)) / 2h`,
//! but no perturbed cost runs a forward pass:
//!
//! - Perturbing `W_l[u][i]` by `δ` changes only unit u of layer l, by `δ h_{l-1}[i]` per
//!   example (`δ` for `b_l[u]`); examples where the unit stays at zero are skipped.
//! - Above that unit the network is piecewise linear in its activation change `t`: while no
//!   unit above crosses its kink, `s_k - s_y` changes by `t d_k`, with `d` and the radius
//!   `reach` in which this holds found once per unit and example from the unperturbed forward
//!   pass. A larger change is propagated layer by layer through the units it reaches.
//! - The cost change is the sum of the examples' loss *changes*, never a difference of two
//!   costs, so its rounding is relative to the change, not to J: for the cross-entropy,
//!   with `r_k` the change of `s_k - s_y`, `ln(sum_k p_k exp(r_k)) = ln_1p(sum_k p_k
//!   expm1(r_k))`; for the hinge, each margin's change piecewise. The unperturbed term of the
//!   forward difference is this same formula at `t = 0`, exactly zero. The regulariser
//!   changes by `lambda δ (2w + δ)`, and the step is exactly `±h` (the perturbed weight is
//!   never rounded to a float).
//! - For arguments below 2^-10 (every one, at the usual steps), expm1 and ln_1p are their
//!   Taylor polynomials, truncated below a thousandth of an ulp, in loops over a layer's
//!   inputs that the compiler vectorises; larger arguments use `std`'s.
//!
//! Each derivative is computed alone and sums its examples in order, so no result depends
//! on the number of threads, and the arithmetic is plain multiplies and adds (no fused
//! ones), the same on every CPU. Cost per derivative: O(n K) while the change stays linear.
//! This module uses only `std`, `ndarray`, `rayon` and [`Method`].

use std::time::Instant;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

use crate::spec::Method;

/// The loss on the scores of one example with label y.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NetLoss {
    /// `-ln p_y` of the softmax of the scores, computed after subtracting the largest score.
    CrossEntropy,
    /// The multi-class hinge `sum_{k != y} max(0, s_k - s_y + 1)`.
    Hinge,
}

/// One layer: weights `w` (out x in) and biases `b` (out). Also a layer's gradient.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layer {
    pub w: Array2<f64>,
    pub b: Array1<f64>,
}

/// The numerical gradient of one layer, with the wall time of each half.
#[derive(Debug, Clone)]
pub(crate) struct LayerGradient {
    pub grad: Layer,
    pub w_seconds: f64,
    pub b_seconds: f64,
}

/// The numerical gradient of the cost for every `W_l` and `b_l`, by `method` with step `h`,
/// on the examples `x` (n x d, one per row) labelled `y`.
///
/// The shared forward pass is not timed. Panics if the shapes do not chain, a label is not
/// below the number of scores, there are no examples or `h` is not a positive number.
pub(crate) fn numerical_gradients(
    layers: &[Layer],
    x: ArrayView2<f64>,
    y: &[u8],
    lambda: f64,
    loss: NetLoss,
    method: Method,
    h: f64,
) -> Vec<LayerGradient> {
    assert!(
        h > 0.0 && h.is_finite(),
        "the finite-difference step must be a positive number, not {h}"
    );
    let net = Net::new(layers, x, y, loss);
    let check = Check {
        net: &net,
        lambda,
        method,
        h,
    };
    let ones = Array2::<f64>::ones((net.n, 1));
    let ones_max = vec![1.0; net.n];
    (0..layers.len())
        .map(|l| {
            let layer = &layers[l];
            let (out, width) = layer.w.dim();
            let start = Instant::now();
            let rows: Vec<Vec<f64>> = (0..out)
                .into_par_iter()
                .map(|u| {
                    check.row(
                        l,
                        u,
                        net.inputs[l].view(),
                        &net.input_max[l],
                        Some(layer.w.row(u)),
                    )
                })
                .collect();
            let w = Array2::from_shape_vec((out, width), rows.concat())
                .expect("one row of derivatives per unit");
            let w_seconds = start.elapsed().as_secs_f64();
            let start = Instant::now();
            let b: Vec<f64> = (0..out)
                .into_par_iter()
                .map(|u| check.row(l, u, ones.view(), &ones_max, None)[0])
                .collect();
            let b_seconds = start.elapsed().as_secs_f64();
            LayerGradient {
                grad: Layer {
                    w,
                    b: Array1::from(b),
                },
                w_seconds,
                b_seconds,
            }
        })
        .collect()
}

/// How many examples have a hinge margin `s_k - s_y + 1` (k != y) within `tolerance` of 0:
/// where a finite difference that moves the margins by up to `tolerance` may straddle the
/// hinge's kink and see neither one-sided slope. The check reports it rather than hiding it.
pub(crate) fn kinks(layers: &[Layer], x: ArrayView2<f64>, y: &[u8], tolerance: f64) -> usize {
    let net = Net::new(layers, x, y, NetLoss::Hinge);
    (0..net.n)
        .filter(|&j| {
            let label = usize::from(y[j]);
            net.margin
                .row(j)
                .iter()
                .enumerate()
                .any(|(k, m)| k != label && m.abs() <= tolerance)
        })
        .count()
}

/// The unperturbed network on the examples: everything a perturbed cost is rebuilt from.
struct Net<'a> {
    layers: &'a [Layer],
    y: &'a [u8],
    loss: NetLoss,
    n: usize,
    classes: usize,
    /// The input of each layer, one example per row: x, then the hidden activations.
    inputs: Vec<Array2<f64>>,
    /// Per layer and example, the largest |input|: bounds how far a perturbation reaches.
    input_max: Vec<Vec<f64>>,
    /// Per layer, the pre-activations, one example per row.
    z: Vec<Array2<f64>>,
    /// The softmax of the scores (n x K).
    p: Array2<f64>,
    /// Its logarithm, `s_k - max - ln(sum exp(s - max))`.
    log_p: Array2<f64>,
    /// The hinge margins `s_k - s_y + 1`.
    margin: Array2<f64>,
}

impl<'a> Net<'a> {
    fn new(layers: &'a [Layer], x: ArrayView2<f64>, y: &'a [u8], loss: NetLoss) -> Self {
        let n = x.nrows();
        assert!(!layers.is_empty(), "a network needs at least one layer");
        assert!(n > 0, "a gradient check needs at least one example");
        assert_eq!(y.len(), n, "one label per example");
        let mut width = x.ncols();
        for (l, layer) in layers.iter().enumerate() {
            assert_eq!(
                layer.w.ncols(),
                width,
                "W{} has the wrong number of columns",
                l + 1
            );
            assert_eq!(
                layer.b.len(),
                layer.w.nrows(),
                "b{} and W{} disagree",
                l + 1,
                l + 1
            );
            width = layer.w.nrows();
        }
        let classes = width;
        assert!(
            y.iter().all(|&c| usize::from(c) < classes),
            "a label is not below the {classes} scores"
        );
        let mut inputs = Vec::with_capacity(layers.len());
        let mut z = Vec::with_capacity(layers.len());
        let mut input = x.as_standard_layout().into_owned();
        for (l, layer) in layers.iter().enumerate() {
            let mut zl = Array2::<f64>::zeros((n, layer.w.nrows()));
            for (j, mut row) in zl.rows_mut().into_iter().enumerate() {
                for (u, v) in row.iter_mut().enumerate() {
                    *v = input.row(j).dot(&layer.w.row(u)) + layer.b[u];
                }
            }
            let next = (l + 1 < layers.len()).then(|| zl.mapv(|v| v.max(0.0)));
            inputs.push(std::mem::replace(&mut input, next.unwrap_or_default()));
            z.push(zl);
        }
        let input_max = inputs
            .iter()
            .map(|a| {
                a.rows()
                    .into_iter()
                    .map(|r| r.fold(0.0f64, |m, v| m.max(v.abs())))
                    .collect()
            })
            .collect();
        let scores = z.last().expect("at least one layer");
        let mut p = Array2::<f64>::zeros((n, classes));
        let mut log_p = p.clone();
        let mut margin = p.clone();
        for j in 0..n {
            let s = scores.row(j);
            let max = s.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
            let sum: f64 = s.iter().map(|v| (v - max).exp()).sum();
            let (log_sum, sy) = (sum.ln(), s[usize::from(y[j])]);
            for k in 0..classes {
                p[[j, k]] = (s[k] - max).exp() / sum;
                log_p[[j, k]] = s[k] - max - log_sum;
                margin[[j, k]] = s[k] - sy + 1.0;
            }
        }
        Net {
            layers,
            y,
            loss,
            n,
            classes,
            inputs,
            input_max,
            z,
            p,
            log_p,
            margin,
        }
    }

    fn depth(&self) -> usize {
        self.layers.len()
    }

    /// How unit u of layer l reaches the scores in each example.
    fn paths(&self, l: usize, u: usize) -> Paths {
        let (n, classes) = (self.n, self.classes);
        let mut d = Array2::<f64>::zeros((n, classes));
        let mut reach = vec![f64::INFINITY; n];
        let mut d_max = vec![0.0; n];
        for j in 0..n {
            let mut v: Vec<f64> = if l + 1 == self.depth() {
                (0..classes).map(|k| f64::from(u8::from(k == u))).collect()
            } else {
                self.layers[l + 1].w.column(u).to_vec()
            };
            for m in l + 1..self.depth() - 1 {
                for (vk, &zk) in v.iter_mut().zip(self.z[m].row(j)) {
                    if *vk != 0.0 {
                        reach[j] = reach[j].min(zk.abs() / vk.abs());
                    }
                    if zk <= 0.0 {
                        *vk = 0.0;
                    }
                }
                v = self.layers[m + 1]
                    .w
                    .rows()
                    .into_iter()
                    .map(|row| row.iter().zip(&v).map(|(w, a)| w * a).sum())
                    .collect();
            }
            let vy = v[usize::from(self.y[j])];
            for (k, &vk) in v.iter().enumerate() {
                d[[j, k]] = vk - vy;
                d_max[j] = f64::max(d_max[j], (vk - vy).abs());
            }
        }
        Paths { d, reach, d_max }
    }

    /// The change of `s_k - s_y` in example j when unit u of layer l changes its activation
    /// (its score, at the top) by t, layer by layer through the units that change.
    fn propagate(&self, l: usize, u: usize, j: usize, t: f64) -> Vec<f64> {
        let mut dz: Vec<f64> = if l + 1 == self.depth() {
            (0..self.classes)
                .map(|k| if k == u { t } else { 0.0 })
                .collect()
        } else {
            self.layers[l + 1]
                .w
                .column(u)
                .iter()
                .map(|w| w * t)
                .collect()
        };
        for m in l + 1..self.depth() - 1 {
            let changed: Vec<(usize, f64)> = self.z[m]
                .row(j)
                .iter()
                .zip(&dz)
                .map(|(&z, &dz)| relu_change(z, dz))
                .enumerate()
                .filter(|&(_, da)| da != 0.0)
                .collect();
            let w = &self.layers[m + 1].w;
            dz = w
                .rows()
                .into_iter()
                .map(|row| changed.iter().map(|&(c, da)| row[c] * da).sum())
                .collect();
        }
        let dy = dz[usize::from(self.y[j])];
        dz.iter().map(|v| v - dy).collect()
    }

    /// The loss change of example j when each `s_k - s_y` changes by `r_k`.
    fn loss_change(&self, j: usize, r: &[f64]) -> f64 {
        let label = usize::from(self.y[j]);
        match self.loss {
            NetLoss::CrossEntropy => {
                let r_max = r.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                if r_max <= EXP_SAFE {
                    let sum: f64 = self
                        .p
                        .row(j)
                        .iter()
                        .zip(r)
                        .map(|(p, &r)| p * expm1(r))
                        .sum();
                    ln_1p(sum)
                } else {
                    let sum: f64 = self
                        .log_p
                        .row(j)
                        .iter()
                        .zip(r)
                        .map(|(lp, r)| (lp + r - r_max).exp())
                        .sum();
                    r_max + sum.ln()
                }
            }
            NetLoss::Hinge => self
                .margin
                .row(j)
                .iter()
                .zip(r)
                .enumerate()
                .filter(|&(k, _)| k != label)
                .map(|(_, (&m, &r))| hinge_change(m, r))
                .sum(),
        }
    }

    /// `sum_{k active} d_k` when no hinge margin of example j changes sides for score
    /// changes `t d` with `|t| <= bound`: the hinge loss then changes by exactly `t` times it.
    fn hinge_slope(&self, j: usize, d: &[f64], bound: f64) -> Option<f64> {
        let label = usize::from(self.y[j]);
        let mut slope = 0.0;
        for (k, (&m, &dk)) in self.margin.row(j).iter().zip(d).enumerate() {
            if k == label || dk == 0.0 {
                continue;
            }
            if m.abs() <= dk.abs() * bound {
                return None;
            }
            if m > 0.0 {
                slope += dk;
            }
        }
        Some(slope)
    }
}

/// Per example, how a unit's activation change t moves the scores while no unit above it
/// crosses its kink: `s_k - s_y` changes by `t d[j][k]`, for `|t| < reach[j]`.
struct Paths {
    d: Array2<f64>,
    reach: Vec<f64>,
    /// `max_k |d[j][k]|`.
    d_max: Vec<f64>,
}

/// One numerical gradient's settings over a network.
struct Check<'a> {
    net: &'a Net<'a>,
    lambda: f64,
    method: Method,
    h: f64,
}

/// Buffers over a layer's inputs and the scores, reused across examples.
struct Scratch {
    t: Vec<f64>,
    sum: Vec<f64>,
    r: Vec<f64>,
}

impl Check<'_> {
    /// The derivatives for the parameters feeding unit u of layer l, whose inputs are
    /// `inputs` (n x width): its row of weights, whose values `weights` are penalised, or
    /// its bias (a column of ones, `None`: not penalised).
    fn row(
        &self,
        l: usize,
        u: usize,
        inputs: ArrayView2<f64>,
        input_max: &[f64],
        weights: Option<ArrayView1<f64>>,
    ) -> Vec<f64> {
        let net = self.net;
        let width = inputs.ncols();
        let paths = net.paths(l, u);
        let mut scratch = Scratch {
            t: vec![0.0; width],
            sum: vec![0.0; width],
            r: vec![0.0; net.classes],
        };
        let mut change = |step: f64| {
            let mut acc = vec![0.0; width];
            for (j, &reach) in input_max.iter().enumerate().take(net.n) {
                let x = inputs.row(j);
                let x = x.as_slice().expect("inputs are in standard layout");
                self.accumulate(l, u, j, x, reach, step, &paths, &mut acc, &mut scratch);
            }
            acc
        };
        let plus = change(self.h);
        let minus = match self.method {
            Method::Forward => Vec::new(),
            Method::Centred => change(-self.h),
        };
        let n = net.n as f64;
        let penalty =
            |i: usize, step: f64| weights.map_or(0.0, |w| self.lambda * step * (2.0 * w[i] + step));
        (0..width)
            .map(|i| match self.method {
                Method::Forward => (plus[i] / n + penalty(i, self.h)) / self.h,
                Method::Centred => {
                    let up = plus[i] / n + penalty(i, self.h);
                    let down = minus[i] / n + penalty(i, -self.h);
                    (up - down) / (2.0 * self.h)
                }
            })
            .collect()
    }

    /// Adds to `acc[i]` the loss change of example j when the i-th parameter feeding unit u
    /// of layer l moves by `step` (so the unit's pre-activation by `step * x[i]`).
    #[allow(clippy::too_many_arguments)]
    fn accumulate(
        &self,
        l: usize,
        u: usize,
        j: usize,
        x: &[f64],
        x_max: f64,
        step: f64,
        paths: &Paths,
        acc: &mut [f64],
        scratch: &mut Scratch,
    ) {
        let net = self.net;
        let top = l + 1 == net.depth();
        let bound = step.abs() * x_max;
        let z = net.z[l][[j, u]];
        if !top && z <= -bound {
            return;
        }
        let d = paths.d.row(j);
        let d = d.as_slice().expect("paths are in standard layout");
        let reach = paths.reach[j];
        if (top || z > bound) && bound < reach {
            match net.loss {
                NetLoss::CrossEntropy if bound * paths.d_max[j] <= POLY_MAX => {
                    self.cross_entropy_run(j, d, x, step, acc, scratch);
                    return;
                }
                NetLoss::Hinge => {
                    if let Some(slope) = net.hinge_slope(j, d, bound) {
                        for (a, &xi) in acc.iter_mut().zip(x) {
                            *a += slope * (step * xi);
                        }
                        return;
                    }
                }
                NetLoss::CrossEntropy => {}
            }
        }
        for (a, &xi) in acc.iter_mut().zip(x) {
            let dz = step * xi;
            let t = if top { dz } else { relu_change(z, dz) };
            if t == 0.0 {
                continue;
            }
            *a += if t.abs() < reach {
                for (r, &dk) in scratch.r.iter_mut().zip(d) {
                    *r = dk * t;
                }
                net.loss_change(j, &scratch.r)
            } else {
                net.loss_change(j, &net.propagate(l, u, j, t))
            };
        }
    }

    /// [`Net::loss_change`] of the cross-entropy for every input at once, when every
    /// `d_k * step * x[i]` is within the polynomials' range: the same bits, vectorised.
    fn cross_entropy_run(
        &self,
        j: usize,
        d: &[f64],
        x: &[f64],
        step: f64,
        acc: &mut [f64],
        scratch: &mut Scratch,
    ) {
        let (t, sum) = (&mut scratch.t, &mut scratch.sum);
        for (t, &xi) in t.iter_mut().zip(x) {
            *t = step * xi;
        }
        sum.fill(0.0);
        for (&dk, &pk) in d.iter().zip(self.net.p.row(j)) {
            if dk == 0.0 {
                continue;
            }
            for (s, &t) in sum.iter_mut().zip(t.iter()) {
                *s += pk * expm1_poly(dk * t);
            }
        }
        for (a, &s) in acc.iter_mut().zip(sum.iter()) {
            *a += ln_1p_poly(s);
        }
    }
}

/// `max(0, z + dz) - max(0, z)`, exactly `dz` while the unit stays active.
fn relu_change(z: f64, dz: f64) -> f64 {
    if z > 0.0 && z + dz > 0.0 {
        dz
    } else {
        (z + dz).max(0.0) - z.max(0.0)
    }
}

/// `max(0, m + r) - max(0, m)`, exactly `r` while the margin stays positive.
fn hinge_change(m: f64, r: f64) -> f64 {
    if m > 0.0 && m + r > 0.0 {
        r
    } else {
        (m + r).max(0.0) - m.max(0.0)
    }
}

/// Below this |argument| expm1 is its Taylor polynomial of degree 5: the first term left
/// out is `a^6 / 720`, below `2^-50 / 720` (about 1e-18) relative to the result.
const POLY_MAX: f64 = 1.0 / 1024.0;

/// Below this |argument| ln_1p is its Taylor polynomial of degree 6: the first term left out
/// is `s^7 / 7`, below `2^-54 / 7` (about 8e-18) relative. It covers every
/// `sum_k p_k expm1(a_k)` with `|a_k| <= POLY_MAX`.
const LN_POLY_MAX: f64 = 1.0 / 512.0;

/// Score changes up to this keep `sum_k p_k expm1(r_k)` finite; above it the cross-entropy
/// change is taken from the log-probabilities.
const EXP_SAFE: f64 = 600.0;

fn expm1_poly(a: f64) -> f64 {
    let p = 1.0 / 120.0;
    let p = 1.0 / 24.0 + a * p;
    let p = 1.0 / 6.0 + a * p;
    let p = 0.5 + a * p;
    a + (a * a) * p
}

fn ln_1p_poly(s: f64) -> f64 {
    let q = 1.0 / 6.0;
    let q = 0.2 - s * q;
    let q = 0.25 - s * q;
    let q = 1.0 / 3.0 - s * q;
    let q = 0.5 - s * q;
    s - (s * s) * q
}

fn expm1(a: f64) -> f64 {
    if a.abs() <= POLY_MAX {
        expm1_poly(a)
    } else {
        a.exp_m1()
    }
}

fn ln_1p(s: f64) -> f64 {
    if s.abs() <= LN_POLY_MAX {
        ln_1p_poly(s)
    } else {
        s.ln_1p()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// SplitMix64 (Steele, Lea and Flood 2014): a self-contained stream for test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        /// Uniform in [-1, 1).
        fn uniform(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        }
    }

    fn random_net(rng: &mut Rng, dims: &[usize], scale: f64) -> Vec<Layer> {
        dims.windows(2)
            .map(|w| Layer {
                w: Array2::from_shape_simple_fn((w[1], w[0]), || scale * rng.uniform()),
                b: Array1::from_shape_simple_fn(w[1], || 0.2 * rng.uniform()),
            })
            .collect()
    }

    fn random_data(rng: &mut Rng, n: usize, d: usize, classes: usize) -> (Array2<f64>, Vec<u8>) {
        let x = Array2::from_shape_simple_fn((n, d), || 2.0 * rng.uniform());
        let y = (0..n)
            .map(|_| (rng.next() % classes as u64) as u8)
            .collect();
        (x, y)
    }

    /// Pre-activations of every layer, by whole-matrix products.
    fn forward(layers: &[Layer], x: ArrayView2<f64>) -> Vec<Array2<f64>> {
        let mut zs: Vec<Array2<f64>> = Vec::new();
        for layer in layers {
            let input = zs.last().map_or(x.to_owned(), |z| z.mapv(|v| v.max(0.0)));
            zs.push(input.dot(&layer.w.t()) + &layer.b);
        }
        zs
    }

    /// The cost, from scratch.
    fn cost(layers: &[Layer], x: ArrayView2<f64>, y: &[u8], lambda: f64, loss: NetLoss) -> f64 {
        let s = forward(layers, x).pop().unwrap();
        let total: f64 = s
            .rows()
            .into_iter()
            .zip(y)
            .map(|(s, &c)| {
                let c = usize::from(c);
                match loss {
                    NetLoss::CrossEntropy => {
                        let max = s.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                        max + s.iter().map(|v| (v - max).exp()).sum::<f64>().ln() - s[c]
                    }
                    NetLoss::Hinge => (0..s.len())
                        .filter(|&k| k != c)
                        .map(|k| (s[k] - s[c] + 1.0).max(0.0))
                        .sum(),
                }
            })
            .sum();
        let reg: f64 = layers
            .iter()
            .map(|l| l.w.iter().map(|w| w * w).sum::<f64>())
            .sum();
        total / x.nrows() as f64 + lambda * reg
    }

    /// The textbook check: a full forward pass per perturbed cost.
    fn naive(
        layers: &[Layer],
        x: ArrayView2<f64>,
        y: &[u8],
        lambda: f64,
        loss: NetLoss,
        method: Method,
        h: f64,
    ) -> Vec<Layer> {
        let base = cost(layers, x, y, lambda, loss);
        let mut net = layers.to_vec();
        let derivative = |net: &mut Vec<Layer>, l: usize, at: &dyn Fn(&mut Layer) -> &mut f64| {
            let v = *at(&mut net[l]);
            *at(&mut net[l]) = v + h;
            let plus = cost(net, x, y, lambda, loss);
            *at(&mut net[l]) = v - h;
            let minus = cost(net, x, y, lambda, loss);
            *at(&mut net[l]) = v;
            match method {
                Method::Forward => (plus - base) / h,
                Method::Centred => (plus - minus) / (2.0 * h),
            }
        };
        (0..layers.len())
            .map(|l| {
                let mut g = layers[l].clone();
                for ((r, c), v) in g.w.indexed_iter_mut() {
                    *v = derivative(&mut net, l, &|n: &mut Layer| &mut n.w[[r, c]]);
                }
                for (r, v) in g.b.indexed_iter_mut() {
                    *v = derivative(&mut net, l, &|n: &mut Layer| &mut n.b[r]);
                }
                g
            })
            .collect()
    }

    /// Backpropagation of the cost (the hinge's subgradient at a kink takes slope 0).
    pub(super) fn backprop(
        layers: &[Layer],
        x: ArrayView2<f64>,
        y: &[u8],
        lambda: f64,
        loss: NetLoss,
    ) -> Vec<Layer> {
        let zs = forward(layers, x);
        let n = x.nrows() as f64;
        let mut dz = zs.last().unwrap().clone();
        for (mut row, &c) in dz.rows_mut().into_iter().zip(y) {
            let c = usize::from(c);
            match loss {
                NetLoss::CrossEntropy => {
                    let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                    row.mapv_inplace(|v| (v - max).exp());
                    let sum = row.sum();
                    row /= sum;
                    row[c] -= 1.0;
                }
                NetLoss::Hinge => {
                    let sc = row[c];
                    row.mapv_inplace(|v| f64::from(u8::from(v - sc + 1.0 > 0.0)));
                    row[c] = 0.0;
                    row[c] = -row.sum();
                }
            }
            row /= n;
        }
        let mut grads = Vec::new();
        for l in (0..layers.len()).rev() {
            let input = if l == 0 {
                x.to_owned()
            } else {
                zs[l - 1].mapv(|v| v.max(0.0))
            };
            grads.push(Layer {
                w: dz.t().dot(&input) + 2.0 * lambda * &layers[l].w,
                b: dz.sum_axis(ndarray::Axis(0)),
            });
            if l > 0 {
                dz = dz.dot(&layers[l].w) * zs[l - 1].mapv(|v| f64::from(u8::from(v > 0.0)));
            }
        }
        grads.reverse();
        grads
    }

    fn max_abs_diff(a: &[Layer], b: &[Layer]) -> f64 {
        a.iter()
            .zip(b)
            .flat_map(|(a, b)| a.w.iter().zip(&b.w).chain(a.b.iter().zip(&b.b)))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }

    fn grads(out: Vec<LayerGradient>) -> Vec<Layer> {
        out.into_iter().map(|g| g.grad).collect()
    }

    const SHAPES: [&[usize]; 3] = [&[12, 10], &[12, 5, 10], &[12, 4, 3, 10]];

    #[test]
    fn netcheck_matches_a_forward_pass_per_perturbed_cost() {
        let mut rng = Rng(7);
        let (x, y) = random_data(&mut rng, 8, 12, 10);
        for dims in SHAPES {
            let layers = random_net(&mut rng, dims, 0.6);
            for loss in [NetLoss::CrossEntropy, NetLoss::Hinge] {
                for lambda in [0.0, 0.1] {
                    for method in [Method::Forward, Method::Centred] {
                        // 1e-5 takes the polynomial paths; 0.3 crosses kinks everywhere.
                        for h in [1e-5, 1e-3, 0.3] {
                            let fast = grads(numerical_gradients(
                                &layers,
                                x.view(),
                                &y,
                                lambda,
                                loss,
                                method,
                                h,
                            ));
                            let slow = naive(&layers, x.view(), &y, lambda, loss, method, h);
                            let diff = max_abs_diff(&fast, &slow);
                            let tol = if method == Method::Centred {
                                1e-9
                            } else {
                                1e-8
                            };
                            assert!(
                                diff < tol,
                                "{dims:?} {loss:?} lambda {lambda} {method:?} h {h}: {diff:e}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn netcheck_centred_differences_match_backpropagation() {
        let mut rng = Rng(11);
        let (x, y) = random_data(&mut rng, 8, 12, 10);
        let h = 1e-6;
        for dims in SHAPES {
            let layers = random_net(&mut rng, dims, 0.6);
            for loss in [NetLoss::CrossEntropy, NetLoss::Hinge] {
                for lambda in [0.0, 0.1] {
                    let numerical = grads(numerical_gradients(
                        &layers,
                        x.view(),
                        &y,
                        lambda,
                        loss,
                        Method::Centred,
                        h,
                    ));
                    let analytic = backprop(&layers, x.view(), &y, lambda, loss);
                    let rel = numerical
                        .iter()
                        .zip(&analytic)
                        .flat_map(|(a, b)| a.w.iter().zip(&b.w).chain(a.b.iter().zip(&b.b)))
                        .map(|(n, a)| (n - a).abs() / (n.abs() + a.abs()).max(1e-12))
                        .fold(0.0, f64::max);
                    println!("{dims:?} {loss:?} lambda {lambda}: max rel err {rel:e}");
                    // The hinge is piecewise linear: away from its kinks the differences are exact.
                    assert_eq!(kinks(&layers, x.view(), &y, 1e-3), 0);
                    assert!(rel < 1e-6, "{dims:?} {loss:?} lambda {lambda}: {rel:e}");
                }
            }
        }
    }

    #[test]
    fn netcheck_counts_examples_on_a_hinge_kink() {
        let mut rng = Rng(3);
        let (mut x, mut y) = random_data(&mut rng, 6, 12, 10);
        let mut layers = random_net(&mut rng, &[12, 10], 0.1);
        // Example 0 is all zeros, so its scores are b: margin b_k - b_y + 1 is exactly 0.
        x.row_mut(0).fill(0.0);
        y[0] = 2;
        layers[0].b.fill(-3.0);
        layers[0].b[2] = 0.5;
        layers[0].b[7] = -0.5;
        assert_eq!(kinks(&layers, x.view(), &y, 0.0), 1);
        // Example 1 a thousandth from a kink.
        let s1 = forward(&layers, x.view()).pop().unwrap().row(1).to_owned();
        let (k, c) = (if y[1] == 0 { 1 } else { 0 }, usize::from(y[1]));
        layers[0].b[k] += -(s1[k] - s1[c] + 1.0) + 1e-3;
        assert_eq!(kinks(&layers, x.view(), &y, 1e-4), 1);
        assert_eq!(kinks(&layers, x.view(), &y, 2e-3), 2);
    }

    #[test]
    fn netcheck_ignores_the_thread_count() {
        let mut rng = Rng(5);
        let (x, y) = random_data(&mut rng, 9, 40, 10);
        let layers = random_net(&mut rng, &[40, 7, 6, 10], 0.4);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                grads(numerical_gradients(
                    &layers,
                    x.view(),
                    &y,
                    0.1,
                    NetLoss::CrossEntropy,
                    Method::Centred,
                    1e-6,
                ))
            })
        };
        let one = run(1);
        for (a, b) in one.iter().zip(&run(3)) {
            assert!(
                a.w.iter()
                    .zip(&b.w)
                    .chain(a.b.iter().zip(&b.b))
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            );
        }
    }

    #[test]
    fn netcheck_polynomials_agree_with_std_in_their_range() {
        for i in -1000..=1000 {
            let a = POLY_MAX * f64::from(i) / 1000.0;
            let (p, s) = (expm1_poly(a), a.exp_m1());
            assert!(
                (p - s).abs() <= 2.0 * f64::EPSILON * s.abs(),
                "expm1({a}): {p} vs {s}"
            );
            let a = LN_POLY_MAX * f64::from(i) / 1000.0;
            let (p, s) = (ln_1p_poly(a), a.ln_1p());
            assert!(
                (p - s).abs() <= 2.0 * f64::EPSILON * s.abs(),
                "ln_1p({a}): {p} vs {s}"
            );
        }
    }
}
