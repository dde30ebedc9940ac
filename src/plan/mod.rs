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

use crate::spec::{AXES, AXIS_COUNT, AXIS_KEYS, AxisName, AxisValue, IdPart, Precision, ValidSpec};

/// Largest number of runs a sweep may plan.
pub(crate) const MAX_RUNS: usize = 1_000_000;

/// The two hyperparameters in which the runs of a group may differ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyper {
    /// L2 penalty factor (>= 0).
    pub lambda: f64,
    /// Learning rate (> 0).
    pub eta: f64,
}

/// What the runs of a training group share.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub batch_size: usize,
    pub epochs: usize,
    /// Seeds the initial weights and the per-epoch shuffles.
    pub seed: u64,
    /// Reshuffle the training set each epoch; `false` keeps the file order (as the lab).
    pub shuffle: bool,
    /// Standard deviation of the N(0, std^2) initial weights and biases.
    pub init_std: f64,
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

/// A value as a CSV cell: floats as [`num`].
fn csv_text(v: AxisValue) -> String {
    match v {
        AxisValue::Float(x) => num(x),
        AxisValue::Int(x) => x.to_string(),
        AxisValue::Bool(x) => x.to_string(),
        AxisValue::Precision(p) => p.as_str().to_string(),
    }
}

/// A value in a run id: floats in Rust's `Display` form (`0`, `0.00001`), which is
/// what ids have always used (unlike the CSV cells' [`num`]).
fn id_text(v: AxisValue) -> String {
    match v {
        AxisValue::Float(x) => x.to_string(),
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
        }
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
            (name, value) => unreachable!("invariant broken: spec gave {value:?} for {name:?}"),
        }
    }

    /// The parameter values as CSV fields, in [`PARAM_COLUMNS`] order.
    pub fn csv_fields(&self) -> [String; AXIS_COUNT] {
        AXES.map(|axis| csv_text(self.get(axis.name)))
    }

    pub(crate) fn hyper(&self) -> Hyper {
        Hyper {
            lambda: self.lambda,
            eta: self.eta,
        }
    }

    pub(crate) fn train_config(&self) -> TrainConfig {
        TrainConfig {
            batch_size: self.batch_size,
            epochs: self.epochs,
            seed: self.seed,
            shuffle: self.shuffle,
            init_std: self.init_std,
        }
    }

    /// Runs with equal keys see the same examples in the same order from the same
    /// initial weights, and so can train fused.
    pub(crate) fn group_key(&self) -> (usize, usize, u64, bool, Precision, u64) {
        (
            self.batch_size,
            self.epochs,
            self.seed,
            self.shuffle,
            self.precision,
            self.init_std.to_bits(),
        )
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
            let value = p.get(axis.name);
            let (label, shown) = match axis.id {
                IdPart::Always(label) => (Some(label), true),
                IdPart::UnlessDefault(label) => (Some(label), value != axis.default),
                IdPart::ValueUnlessDefault => (None, value != axis.default),
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
            let params = params_from(&values);
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
