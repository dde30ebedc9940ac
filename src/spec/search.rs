//! Axes that are drawn or generated rather than listed: a distribution
//! (`lambda = { log_uniform = [1e-5, 1e-1] }`, `{ uniform = [a, b] }`,
//! `{ int_uniform = [a, b] }`), the `logspace` shorthand (`{ logspace = [-5, -1, 8] }`),
//! and the `[search]` section that says how many draws to make and from what seed.
//!
//! Draws come from [`crate::rng`] (ChaCha20, a stream per grid), so a sweep file plans the
//! same runs on every machine. A drawn float keeps its full precision; run ids print it
//! in the shortest text that reads back to it.

use rand_chacha::ChaCha20Rng;
use toml::Value;

use super::values::describe;
use crate::rng;

/// Largest number of draws `[search] samples` may ask for.
pub(crate) const MAX_SAMPLES: i64 = 1_000_000;
/// Largest number of values a `logspace` may generate.
const MAX_LOGSPACE: i64 = 10_000;

/// A distribution an axis is drawn from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    /// Uniform on [low, high).
    Uniform { low: f64, high: f64 },
    /// `10^l` with `l` uniform on [log10 low, log10 high): the lab's lambda search.
    LogUniform { low: f64, high: f64 },
    /// A whole number from low to high, both included, each equally likely.
    IntUniform { low: i64, high: i64 },
}

impl Dist {
    /// The distribution's key in the sweep file.
    pub fn key(&self) -> &'static str {
        match self {
            Dist::Uniform { .. } => "uniform",
            Dist::LogUniform { .. } => "log_uniform",
            Dist::IntUniform { .. } => "int_uniform",
        }
    }

    /// Its bounds as TOML values (what the axis's own check is given).
    pub(crate) fn bounds(&self) -> [Value; 2] {
        match *self {
            Dist::Uniform { low, high } | Dist::LogUniform { low, high } => {
                [Value::Float(low), Value::Float(high)]
            }
            Dist::IntUniform { low, high } => [Value::Integer(low), Value::Integer(high)],
        }
    }

    /// Its bounds as numbers.
    pub fn bounds_f64(&self) -> [f64; 2] {
        match *self {
            Dist::Uniform { low, high } | Dist::LogUniform { low, high } => [low, high],
            Dist::IntUniform { low, high } => [low as f64, high as f64],
        }
    }

    /// One draw, as the TOML value the axis's check then reads.
    pub(crate) fn draw(&self, rng: &mut ChaCha20Rng) -> Value {
        match *self {
            Dist::Uniform { low, high } => {
                Value::Float((low + (high - low) * rng::unit(rng)).min(high.next_down()))
            }
            Dist::LogUniform { low, high } => {
                let (a, b) = (libm::log10(low), libm::log10(high));
                let x = libm::pow(10.0, a + (b - a) * rng::unit(rng));
                Value::Float(x.clamp(low, high.next_down()))
            }
            Dist::IntUniform { low, high } => {
                let span = high.abs_diff(low) + 1;
                Value::Integer(low.wrapping_add(rng::below(rng, span) as i64))
            }
        }
    }
}

/// What a search ranks settings by: the mean over seeds of a final validation metric
/// (`sweep refine --metric`, `[search] metric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Objective {
    /// The higher the better.
    #[default]
    ValAccuracy,
    /// The lower the better.
    ValCost,
    /// The lower the better.
    ValLoss,
}

impl Objective {
    pub const ALL: [Objective; 3] = [
        Objective::ValAccuracy,
        Objective::ValCost,
        Objective::ValLoss,
    ];

    /// Its name in the sweep file and on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Objective::ValAccuracy => "val_accuracy",
            Objective::ValCost => "val_cost",
            Objective::ValLoss => "val_loss",
        }
    }

    pub fn higher_is_better(self) -> bool {
        self == Objective::ValAccuracy
    }

    /// Whether `a` ranks strictly before `b` (NaN, a setting with no finished run,
    /// ranks after every number).
    pub fn better(self, a: f64, b: f64) -> bool {
        match (a.is_nan(), b.is_nan()) {
            (false, true) => true,
            (_, false) if a.is_nan() => false,
            _ if self.higher_is_better() => a > b,
            _ => a < b,
        }
    }
}

impl std::str::FromStr for Objective {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Objective::ALL
            .into_iter()
            .find(|o| o.key() == s)
            .ok_or_else(|| {
                format!(
                    "unknown metric {s:?}; use val_accuracy (the higher the better), \
                     val_cost or val_loss (the lower the better)"
                )
            })
    }
}

/// What a table in an axis's place says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AxisTable {
    /// Draw the axis from this distribution, once per `[search]` sample.
    Draw(Dist),
    /// These values, as if listed (a `logspace`).
    Values(Vec<Value>),
}

const TABLE_FORMS: &str = "{ log_uniform = [low, high] }, { uniform = [low, high] }, \
                           { int_uniform = [low, high] } or { logspace = [start, stop, n] }";

/// Reads a table given as an axis's value; the message says what is allowed.
pub(crate) fn axis_table(table: &toml::Table) -> Result<AxisTable, String> {
    let mut entries = table.iter();
    let (Some((key, v)), None) = (entries.next(), entries.next()) else {
        return Err(format!(
            "is a table of {} keys; a drawn axis is one of {TABLE_FORMS}",
            table.len()
        ));
    };
    let numbers = |n: usize| -> Result<Vec<&Value>, String> {
        match v {
            Value::Array(items) if items.len() == n => Ok(items.iter().collect()),
            other => Err(format!(
                "`{key}` takes a list of {n} numbers, found {}",
                describe(other)
            )),
        }
    };
    let float = |v: &Value| match v {
        Value::Float(x) if x.is_finite() => Ok(*x),
        Value::Integer(i) => Ok(*i as f64),
        other => Err(format!(
            "`{key}` takes finite numbers, found {}",
            describe(other)
        )),
    };
    let ordered = |low: f64, high: f64| {
        if low < high {
            Ok(())
        } else {
            Err(format!(
                "`{key}` needs low < high, found [{low}, {high}]; write the smaller bound first"
            ))
        }
    };
    match key.as_str() {
        "uniform" | "log_uniform" => {
            let b = numbers(2)?;
            let (low, high) = (float(b[0])?, float(b[1])?);
            ordered(low, high)?;
            if key == "uniform" {
                return Ok(AxisTable::Draw(Dist::Uniform { low, high }));
            }
            if low <= 0.0 {
                return Err(format!(
                    "`log_uniform` needs bounds > 0 (it draws their logarithm), found [{low}, {high}]"
                ));
            }
            Ok(AxisTable::Draw(Dist::LogUniform { low, high }))
        }
        "int_uniform" => {
            let b = numbers(2)?;
            let int = |v: &Value| match v {
                Value::Integer(i) => Ok(*i),
                other => Err(format!(
                    "`int_uniform` takes whole numbers, found {}",
                    describe(other)
                )),
            };
            let (low, high) = (int(b[0])?, int(b[1])?);
            ordered(low as f64, high as f64)?;
            Ok(AxisTable::Draw(Dist::IntUniform { low, high }))
        }
        "logspace" => {
            let b = numbers(3)?;
            let (start, stop) = (float(b[0])?, float(b[1])?);
            let n = match b[2] {
                Value::Integer(n) if (1..=MAX_LOGSPACE).contains(n) => *n,
                other => {
                    return Err(format!(
                        "`logspace` = [start, stop, n] takes n from 1 to {MAX_LOGSPACE}, found {}",
                        describe(other)
                    ));
                }
            };
            Ok(AxisTable::Values(
                logspace(start, stop, n as usize)
                    .into_iter()
                    .map(Value::Float)
                    .collect(),
            ))
        }
        other => Err(format!(
            "has the unknown key `{other}`; a drawn axis is one of {TABLE_FORMS}"
        )),
    }
}

/// `n` values from `10^start` to `10^stop`, evenly spaced in the exponent, as numpy's
/// `logspace(start, stop, n)`: the exponents are `start + i * (stop - start) / (n - 1)`,
/// the last exactly `stop`. A whole exponent gives the exact decimal power (`1e-5`, not
/// the nearest result of `pow`).
pub(crate) fn logspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    let step = if n > 1 {
        (stop - start) / (n - 1) as f64
    } else {
        0.0
    };
    (0..n)
        .map(|i| {
            let e = if i + 1 == n && n > 1 {
                stop
            } else {
                start + i as f64 * step
            };
            if e.fract() == 0.0 && e.abs() < 300.0 {
                format!("1e{}", e as i64)
                    .parse()
                    .expect("invariant broken: 1eN parses")
            } else {
                libm::pow(10.0, e)
            }
        })
        .collect()
}

/// The `[search]` section: how many draws of the distribution axes and their seed, and
/// whether candidates are raced by successive halving.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpec {
    /// Draws of the distribution axes; None when no axis is drawn (a halving grid).
    pub samples: Option<u32>,
    pub seed: u64,
    /// The sweep folder this file was refined from (recorded by `sweep refine`).
    pub refined_from: Option<String>,
    pub halving: Option<Halving>,
}

/// Successive halving over training length (`[search] method = "halving"`): every
/// candidate setting trains `min_epochs` (cycles, for cyclic schedules); the best
/// 1/`factor` of them by the mean over seeds of `metric` train `factor` times longer,
/// and so on up to the runs' full length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Halving {
    pub metric: Objective,
    pub min_epochs: usize,
    pub factor: usize,
}

impl Halving {
    /// The rungs' lengths for runs of `length` epochs (or cycles): `min_epochs`,
    /// `min_epochs * factor`, ... while shorter than `length`, then `length`.
    pub fn rungs(&self, length: usize) -> Vec<usize> {
        let mut rungs = Vec::new();
        let mut r = self.min_epochs.max(1);
        while r < length {
            rungs.push(r);
            r = r.saturating_mul(self.factor);
        }
        rungs.push(length);
        rungs
    }

    /// How many of `n` candidates a rung promotes: the best 1/factor, at least one.
    pub fn keep(&self, n: usize) -> usize {
        (n / self.factor).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_multiply_by_the_factor_up_to_the_full_length() {
        let h = Halving {
            metric: Objective::ValAccuracy,
            min_epochs: 2,
            factor: 3,
        };
        assert_eq!(h.rungs(40), [2, 6, 18, 40]);
        assert_eq!(h.rungs(18), [2, 6, 18]);
        assert_eq!(h.rungs(2), [2]);
        assert_eq!((h.keep(27), h.keep(9), h.keep(2)), (9, 3, 1));
    }

    fn table(text: &str) -> Result<AxisTable, String> {
        let v: toml::Table = toml::from_str(&format!("x = {text}")).unwrap();
        match &v["x"] {
            Value::Table(t) => axis_table(t),
            _ => unreachable!(),
        }
    }

    #[test]
    fn logspace_matches_numpy_and_keeps_decimal_powers_exact() {
        assert_eq!(logspace(-5.0, -1.0, 5), [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]);
        let v = logspace(-5.0, -1.0, 8);
        assert_eq!((v.len(), v[0], v[7]), (8, 1e-5, 0.1));
        // numpy.logspace(-5, -1, 8)[1] is 3.727593720314938e-05.
        assert!(
            (v[1] / 3.727593720314938e-05 - 1.0).abs() < 1e-15,
            "{}",
            v[1]
        );
        assert_eq!(logspace(2.0, 3.0, 1), [100.0]);
    }

    #[test]
    fn tables_are_read_and_bad_bounds_refused() {
        assert_eq!(
            table("{ log_uniform = [1e-5, 0.1] }"),
            Ok(AxisTable::Draw(Dist::LogUniform {
                low: 1e-5,
                high: 0.1
            }))
        );
        assert_eq!(
            table("{ int_uniform = [50, 200] }"),
            Ok(AxisTable::Draw(Dist::IntUniform { low: 50, high: 200 }))
        );
        for (bad, says) in [
            ("{ uniform = [0.1, 0.01] }", "low < high"),
            ("{ uniform = [0.1, 0.1] }", "low < high"),
            ("{ log_uniform = [0, 0.1] }", "bounds > 0"),
            ("{ log_uniform = [-1, 0.1] }", "bounds > 0"),
            ("{ int_uniform = [1.5, 3] }", "whole numbers"),
            ("{ uniform = [1] }", "list of 2 numbers"),
            ("{ logspace = [-5, -1, 0] }", "n from 1"),
            ("{ normal = [0, 1] }", "unknown key `normal`"),
            (
                "{ uniform = [0, 1], logspace = [1, 2, 3] }",
                "table of 2 keys",
            ),
        ] {
            let e = table(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn draws_stay_within_bounds_and_are_the_same_for_the_same_seed() {
        let dists = [
            Dist::Uniform {
                low: 0.5,
                high: 0.75,
            },
            Dist::LogUniform {
                low: 1e-5,
                high: 1e-1,
            },
            Dist::IntUniform { low: 50, high: 52 },
        ];
        for d in dists {
            let draws = |seed| {
                let mut r = rng::generator(seed, rng::Stream::Search(0));
                (0..2000).map(|_| d.draw(&mut r)).collect::<Vec<_>>()
            };
            let a = draws(7);
            assert_eq!(a, draws(7));
            assert_ne!(a, draws(8));
            let [low, high] = d.bounds();
            for v in &a {
                match (v, &low, &high) {
                    (Value::Float(x), Value::Float(l), Value::Float(h)) => {
                        assert!(l <= x && x < h, "{d:?}: {x}")
                    }
                    (Value::Integer(x), Value::Integer(l), Value::Integer(h)) => {
                        assert!(l <= x && x <= h, "{d:?}: {x}")
                    }
                    other => panic!("{other:?}"),
                }
            }
            if let Dist::IntUniform { .. } = d {
                for k in 50..=52 {
                    let n = a.iter().filter(|v| **v == Value::Integer(k)).count();
                    assert!((550..=780).contains(&n), "{k} drawn {n} of 2000 times");
                }
            }
        }
    }

    /// Log-uniform draws have uniform exponents: a chi-square test over 10 equal bins of
    /// log10 on 10,000 draws with a fixed seed (9 degrees of freedom; the 0.999 quantile
    /// is 27.9), against a uniform draw on the same range that fails it.
    #[test]
    fn log_uniform_draws_are_uniform_in_the_exponent() {
        let chi2 = |d: Dist| {
            let mut r = rng::generator(3, rng::Stream::Search(1));
            let mut bins = [0usize; 10];
            for _ in 0..10_000 {
                let Value::Float(x) = d.draw(&mut r) else {
                    unreachable!()
                };
                let b = ((libm::log10(x) + 5.0) / 4.0 * 10.0).floor() as usize;
                bins[b.min(9)] += 1;
            }
            bins.iter()
                .map(|&n| (n as f64 - 1000.0).powi(2) / 1000.0)
                .sum::<f64>()
        };
        let log = chi2(Dist::LogUniform {
            low: 1e-5,
            high: 1e-1,
        });
        assert!(log < 27.9, "chi-square {log}");
        let flat = chi2(Dist::Uniform {
            low: 1e-5,
            high: 1e-1,
        });
        assert!(
            flat > 1000.0,
            "a plain uniform draw is not log-uniform: {flat}"
        );
    }
}
