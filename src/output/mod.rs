//! The output folder: its contract (every file and column name, declared once), what
//! `sweep run` writes (artifacts), and what `sweep summarize` makes of it (summary
//! tables, figures, report).
//!
//! Inside, dependencies run one way: `atomic` and `contract` are leaves; `artifacts`
//! uses both; `figures` draws with `atomic`; `summary` uses `contract`, `atomic` and
//! `figures`. Output may import `plan`, `data` and `train`, never `exec` or `app`.

pub mod artifacts;
pub(crate) mod atomic;
pub(crate) mod contract;
pub(crate) mod figures;
pub mod summary;
