//! The plan: the sweep's grids expanded into an ordered list of distinct runs.
//!
//! Order is deterministic: grids in file order, each grid's axes in declared order as an
//! odometer (the last axis, always the seed, turns fastest). A run that appears twice is
//! kept once, at its first place. Each run is named by a [`RunId`] derived only from its
//! parameters, so it keeps its name and its output folder when the grid is edited.
//!
//! The second stage: imports only `spec`. The axes, their defaults, CSV columns and run-id
//! parts come from the spec's axis table ([`crate::spec::AXES`]); [`RunParams`] holds one
//! field per axis, reached through [`RunParams::get`] and [`RunParams::set`].

use std::collections::HashSet;
use std::fmt;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::spec::{
    AXES, AXIS_COUNT, AXIS_KEYS, Augment, AxisName, AxisValue, IdPart, Init, LossName, Precision,
    ScheduleName, ValidSpec, Widths,
};

/// Largest number of runs a sweep may plan.
pub(crate) const MAX_RUNS: usize = 1_000_000;

/// The learning rate of every update of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// `eta` throughout.
    Constant { eta: f64 },
    /// Triangular cycles: from `min` up to `max` in `step_size` updates, and back down in
    /// as many.
    Cyclic {
        min: f64,
        max: f64,
        step_size: usize,
    },
    /// `eta * decay^floor(epoch / every)`, with `every` in epochs.
    Step { eta: f64, decay: f64, every: usize },
}

/// What the runs of a fused group may differ in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyper {
    /// L2 penalty factor (>= 0).
    pub lambda: f64,
    pub rate: Rate,
}

impl Hyper {
    /// A constant rate `eta`.
    pub fn constant(lambda: f64, eta: f64) -> Self {
        Hyper {
            lambda,
            rate: Rate::Constant { eta },
        }
    }
}

/// How long a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    Epochs(usize),
    /// A number of updates, crossing epoch boundaries where the batches fall.
    Updates(usize),
}

/// What the runs of a training group share.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub batch_size: usize,
    pub length: Length,
    /// Seeds the initial weights, the per-epoch shuffles, flips and dropout.
    pub seed: u64,
    /// Reshuffle the training set each epoch; `false` keeps the file order (as the lab).
    pub shuffle: bool,
    pub init: Init,
    /// Standard deviation of the N(0, std^2) initial weights and biases of `Init::Normal`.
    pub init_std: f64,
    /// Widths of the hidden layers (none: the linear classifier).
    pub hidden: Vec<usize>,
    pub loss: LossName,
    pub augment: Augment,
    /// Probability of dropping a hidden unit in training.
    pub dropout: f64,
    /// Updates between recorded metrics; 0: every epoch.
    pub eval_every: usize,
    /// Batch normalisation of the hidden layers, if any.
    pub norm: Option<Norm>,
}

/// Batch normalisation's constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Norm {
    /// `avg = momentum * avg + (1 - momentum) * batch_stat` after each update.
    pub momentum: f64,
    /// Added to the variance before its square root.
    pub eps: f64,
}

impl TrainConfig {
    /// A linear model's plain configuration: `epochs` epochs, normal init, no extras.
    pub fn epochs(
        batch_size: usize,
        epochs: usize,
        seed: u64,
        shuffle: bool,
        init_std: f64,
    ) -> Self {
        TrainConfig {
            batch_size,
            length: Length::Epochs(epochs),
            seed,
            shuffle,
            init: Init::Normal,
            init_std,
            hidden: Vec::new(),
            loss: LossName::CrossEntropy,
            augment: Augment::None,
            dropout: 0.0,
            eval_every: 0,
            norm: None,
        }
    }
}

/// A float as text (run ids, CSV cells): the shortest digits that read back to the same
/// value, in scientific notation when that is shorter (`1e-5`, `0.1`, `1.0`).
pub(crate) fn num(v: f64) -> String {
    format!("{v:?}")
}

/// The parameters of one training run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunParams {
    pub lambda: f64,
    pub eta: f64,
    pub batch_size: usize,
    pub epochs: usize,
    pub seed: u64,
    pub shuffle: bool,
    #[serde(with = "precision_serde")]
    pub precision: Precision,
    pub init_std: f64,
    #[serde(default)]
    pub hidden: Widths,
    #[serde(default = "default_init")]
    pub init: Init,
    #[serde(default = "default_loss")]
    pub loss: LossName,
    #[serde(default = "default_schedule")]
    pub schedule: ScheduleName,
    #[serde(default)]
    pub eta_min: f64,
    #[serde(default)]
    pub eta_max: f64,
    #[serde(default)]
    pub step_size: usize,
    #[serde(default)]
    pub cycles: usize,
    #[serde(default)]
    pub decay: f64,
    #[serde(default)]
    pub decay_every: usize,
    #[serde(default)]
    pub eval_every: usize,
    #[serde(default = "default_augment")]
    pub augment: Augment,
    #[serde(default)]
    pub dropout: f64,
    #[serde(default)]
    pub batch_norm: bool,
    #[serde(default)]
    pub bn_momentum: f64,
    #[serde(default)]
    pub bn_eps: f64,
}

// Defaults of the fields that runs recorded before they existed lack (their runs are
// of these, the only values there were); the numbers of a run that lacks the others
// are the axes' defaults too, normalised on reading ([`RunParams::normalised`]).
fn default_init() -> Init {
    Init::Normal
}
fn default_loss() -> LossName {
    LossName::CrossEntropy
}
fn default_schedule() -> ScheduleName {
    ScheduleName::Constant
}
fn default_augment() -> Augment {
    Augment::None
}

mod precision_serde {
    use super::Precision;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(p: &Precision, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(p.as_str())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Precision, D::Error> {
        match String::deserialize(d)?.as_str() {
            "f32" => Ok(Precision::F32),
            "f64" => Ok(Precision::F64),
            other => Err(serde::de::Error::custom(format!(
                "unknown precision {other:?}"
            ))),
        }
    }
}

/// Names of the parameter columns, in CSV order: the axes' keys.
pub const PARAM_COLUMNS: [&str; AXIS_COUNT] = AXIS_KEYS;

/// A value as a CSV cell: floats as [`num`], widths as `[50, 50]`.
fn csv_text(v: AxisValue) -> String {
    match v {
        AxisValue::Float(x) => num(x),
        AxisValue::Int(x) => x.to_string(),
        AxisValue::Bool(x) => x.to_string(),
        AxisValue::Precision(p) => p.as_str().to_string(),
        AxisValue::Hidden(w) => w.to_string(),
        AxisValue::Init(x) => x.to_string(),
        AxisValue::Loss(x) => x.to_string(),
        AxisValue::Schedule(x) => x.to_string(),
        AxisValue::Augment(x) => x.to_string(),
    }
}

/// A value in a run id: floats in Rust's `Display` form (`0`, `0.00001`), which is
/// what ids have always used (unlike the CSV cells' [`num`]); widths as `50-50`.
fn id_text(v: AxisValue) -> String {
    match v {
        AxisValue::Float(x) => x.to_string(),
        AxisValue::Hidden(w) => w.dashed(),
        other => csv_text(other),
    }
}

impl Default for RunParams {
    /// Every axis at its default.
    fn default() -> Self {
        let mut p = RunParams {
            lambda: 0.0,
            eta: 0.0,
            batch_size: 0,
            epochs: 0,
            seed: 0,
            shuffle: false,
            precision: Precision::F32,
            init_std: 0.0,
            hidden: Widths::default(),
            init: Init::Normal,
            loss: LossName::CrossEntropy,
            schedule: ScheduleName::Constant,
            eta_min: 0.0,
            eta_max: 0.0,
            step_size: 0,
            cycles: 0,
            decay: 0.0,
            decay_every: 0,
            eval_every: 0,
            augment: Augment::None,
            dropout: 0.0,
            batch_norm: false,
            bn_momentum: 0.0,
            bn_eps: 0.0,
        };
        for axis in &AXES {
            p.set(axis.name, axis.default);
        }
        p
    }
}

impl RunParams {
    /// The value of one axis.
    pub(crate) fn get(&self, name: AxisName) -> AxisValue {
        match name {
            AxisName::Lambda => AxisValue::Float(self.lambda),
            AxisName::Eta => AxisValue::Float(self.eta),
            AxisName::BatchSize => AxisValue::Int(self.batch_size as u64),
            AxisName::Epochs => AxisValue::Int(self.epochs as u64),
            AxisName::Seed => AxisValue::Int(self.seed),
            AxisName::Shuffle => AxisValue::Bool(self.shuffle),
            AxisName::Precision => AxisValue::Precision(self.precision),
            AxisName::InitStd => AxisValue::Float(self.init_std),
            AxisName::Hidden => AxisValue::Hidden(self.hidden),
            AxisName::Init => AxisValue::Init(self.init),
            AxisName::Loss => AxisValue::Loss(self.loss),
            AxisName::Schedule => AxisValue::Schedule(self.schedule),
            AxisName::EtaMin => AxisValue::Float(self.eta_min),
            AxisName::EtaMax => AxisValue::Float(self.eta_max),
            AxisName::StepSize => AxisValue::Int(self.step_size as u64),
            AxisName::Cycles => AxisValue::Int(self.cycles as u64),
            AxisName::Decay => AxisValue::Float(self.decay),
            AxisName::DecayEvery => AxisValue::Int(self.decay_every as u64),
            AxisName::EvalEvery => AxisValue::Int(self.eval_every as u64),
            AxisName::Augment => AxisValue::Augment(self.augment),
            AxisName::Dropout => AxisValue::Float(self.dropout),
            AxisName::BatchNorm => AxisValue::Bool(self.batch_norm),
            AxisName::BnMomentum => AxisValue::Float(self.bn_momentum),
            AxisName::BnEps => AxisValue::Float(self.bn_eps),
        }
    }

    /// Whether an axis means anything for this run: `eta` and `epochs` not for a
    /// cyclic schedule, `eta_min` and the like only for one, `init_std` only for normal
    /// init, `dropout` only with hidden layers. An axis that does not apply is at its
    /// default in every run, left out of the run id and an empty CSV cell.
    pub fn applies(&self, name: AxisName) -> bool {
        let cyclic = self.schedule == ScheduleName::Cyclic;
        match name {
            AxisName::Eta | AxisName::Epochs => !cyclic,
            AxisName::EtaMin | AxisName::EtaMax | AxisName::StepSize | AxisName::Cycles => cyclic,
            AxisName::Decay | AxisName::DecayEvery => self.schedule == ScheduleName::Step,
            AxisName::InitStd => self.init == Init::Normal,
            AxisName::Dropout | AxisName::BatchNorm => !self.hidden.is_empty(),
            AxisName::BnMomentum | AxisName::BnEps => self.batch_norm && !self.hidden.is_empty(),
            _ => true,
        }
    }

    /// The same run with every axis that does not apply ([`RunParams::applies`]) at its
    /// default, so that runs that differ only there are one run.
    pub(crate) fn normalised(mut self) -> Self {
        for axis in &AXES {
            if !self.applies(axis.name) {
                self.set(axis.name, axis.default);
            }
        }
        self
    }

    /// Sets one axis; the spec checked that the value is of the axis's kind.
    fn set(&mut self, name: AxisName, value: AxisValue) {
        match (name, value) {
            (AxisName::Lambda, AxisValue::Float(x)) => self.lambda = x,
            (AxisName::Eta, AxisValue::Float(x)) => self.eta = x,
            (AxisName::BatchSize, AxisValue::Int(x)) => self.batch_size = x as usize,
            (AxisName::Epochs, AxisValue::Int(x)) => self.epochs = x as usize,
            (AxisName::Seed, AxisValue::Int(x)) => self.seed = x,
            (AxisName::Shuffle, AxisValue::Bool(x)) => self.shuffle = x,
            (AxisName::Precision, AxisValue::Precision(x)) => self.precision = x,
            (AxisName::InitStd, AxisValue::Float(x)) => self.init_std = x,
            (AxisName::Hidden, AxisValue::Hidden(x)) => self.hidden = x,
            (AxisName::Init, AxisValue::Init(x)) => self.init = x,
            (AxisName::Loss, AxisValue::Loss(x)) => self.loss = x,
            (AxisName::Schedule, AxisValue::Schedule(x)) => self.schedule = x,
            (AxisName::EtaMin, AxisValue::Float(x)) => self.eta_min = x,
            (AxisName::EtaMax, AxisValue::Float(x)) => self.eta_max = x,
            (AxisName::StepSize, AxisValue::Int(x)) => self.step_size = x as usize,
            (AxisName::Cycles, AxisValue::Int(x)) => self.cycles = x as usize,
            (AxisName::Decay, AxisValue::Float(x)) => self.decay = x,
            (AxisName::DecayEvery, AxisValue::Int(x)) => self.decay_every = x as usize,
            (AxisName::EvalEvery, AxisValue::Int(x)) => self.eval_every = x as usize,
            (AxisName::Augment, AxisValue::Augment(x)) => self.augment = x,
            (AxisName::Dropout, AxisValue::Float(x)) => self.dropout = x,
            (AxisName::BatchNorm, AxisValue::Bool(x)) => self.batch_norm = x,
            (AxisName::BnMomentum, AxisValue::Float(x)) => self.bn_momentum = x,
            (AxisName::BnEps, AxisValue::Float(x)) => self.bn_eps = x,
            (name, value) => unreachable!("invariant broken: spec gave {value:?} for {name:?}"),
        }
    }

    /// The parameter values as CSV fields, in [`PARAM_COLUMNS`] order; empty where
    /// the axis does not apply.
    pub fn csv_fields(&self) -> [String; AXIS_COUNT] {
        AXES.map(|axis| {
            if self.applies(axis.name) {
                csv_text(self.get(axis.name))
            } else {
                String::new()
            }
        })
    }

    pub(crate) fn hyper(&self) -> Hyper {
        let rate = match self.schedule {
            ScheduleName::Constant => Rate::Constant { eta: self.eta },
            ScheduleName::Cyclic => Rate::Cyclic {
                min: self.eta_min,
                max: self.eta_max,
                step_size: self.step_size,
            },
            ScheduleName::Step => Rate::Step {
                eta: self.eta,
                decay: self.decay,
                every: self.decay_every,
            },
        };
        Hyper {
            lambda: self.lambda,
            rate,
        }
    }

    pub(crate) fn train_config(&self) -> TrainConfig {
        TrainConfig {
            batch_size: self.batch_size,
            length: match self.schedule {
                ScheduleName::Cyclic => Length::Updates(2 * self.step_size * self.cycles),
                _ => Length::Epochs(self.epochs),
            },
            seed: self.seed,
            shuffle: self.shuffle,
            init: self.init,
            init_std: self.init_std,
            hidden: self.hidden.to_vec(),
            loss: self.loss,
            augment: self.augment,
            dropout: self.dropout,
            eval_every: self.eval_every,
            norm: self.batch_norm.then_some(Norm {
                momentum: self.bn_momentum,
                eps: self.bn_eps,
            }),
        }
    }

    /// Updates of a run on `n` training examples.
    pub fn updates(&self, n: usize) -> usize {
        match self.train_config().length {
            Length::Epochs(e) => e * n.div_ceil(self.batch_size.min(n).max(1)),
            Length::Updates(u) => u,
        }
    }

    /// Times metrics are recorded after the initial ones, on `n` training examples.
    pub fn records(&self, n: usize) -> usize {
        let updates = self.updates(n);
        match self.eval_every {
            0 => {
                let per_epoch = n.div_ceil(self.batch_size.min(n).max(1));
                updates.div_ceil(per_epoch)
            }
            every => updates.div_ceil(every),
        }
    }

    /// Runs with equal keys see the same examples in the same order from the same
    /// initial weights, and so can train fused: every axis but the penalty and the
    /// rates ([`Hyper`]), with the precision.
    pub(crate) fn group_key(&self) -> (Precision, Vec<String>) {
        let fields = self.csv_fields();
        let shared = AXES
            .iter()
            .zip(fields)
            .filter(|(axis, _)| {
                !matches!(
                    axis.name,
                    AxisName::Lambda
                        | AxisName::Eta
                        | AxisName::EtaMin
                        | AxisName::EtaMax
                        | AxisName::Decay
                        | AxisName::DecayEvery
                )
            })
            .map(|(_, f)| f)
            .collect();
        (self.precision, shared)
    }
}

/// A run's stable, readable name, e.g. `lambda=0.1_eta=0.001_batch=100_epochs=40_seed=1`.
///
/// Shuffling, precision and init std are appended only when they differ from the
/// defaults (`_shuffle=false`, `_f64`, `_std=0.1`). Numbers use Rust's shortest
/// round-trip formatting, so distinct values give distinct ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(String);

impl RunId {
    pub(crate) fn new(p: &RunParams) -> Self {
        let mut id = String::new();
        for axis in &AXES {
            if !p.applies(axis.name) {
                continue;
            }
            let value = p.get(axis.name);
            let (label, shown) = match axis.id {
                IdPart::Always(label) => (Some(label), true),
                IdPart::UnlessDefault(label) => (Some(label), value != axis.default),
                IdPart::ValueUnlessDefault => (None, value != axis.default),
                IdPart::Flag(label) => {
                    if value == AxisValue::Bool(true) {
                        if !id.is_empty() {
                            id.push('_');
                        }
                        id.push_str(label);
                    }
                    continue;
                }
            };
            if !shown {
                continue;
            }
            if !id.is_empty() {
                id.push('_');
            }
            match label {
                Some(label) => write!(id, "{label}={}", id_text(value)),
                None => write!(id, "{}", id_text(value)),
            }
            .expect("writing to a String cannot fail");
        }
        RunId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the run's setting: the id without its seed.
    pub fn setting(&self) -> String {
        self.0
            .split('_')
            .filter(|part| !part.starts_with("seed="))
            .collect::<Vec<_>>()
            .join("_")
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One planned run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub id: RunId,
    pub params: RunParams,
}

/// The ordered, duplicate-free runs of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub runs: Vec<RunSpec>,
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the sweep expands to {count} runs, more than the limit of {MAX_RUNS}; split it into several sweep files"
    )]
    TooLarge { count: u128 },
}

fn params_from(values: &[(AxisName, AxisValue)]) -> RunParams {
    let mut p = RunParams::default();
    for &(name, value) in values {
        p.set(name, value);
    }
    p
}

/// Expands the spec's grids into the plan.
pub fn expand(spec: &ValidSpec) -> Result<Plan, PlanError> {
    let count: u128 = spec
        .grids
        .iter()
        .map(|g| {
            g.axes
                .iter()
                .map(|a| a.values.len() as u128)
                .product::<u128>()
        })
        .sum();
    if count > MAX_RUNS as u128 {
        return Err(PlanError::TooLarge { count });
    }
    let mut seen = HashSet::new();
    let mut runs = Vec::new();
    for grid in &spec.grids {
        let mut odometer = vec![0usize; grid.axes.len()];
        'grid: loop {
            let values: Vec<_> = grid
                .axes
                .iter()
                .zip(&odometer)
                .map(|(a, &i)| (a.name, a.values[i]))
                .collect();
            let params = params_from(&values).normalised();
            let id = RunId::new(&params);
            if seen.insert(id.clone()) {
                runs.push(RunSpec { id, params });
            }
            for pos in (0..odometer.len()).rev() {
                odometer[pos] += 1;
                if odometer[pos] < grid.axes[pos].values.len() {
                    continue 'grid;
                }
                odometer[pos] = 0;
            }
            break;
        }
    }
    Ok(Plan { runs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn plan(text: &str) -> Plan {
        let full = format!("[data]\ntrain = [\"a\"]\nval = [\"b\"]\n{text}");
        expand(&crate::spec::parse(Path::new("s.toml"), &full, None).unwrap()).unwrap()
    }

    #[test]
    fn expands_the_lab_study_in_documented_order() {
        let p = plan(
            "[train]\nseed = [1, 2]\n[[grid]]\nlambda = 0.0\neta = [0.1, 0.001]\n[[grid]]\nlambda = [0.1, 1.0]\neta = 0.001\n",
        );
        let ids: Vec<_> = p.runs.iter().map(|r| r.id.to_string()).collect();
        assert_eq!(
            ids,
            [
                "lambda=0_eta=0.1_batch=100_epochs=40_seed=1",
                "lambda=0_eta=0.1_batch=100_epochs=40_seed=2",
                "lambda=0_eta=0.001_batch=100_epochs=40_seed=1",
                "lambda=0_eta=0.001_batch=100_epochs=40_seed=2",
                "lambda=0.1_eta=0.001_batch=100_epochs=40_seed=1",
                "lambda=0.1_eta=0.001_batch=100_epochs=40_seed=2",
                "lambda=1_eta=0.001_batch=100_epochs=40_seed=1",
                "lambda=1_eta=0.001_batch=100_epochs=40_seed=2",
            ]
        );
    }

    #[test]
    fn duplicates_are_run_once_and_size_is_the_product() {
        let p = plan("[[grid]]\neta = [0.1, 0.2]\n[[grid]]\neta = [0.2, 0.3]\nseed = [1, 2, 3]\n");
        assert_eq!(p.runs.len(), 2 + 6 - 1);
        let p = plan("[train]\neta = [1, 2, 3]\nlambda = [0, 1]\nepochs = [1, 2]\nseed = [5, 6]\n");
        assert_eq!(p.runs.len(), 3 * 2 * 2 * 2);
    }

    #[test]
    fn run_id_ignores_grid_position_and_marks_non_defaults() {
        let a = plan("[train]\neta = [0.1, 0.2]\n");
        let b = plan("[train]\neta = [0.2, 0.1]\n");
        assert_eq!(a.runs[0].id, b.runs[1].id);
        let c = plan("[train]\nshuffle = false\nprecision = \"f64\"\ninit_std = 0.1\n");
        assert!(
            c.runs[0]
                .id
                .as_str()
                .ends_with("_seed=1_shuffle=false_f64_std=0.1")
        );
    }
}
