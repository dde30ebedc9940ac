//! Training: the model seam and its implementations.
//!
//! - [`model`]: the seam, [`Trainer`] (a fused group of runs of one kind of model) and
//!   its [`Snapshot`] (several groups scored together), with the generic drivers
//!   [`train_group`] and [`fit`].
//! - [`linear`]: the one-layer classifier, the first model.
//! - [`network`]: k-layer ReLU networks, the second.
//! - [`course`]: the mini-batches of a group through its epochs, and its members' records.
//! - [`loss`]: the loss on the scores ([`Loss`]; [`CrossEntropy`]).
//! - [`schedule`]: the learning rate of each update ([`schedule::Schedule`]; [`schedule::Constant`]).
//! - [`eval`]: scoring splits with stacked models, in chunks added in a fixed order.
//! - [`real`]: the float types training runs in ([`Real`]).
//! - [`gradcheck`]: training's gradients against finite differences.
//!
//! Training may use `spec`, `plan`, `kernel`, `data` and `rng`, never a later stage.

pub(crate) mod bncheck;
pub(crate) mod course;
pub(crate) mod eval;
pub mod gradcheck;
pub mod linear;
pub mod loss;
pub mod model;
pub(crate) mod netcheck;
pub mod network;
#[cfg(test)]
mod network_tests;
pub mod norm;
pub(crate) mod real;
pub mod schedule;
#[cfg(test)]
mod tests;

use ndarray::ArrayD;

pub use crate::plan::{Hyper, TrainConfig};
pub use linear::{LinearTrainer, Params, metrics};
pub use loss::{CrossEntropy, Hinge, Loss};
pub use model::{Scores, Snapshot, Trainer, fit, record_together, train_group};
pub use network::NetTrainer;
pub use real::Real;

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

/// Metrics on the training and validation splits after `update` updates, `epoch` of them
/// whole epochs (0 = at init), with the learning rate of the next update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub update: usize,
    pub eta: f64,
    pub train: SplitMetrics,
    pub val: SplitMetrics,
}

/// How a training run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// The training or validation cost was not finite when recorded after this many
    /// epochs; training stopped.
    Diverged {
        epoch: usize,
    },
    /// Successive halving did not promote it after this many whole epochs; it kept the
    /// parameters it had then.
    Stopped {
        epoch: usize,
    },
}

/// One named parameter array of a model (`W`, `b`; a network's `W1`, `b1`, ...), saved
/// as `NAME.npy`.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedArray<T> {
    pub name: String,
    pub array: ArrayD<T>,
}

impl<T> NamedArray<T> {
    pub fn new(name: &str, array: ArrayD<T>) -> Self {
        NamedArray {
            name: name.to_string(),
            array,
        }
    }
}

/// A trained run: final parameters, per-epoch history and test metrics.
#[derive(Debug, Clone)]
pub struct Fitted<T> {
    pub(crate) arrays: Vec<NamedArray<T>>,
    pub(crate) history: Vec<EpochMetrics>,
    pub(crate) test: Option<SplitMetrics>,
    pub(crate) outcome: Outcome,
}

impl<T> Fitted<T> {
    /// The model's parameter arrays, in the model's order.
    pub fn arrays(&self) -> &[NamedArray<T>] {
        &self.arrays
    }
    /// The parameter array called `name`, if the model has one.
    pub fn array(&self, name: &str) -> Option<&ArrayD<T>> {
        self.arrays
            .iter()
            .find(|a| a.name == name)
            .map(|a| &a.array)
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
