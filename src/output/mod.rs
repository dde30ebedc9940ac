//! The output folder: what `sweep run` writes (artifacts) and what `sweep summarize`
//! makes of it (summary tables, figures, report).

pub mod artifacts;
pub mod figures;
pub mod report;
pub mod summary;
