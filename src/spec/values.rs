//! Checking one TOML value: the error type of the sweep file, the context that turns a
//! value's byte span into `file:line:column`, and the checks shared by every section.
//! A leaf of `spec/`.

use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::Value;

/// Why a sweep file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read sweep file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid sweep file:\n{message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}:{line}:{column}: `{key}` {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
}

/// Largest number of values one axis may list.
pub(crate) const MAX_AXIS_VALUES: usize = 10_000;

/// Validation context: the file, to turn byte spans into line:column.
pub(crate) struct Ctx<'a> {
    pub(crate) path: &'a Path,
    pub(crate) text: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn err(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> SpecError {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        SpecError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The value, or each value of a list, checked by `one`. Lists must not be empty.
    pub(crate) fn list<T>(
        &self,
        v: &Spanned<Value>,
        key: &str,
        one: impl Fn(&Value) -> Result<T, String>,
    ) -> Result<Vec<T>, SpecError> {
        let span = v.span();
        match v.get_ref() {
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(self.err(span, key, "is an empty list; give at least one value"));
                }
                if items.len() > MAX_AXIS_VALUES {
                    return Err(self.err(
                        span,
                        key,
                        format!(
                            "lists {} values; at most {MAX_AXIS_VALUES} are allowed",
                            items.len()
                        ),
                    ));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        one(item).map_err(|m| self.err(span.clone(), key, format!("[{i}] {m}")))
                    })
                    .collect()
            }
            single => one(single)
                .map(|x| vec![x])
                .map_err(|m| self.err(span, key, m)),
        }
    }

    pub(crate) fn single<T>(
        &self,
        v: &Spanned<Value>,
        key: &str,
        one: impl Fn(&Value) -> Result<T, String>,
    ) -> Result<T, SpecError> {
        one(v.get_ref()).map_err(|m| self.err(v.span(), key, m))
    }
}

pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Table(_) => "a table".into(),
        other => format!("{} {other}", other.type_str()),
    }
}

pub(crate) fn float_in(v: &Value, what: &str, ok: impl Fn(f64) -> bool) -> Result<f64, String> {
    let x = match v {
        Value::Float(f) => *f,
        Value::Integer(i) => *i as f64,
        other => return Err(format!("must be {what}, found {}", describe(other))),
    };
    if x.is_finite() && ok(x) {
        Ok(x)
    } else {
        Err(format!("must be {what}, found {x}"))
    }
}

pub(crate) fn int_in(v: &Value, what: &str, min: i64, max: i64) -> Result<u64, String> {
    match v {
        Value::Integer(i) if (min..=max).contains(i) => Ok(*i as u64),
        Value::Integer(i) => Err(format!("must be {what}, found {i}")),
        other => Err(format!("must be {what}, found {}", describe(other))),
    }
}

pub(crate) fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        other => Err(format!(
            "must be a non-empty string, found {}",
            describe(other)
        )),
    }
}
