//! `sweep`: declarative hyperparameter sweeps of classifiers trained from scratch.
//!
//! The crate reads as a pipeline, one module per stage:
//! spec ([`spec`]) -> plan of runs ([`plan`]) -> training ([`exec`], on [`model`] and
//! [`data`]) -> artifacts on disk ([`artifacts`]) -> summary and report ([`summary`]).
//! The gradient check ([`gradcheck`]) verifies the model's analytic gradients.

pub mod app;
pub mod data;
pub mod error;
pub mod exec;
pub mod kernel;
pub mod output;
pub mod plan;
pub mod progress;
pub mod rng;
pub mod spec;
#[cfg(test)]
pub(crate) mod testing;
pub mod train;
