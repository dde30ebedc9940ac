//! Exit codes, in one place, and the one function that maps a command's result to its
//! code ([`exit_code`]).
//!
//! - 0: every run succeeded.
//! - 1: some run diverged, failed or was skipped (the sweep still finished the others),
//!   or `sweep data verify` found a wrong file.
//! - 2: the sweep could not start: bad command line, bad sweep file, bad data, or an
//!   output folder that cannot be written. This matches clap's code for usage errors.

/// Every run succeeded.
pub const SUCCESS: u8 = 0;
/// The command finished, but some of its runs (or files) did not come out right.
pub const RUNS_FAILED: u8 = 1;
/// The command could not start, or stopped on an error.
pub const CANNOT_START: u8 = 2;

/// How a command that ran to its end came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything it was asked to do came out right ([`SUCCESS`]).
    Success,
    /// It finished, but some runs diverged, failed or were skipped, or some files were
    /// wrong ([`RUNS_FAILED`]).
    SomeFailed,
}

impl Outcome {
    /// [`Outcome::SomeFailed`] if `failed`, else [`Outcome::Success`].
    pub fn failed_if(failed: bool) -> Outcome {
        if failed {
            Outcome::SomeFailed
        } else {
            Outcome::Success
        }
    }
}

/// The process exit code of a command's result: its outcome's code, or [`CANNOT_START`]
/// for any error (which the caller reports).
pub fn exit_code<E>(result: &Result<Outcome, E>) -> u8 {
    match result {
        Ok(Outcome::Success) => SUCCESS,
        Ok(Outcome::SomeFailed) => RUNS_FAILED,
        Err(_) => CANNOT_START,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_result_maps_to_its_documented_code() {
        assert_eq!(exit_code::<()>(&Ok(Outcome::Success)), 0);
        assert_eq!(exit_code::<()>(&Ok(Outcome::SomeFailed)), 1);
        assert_eq!(exit_code(&Err::<Outcome, _>("no sweep file")), 2);
        assert_eq!(Outcome::failed_if(false), Outcome::Success);
        assert_eq!(Outcome::failed_if(true), Outcome::SomeFailed);
    }
}
