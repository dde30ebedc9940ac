pub mod shard;
pub mod slurm;
