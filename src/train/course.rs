//! What every kind of model shares about a fused group's training: the course of
//! mini-batches through the epochs ([`Course`]: shuffles, flips, where metrics are
//! recorded) and the members' bookkeeping ([`Members`]: penalties, schedules, history,
//! outcomes).
//!
//! A group trains in *spans*: the updates between two recordings of its metrics. A span
//! ends at each epoch's end (by default) or every `eval_every` updates, and at the run's
//! last update; the course crosses epoch boundaries where the batches fall, with a fresh
//! shuffle at each epoch's start.

use super::schedule::{Schedule, schedule};
use super::{EpochMetrics, Outcome, Real, SplitMetrics};
use crate::plan::{Hyper, Length, TrainConfig};
use crate::rng::{self, Stream};
use crate::spec::Augment;

/// Where a group stands when its metrics are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Spans trained.
    pub span: usize,
    /// Whole epochs trained.
    pub epoch: usize,
    /// Updates made.
    pub update: usize,
}

/// The order of a group's mini-batches, and how far it has come.
pub(crate) struct Course {
    n: usize,
    batch: usize,
    batches: usize,
    shuffle: bool,
    flip: bool,
    /// Updates to make in all.
    total: usize,
    /// Updates between recordings; 0: every epoch.
    eval_every: usize,
    /// Updates after which the course pauses (successive halving's rungs), until raised.
    limit: usize,
    order: Vec<u32>,
    /// Batches of the current epoch done.
    pos: usize,
    mark: Mark,
    shuffler: rand_chacha::ChaCha20Rng,
    flipper: rand_chacha::ChaCha20Rng,
    flips: Vec<bool>,
}

impl Course {
    /// The course of `cfg` over `n` training examples.
    pub(crate) fn new(cfg: &TrainConfig, n: usize) -> Self {
        let batch = cfg.batch_size.min(n).max(1);
        let batches = n.div_ceil(batch);
        Course {
            n,
            batch,
            batches,
            shuffle: cfg.shuffle,
            flip: cfg.augment == Augment::Flip,
            total: match cfg.length {
                Length::Epochs(e) => e * batches,
                Length::Updates(u) => u,
            },
            eval_every: cfg.eval_every,
            limit: usize::MAX,
            order: (0..n as u32).collect(),
            pos: 0,
            mark: Mark {
                span: 0,
                epoch: 0,
                update: 0,
            },
            shuffler: rng::generator(cfg.seed, Stream::Shuffle),
            flipper: rng::generator(cfg.seed, Stream::Flip),
            flips: vec![false; batch],
        }
    }

    /// The largest mini-batch.
    pub(crate) fn batch_size(&self) -> usize {
        self.batch
    }

    /// Mini-batches per epoch.
    pub(crate) fn batches(&self) -> usize {
        self.batches
    }

    pub(crate) fn mark(&self) -> Mark {
        self.mark
    }

    /// Every update made.
    pub(crate) fn finished(&self) -> bool {
        self.mark.update >= self.total
    }

    /// Pauses the course after `update` updates (a span ends there), until raised again.
    /// Training on afterwards is the same as never having paused: only where metrics
    /// are recorded changes.
    pub(crate) fn pause_at(&mut self, update: usize) {
        self.limit = update;
    }

    /// Paused at its limit, with updates left to make.
    pub(crate) fn paused(&self) -> bool {
        !self.finished() && self.mark.update >= self.limit
    }

    /// The updates after which metrics are recorded, the last one included.
    pub(crate) fn spans(&self) -> usize {
        match self.eval_every {
            0 => self.total.div_ceil(self.batches),
            every => self.total.div_ceil(every),
        }
    }

    /// Makes the updates of one span: `update(batch, flips, u)` for each mini-batch in
    /// turn, with `u` the number of updates before it and `flips` (when augmenting)
    /// whether each of the batch's images is mirrored.
    pub(crate) fn span(&mut self, mut update: impl FnMut(&[u32], Option<&[bool]>, usize)) {
        let end = match self.eval_every {
            0 => self.mark.update + (self.batches - self.pos),
            every => (self.mark.update / every + 1) * every,
        }
        .min(self.total)
        .min(self.limit.max(self.mark.update + 1));
        while self.mark.update < end {
            if self.pos == 0 && self.shuffle {
                let order = &mut self.order;
                order
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, v)| *v = i as u32);
                rng::shuffle(&mut self.shuffler, order);
            }
            let start = self.pos * self.batch;
            let batch = &self.order[start..(start + self.batch).min(self.n)];
            let flips = self.flip.then(|| {
                let flips = &mut self.flips[..batch.len()];
                rng::fill_coins(&mut self.flipper, flips);
                &*flips
            });
            update(batch, flips, self.mark.update);
            self.mark.update += 1;
            self.pos += 1;
            if self.pos == self.batches {
                self.pos = 0;
                self.mark.epoch += 1;
            }
        }
        self.mark.span += 1;
    }
}

/// The members of a fused group: what they differ in, and what has happened to each.
pub(crate) struct Members {
    pub(crate) lambdas: Vec<f64>,
    pub(crate) schedules: Vec<Box<dyn Schedule>>,
    pub(crate) history: Vec<Vec<EpochMetrics>>,
    pub(crate) outcome: Vec<Outcome>,
    /// The span of the last recording.
    pub(crate) recorded: Option<usize>,
}

impl Members {
    /// `members`, whose epochs have `batches` updates each, and `spans` recordings after
    /// the first.
    pub(crate) fn new(members: &[Hyper], batches: usize, spans: usize) -> Self {
        Members {
            lambdas: members.iter().map(|h| h.lambda).collect(),
            schedules: members.iter().map(|h| schedule(&h.rate, batches)).collect(),
            history: vec![Vec::with_capacity(spans + 1); members.len()],
            outcome: vec![Outcome::Completed; members.len()],
            recorded: None,
        }
    }

    pub(crate) fn runs(&self) -> usize {
        self.lambdas.len()
    }

    /// Whether a group on `course` has a span left to train: updates left and a member
    /// still training.
    pub(crate) fn wants_span(&self, course: &Course) -> bool {
        !course.finished() && !course.paused() && self.any_training()
    }

    /// Stops member `r` where it is (successive halving did not promote it): it trains
    /// no further and keeps its parameters and history.
    pub(crate) fn stop(&mut self, r: usize, mark: Mark) {
        if self.training(r) {
            self.outcome[r] = Outcome::Stopped { epoch: mark.epoch };
        }
    }

    /// Whether a group on `course` is done: every update made and its last span recorded,
    /// or no member still training.
    pub(crate) fn done(&self, course: &Course) -> bool {
        (course.finished() && self.recorded == Some(course.mark().span)) || !self.any_training()
    }

    pub(crate) fn any_training(&self) -> bool {
        self.outcome.contains(&Outcome::Completed)
    }

    pub(crate) fn training(&self, r: usize) -> bool {
        self.outcome[r] == Outcome::Completed
    }

    /// Every member's learning rate at update `u`, in `T`.
    pub(crate) fn rates<T: Real>(&self, u: usize) -> Vec<T> {
        self.schedules
            .iter()
            .map(|s| T::from_f64(s.eta(u)))
            .collect()
    }

    /// Appends the metrics taken at `mark` of the members still training and marks those
    /// whose cost is not finite as diverged; returns which members it marked.
    pub(crate) fn record(
        &mut self,
        mark: Mark,
        train: &[SplitMetrics],
        val: &[SplitMetrics],
    ) -> Vec<usize> {
        // A group that paused (successive halving) is scored again as it trains on from
        // the pause; its metrics there are already recorded.
        if self.recorded == Some(mark.span) {
            return Vec::new();
        }
        self.recorded = Some(mark.span);
        let mut diverged = Vec::new();
        for r in 0..self.runs() {
            if !self.training(r) {
                continue;
            }
            self.history[r].push(EpochMetrics {
                epoch: mark.epoch,
                update: mark.update,
                eta: self.schedules[r].eta(mark.update),
                train: train[r],
                val: val[r],
            });
            if !(train[r].cost.is_finite() && val[r].cost.is_finite()) {
                self.outcome[r] = Outcome::Diverged { epoch: mark.epoch };
                diverged.push(r);
            }
        }
        diverged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Init;

    fn cfg(length: Length, eval_every: usize) -> TrainConfig {
        TrainConfig {
            length,
            eval_every,
            ..TrainConfig::epochs(3, 1, 5, true, 0.01)
        }
    }

    fn spans(mut c: Course) -> Vec<(Mark, Vec<Vec<u32>>)> {
        let mut out = Vec::new();
        while !c.finished() {
            let mut batches = Vec::new();
            c.span(|b, _, _| batches.push(b.to_vec()));
            out.push((c.mark(), batches));
        }
        out
    }

    #[test]
    fn an_update_count_crosses_epochs_with_a_fresh_shuffle_at_each() {
        // 7 examples in batches of 3: 3 batches an epoch (3, 3, 1); 5 updates.
        let got = spans(Course::new(&cfg(Length::Updates(5), 0), 7));
        let marks: Vec<_> = got.iter().map(|(m, _)| (m.epoch, m.update)).collect();
        assert_eq!(marks, [(1, 3), (1, 5)], "an epoch, then the 2 updates left");
        let first: Vec<u32> = got[0].1.concat();
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            (0..7).collect::<Vec<_>>(),
            "an epoch sees every example"
        );
        assert_ne!(
            got[1].1[0], got[0].1[0],
            "the second epoch is shuffled anew"
        );
    }

    #[test]
    fn eval_every_records_every_n_updates_and_at_the_end() {
        let got = spans(Course::new(&cfg(Length::Epochs(2), 4), 7));
        let updates: Vec<_> = got.iter().map(|(m, _)| m.update).collect();
        assert_eq!(updates, [4, 6]);
        assert_eq!(Course::new(&cfg(Length::Epochs(2), 4), 7).spans(), 2);
    }

    #[test]
    fn flips_are_drawn_per_image_from_the_seed() {
        let mut c = TrainConfig {
            augment: Augment::Flip,
            init: Init::Xavier,
            ..cfg(Length::Epochs(1), 0)
        };
        c.batch_size = 64;
        let draw = |c: &TrainConfig| {
            let mut course = Course::new(c, 640);
            let mut all = Vec::new();
            course.span(|_, f, _| all.extend_from_slice(f.unwrap()));
            all
        };
        let a = draw(&c);
        assert_eq!(a, draw(&c));
        let heads = a.iter().filter(|&&f| f).count();
        assert!((250..390).contains(&heads), "{heads} of 640 mirrored");
        c.seed += 1;
        assert_ne!(a, draw(&c));
    }
}
