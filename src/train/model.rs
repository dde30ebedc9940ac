//! The model seam: what `exec` needs of a kind of model to train fused groups of runs,
//! score them in cohorts and hand their parameters to `output`, and what the gradient
//! check needs to compare training's gradients with finite differences.
//!
//! A kind of model is a [`Trainer`] (one fused group of runs that read the same
//! mini-batches) with its [`Snapshot`] (a copy of several groups' parameters, scored
//! together chunk by chunk while the groups train on). The linear softmax
//! ([`super::linear`]) is the first; a network plugs in beside it as another file with
//! its own `Trainer`, and `exec` dispatches on the run's model once per cohort.

use super::eval::ChunkSums;
use super::{Fitted, NamedArray, Real, SplitMetrics};
use crate::data::Dataset;
use crate::plan::{Hyper, TrainConfig};

/// A fused group of runs of one kind of model, trained span by span (the updates between
/// two recordings of metrics, see [`super::course`]).
///
/// Members share `TrainConfig` (data order, batch size, length, initialisation, model)
/// and differ in their [`Hyper`]; a member's results never depend on the others it
/// trains with, or on the thread count.
pub trait Trainer<'d>: Send + Sized {
    type Real: Real;
    /// Scores several groups of this kind at once.
    type Snapshot: Snapshot<'d, Self>;

    /// Initialises every member from `cfg`'s seed; nothing recorded yet.
    fn new(data: &'d Dataset, cfg: &TrainConfig, members: &[Hyper]) -> Self;
    /// Rows of the product that reads each mini-batch, per run, on `data`: cohorts are
    /// sized by them (K for the linear model; a network's first hidden width).
    fn rows_per_run(data: &Dataset) -> usize;
    /// Makes what scoring `runs` stacked runs of this kind on `data` will read, before
    /// a cohort's first epoch (so the first evaluation does not make it on one thread).
    fn prepare_scoring(data: &Dataset, runs: usize);

    /// Members of the group.
    fn runs(&self) -> usize;
    /// Spans trained so far.
    fn spans(&self) -> usize;
    /// The last span whose metrics are recorded (0: the initial parameters), if any.
    fn recorded(&self) -> Option<usize>;
    /// Whether [`Trainer::train_span`] has a span left to train.
    fn wants_span(&self) -> bool;
    /// Every span trained and recorded, or every member diverged.
    fn done(&self) -> bool;
    /// Trains one more span.
    fn train_span(&mut self);
    /// The trained members, with their test metrics where the data has a test split.
    fn finish(self) -> Vec<Fitted<Self::Real>>;

    /// Pauses the group after `update` updates (see [`Trainer::paused`]); a later call
    /// with a larger value lets it train on, exactly as if it had never paused.
    fn pause_at(&mut self, update: usize);
    /// Stopped at the update [`Trainer::pause_at`] set, with its metrics there recorded
    /// and a member still training.
    fn paused(&self) -> bool {
        !self.done() && !self.wants_span() && self.recorded() == Some(self.spans())
    }
    /// Stops member `r` where it is: it trains no further and finishes as
    /// [`super::Outcome::Stopped`] with its parameters and history now.
    fn stop(&mut self, r: usize);
    /// Member `r`'s metrics recorded so far.
    fn history(&self, r: usize) -> &[super::EpochMetrics];

    /// Every member's parameters now, as the arrays [`Fitted::arrays`] would hold.
    fn arrays(&self) -> Vec<Vec<NamedArray<Self::Real>>>;
    /// Every member's gradients of its cost on training examples `examples` at its
    /// parameters now, by the code an update of [`Trainer::train_span`] uses, named
    /// as [`Trainer::arrays`]. The gradient check compares these with finite differences.
    fn gradients(&mut self, examples: &[u32]) -> Vec<Vec<NamedArray<Self::Real>>>;
}

/// A copy of several groups' parameters (see [`Trainer`]), scored on the training and
/// validation splits in chunks that any thread may take in any order.
pub trait Snapshot<'d, G: Trainer<'d>>: Sync + Sized {
    /// One scoring worker's buffers.
    type Scratch: Send;

    /// Copies the current parameters of `groups`, which train on the same data.
    fn take(groups: &[&G]) -> Self;
    /// How many chunks scoring is split into.
    fn chunks(&self, data: &Dataset) -> usize;
    /// Scores chunk `i` with every run; `scratch` is the calling worker's.
    fn score_chunk(
        &self,
        data: &Dataset,
        i: usize,
        scratch: &mut Option<Self::Scratch>,
    ) -> ChunkSums;
    /// The metrics from every chunk's sums, added in chunk order.
    fn scores(&self, data: &Dataset, chunks: &[ChunkSums]) -> Scores;
    /// Records `scores` as the snapshot's span of each group (in the order taken); a
    /// member whose cost is not finite stops there as diverged, with the parameters it
    /// had then.
    fn record(&self, scores: &Scores, groups: &mut [&mut G]);
}

/// A snapshot's training and validation metrics, one per run.
pub struct Scores {
    pub(crate) train: Vec<SplitMetrics>,
    pub(crate) val: Vec<SplitMetrics>,
}

/// Scores every run of `snap` on the training and validation splits of `data`, in
/// parallel on the current rayon pool.
pub fn score<'d, G: Trainer<'d>>(snap: &G::Snapshot, data: &Dataset) -> Scores {
    use rayon::prelude::*;
    let chunks: Vec<ChunkSums> = (0..snap.chunks(data))
        .into_par_iter()
        .with_max_len(1)
        .map_init(|| None, |sc, i| snap.score_chunk(data, i, sc))
        .collect();
    snap.scores(data, &chunks)
}

/// Records the current span's training and validation metrics of every group in
/// `groups`, scoring them together (see [`Snapshot`]). Every group must train on `data`.
pub fn record_together<'d, G: Trainer<'d>>(data: &Dataset, groups: &mut [&mut G]) {
    if groups.is_empty() {
        return;
    }
    let snap = G::Snapshot::take(&groups.iter().map(|g| &**g).collect::<Vec<_>>());
    let scores = score::<G>(&snap, data);
    snap.record(&scores, groups);
}

/// Trains every member of a group (runs sharing `cfg`) on `data` from start to end,
/// recording metrics at the start and after every span. `on_span` is called after each
/// span with the number of spans done.
pub fn train_group<'d, G: Trainer<'d>>(
    data: &'d Dataset,
    cfg: &TrainConfig,
    members: &[Hyper],
    on_span: &(dyn Fn(usize) + Sync),
) -> Vec<Fitted<G::Real>> {
    let mut group = G::new(data, cfg, members);
    G::prepare_scoring(data, members.len());
    record_together(data, &mut [&mut group]);
    while !group.done() {
        group.train_span();
        record_together(data, &mut [&mut group]);
        on_span(group.spans());
    }
    group.finish()
}

/// Trains a single run; the same as a group of one.
pub fn fit<'d, G: Trainer<'d>>(
    data: &'d Dataset,
    cfg: &TrainConfig,
    hyper: Hyper,
) -> Fitted<G::Real> {
    train_group::<G>(data, cfg, &[hyper], &|_| {})
        .pop()
        .expect("one member")
}
