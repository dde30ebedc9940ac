//! `sweep`: declarative hyperparameter sweeps of classifiers trained from scratch.
//!
//! The crate reads as a pipeline, one folder per stage:
//! the sweep file ([`spec`]) -> the plan of runs ([`plan`]) -> the data ([`data`], read
//! by the products of [`kernel`]) -> training ([`train`]: the model seam, its models,
//! losses and schedules, the gradient check) -> the output folder ([`output`]: the
//! contract, artifacts, summary, figures, report) -> execution ([`exec`]: the pool,
//! cohorts, claims, shards, Slurm) -> the next search ([`refine`]: a finished sweep's
//! best settings narrow a new sweep file). [`app`] wires the stages into the commands.
//!
//! A stage imports only the stages before it, in the order
//! spec -> plan -> kernel -> data -> train -> output -> exec -> refine -> app, never a
//! later one;
//! [`rng`] and [`error`] are leaves any stage may use.

pub mod app;
pub mod data;
pub mod error;
pub mod exec;
pub mod kernel;
pub mod output;
pub mod plan;
pub mod progress;
pub mod refine;
pub mod rng;
pub mod spec;
#[cfg(test)]
pub(crate) mod testing;
pub mod train;
