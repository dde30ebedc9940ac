//! Batch normalisation of a network's hidden layers (the third lab): after a hidden
//! layer's linear map `z = W h + b` and before its ReLU, each unit is normalised over the
//! mini-batch, `zhat = (z - mu) / sqrt(var + eps)` with the batch's mean and biased (1/n)
//! variance, then scaled and shifted, `s = gamma * zhat + beta`. Evaluation normalises
//! with running averages instead, updated after every update as `avg = momentum * avg +
//! (1 - momentum) * batch_stat`; the first batch sets them. Before it they are 0 and 1.
//!
//! Every sum runs over the batch's examples in ascending order, in one thread per run, so
//! a run's statistics are one fixed sum whatever the number of threads, and the same
//! alone or fused. The bias `b` of a normalised layer cancels in `z - mu`: its gradient is
//! zero by construction and is returned as exactly 0.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, s};

use super::Real;

/// One hidden layer's learned scale and shift, and its running averages (all per unit).
#[derive(Debug, Clone, PartialEq)]
pub struct BnLayer<T> {
    pub gamma: Array1<T>,
    pub beta: Array1<T>,
    pub mean: Array1<T>,
    pub var: Array1<T>,
}

impl<T: Real> BnLayer<T> {
    /// The initial layer of `width` units: gamma 1, beta 0, running mean 0 and variance 1
    /// (nothing is drawn, so a network's weights are the same with and without it).
    pub fn new(width: usize) -> Self {
        BnLayer {
            gamma: Array1::ones(width),
            beta: Array1::zeros(width),
            mean: Array1::zeros(width),
            var: Array1::ones(width),
        }
    }

    /// `s = gamma * (z + b - mean) / sqrt(var + eps) + beta` with the running averages,
    /// over `z` in place (evaluation).
    pub fn apply_running(&self, mut z: ArrayViewMut2<T>, b: ArrayView1<T>, eps: T) {
        for (u, mut row) in z.rows_mut().into_iter().enumerate() {
            let inv = T::one() / (self.var[u] + eps).sqrt();
            let (mean, gamma, beta, bu) = (self.mean[u], self.gamma[u], self.beta[u], b[u]);
            row.iter_mut()
                .for_each(|v| *v = gamma * ((*v + bu - mean) * inv) + beta);
        }
    }
}

/// A run's batch normalisation: one [`BnLayer`] per hidden layer, and whether a batch has
/// set the running averages yet.
#[derive(Debug, Clone, PartialEq)]
pub struct RunNorm<T> {
    pub layers: Vec<BnLayer<T>>,
    pub started: bool,
}

impl<T: Real> RunNorm<T> {
    pub fn new(widths: &[usize]) -> Self {
        RunNorm {
            layers: widths.iter().map(|&h| BnLayer::new(h)).collect(),
            started: false,
        }
    }

    /// Folds one batch's statistics into the running averages (the first batch sets them).
    pub fn update_running(&mut self, batches: &[BatchNorm<T>], momentum: T) {
        let keep = if self.started { momentum } else { T::zero() };
        let take = T::one() - keep;
        for (layer, batch) in self.layers.iter_mut().zip(batches) {
            for (avg, &stat) in layer.mean.iter_mut().zip(&batch.mean) {
                *avg = keep * *avg + take * stat;
            }
            for (avg, &stat) in layer.var.iter_mut().zip(&batch.var) {
                *avg = keep * *avg + take * stat;
            }
        }
        self.started = true;
    }

    /// One step of gradient descent on gamma and beta, from the batch's summed gradients
    /// (of `inv_n` = 1 / n examples); they are not penalised.
    pub fn step(&mut self, batches: &[BatchNorm<T>], lr: T, inv_n: T) {
        for (layer, batch) in self.layers.iter_mut().zip(batches) {
            for (g, &d) in layer.gamma.iter_mut().zip(&batch.dgamma) {
                *g = *g - lr * (d * inv_n);
            }
            for (b, &d) in layer.beta.iter_mut().zip(&batch.dbeta) {
                *b = *b - lr * (d * inv_n);
            }
        }
    }
}

/// One hidden layer's batch-norm buffers in training: the normalised pre-activations,
/// the batch's statistics, and the summed gradients of gamma and beta.
#[derive(Debug, Clone)]
pub struct BatchNorm<T> {
    zhat: Array2<T>,
    pub mean: Array1<T>,
    pub var: Array1<T>,
    inv: Array1<T>,
    pub dgamma: Array1<T>,
    pub dbeta: Array1<T>,
}

impl<T: Real> BatchNorm<T> {
    pub fn new(width: usize, batch: usize) -> Self {
        BatchNorm {
            zhat: Array2::zeros((width, batch)),
            mean: Array1::zeros(width),
            var: Array1::zeros(width),
            inv: Array1::zeros(width),
            dgamma: Array1::zeros(width),
            dbeta: Array1::zeros(width),
        }
    }

    /// Normalises `z + b` (units x n) over its n columns and writes `gamma * zhat + beta`
    /// over `z`, keeping what the backward pass needs.
    pub fn forward(&mut self, mut z: ArrayViewMut2<T>, b: ArrayView1<T>, p: &BnLayer<T>, eps: T) {
        let (units, n) = z.dim();
        let inv_n = T::one() / T::from_f64(n as f64);
        for (mut row, &bu) in z.rows_mut().into_iter().zip(b) {
            row.iter_mut().for_each(|v| *v = *v + bu);
        }
        let zv = z.view();
        let mean = &mut self.mean.as_slice_mut().expect("contiguous")[..units];
        row_sums(zv, zv, |_, x, _| x, mean);
        mean.iter_mut().for_each(|m| *m = *m * inv_n);
        let var = &mut self.var.as_slice_mut().expect("contiguous")[..units];
        row_sums(
            zv,
            zv,
            |u, x, _| {
                let c = x - mean[u];
                c * c
            },
            var,
        );
        var.iter_mut().for_each(|v| *v = *v * inv_n);
        for (u, mut row) in z.rows_mut().into_iter().enumerate() {
            let (mean, inv) = (self.mean[u], T::one() / (self.var[u] + eps).sqrt());
            let (gamma, beta) = (p.gamma[u], p.beta[u]);
            let mut zhat = self.zhat.slice_mut(s![u, ..n]);
            for (v, zh) in row.iter_mut().zip(zhat.iter_mut()) {
                *zh = (*v - mean) * inv;
                *v = gamma * *zh + beta;
            }
            self.inv[u] = inv;
        }
    }

    /// Turns `ds`, the summed loss's gradient with respect to `s = gamma * zhat + beta`
    /// (units x n), into its gradient with respect to `z`, over `ds`, and keeps gamma's
    /// and beta's gradients: `dz = gamma / sigma * (ds - (sum ds + zhat * sum ds zhat) / n)`.
    pub fn backward(&mut self, mut ds: ArrayViewMut2<T>, p: &BnLayer<T>) {
        let n = ds.ncols();
        let inv_n = T::one() / T::from_f64(n as f64);
        let units = ds.nrows();
        let (dv, zhat) = (ds.view(), self.zhat.slice(s![..units, ..n]));
        let dbeta = &mut self.dbeta.as_slice_mut().expect("contiguous")[..units];
        row_sums(dv, dv, |_, g, _| g, dbeta);
        let dgamma = &mut self.dgamma.as_slice_mut().expect("contiguous")[..units];
        row_sums(dv, zhat, |_, g, z| g * z, dgamma);
        for (u, mut row) in ds.rows_mut().into_iter().enumerate() {
            let zhat = self.zhat.slice(s![u, ..n]);
            let (sum, sum_z) = (self.dbeta[u], self.dgamma[u]);
            let scale = p.gamma[u] * self.inv[u];
            for (g, &z) in row.iter_mut().zip(zhat) {
                *g = scale * (*g - (sum + z * sum_z) * inv_n);
            }
        }
    }
}

/// `out[u] = Σ_j term(u, a[u][j], b[u][j])` for every row `u` of `a` and `b` (units x n),
/// over `j = 0, 1, ..., n-1` in turn from zero. Eight rows' chains are interleaved, so
/// no add waits on the one before it (one row at a time, each step waited for the last
/// add); each row's order, and so its bits, are unchanged.
fn row_sums<T: Real>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    term: impl Fn(usize, T, T) -> T,
    out: &mut [T],
) {
    const ROWS: usize = 8;
    let (units, n) = a.dim();
    assert_eq!(b.dim(), (units, n), "row_sums: shapes");
    for u0 in (0..units).step_by(ROWS) {
        let m = ROWS.min(units - u0);
        // Rows past the last repeat it; their sums are not kept.
        let at = |k: usize| (u0 + k).min(units - 1);
        let ra: [&[T]; ROWS] = std::array::from_fn(|k| {
            let r = a.row(at(k)).to_slice().expect("contiguous rows");
            &r[..n]
        });
        let rb: [&[T]; ROWS] = std::array::from_fn(|k| {
            let r = b.row(at(k)).to_slice().expect("contiguous rows");
            &r[..n]
        });
        let mut acc = [T::zero(); ROWS];
        for j in 0..n {
            for k in 0..ROWS {
                acc[k] = acc[k] + term(at(k), ra[k][j], rb[k][j]);
            }
        }
        out[u0..u0 + m].copy_from_slice(&acc[..m]);
    }
}

/// The arrays of a run's batch norm as saved, for hidden layer `l` (1-based):
/// `gamma{l}`, `beta{l}`, `mean{l}`, `var{l}`.
pub fn norm_array_names(l: usize) -> [String; 4] {
    ["gamma", "beta", "mean", "var"].map(|p| format!("{p}{l}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn forward_normalises_each_unit_over_the_batch() {
        let mut z = array![[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]];
        let b = array![1.0, -2.0];
        let mut p = BnLayer::<f64>::new(2);
        p.gamma = array![2.0, 3.0];
        p.beta = array![0.5, -1.0];
        let mut bn = BatchNorm::new(2, 4);
        bn.forward(z.view_mut(), b.view(), &p, 1e-5);
        // Unit 0: z + b = 2, 3, 4, 7; mean 4, biased variance (4 + 1 + 0 + 9) / 4 = 3.5.
        assert_eq!((bn.mean[0], bn.var[0]), (4.0, 3.5));
        let sd = (3.5f64 + 1e-5).sqrt();
        for (j, x) in [2.0, 3.0, 4.0, 7.0].into_iter().enumerate() {
            assert!((z[[0, j]] - (2.0 * (x - 4.0) / sd + 0.5)).abs() < 1e-12);
        }
        // Unit 1 is constant: it normalises to 0 and becomes beta, not NaN.
        assert_eq!(bn.var[1], 0.0);
        assert!(z.row(1).iter().all(|&v| v == -1.0));
    }

    #[test]
    fn backward_matches_finite_differences_of_a_weighted_sum() {
        // L = sum_j c_j s_j for unit 0: dL/dz by backward against central differences.
        let z0 = array![[0.3, -1.2, 2.0, 0.7, -0.1]];
        let c = [0.5, -1.0, 2.0, 0.25, -0.75];
        let b = array![0.2];
        let mut p = BnLayer::<f64>::new(1);
        p.gamma[0] = 1.7;
        p.beta[0] = -0.3;
        let loss = |z: &Array2<f64>| {
            let mut z = z.clone();
            BatchNorm::new(1, 5).forward(z.view_mut(), b.view(), &p, 1e-5);
            z.iter().zip(c).map(|(s, c)| s * c).sum::<f64>()
        };
        let mut bn = BatchNorm::new(1, 5);
        let mut z = z0.clone();
        bn.forward(z.view_mut(), b.view(), &p, 1e-5);
        let mut ds = Array2::from_shape_vec((1, 5), c.to_vec()).unwrap();
        bn.backward(ds.view_mut(), &p);
        let h = 1e-6;
        for j in 0..5 {
            let (mut up, mut down) = (z0.clone(), z0.clone());
            up[[0, j]] += h;
            down[[0, j]] -= h;
            let numeric = (loss(&up) - loss(&down)) / (2.0 * h);
            assert!(
                (numeric - ds[[0, j]]).abs() < 1e-7,
                "z[{j}]: {numeric} vs {}",
                ds[[0, j]]
            );
        }
        // The gradient over the batch sums to zero: a bias before batch norm has none.
        assert!(ds.sum().abs() < 1e-12);
        assert!((bn.dbeta[0] - c.iter().sum::<f64>()).abs() < 1e-12);
    }

    #[test]
    fn the_first_batch_sets_the_running_averages_then_momentum_blends() {
        let mut norm = RunNorm::<f64>::new(&[1]);
        let mut bn = BatchNorm::new(1, 2);
        bn.mean[0] = 4.0;
        bn.var[0] = 2.0;
        norm.update_running(std::slice::from_ref(&bn), 0.9);
        assert_eq!((norm.layers[0].mean[0], norm.layers[0].var[0]), (4.0, 2.0));
        bn.mean[0] = 14.0;
        norm.update_running(std::slice::from_ref(&bn), 0.9);
        assert!((norm.layers[0].mean[0] - 5.0).abs() < 1e-12);
    }
}
