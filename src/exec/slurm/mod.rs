//! Running a sweep on a Slurm cluster: the sbatch scripts that `sweep slurm`
//! writes, and their submission.
//!
//! This module owns two scripts, both written to `<out>/<name>/slurm/`:
//! - `array.sh`, an N-task job array whose task k runs shard k/N of the plan
//!   with `sweep run SPEC --out OUT --shard slurm` (see [`crate::exec::shard`]);
//! - `summarize.sh`, a job meant to start after every array task has ended
//!   (`--dependency=afterany:<array id>`), which runs `sweep summarize` on the
//!   sweep's output folder.
//!
//! The scripts are plain bash with comments, meant to be read and edited before
//! submitting. Per-task logs go next to them. [`submit`] submits both with
//! `sbatch --parsable`.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Everything `sweep slurm` needs to write the scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmOptions {
    /// The sweep file; the tasks pass it to `sweep run`.
    pub spec: PathBuf,
    /// The output root; the sweep writes into `<out>/<name>/`.
    pub out: PathBuf,
    /// Number of array tasks, which is the number of shards.
    pub tasks: usize,
    /// `--partition` for both jobs; the cluster's default when `None`.
    pub partition: Option<String>,
    /// `--time` for both jobs, in any format sbatch accepts; the partition's
    /// default when `None`.
    pub time: Option<String>,
    /// `--cpus-per-task` for the array tasks; each task runs that many runs at
    /// once (`--jobs`). Slurm's default (1) when `None`.
    pub cpus_per_task: Option<usize>,
    /// Further sbatch options, one per `#SBATCH` line in both scripts, such as
    /// `--account=proj` or `--mem=4G`.
    pub extra_args: Vec<String>,
    /// The `sweep` executable the tasks run (usually the current executable).
    pub sweep_bin: PathBuf,
}

/// Why the scripts could not be written or submitted.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// `--tasks 0`.
    #[error("--tasks must be at least 1, got 0")]
    NoTasks,
    /// `--cpus-per-task 0`.
    #[error("--cpus-per-task must be at least 1, got 0")]
    NoCpus,
    /// A path that cannot be written into the scripts safely.
    #[error("{what} path {path} {reason}; use a path without it")]
    BadPath {
        what: &'static str,
        path: String,
        reason: &'static str,
    },
    /// An option value that would not survive an `#SBATCH` line.
    #[error("{option} value `{value}` {reason}")]
    BadOption {
        option: &'static str,
        value: String,
        reason: &'static str,
    },
    /// The current directory was needed to make a relative path absolute.
    #[error("cannot make {what} path {path} absolute: {source}")]
    Absolute {
        what: &'static str,
        path: String,
        source: io::Error,
    },
    /// Writing a script or creating its folder failed.
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    /// There is no `sbatch` to run.
    #[error(
        "cannot submit {script}: `sbatch` was not found on PATH; run this on a Slurm \
         login node, or copy the scripts there and submit them with sbatch as their \
         comments describe"
    )]
    SbatchMissing { script: PathBuf },
    /// `sbatch` could not be started for another reason.
    #[error("cannot run sbatch for {script}: {source}")]
    SbatchSpawn { script: PathBuf, source: io::Error },
    /// `sbatch` ran and refused the script.
    #[error("sbatch refused {script} ({status}): {stderr}")]
    SbatchFailed {
        script: PathBuf,
        status: String,
        stderr: String,
    },
    /// `sbatch --parsable` printed something other than a job id.
    #[error("sbatch --parsable printed `{stdout}` for {script}, not a job id")]
    NoJobId { script: PathBuf, stdout: String },
    /// The array job is queued but its summary job is not.
    #[error(
        "array job {array_id} was submitted but its summary job was not: {source}; \
         submit it by hand with `sbatch --dependency=afterany:{array_id} {script}`, \
         or cancel the array with `scancel {array_id}`"
    )]
    SummaryNotSubmitted {
        array_id: String,
        script: String,
        source: Box<SlurmError>,
    },
}

/// The array script's file name under `<out>/<name>/slurm/`.
const ARRAY_SCRIPT: &str = "array.sh";
/// The summary script's file name under `<out>/<name>/slurm/`.
const SUMMARIZE_SCRIPT: &str = "summarize.sh";

/// The folder for scripts and logs of sweep `name`: `<out>/<name>/slurm`.
fn slurm_dir(out: &Path, name: &str) -> PathBuf {
    out.join(name).join("slurm")
}

/// Paths and option values checked and made ready for the scripts.
struct Checked {
    spec: String,
    out: String,
    sweep_dir: String,
    slurm_dir: String,
    sweep_bin: String,
    name: String,
    /// `#SBATCH` lines shared by both jobs (partition, time, extra args).
    common: Vec<String>,
}

/// Validates `o` for sweep `name` and makes its paths absolute.
fn check(o: &SlurmOptions, name: &str) -> Result<Checked, SlurmError> {
    if o.tasks == 0 {
        return Err(SlurmError::NoTasks);
    }
    if o.cpus_per_task == Some(0) {
        return Err(SlurmError::NoCpus);
    }
    check_word("sweep name", name)?;
    if name.contains('/') || name == "." || name == ".." {
        return Err(SlurmError::BadOption {
            option: "sweep name",
            value: name.to_string(),
            reason: "is not a single folder name",
        });
    }
    let spec = absolute("spec", &o.spec)?;
    let out = absolute("output", &o.out)?;
    let sweep_dir = absolute("output", &o.out.join(name))?;
    let slurm_dir = absolute("output", &slurm_dir(&o.out, name))?;
    let sweep_bin = absolute("sweep executable", &o.sweep_bin)?;
    // The log path goes into an #SBATCH line, where sbatch, not bash, parses
    // it: only plain double quotes are understood there, and `%` starts a
    // filename pattern such as %A.
    for (what, reason) in [
        (
            '"',
            "contains a double quote, which #SBATCH lines cannot hold",
        ),
        (
            '\\',
            "contains a backslash, which turns off Slurm's %A/%a log names",
        ),
        (
            '%',
            "contains `%`, which Slurm reads as a log file-name pattern",
        ),
    ] {
        if slurm_dir.contains(what) {
            return Err(SlurmError::BadPath {
                what: "output",
                path: slurm_dir,
                reason,
            });
        }
    }

    let mut common = Vec::new();
    if let Some(partition) = &o.partition {
        check_word("--partition", partition)?;
        common.push(format!("--partition={partition}"));
    }
    if let Some(time) = &o.time {
        check_word("--time", time)?;
        common.push(format!("--time={time}"));
    }
    for arg in &o.extra_args {
        if arg.contains(['\n', '\r', '\0']) {
            return Err(SlurmError::BadOption {
                option: "--sbatch-arg",
                value: arg.clone(),
                reason: "contains a line break; give one sbatch option per --sbatch-arg",
            });
        }
        if !arg.starts_with('-') {
            return Err(SlurmError::BadOption {
                option: "--sbatch-arg",
                value: arg.clone(),
                reason: "is not an sbatch option; write it with its dashes and value, like --mem=4G",
            });
        }
        common.push(arg.clone());
    }
    Ok(Checked {
        spec,
        out,
        sweep_dir,
        slurm_dir,
        sweep_bin,
        name: name.to_string(),
        common,
    })
}

/// Rejects values that would break an `#SBATCH` line: empty, whitespace or quotes.
fn check_word(option: &'static str, value: &str) -> Result<(), SlurmError> {
    let reason = if value.is_empty() {
        "is empty"
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "contains whitespace or control characters, which an #SBATCH line cannot hold"
    } else if value.contains(['"', '\'', '\\']) {
        "contains quotes or backslashes, which an #SBATCH line cannot hold"
    } else {
        return Ok(());
    };
    Err(SlurmError::BadOption {
        option,
        value: value.to_string(),
        reason,
    })
}

/// `path` made absolute (without resolving symlinks) as UTF-8 text without
/// line breaks, so that it can be quoted into a script.
fn absolute(what: &'static str, path: &Path) -> Result<String, SlurmError> {
    let shown = || path.display().to_string();
    let abs = std::path::absolute(path).map_err(|source| SlurmError::Absolute {
        what,
        path: shown(),
        source,
    })?;
    let text = abs.to_str().ok_or_else(|| SlurmError::BadPath {
        what,
        path: shown(),
        reason: "is not valid UTF-8",
    })?;
    if text.contains(['\n', '\r', '\0']) {
        return Err(SlurmError::BadPath {
            what,
            path: shown(),
            reason: "contains a line break",
        });
    }
    Ok(text.to_string())
}

/// `text` quoted for bash, so that it stays one word whatever it contains.
fn sh(text: &str) -> String {
    shlex::try_quote(text)
        .expect("invariant broken: script paths were checked to hold no NUL")
        .into_owned()
}

/// Renders the array script for sweep `name` (see the module docs).
///
/// Relative paths in `o` are made absolute against the current directory.
fn render_array_script(o: &SlurmOptions, name: &str) -> Result<String, SlurmError> {
    let c = check(o, name)?;
    let n = o.tasks;
    let last = n - 1;
    let mut s = String::new();
    let script = sh(&format!("{}/{ARRAY_SCRIPT}", c.slurm_dir));
    let summarize = sh(&format!("{}/{SUMMARIZE_SCRIPT}", c.slurm_dir));
    let _ = write!(
        s,
        "#!/bin/bash
# Slurm job array for the sweep \"{name}\", written by `sweep slurm`.
#
# Each of the {n} array tasks runs one shard of the sweep's plan: with
# `--shard slurm`, task k of the array runs shard k/{n}. The shards are
# disjoint, together cover the plan, and have about the same expected cost
# (epochs x training-set size). All tasks write into one output folder:
#   {sweep_dir}
# and each task logs to {slurm_dir}/<array job id>_<task id>.out
#
# Submit with:
#   sbatch {script}
# then the summary job, which rebuilds the sweep's CSVs and report once every
# task has ended (also failed or cancelled ones):
#   sbatch --dependency=afterany:<array job id> {summarize}
# `sweep slurm --submit` does both.
#
# Edit freely. Changing --array re-splits the plan into that many shards; keep
# it a range such as 0-{last} or 1-{odd}:2 (a list such as 0,3,7 is refused).
# To rerun a single shard K (0 to {last}), do not shrink the array; run
#   {sweep} run {spec} --out {out} --shard K/{n}
# instead (for example with sbatch --wrap). Tasks start in the folder sbatch
# was run from, so relative paths inside the sweep file resolve from there.
#SBATCH --job-name=\"sweep-{name}\"
#SBATCH --array=0-{last}
#SBATCH --output=\"{slurm_dir}/%A_%a.out\"
",
        sweep_dir = c.sweep_dir,
        slurm_dir = c.slurm_dir,
        odd = 2 * n - 1,
        sweep = sh(&c.sweep_bin),
        spec = sh(&c.spec),
        out = sh(&c.out),
    );
    if let Some(cpus) = o.cpus_per_task {
        let _ = writeln!(s, "#SBATCH --cpus-per-task={cpus}");
    }
    for line in &c.common {
        let _ = writeln!(s, "#SBATCH {line}");
    }
    let _ = write!(
        s,
        "
set -euo pipefail

SWEEP={sweep}
SPEC={spec}
OUT={out}

# A task runs as many training runs at once as it has CPUs.
exec \"$SWEEP\" run \"$SPEC\" --out \"$OUT\" --shard slurm --jobs \"${{SLURM_CPUS_PER_TASK:-1}}\"
",
        sweep = sh(&c.sweep_bin),
        spec = sh(&c.spec),
        out = sh(&c.out),
    );
    Ok(s)
}

/// Renders the summary script for sweep `name` (see the module docs).
///
/// Relative paths in `o` are made absolute against the current directory.
fn render_summarize_script(o: &SlurmOptions, name: &str) -> Result<String, SlurmError> {
    let c = check(o, name)?;
    let mut s = String::new();
    let _ = write!(
        s,
        "#!/bin/bash
# Summary job for the sweep \"{name}\", written by `sweep slurm`.
#
# Rebuilds the sweep-level CSVs and report in
#   {sweep_dir}
# from the run folders that the array tasks wrote. Submit it to start after the
# array job has ended, whether its tasks succeeded or not:
#   sbatch --dependency=afterany:<array job id> {script}
# It can also be run by hand at any time, on any machine that sees the folder.
#SBATCH --job-name=\"sweep-{name}-summarize\"
#SBATCH --output=\"{slurm_dir}/%j-summarize.out\"
",
        name = c.name,
        sweep_dir = c.sweep_dir,
        slurm_dir = c.slurm_dir,
        script = sh(&format!("{}/{SUMMARIZE_SCRIPT}", c.slurm_dir)),
    );
    for line in &c.common {
        let _ = writeln!(s, "#SBATCH {line}");
    }
    let _ = write!(
        s,
        "
set -euo pipefail

SWEEP={sweep}
SWEEP_DIR={dir}

exec \"$SWEEP\" summarize \"$SWEEP_DIR\"
",
        sweep = sh(&c.sweep_bin),
        dir = sh(&c.sweep_dir),
    );
    Ok(s)
}

/// Writes both scripts for sweep `name` to `<out>/<name>/slurm/` (created if
/// needed, which also makes it ready for the task logs) and returns their
/// paths, array script first. Existing scripts are overwritten.
pub fn write_scripts(o: &SlurmOptions, name: &str) -> Result<(PathBuf, PathBuf), SlurmError> {
    let array = render_array_script(o, name)?;
    let summarize = render_summarize_script(o, name)?;
    let dir = PathBuf::from(absolute("output", &slurm_dir(&o.out, name))?);
    std::fs::create_dir_all(&dir).map_err(|source| SlurmError::Write {
        path: dir.clone(),
        source,
    })?;
    let array_path = dir.join(ARRAY_SCRIPT);
    let summarize_path = dir.join(SUMMARIZE_SCRIPT);
    write_executable(&array_path, &array)?;
    write_executable(&summarize_path, &summarize)?;
    Ok((array_path, summarize_path))
}

/// Writes `text` to `path`, executable by everyone who may read it, so that the
/// script can also be run directly (outside Slurm) for a quick check.
fn write_executable(path: &Path, text: &str) -> Result<(), SlurmError> {
    let err = |source| SlurmError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(path, text).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(err)?;
    }
    Ok(())
}

/// Submits the array script, then the summary script with
/// `--dependency=afterany:<array id>`, and returns both job ids.
pub fn submit(
    array_script: &Path,
    summarize_script: &Path,
) -> Result<(String, String), SlurmError> {
    submit_with(Path::new("sbatch"), array_script, summarize_script)
}

/// [`submit`] with a given sbatch program, so tests can stand in for it.
fn submit_with(
    sbatch: &Path,
    array_script: &Path,
    summarize_script: &Path,
) -> Result<(String, String), SlurmError> {
    let array_id = run_sbatch(sbatch, &[], array_script)?;
    let dependency = format!("--dependency=afterany:{array_id}");
    let summary_id = run_sbatch(sbatch, &[&dependency], summarize_script).map_err(|source| {
        SlurmError::SummaryNotSubmitted {
            array_id: array_id.clone(),
            script: sh(&summarize_script.display().to_string()),
            source: Box::new(source),
        }
    })?;
    Ok((array_id, summary_id))
}

/// Runs `sbatch --parsable ARGS SCRIPT` and returns the job id it prints.
///
/// A spawn that fails with "text file busy" is retried a few times: a program that was
/// just written can stay busy for a moment while a process forked meanwhile (by another
/// thread) still holds the writer's descriptor before its own exec.
fn run_sbatch(sbatch: &Path, args: &[&str], script: &Path) -> Result<String, SlurmError> {
    let spawn = || {
        Command::new(sbatch)
            .arg("--parsable")
            .args(args)
            .arg(script)
            .stdin(Stdio::null())
            .output()
    };
    let mut result = spawn();
    for _ in 0..20 {
        match &result {
            Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                result = spawn();
            }
            _ => break,
        }
    }
    let output = result.map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => SlurmError::SbatchMissing {
            script: script.to_path_buf(),
        },
        _ => SlurmError::SbatchSpawn {
            script: script.to_path_buf(),
            source,
        },
    })?;
    if !output.status.success() {
        return Err(SlurmError::SbatchFailed {
            script: script.to_path_buf(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse_job_id(&stdout).ok_or_else(|| SlurmError::NoJobId {
        script: script.to_path_buf(),
        stdout: stdout.trim().to_string(),
    })
}

/// The job id in `sbatch --parsable` output, which is `ID` or `ID;CLUSTER`.
fn parse_job_id(stdout: &str) -> Option<String> {
    let id = stdout.trim().split(';').next()?.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_string())
}

#[cfg(test)]
mod tests;
