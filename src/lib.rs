pub mod figures;
pub mod report;
pub mod summary;
