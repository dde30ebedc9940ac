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

/// One value of an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AxisValue {
    Float(f64),
    Int(u64),
    Bool(bool),
    Precision(Precision),
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
}

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
