//! Everything that can stop the summary of a sweep folder.
//!
//! May import `output::contract`, `output::figures` and `summary::read` (their errors).

use std::path::PathBuf;

use thiserror::Error;

use crate::output::contract::ReadError;
use crate::output::figures::FigureError;
use crate::output::summary::read::WeightsError;

/// Everything that can stop the summary of a sweep folder.
#[derive(Debug, Error)]
pub enum SummaryError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} line {line}: run `{run_id}` belongs to setting `{setting_id}` but its parameters differ from that setting's first run; run ids and parameter columns disagree",
        path.display()
    )]
    InconsistentSetting {
        path: PathBuf,
        line: u64,
        run_id: String,
        setting_id: String,
    },
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Figure(#[from] FigureError),
}
