//! `sweep`: declarative hyperparameter sweeps of classifiers trained from scratch.
//!
//! The crate reads as a pipeline, one module per stage:
//! spec ([`spec`]) -> plan of runs ([`plan`]) -> training ([`exec`], on [`model`] and
//! [`data`]) -> artifacts on disk ([`artifacts`]) -> summary and report ([`summary`]).
//! The gradient check ([`gradcheck`]) verifies the model's analytic gradients.

pub mod app;
pub mod artifacts;
pub mod cifar_python;
pub mod data;
pub mod error;
pub mod exec;
pub mod exp;
pub mod fetch;
pub mod figures;
pub mod gradcheck;
pub mod kernel;
pub mod model;
pub mod npy;
pub mod plan;
pub mod progress;
pub mod report;
pub mod rng;
pub mod shard;
pub mod slurm;
pub mod spec;
pub mod summary;
#[cfg(test)]
pub(crate) mod testing;
