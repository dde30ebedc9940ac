//! Exit codes, in one place.
//!
//! - 0: every run succeeded.
//! - 1: some run diverged, failed or was skipped (the sweep still finished the others).
//! - 2: the sweep could not start: bad command line, bad sweep file, bad data, or an
//!   output folder that cannot be written. This matches clap's code for usage errors.

pub const SUCCESS: i32 = 0;
pub const RUNS_FAILED: i32 = 1;
pub const CANNOT_START: i32 = 2;
