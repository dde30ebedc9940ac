//! Learning-rate schedules: the seam a new schedule plugs into ([`Schedule`]), with the
//! constant rate, the triangular cyclical rate and the step decay.
//!
//! The schedule stays outside the update: a trainer asks each run's schedule for the rate
//! of every update (as candle's optimisers take `set_learning_rate` from outside), so a
//! cyclical or decaying rate changes nothing but the number the update multiplies by.

use crate::plan::Rate;

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

/// Triangular cyclical learning rates (Smith, "Cyclical Learning Rates for Training
/// Neural Networks", 2017; the course's second lab): from `min` up to `max` over
/// `step_size` updates, back down over as many, and again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cyclic {
    pub min: f64,
    pub max: f64,
    pub step_size: usize,
}

impl Schedule for Cyclic {
    fn eta(&self, update: usize) -> f64 {
        let n_s = self.step_size;
        let t = update % (2 * n_s);
        let rise = if t <= n_s { t } else { 2 * n_s - t };
        self.min + rise as f64 / n_s as f64 * (self.max - self.min)
    }
}

/// `eta` multiplied by `decay` every `every` updates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepDecay {
    pub eta: f64,
    pub decay: f64,
    pub every: usize,
}

impl Schedule for StepDecay {
    fn eta(&self, update: usize) -> f64 {
        let steps = (update / self.every) as i32;
        self.eta * self.decay.powi(steps)
    }
}

/// The schedule of a run with rates `rate`, whose epochs have `batches` updates.
pub fn schedule(rate: &Rate, batches: usize) -> Box<dyn Schedule> {
    match *rate {
        Rate::Constant { eta } => Box::new(Constant(eta)),
        Rate::Cyclic {
            min,
            max,
            step_size,
        } => Box::new(Cyclic {
            min,
            max,
            step_size,
        }),
        Rate::Step { eta, decay, every } => Box::new(StepDecay {
            eta,
            decay,
            every: every * batches.max(1),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_schedule_gives_its_rate_at_every_update() {
        let s = schedule(&Rate::Constant { eta: 0.25 }, 100);
        assert_eq!([s.eta(0), s.eta(1), s.eta(10_000)], [0.25; 3]);
    }

    #[test]
    fn a_cycle_rises_for_step_size_updates_then_falls_as_the_lab_draws_it() {
        let s = schedule(
            &Rate::Cyclic {
                min: 1e-5,
                max: 1e-1,
                step_size: 500,
            },
            100,
        );
        assert_eq!(s.eta(0), 1e-5);
        assert_eq!(s.eta(500), 1e-1);
        assert_eq!(s.eta(1000), 1e-5);
        assert!((s.eta(250) - (1e-5 + 0.5 * (1e-1 - 1e-5))).abs() < 1e-15);
        assert!((s.eta(750) - s.eta(250)).abs() < 1e-15);
        assert_eq!(
            s.eta(1250),
            s.eta(250),
            "the second cycle repeats the first"
        );
    }

    #[test]
    fn a_step_schedule_decays_every_few_epochs() {
        let s = schedule(
            &Rate::Step {
                eta: 0.1,
                decay: 0.5,
                every: 2,
            },
            10,
        );
        assert_eq!(
            [s.eta(0), s.eta(19), s.eta(20), s.eta(45)],
            [0.1, 0.1, 0.05, 0.025]
        );
    }
}
