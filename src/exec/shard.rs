//! Splitting a sweep's plan into shards that separate processes (or Slurm array
//! tasks) can run independently.
//!
//! This module owns four things:
//! - [`Shard`], a validated "shard `index` of `count`" (written `I/N`, 0-based),
//!   and [`ShardArg`], the `--shard` value that is either `I/N` or `slurm`;
//! - [`from_slurm_env`], which turns a Slurm array task's `SLURM_ARRAY_TASK_*`
//!   variables into a [`Shard`];
//! - [`run_cost`], the one definition of a run's expected cost;
//! - [`assign`] and [`select`], which map a list of items with expected costs
//!   (planned runs, or groups of runs that must stay together) to shards, and
//!   [`runs_of`], which applies them to a plan.
//!
//! The assignment depends only on the list of costs in plan order. It never
//! looks at thread counts, the environment or the clock, so every shard of a
//! sweep computes the same split independently and the shards are disjoint and
//! together cover the plan without any coordination.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;

use crate::plan::{Length, Plan, RunParams};

/// What a valid `--shard` value looks like, for error messages.
const SHARD_FORM: &str = "expected I/N with 0 <= I < N, like 0/4";

/// Shard `index` of `count` (0-based), with `index < count` and `count >= 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// The single shard that holds the whole plan (`0/1`).
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; fails unless `index < count`.
    pub fn new(index: usize, count: usize) -> Result<Shard, ShardError> {
        if index < count {
            Ok(Shard { index, count })
        } else {
            Err(ShardError::OutOfRange { index, count })
        }
    }

    /// This shard's 0-based index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many shards the plan is split into.
    pub fn count(&self) -> usize {
        self.count
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    /// Parses `I/N`, for example `0/4` or `3/4`.
    fn from_str(text: &str) -> Result<Shard, ShardError> {
        let bad = |reason: &str| ShardError::Parse {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let (index, count) = text.split_once('/').ok_or_else(|| bad("no `/`"))?;
        let index: usize = index
            .trim()
            .parse()
            .map_err(|_| bad("I is not a non-negative integer"))?;
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| bad("N is not a non-negative integer"))?;
        if count == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index >= count {
            return Err(bad("I must be less than N (shards are numbered from 0)"));
        }
        Ok(Shard { index, count })
    }
}

/// The value of `--shard`: a fixed `I/N`, or `slurm` to read it from the Slurm
/// array task's environment when the run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    /// A shard given on the command line as `I/N`.
    Fixed(Shard),
    /// `slurm`: take the shard from `SLURM_ARRAY_TASK_*` (see [`from_slurm_env`]).
    Slurm,
}

impl ShardArg {
    /// The shard to run; `get` looks up an environment variable (pass
    /// `|k| std::env::var(k).ok()` in production, a map in tests).
    pub fn resolve(self, get: impl Fn(&str) -> Option<String>) -> Result<Shard, ShardError> {
        match self {
            ShardArg::Fixed(shard) => Ok(shard),
            ShardArg::Slurm => from_slurm_env(get),
        }
    }
}

impl FromStr for ShardArg {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<ShardArg, ShardError> {
        if text == "slurm" {
            return Ok(ShardArg::Slurm);
        }
        text.parse().map(ShardArg::Fixed).map_err(|e| match e {
            ShardError::Parse { text, reason } => ShardError::Parse {
                text,
                reason: format!("{reason}; or write `slurm` inside a Slurm array task"),
            },
            other => other,
        })
    }
}

/// Why a shard could not be parsed or derived from the Slurm environment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShardError {
    /// `--shard` text that is not `I/N`.
    #[error("invalid shard `{text}`: {reason}; {SHARD_FORM}")]
    Parse { text: String, reason: String },
    /// [`Shard::new`] with `index >= count`.
    #[error("shard index {index} is out of range for {count} shards; {SHARD_FORM}")]
    OutOfRange { index: usize, count: usize },
    /// `--shard slurm` outside a Slurm array task.
    #[error(
        "--shard slurm needs a Slurm array task, but SLURM_ARRAY_TASK_ID is not set; \
         submit the script from `sweep slurm` (an sbatch --array job), or pass --shard I/N"
    )]
    NotInArray,
    /// An array variable that Slurm always sets next to `SLURM_ARRAY_TASK_ID` is missing.
    #[error(
        "SLURM_ARRAY_TASK_ID is set but {var} is not; this Slurm is too old or the \
         environment was changed; pass --shard I/N instead"
    )]
    MissingVar { var: &'static str },
    /// An array variable that is not a non-negative integer.
    #[error("{var}=`{value}` from the Slurm environment is not a non-negative integer")]
    BadVar { var: &'static str, value: String },
    /// Array variables that do not describe an evenly spaced range `MIN-MAX:STEP`.
    #[error(
        "the Slurm array variables do not describe a range like 0-15 or 1-31:2 \
         ({detail}); submit the array as a range with one task per shard, and rerun \
         single shards with --shard I/N"
    )]
    NotARange { detail: String },
}

/// The shard of the current Slurm array task.
///
/// Task `SLURM_ARRAY_TASK_ID` of the array `MIN-MAX:STEP` is shard
/// `(ID - MIN) / STEP` of `COUNT`, so both `--array=0-15` and
/// `--array=1-31:2` give shards `0..16`. The count derived from the range,
/// `(MAX - MIN) / STEP + 1`, must agree with `SLURM_ARRAY_TASK_COUNT` when that
/// is set; it does not for lists such as `--array=0,3,7`, whose tasks could not
/// be numbered as shards without gaps.
///
/// `get` looks up an environment variable; it is a parameter so that tests
/// need not touch the process environment.
pub fn from_slurm_env(get: impl Fn(&str) -> Option<String>) -> Result<Shard, ShardError> {
    let read = |var: &'static str| -> Result<Option<u64>, ShardError> {
        match get(var) {
            None => Ok(None),
            Some(value) => value
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| ShardError::BadVar { var, value }),
        }
    };
    let require = |var: &'static str| read(var)?.ok_or(ShardError::MissingVar { var });

    let id = read("SLURM_ARRAY_TASK_ID")?.ok_or(ShardError::NotInArray)?;
    let min = require("SLURM_ARRAY_TASK_MIN")?;
    let max = require("SLURM_ARRAY_TASK_MAX")?;
    let step = require("SLURM_ARRAY_TASK_STEP")?;
    let count = read("SLURM_ARRAY_TASK_COUNT")?;

    let not_a_range = |detail: String| ShardError::NotARange { detail };
    if step == 0 {
        return Err(not_a_range("SLURM_ARRAY_TASK_STEP is 0".into()));
    }
    if min > max {
        return Err(not_a_range(format!("MIN={min} is above MAX={max}")));
    }
    if !(min..=max).contains(&id) {
        return Err(not_a_range(format!(
            "task id {id} is outside MIN-MAX {min}-{max}"
        )));
    }
    if (id - min) % step != 0 {
        return Err(not_a_range(format!(
            "task id {id} is not MIN={min} plus a multiple of STEP={step}"
        )));
    }
    let derived = (max - min) / step + 1;
    if let Some(count) = count
        && count != derived
    {
        return Err(not_a_range(format!(
            "SLURM_ARRAY_TASK_COUNT={count}, but {min}-{max}:{step} has {derived} tasks"
        )));
    }
    let as_usize = |v: u64| usize::try_from(v).expect("invariant broken: array size fits usize");
    Shard::new(as_usize((id - min) / step), as_usize(derived))
}

/// Expected cost of one run, the unit by which shards are balanced: its example visits
/// times the rows of the product that reads them.
///
/// The plan is split before the data is read (as `--dry-run` does), so a run of epochs
/// counts [`NOMINAL_EXAMPLES`] visits an epoch, and a run of updates (a cyclic schedule)
/// `batch_size` visits an update; the rows are the first hidden width, or 10 for the
/// linear model (the classes of CIFAR-10). [`assign`] gives the same shards for costs all
/// scaled by one positive factor, so when every run trains on the same data only the
/// proportions matter, and a sweep of the linear model on epochs balances by epochs alone.
pub(crate) fn run_cost(params: &RunParams) -> u64 {
    let visits = match params.train_config().length {
        Length::Epochs(e) => e as u64 * NOMINAL_EXAMPLES,
        Length::Updates(u) => u as u64 * params.batch_size as u64,
    };
    let rows = params
        .hidden
        .as_slice()
        .first()
        .map_or(10, |&w| u64::from(w));
    visits.saturating_mul(rows) / 10
}

/// The training examples a run of epochs is costed for (one CIFAR-10 batch file).
const NOMINAL_EXAMPLES: u64 = 10_000;

/// The runs of `plan` that belong to `shard`, in plan order, balanced by [`run_cost`].
pub(crate) fn runs_of(plan: &Plan, shard: Shard) -> Plan {
    let costs: Vec<u64> = plan.runs.iter().map(|r| run_cost(&r.params)).collect();
    Plan {
        runs: select(&costs, shard)
            .into_iter()
            .map(|i| plan.runs[i].clone())
            .collect(),
    }
}

/// The shard (`0..count`) of each item, given the items' expected costs in plan
/// order.
///
/// Items are placed greedily, most expensive first (ties by plan position),
/// each on the currently least-loaded shard (ties by fewest items, then by
/// lowest shard index); this is Graham's LPT rule. The item count breaks ties
/// so that items of cost 0, which still take some time, are dealt out evenly
/// instead of all landing on shard 0. Because every item goes to a shard that was least
/// loaded at the time, the final loads differ by at most the largest single
/// cost: `max load <= min load + max cost`. With equal costs it deals items out
/// round-robin, so shard sizes differ by at most one.
///
/// The result depends only on `costs` and `count`. Items are anything with a
/// cost that must run on one shard, such as single runs or groups of runs.
///
/// # Panics
///
/// If `count` is 0 (a [`Shard`] never has that count).
pub(crate) fn assign(costs: &[u64], count: usize) -> Vec<usize> {
    assert!(count >= 1, "assign needs at least one shard");
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by_key(|&i| (Reverse(costs[i]), i));
    // Min-heap on (load, items, shard): the least-loaded shard, then the one
    // with fewest items, then the lowest index. Loads are u128 so that no sum
    // of u64 costs can overflow.
    let mut heap: BinaryHeap<Reverse<(u128, usize, usize)>> =
        (0..count).map(|shard| Reverse((0, 0, shard))).collect();
    let mut shard_of = vec![0; costs.len()];
    for item in order {
        let Reverse((load, items, shard)) = heap
            .pop()
            .expect("invariant broken: heap holds count >= 1 shards");
        shard_of[item] = shard;
        heap.push(Reverse((load + u128::from(costs[item]), items + 1, shard)));
    }
    shard_of
}

/// Indices (into `costs`, i.e. plan positions) of the items in `shard`, in plan
/// order.
pub(crate) fn select(costs: &[u64], shard: Shard) -> Vec<usize> {
    assign(costs, shard.count)
        .into_iter()
        .enumerate()
        .filter(|&(_, s)| s == shard.index)
        .map(|(item, _)| item)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Total cost per shard of an assignment from [`assign`].
    fn loads(costs: &[u64], assignment: &[usize], count: usize) -> Vec<u128> {
        let mut loads = vec![0u128; count];
        for (&cost, &shard) in costs.iter().zip(assignment) {
            loads[shard] += u128::from(cost);
        }
        loads
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    /// The variables Slurm sets for task `id` of `--array=min-max:step`.
    fn array_env(id: u64, min: u64, max: u64, step: u64, count: u64) -> Vec<(String, String)> {
        [
            ("SLURM_ARRAY_TASK_ID", id),
            ("SLURM_ARRAY_TASK_MIN", min),
            ("SLURM_ARRAY_TASK_MAX", max),
            ("SLURM_ARRAY_TASK_STEP", step),
            ("SLURM_ARRAY_TASK_COUNT", count),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn lookup(vars: Vec<(String, String)>) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.into_iter().collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn parses_shard_text() {
        let s: Shard = "3/4".parse().unwrap();
        assert_eq!((s.index(), s.count()), (3, 4));
        assert_eq!(s.to_string(), "3/4");
        assert_eq!("0/1".parse::<Shard>().unwrap(), Shard::WHOLE);
        assert_eq!(
            " 1 / 2 ".trim().parse::<Shard>().unwrap(),
            Shard::new(1, 2).unwrap()
        );
    }

    #[test]
    fn rejects_bad_shard_text_naming_it_and_the_form() {
        for text in [
            "4/4", "5/4", "0/0", "1", "a/4", "1/b", "-1/4", "", "1/2/3", "slurm",
        ] {
            let err = text.parse::<Shard>().unwrap_err();
            assert!(matches!(err, ShardError::Parse { .. }), "{text}: {err:?}");
            let msg = err.to_string();
            assert!(msg.contains(&format!("`{text}`")), "{msg}");
            assert!(
                msg.contains("expected I/N with 0 <= I < N, like 0/4"),
                "{msg}"
            );
        }
    }

    #[test]
    fn shard_new_checks_range() {
        assert!(Shard::new(0, 1).is_ok());
        assert_eq!(
            Shard::new(2, 2),
            Err(ShardError::OutOfRange { index: 2, count: 2 })
        );
        assert!(Shard::new(0, 0).is_err());
    }

    #[test]
    fn shard_arg_accepts_slurm_or_i_over_n() {
        assert_eq!("slurm".parse::<ShardArg>().unwrap(), ShardArg::Slurm);
        assert_eq!(
            "2/5".parse::<ShardArg>().unwrap(),
            ShardArg::Fixed(Shard::new(2, 5).unwrap())
        );
        let msg = "Slurm".parse::<ShardArg>().unwrap_err().to_string();
        assert!(msg.contains("`Slurm`") && msg.contains("`slurm`"), "{msg}");
        let fixed = ShardArg::Fixed(Shard::new(1, 3).unwrap());
        assert_eq!(fixed.resolve(env(&[])).unwrap(), Shard::new(1, 3).unwrap());
        assert_eq!(
            ShardArg::Slurm.resolve(env(&[])),
            Err(ShardError::NotInArray)
        );
    }

    #[test]
    fn slurm_range_0_to_15() {
        for id in 0..=15 {
            let shard = from_slurm_env(lookup(array_env(id, 0, 15, 1, 16))).unwrap();
            assert_eq!(shard, Shard::new(id as usize, 16).unwrap());
        }
    }

    #[test]
    fn slurm_range_with_step() {
        // --array=1-31:2 is tasks 1, 3, ..., 31: sixteen of them.
        let shards: Vec<Shard> = (1..=31)
            .step_by(2)
            .map(|id| from_slurm_env(lookup(array_env(id, 1, 31, 2, 16))).unwrap())
            .collect();
        let expected: Vec<Shard> = (0..16).map(|i| Shard::new(i, 16).unwrap()).collect();
        assert_eq!(shards, expected);
        // Slurm reports MAX as the last task that exists (29 for --array=1-30:2,
        // seen on Slurm 22.05), but a MAX past the last task must work too.
        let last = from_slurm_env(lookup(array_env(29, 1, 30, 2, 15))).unwrap();
        assert_eq!(last, Shard::new(14, 15).unwrap());
    }

    #[test]
    fn slurm_count_is_derived_when_absent() {
        let mut vars = array_env(7, 3, 11, 4, 0);
        vars.retain(|(k, _)| k != "SLURM_ARRAY_TASK_COUNT");
        assert_eq!(
            from_slurm_env(lookup(vars)).unwrap(),
            Shard::new(1, 3).unwrap()
        );
    }

    #[test]
    fn slurm_outside_an_array_task() {
        let err = from_slurm_env(env(&[("SLURM_JOB_ID", "12")])).unwrap_err();
        assert_eq!(err, ShardError::NotInArray);
        assert!(err.to_string().contains("--shard I/N"));
    }

    #[test]
    fn slurm_missing_companion_variables() {
        for missing in [
            "SLURM_ARRAY_TASK_MIN",
            "SLURM_ARRAY_TASK_MAX",
            "SLURM_ARRAY_TASK_STEP",
        ] {
            let mut vars = array_env(1, 0, 3, 1, 4);
            vars.retain(|(k, _)| k != missing);
            let err = from_slurm_env(lookup(vars)).unwrap_err();
            assert!(
                matches!(err, ShardError::MissingVar { var } if var == missing),
                "{missing}: {err:?}"
            );
            assert!(err.to_string().contains(missing));
        }
    }

    #[test]
    fn slurm_non_numeric_variables() {
        for var in [
            "SLURM_ARRAY_TASK_ID",
            "SLURM_ARRAY_TASK_MIN",
            "SLURM_ARRAY_TASK_MAX",
            "SLURM_ARRAY_TASK_STEP",
            "SLURM_ARRAY_TASK_COUNT",
        ] {
            let mut vars = array_env(1, 0, 3, 1, 4);
            for (k, v) in &mut vars {
                if k == var {
                    *v = "x1".into();
                }
            }
            let err = from_slurm_env(lookup(vars)).unwrap_err();
            assert!(matches!(err, ShardError::BadVar { .. }), "{var}: {err:?}");
            let msg = err.to_string();
            assert!(msg.contains(var) && msg.contains("`x1`"), "{msg}");
        }
    }

    #[test]
    fn slurm_inconsistent_variables() {
        // --array=0,3,7 as Slurm 22.05 reports it: STEP=1, COUNT=3, MAX=7.
        let list = array_env(3, 0, 7, 1, 3);
        let cases = [
            ("list array", list),
            ("zero step", array_env(0, 0, 3, 0, 4)),
            ("id below min", array_env(0, 1, 4, 1, 4)),
            ("id above max", array_env(5, 0, 4, 1, 5)),
            ("id off the step", array_env(2, 1, 31, 2, 16)),
            ("min above max", array_env(3, 3, 2, 1, 1)),
        ];
        for (what, vars) in cases {
            let err = from_slurm_env(lookup(vars)).unwrap_err();
            assert!(
                matches!(err, ShardError::NotARange { .. }),
                "{what}: {err:?}"
            );
            assert!(err.to_string().contains("like 0-15 or 1-31:2"), "{what}");
        }
    }

    #[test]
    fn runs_of_splits_a_plan_in_plan_order_by_epochs() {
        let text = r#"
            name = "shards"
            [data]
            format = "cifar10-bin"
            dir = "data"
            train = ["data_batch_1.bin"]
            val = ["data_batch_2.bin"]
            [train]
            epochs = [40, 10]
            seed = [1, 2, 3]
        "#;
        let spec = crate::spec::parse(std::path::Path::new("shards.toml"), text, None).unwrap();
        let plan = crate::plan::expand(&spec).unwrap();
        assert_eq!(plan.runs.len(), 6);
        let costs: Vec<u64> = plan.runs.iter().map(|r| run_cost(&r.params)).collect();
        assert_eq!(
            costs
                .iter()
                .filter(|&&c| c == 40 * NOMINAL_EXAMPLES)
                .count(),
            3
        );
        let mut seen = Vec::new();
        for index in 0..2 {
            let mine = runs_of(&plan, Shard::new(index, 2).unwrap());
            let epochs: usize = mine.runs.iter().map(|r| r.params.epochs).sum();
            // Three 40s and three 10s deal out as 40 + 10 + 10 + 10 = 70 against 80.
            assert!(
                epochs == 70 || epochs == 80,
                "shard {index}: {epochs} epochs"
            );
            let at: Vec<usize> = mine
                .runs
                .iter()
                .map(|r| plan.runs.iter().position(|p| p.id == r.id).unwrap())
                .collect();
            assert!(
                at.windows(2).all(|w| w[0] < w[1]),
                "not in plan order: {at:?}"
            );
            seen.extend(at);
        }
        seen.sort();
        assert_eq!(seen, (0..6).collect::<Vec<_>>());
        assert_eq!(runs_of(&plan, Shard::WHOLE), plan);
    }

    #[test]
    fn scaling_every_cost_by_one_factor_changes_no_shard() {
        // What lets `run_cost` count epochs for example visits: the training-set size
        // is one factor common to every run of a sweep.
        let epochs = [40u64, 10, 10, 25, 40, 5, 1, 10];
        for count in 1..=5 {
            let visits: Vec<u64> = epochs.iter().map(|e| e * 45_000).collect();
            assert_eq!(
                assign(&epochs, count),
                assign(&visits, count),
                "{count} shards"
            );
        }
    }

    #[test]
    fn lpt_on_a_small_example() {
        // Sorted: 7 (item 1), 5 (item 3), 4 (item 0), 2 (item 2), 2 (item 4).
        // 7 -> s0; 5 -> s1; 4 -> s1 (5 < 7); 2 -> s0 (7 < 9);
        // 2 -> s0 (loads 9 = 9 and items 2 = 2, so the lower index).
        assert_eq!(assign(&[4, 7, 2, 5, 2], 2), vec![1, 0, 0, 1, 0]);
        assert_eq!(
            select(&[4, 7, 2, 5, 2], Shard::new(0, 2).unwrap()),
            vec![1, 2, 4]
        );
        assert_eq!(loads(&[4, 7, 2, 5, 2], &[1, 0, 0, 1, 0], 2), vec![11, 9]);
    }

    #[test]
    fn equal_costs_deal_round_robin() {
        assert_eq!(assign(&[3; 7], 3), vec![0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(assign(&[0; 5], 2), vec![0, 1, 0, 1, 0]);
    }

    #[test]
    fn more_shards_than_items_leaves_some_empty() {
        let costs = [5, 1];
        assert_eq!(assign(&costs, 4), vec![0, 1]);
        assert!(select(&costs, Shard::new(3, 4).unwrap()).is_empty());
        assert!(assign(&[], 3).is_empty());
    }

    #[test]
    fn huge_costs_do_not_overflow_the_loads() {
        let costs = [u64::MAX; 4];
        assert_eq!(
            loads(&costs, &assign(&costs, 1), 1),
            vec![4 * u128::from(u64::MAX)]
        );
    }

    fn costs_strategy() -> impl Strategy<Value = Vec<u64>> {
        // Mostly realistic costs (epochs x examples), with duplicates likely
        // so that tie-breaking is exercised, plus occasional extremes.
        prop::collection::vec(
            prop_oneof![
                4 => (1u64..=8).prop_map(|k| k * 10_000),
                4 => 0u64..1_000_000,
                1 => Just(0u64),
                1 => Just(u64::MAX),
            ],
            0..200,
        )
    }

    proptest! {
        #[test]
        fn costs_scaled_by_one_factor_give_the_same_shards(
            costs in prop::collection::vec(0u64..1_000_000, 0..100),
            factor in 1u64..100_000,
            count in 1usize..20,
        ) {
            let scaled: Vec<u64> = costs.iter().map(|c| c * factor).collect();
            prop_assert_eq!(assign(&costs, count), assign(&scaled, count));
        }

        #[test]
        fn shards_are_disjoint_and_cover_the_plan(costs in costs_strategy(), count in 1usize..20) {
            let assignment = assign(&costs, count);
            prop_assert_eq!(assignment.len(), costs.len());
            prop_assert!(assignment.iter().all(|&s| s < count));
            let mut seen = vec![0u32; costs.len()];
            for index in 0..count {
                let selected = select(&costs, Shard::new(index, count).unwrap());
                prop_assert!(selected.windows(2).all(|w| w[0] < w[1]), "not in plan order");
                for item in selected {
                    prop_assert_eq!(assignment[item], index);
                    seen[item] += 1;
                }
            }
            prop_assert!(seen.iter().all(|&n| n == 1), "every item in exactly one shard");
        }

        #[test]
        fn loads_differ_by_at_most_one_item(costs in costs_strategy(), count in 1usize..20) {
            let per_shard = loads(&costs, &assign(&costs, count), count);
            let max = *per_shard.iter().max().unwrap();
            let min = *per_shard.iter().min().unwrap();
            let biggest = u128::from(costs.iter().copied().max().unwrap_or(0));
            prop_assert!(max <= min + biggest, "loads {per_shard:?}, biggest item {biggest}");
        }

        #[test]
        fn equal_costs_give_counts_within_one(n in 0usize..300, cost in 0u64..1000, count in 1usize..20) {
            let costs = vec![cost; n];
            let assignment = assign(&costs, count);
            let mut sizes = vec![0usize; count];
            for s in assignment {
                sizes[s] += 1;
            }
            let (max, min) = (*sizes.iter().max().unwrap(), *sizes.iter().min().unwrap());
            prop_assert!(max - min <= 1, "sizes {sizes:?}");
        }

        #[test]
        fn assignment_is_a_function_of_the_costs_only(costs in costs_strategy(), count in 1usize..20) {
            // Recomputing, on another thread and with a copy of the costs, gives
            // the same answer: nothing but the costs feeds into it.
            let first = assign(&costs, count);
            let copy = costs.clone();
            let second = std::thread::spawn(move || assign(&copy, count)).join().unwrap();
            prop_assert_eq!(&first, &second);
            // Reordering the plan moves items between shards, but the greedy
            // rule sees the same sequence of costs, so each shard's load is
            // unchanged: balance depends on the costs alone.
            let mut by_cost: Vec<usize> = (0..costs.len()).collect();
            by_cost.sort_by_key(|&i| (Reverse(costs[i]), i));
            let sorted: Vec<u64> = by_cost.iter().map(|&i| costs[i]).collect();
            prop_assert_eq!(
                loads(&costs, &first, count),
                loads(&sorted, &assign(&sorted, count), count)
            );
        }
    }
}
