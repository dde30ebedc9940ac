//! Learning-rate schedules: the seam a new schedule plugs into ([`Schedule`]), and the
//! constant rate, the first ([`Constant`]).
//!
//! The schedule stays outside the update: a trainer asks each run's schedule for the rate
//! of every update (as candle's optimisers take `set_learning_rate` from outside), so a
//! cyclical or decaying rate changes nothing but the number the update multiplies by.

use crate::plan::Hyper;

/// The learning rate of each update of one run.
pub trait Schedule: std::fmt::Debug + Send + Sync {
    /// The rate of update `update` (0 for the first update of the run).
    fn eta(&self, update: usize) -> f64;
}

/// `eta` at every update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constant(pub f64);

impl Schedule for Constant {
    fn eta(&self, _update: usize) -> f64 {
        self.0
    }
}

/// The schedule of a run with hyperparameters `hyper`.
pub fn schedule(hyper: &Hyper) -> Box<dyn Schedule> {
    Box::new(Constant(hyper.eta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_schedule_gives_its_rate_at_every_update() {
        let s = schedule(&Hyper {
            lambda: 0.0,
            eta: 0.25,
        });
        assert_eq!([s.eta(0), s.eta(1), s.eta(10_000)], [0.25; 3]);
    }
}
