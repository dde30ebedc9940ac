//! The axes of a sweep (the value-or-list keys of `[train]` and `[[grid]]`), declared
//! once in [`axes!`]: key, default, check and place in the run id. Everything else (the
//! raw TOML table, the defaults of a grid, the plan's CSV columns and run ids) is derived
//! from the table, so a new axis is one line here plus its field in
//! [`crate::plan::RunParams`]. Imports only [`super::values`].

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;
use toml::Value;

use super::values::{describe, float_in, int_in};

/// Numeric precision a run trains in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Precision {
    /// Single precision (the default).
    F32,
    F64,
}

impl Precision {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}

/// Most hidden layers a network may have.
pub const MAX_HIDDEN: usize = 8;

/// Largest width of a hidden layer.
pub const MAX_WIDTH: u64 = 65_536;

/// The widths of a network's hidden layers (`hidden = [50, 50]`), ReLU after each; none
/// for the one-layer classifier. A copyable value, as every axis value is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Widths {
    len: u8,
    widths: [u32; MAX_HIDDEN],
}

impl Widths {
    /// The widths, or `None` if there are more than [`MAX_HIDDEN`].
    pub fn new(widths: &[usize]) -> Option<Self> {
        let mut w = Widths::default();
        if widths.len() > MAX_HIDDEN {
            return None;
        }
        for (slot, &v) in w.widths.iter_mut().zip(widths) {
            *slot = u32::try_from(v).ok()?;
        }
        w.len = widths.len() as u8;
        Some(w)
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.widths[..usize::from(self.len)]
    }

    pub fn to_vec(&self) -> Vec<usize> {
        self.as_slice().iter().map(|&v| v as usize).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `50-50` (run ids).
    pub fn dashed(&self) -> String {
        let parts: Vec<String> = self.as_slice().iter().map(u32::to_string).collect();
        parts.join("-")
    }
}

impl fmt::Debug for Widths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// `[50, 50]`, as written in a sweep file (CSV cells).
impl fmt::Display for Widths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.as_slice().iter().map(u32::to_string).collect();
        write!(f, "[{}]", parts.join(", "))
    }
}

impl serde::Serialize for Widths {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.as_slice())
    }
}

impl<'de> Deserialize<'de> for Widths {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<usize>::deserialize(d)?;
        Widths::new(&v).ok_or_else(|| de::Error::custom("too many hidden layers"))
    }
}

/// Declares a choice among names (`init = "xavier"`): the enum, its names and its check.
macro_rules! choice {
    ($(#[$doc:meta])* $ty:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, Deserialize)]
        pub enum $ty {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)*
        }

        impl $ty {
            /// Every name, in declared order.
            pub const NAMES: &[&str] = &[$($text),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text,)*
                }
            }

            fn parse(v: &Value) -> Result<Self, String> {
                match v {
                    $(Value::String(s) if s == $text => Ok($ty::$variant),)*
                    other => Err(format!("must be one of {}, found {}", quoted(Self::NAMES), describe(other))),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// `"a", "b" or "c"`.
fn quoted(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    match q.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

choice! {
    /// How weights and biases start.
    Init {
        /// N(0, init_std^2) for every weight and bias (the first lab).
        Normal = "normal",
        /// Each weight matrix from N(0, 1/fan_in); biases 0.
        Xavier = "xavier",
        /// Each weight matrix from N(0, 2/fan_in); biases 0.
        He = "he",
    }
}

choice! {
    /// The loss on the scores.
    LossName {
        /// The cross-entropy of the softmax.
        CrossEntropy = "cross-entropy",
        /// The multi-class SVM loss, sum over j != y of max(0, s_j - s_y + 1).
        Hinge = "hinge",
    }
}

choice! {
    /// How the learning rate moves.
    ScheduleName {
        /// `eta` throughout.
        Constant = "constant",
        /// Triangular cyclical rates between `eta_min` and `eta_max`.
        Cyclic = "cyclic",
        /// `eta` times `decay` every `decay_every` epochs.
        Step = "step",
    }
}

choice! {
    /// Augmentation of the training images.
    Augment {
        None = "none",
        /// Each image mirrored left-right with probability 1/2, per epoch.
        Flip = "flip",
    }
}

/// One value of an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AxisValue {
    Float(f64),
    Int(u64),
    Bool(bool),
    Precision(Precision),
    Hidden(Widths),
    Init(Init),
    Loss(LossName),
    Schedule(ScheduleName),
    Augment(Augment),
}

/// Checks one `hidden` value: a list of widths from 1 to [`MAX_WIDTH`].
fn hidden(v: &Value) -> Result<AxisValue, String> {
    let Value::Array(items) = v else {
        return Err(format!(
            "must be a list of layer widths such as [50] (or [] for no hidden layer), found {}",
            describe(v)
        ));
    };
    if items.len() > MAX_HIDDEN {
        return Err(format!(
            "lists {} hidden layers; at most {MAX_HIDDEN} are allowed",
            items.len()
        ));
    }
    let widths = items
        .iter()
        .map(|w| {
            int_in(
                w,
                &format!("a width from 1 to {MAX_WIDTH}"),
                1,
                MAX_WIDTH as i64,
            )
            .map(|w| w as usize)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AxisValue::Hidden(
        Widths::new(&widths).expect("checked above"),
    ))
}

/// How an axis shows in a run id (ids are joined by `_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdPart {
    /// Always, as `label=value`.
    Always(&'static str),
    /// Only when the value is not the default, as `label=value`.
    UnlessDefault(&'static str),
    /// Only when the value is not the default, as the bare value (`f64`).
    ValueUnlessDefault,
    /// A switch: the bare label when it is on (`bn`), nothing when off.
    Flag(&'static str),
}

/// One axis: everything the spec and the plan know about it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AxisDef {
    pub name: AxisName,
    /// The key in `[train]` and `[[grid]]`, and the column in the plan's CSVs.
    pub key: &'static str,
    /// The value when neither `[train]` nor a grid sets it.
    pub default: AxisValue,
    /// Checks one TOML value; the message says what is allowed.
    pub check: fn(&Value) -> Result<AxisValue, String>,
    pub id: IdPart,
}

impl AxisDef {
    /// Whether one value of the axis is itself a list (`hidden = [50]` is one value,
    /// `hidden = [[50], [100]]` two).
    pub(crate) fn nested(&self) -> bool {
        self.name == AxisName::Hidden
    }
}

/// Declares the axes: the [`AxisName`] enum and the [`AXES`] table, in one list.
macro_rules! axes {
    ($($(#[$doc:meta])* $name:ident = $key:literal, default $default:expr, id $id:expr, check $check:expr;)*) => {
        /// A value-or-list key of `[train]` or `[[grid]]`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum AxisName {
            $($(#[$doc])* $name,)*
        }

        /// Number of axes.
        pub(crate) const AXIS_COUNT: usize = [$($key),*].len();

        /// Every axis, in the order of the plan's CSV columns and of the run id.
        pub(crate) const AXES: [AxisDef; AXIS_COUNT] = [
            $(AxisDef {
                name: AxisName::$name,
                key: $key,
                default: $default,
                check: $check,
                id: $id,
            },)*
        ];

        /// The axes' keys, in [`AXES`] order.
        pub(crate) const AXIS_KEYS: [&str; AXIS_COUNT] = [$($key),*];
    };
}

axes! {
    /// L2 penalty factor.
    Lambda = "lambda", default AxisValue::Float(0.0), id IdPart::Always("lambda"),
        check |v| Ok(AxisValue::Float(float_in(v, "a number >= 0", |x| x >= 0.0)?));
    /// Learning rate.
    Eta = "eta", default AxisValue::Float(0.001), id IdPart::Always("eta"),
        check |v| Ok(AxisValue::Float(float_in(v, "a number > 0", |x| x > 0.0)?));
    BatchSize = "batch_size", default AxisValue::Int(100), id IdPart::Always("batch"),
        check |v| Ok(AxisValue::Int(int_in(v, "a whole number >= 1", 1, i64::MAX)?));
    Epochs = "epochs", default AxisValue::Int(40), id IdPart::Always("epochs"),
        check |v| Ok(AxisValue::Int(int_in(v, "a whole number from 1 to 100000", 1, 100_000)?));
    /// Seeds the initial weights and the shuffles; always the innermost axis.
    Seed = "seed", default AxisValue::Int(1), id IdPart::Always("seed"),
        check |v| Ok(AxisValue::Int(int_in(v, "a whole number >= 0", 0, i64::MAX)?));
    Shuffle = "shuffle", default AxisValue::Bool(true), id IdPart::UnlessDefault("shuffle"),
        check |v| match v {
            Value::Boolean(b) => Ok(AxisValue::Bool(*b)),
            other => Err(format!("must be true or false, found {}", describe(other))),
        };
    Precision = "precision", default AxisValue::Precision(Precision::F32),
        id IdPart::ValueUnlessDefault,
        check |v| match v {
            Value::String(s) if s == "f32" => Ok(AxisValue::Precision(Precision::F32)),
            Value::String(s) if s == "f64" => Ok(AxisValue::Precision(Precision::F64)),
            other => Err(format!("must be \"f32\" or \"f64\", found {}", describe(other))),
        };
    /// Standard deviation of the initial weights.
    InitStd = "init_std", default AxisValue::Float(0.01), id IdPart::UnlessDefault("std"),
        check |v| Ok(AxisValue::Float(float_in(v, "a number >= 0", |x| x >= 0.0)?));
    /// Widths of the hidden layers.
    Hidden = "hidden", default AxisValue::Hidden(Widths { len: 0, widths: [0; MAX_HIDDEN] }),
        id IdPart::UnlessDefault("hidden"), check hidden;
    Init = "init", default AxisValue::Init(Init::Normal), id IdPart::UnlessDefault("init"),
        check |v| Init::parse(v).map(AxisValue::Init);
    Loss = "loss", default AxisValue::Loss(LossName::CrossEntropy), id IdPart::ValueUnlessDefault,
        check |v| LossName::parse(v).map(AxisValue::Loss);
    Schedule = "schedule", default AxisValue::Schedule(ScheduleName::Constant),
        id IdPart::ValueUnlessDefault,
        check |v| ScheduleName::parse(v).map(AxisValue::Schedule);
    /// The cyclic schedule's lowest rate.
    EtaMin = "eta_min", default AxisValue::Float(1e-5), id IdPart::UnlessDefault("min"),
        check |v| Ok(AxisValue::Float(float_in(v, "a number > 0", |x| x > 0.0)?));
    /// The cyclic schedule's highest rate.
    EtaMax = "eta_max", default AxisValue::Float(0.1), id IdPart::UnlessDefault("max"),
        check |v| Ok(AxisValue::Float(float_in(v, "a number > 0", |x| x > 0.0)?));
    /// Updates of a half cycle (the lab's n_s).
    StepSize = "step_size", default AxisValue::Int(500), id IdPart::UnlessDefault("ns"),
        check |v| Ok(AxisValue::Int(int_in(v, "a whole number from 1 to 10000000", 1, 10_000_000)?));
    Cycles = "cycles", default AxisValue::Int(1), id IdPart::UnlessDefault("cycles"),
        check |v| Ok(AxisValue::Int(int_in(v, "a whole number from 1 to 10000", 1, 10_000)?));
    /// The step schedule's factor.
    Decay = "decay", default AxisValue::Float(0.1), id IdPart::UnlessDefault("decay"),
        check |v| Ok(AxisValue::Float(float_in(v, "a number > 0 and <= 1", |x| x > 0.0 && x <= 1.0)?));
    /// Epochs between the step schedule's decays.
    DecayEvery = "decay_every", default AxisValue::Int(10), id IdPart::UnlessDefault("every"),
        check |v| Ok(AxisValue::Int(int_in(v, "a whole number from 1 to 100000", 1, 100_000)?));
    /// Updates between recorded metrics; 0 (the default): every epoch.
    EvalEvery = "eval_every", default AxisValue::Int(0), id IdPart::UnlessDefault("eval"),
        check |v| Ok(AxisValue::Int(int_in(v, "0 (every epoch) or a whole number of updates up to 10000000", 0, 10_000_000)?));
    Augment = "augment", default AxisValue::Augment(Augment::None), id IdPart::ValueUnlessDefault,
        check |v| Augment::parse(v).map(AxisValue::Augment);
    /// Probability of dropping a hidden unit in training.
    Dropout = "dropout", default AxisValue::Float(0.0), id IdPart::UnlessDefault("dropout"),
        check |v| Ok(AxisValue::Float(float_in(v, "a number >= 0 and < 1", |x| (0.0..1.0).contains(&x))?));
    /// Batch normalisation after each hidden layer's linear map, before its ReLU.
    BatchNorm = "batch_norm", default AxisValue::Bool(false), id IdPart::Flag("bn"),
        check |v| match v {
            Value::Boolean(b) => Ok(AxisValue::Bool(*b)),
            other => Err(format!("must be true or false, found {}", describe(other))),
        };
    /// Weight of the old running average when batch norm's statistics are updated.
    BnMomentum = "bn_momentum", default AxisValue::Float(0.9), id IdPart::UnlessDefault("mom"),
        check |v| Ok(AxisValue::Float(float_in(v, "a number >= 0 and < 1", |x| (0.0..1.0).contains(&x))?));
    /// Added to the variance before its square root in batch norm.
    BnEps = "bn_eps", default AxisValue::Float(BN_EPS), id IdPart::UnlessDefault("eps"),
        check |v| Ok(AxisValue::Float(float_in(v, "a number > 0 and < 1", |x| x > 0.0 && x < 1.0)?));
}

/// The default `bn_eps`, PyTorch's and Keras's order: small beside the variance of a
/// unit's pre-activations at any sensible init, large enough that a dead unit (variance
/// 0) normalises to 0 rather than dividing by zero.
pub const BN_EPS: f64 = 1e-5;

impl AxisName {
    /// Every axis, in [`AXES`] order.
    pub const ALL: [AxisName; AXIS_COUNT] = {
        let mut all = [AxisName::Lambda; AXIS_COUNT];
        let mut i = 0;
        while i < AXIS_COUNT {
            all[i] = AXES[i].name;
            i += 1;
        }
        all
    };

    /// The axis's row of [`AXES`].
    pub(crate) fn def(self) -> &'static AxisDef {
        &AXES[self as usize]
    }

    pub(crate) fn key(self) -> &'static str {
        self.def().key
    }
}

/// The axes a `[train]` or `[[grid]]` table sets, by [`AxisName`], with where each
/// value sits in the file. Unknown keys are refused as serde's `deny_unknown_fields`
/// would (`unknown field `x`, expected one of ...`, at the key's position).
#[derive(Debug, Default)]
pub(crate) struct RawAxes([Option<Spanned<Value>>; AXIS_COUNT]);

impl RawAxes {
    pub(crate) fn get(&self, name: AxisName) -> Option<&Spanned<Value>> {
        self.0[name as usize].as_ref()
    }
}

impl<'de> Deserialize<'de> for RawAxes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Table;
        impl<'de> Visitor<'de> for Table {
            type Value = RawAxes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of axes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawAxes, A::Error> {
                let mut raw = RawAxes::default();
                while let Some(Key(name)) = map.next_key()? {
                    if raw.0[name as usize].is_some() {
                        return Err(de::Error::duplicate_field(name.key()));
                    }
                    raw.0[name as usize] = Some(map.next_value()?);
                }
                Ok(raw)
            }
        }
        d.deserialize_struct("RawAxes", &AXIS_KEYS, Table)
    }
}

/// A key of an axes table, refused (while it is read, so the error points at it) unless
/// it names an axis.
struct Key(AxisName);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an axis name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                AXES.iter()
                    .find(|a| a.key == v)
                    .map(|a| Key(a.name))
                    .ok_or_else(|| E::unknown_field(v, &AXIS_KEYS))
            }
        }
        d.deserialize_identifier(Name)
    }
}
