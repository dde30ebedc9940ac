//! Tests of the Slurm scripts: their text, quoting and submission.

use super::*;

fn options(out: &str) -> SlurmOptions {
    SlurmOptions {
        spec: PathBuf::from("/proj/sweeps/grid.toml"),
        out: PathBuf::from(out),
        tasks: 16,
        partition: None,
        time: None,
        cpus_per_task: None,
        extra_args: vec![],
        sweep_bin: PathBuf::from("/opt/sweep/bin/sweep"),
    }
}

/// The `#SBATCH` lines of a script, without the prefix.
fn sbatch_lines(script: &str) -> Vec<&str> {
    script
        .lines()
        .filter_map(|l| l.strip_prefix("#SBATCH "))
        .collect()
}

/// The script's last line, the command it runs.
fn command_line(script: &str) -> &str {
    script.lines().rfind(|l| !l.trim().is_empty()).unwrap()
}

fn bash_n(script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sh");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "bash -n: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the script with bash, with `$SWEEP` replaced by a stand-in that
/// prints its arguments one per line, and returns them.
fn run_with_echo_sweep(script: &str, env: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake sweep");
    std::fs::write(&fake, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
    let mut o = std::fs::metadata(&fake).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut o, 0o755);
    std::fs::set_permissions(&fake, o).unwrap();
    let quoted = format!("SWEEP={}", sh(fake.to_str().unwrap()));
    let patched: String = script
        .lines()
        .map(|l| {
            if l.starts_with("SWEEP=") {
                quoted.as_str()
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.path().join("s.sh");
    std::fs::write(&path, patched).unwrap();
    let out = Command::new("bash")
        .arg(&path)
        .env_remove("SLURM_CPUS_PER_TASK")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn array_script_has_the_expected_sbatch_lines() {
    let script = render_array_script(&options("/scratch/out"), "grid").unwrap();
    assert!(script.starts_with("#!/bin/bash\n"));
    assert_eq!(
        sbatch_lines(&script),
        vec![
            "--job-name=\"sweep-grid\"",
            "--array=0-15",
            "--output=\"/scratch/out/grid/slurm/%A_%a.out\"",
        ]
    );
    assert_eq!(
        command_line(&script),
        "exec \"$SWEEP\" run \"$SPEC\" --out \"$OUT\" --shard slurm --jobs \"${SLURM_CPUS_PER_TASK:-1}\""
    );
    assert!(script.contains("\nSWEEP=/opt/sweep/bin/sweep\n"));
    assert!(script.contains("\nSPEC=/proj/sweeps/grid.toml\n"));
    assert!(script.contains("\nOUT=/scratch/out\n"));
    bash_n(&script);
}

#[test]
fn sbatch_directives_come_before_any_command() {
    // sbatch stops reading #SBATCH lines at the first command.
    let mut o = options("/scratch/out");
    o.partition = Some("gpu".into());
    o.extra_args = vec!["--mem=4G".into()];
    for script in [
        render_array_script(&o, "grid").unwrap(),
        render_summarize_script(&o, "grid").unwrap(),
    ] {
        let lines: Vec<&str> = script.lines().collect();
        let first_command = lines
            .iter()
            .position(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap();
        let last_directive = lines
            .iter()
            .rposition(|l| l.starts_with("#SBATCH"))
            .unwrap();
        assert!(last_directive < first_command, "{script}");
    }
}

#[test]
fn options_become_sbatch_lines() {
    let mut o = options("/scratch/out");
    o.tasks = 3;
    o.partition = Some("short".into());
    o.time = Some("02:00:00".into());
    o.cpus_per_task = Some(8);
    o.extra_args = vec!["--account=ml".into(), "--mem=4G".into()];
    let array = render_array_script(&o, "grid").unwrap();
    let lines = sbatch_lines(&array);
    for expected in [
        "--array=0-2",
        "--cpus-per-task=8",
        "--partition=short",
        "--time=02:00:00",
        "--account=ml",
        "--mem=4G",
    ] {
        assert!(
            lines.contains(&expected),
            "{expected} missing from {lines:?}"
        );
    }
    let summary = render_summarize_script(&o, "grid").unwrap();
    let lines = sbatch_lines(&summary);
    assert!(lines.contains(&"--partition=short") && lines.contains(&"--account=ml"));
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("--array") || l.starts_with("--cpus"))
    );
    bash_n(&array);
    bash_n(&summary);
}

#[test]
fn summarize_script_runs_summarize_on_the_sweep_folder() {
    let script = render_summarize_script(&options("/scratch/out"), "grid").unwrap();
    assert_eq!(
        sbatch_lines(&script),
        vec![
            "--job-name=\"sweep-grid-summarize\"",
            "--output=\"/scratch/out/grid/slurm/%j-summarize.out\"",
        ]
    );
    assert!(script.contains("\nSWEEP_DIR=/scratch/out/grid\n"));
    assert_eq!(
        command_line(&script),
        "exec \"$SWEEP\" summarize \"$SWEEP_DIR\""
    );
    bash_n(&script);
}

#[test]
fn awkward_paths_reach_the_command_intact() {
    let out = "/tmp/it's a $HOME `x` dir";
    let mut o = options(out);
    o.spec = PathBuf::from("/tmp/my sweeps/grid $1.toml");
    o.cpus_per_task = Some(2);
    let array = render_array_script(&o, "grid").unwrap();
    bash_n(&array);
    let args = run_with_echo_sweep(&array, &[("SLURM_CPUS_PER_TASK", "2")]);
    assert_eq!(
        args,
        [
            "run",
            "/tmp/my sweeps/grid $1.toml",
            "--out",
            out,
            "--shard",
            "slurm",
            "--jobs",
            "2"
        ]
    );
    let summary = render_summarize_script(&o, "grid").unwrap();
    let args = run_with_echo_sweep(&summary, &[]);
    assert_eq!(args, ["summarize", &format!("{out}/grid")]);

    // The commands in the comments can be pasted into a shell as they are.
    let pasted = |script: &str, prefix: &str| -> Vec<String> {
        let line = script
            .lines()
            .find_map(|l| l.strip_prefix("#   ").filter(|l| l.starts_with(prefix)))
            .unwrap_or_else(|| panic!("no `{prefix}` line in\n{script}"));
        shlex::split(line).unwrap()
    };
    let slurm = format!("{out}/grid/slurm");
    assert_eq!(
        pasted(&array, "sbatch "),
        ["sbatch".to_string(), format!("{slurm}/array.sh")]
    );
    assert_eq!(
        pasted(&summary, "sbatch --dependency"),
        [
            "sbatch".to_string(),
            "--dependency=afterany:<array".into(),
            "job".into(),
            "id>".into(),
            format!("{slurm}/summarize.sh")
        ]
    );
    let rerun = pasted(&array, "/opt/sweep/bin/sweep run");
    assert_eq!(
        rerun[1..5],
        ["run", "/tmp/my sweeps/grid $1.toml", "--out", out]
    );
}

#[test]
fn jobs_default_to_one_outside_slurm() {
    let array = render_array_script(&options("/scratch/out"), "grid").unwrap();
    let args = run_with_echo_sweep(&array, &[]);
    assert_eq!(args.last().map(String::as_str), Some("1"));
}

#[test]
fn relative_paths_become_absolute() {
    let mut o = options("out");
    o.spec = PathBuf::from("sweeps/grid.toml");
    let script = render_array_script(&o, "grid").unwrap();
    let cwd = std::env::current_dir().unwrap();
    let spec = cwd.join("sweeps/grid.toml");
    assert!(script.contains(&format!("\nSPEC={}\n", sh(spec.to_str().unwrap()))));
    let log = cwd.join("out/grid/slurm/%A_%a.out");
    assert!(sbatch_lines(&script).contains(&format!("--output=\"{}\"", log.display()).as_str()));
}

#[test]
fn rejects_what_cannot_go_into_the_scripts() {
    let base = options("/scratch/out");
    let with = |f: &dyn Fn(&mut SlurmOptions)| {
        let mut o = base.clone();
        f(&mut o);
        render_array_script(&o, "grid").unwrap_err()
    };
    assert!(matches!(with(&|o| o.tasks = 0), SlurmError::NoTasks));
    assert!(matches!(
        with(&|o| o.cpus_per_task = Some(0)),
        SlurmError::NoCpus
    ));
    for out in [
        "/scratch/100%",
        "/scratch/\"q\"",
        "/scratch/a\\b",
        "/scratch/a\nb",
    ] {
        let err = with(&|o| o.out = PathBuf::from(out));
        assert!(matches!(err, SlurmError::BadPath { .. }), "{out}: {err:?}");
    }
    let err = with(&|o| o.spec = PathBuf::from("/a\nb.toml"));
    assert!(err.to_string().starts_with("spec path"), "{err}");
    let err = with(&|o| o.partition = Some("a b".into()));
    assert!(err.to_string().contains("--partition value `a b`"), "{err}");
    let err = with(&|o| o.time = Some(String::new()));
    assert!(
        err.to_string().contains("--time value `` is empty"),
        "{err}"
    );
    let err = with(&|o| o.extra_args = vec!["mem=4G".into()]);
    assert!(err.to_string().contains("like --mem=4G"), "{err}");
    let err = with(&|o| o.extra_args = vec!["--mem=4G\nrm -rf /".into()]);
    assert!(matches!(err, SlurmError::BadOption { .. }));
    let err = render_array_script(&base, "my grid").unwrap_err();
    assert!(
        err.to_string().contains("sweep name value `my grid`"),
        "{err}"
    );
    for name in ["a/b", "..", "."] {
        let err = render_array_script(&base, name).unwrap_err();
        assert!(
            err.to_string().contains("not a single folder name"),
            "{err}"
        );
    }
}

#[test]
fn write_scripts_creates_the_slurm_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path().join("out").to_str().unwrap());
    o.tasks = 4;
    let (array, summary) = write_scripts(&o, "grid").unwrap();
    let slurm = dir.path().join("out/grid/slurm");
    assert_eq!(array, slurm.join(ARRAY_SCRIPT));
    assert_eq!(summary, slurm.join(SUMMARIZE_SCRIPT));
    assert_eq!(
        std::fs::read_to_string(&array).unwrap(),
        render_array_script(&o, "grid").unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(&summary).unwrap(),
        render_summarize_script(&o, "grid").unwrap()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&array).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "script is executable");
}

#[test]
fn write_scripts_reports_the_path_it_could_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let o = options(blocker.to_str().unwrap());
    let err = write_scripts(&o, "grid").unwrap_err();
    assert!(matches!(err, SlurmError::Write { .. }));
    assert!(err.to_string().contains(blocker.to_str().unwrap()), "{err}");
}

#[test]
fn parses_parsable_output() {
    assert_eq!(parse_job_id("1234\n").as_deref(), Some("1234"));
    assert_eq!(parse_job_id("77;cluster-a\n").as_deref(), Some("77"));
    assert_eq!(parse_job_id(""), None);
    assert_eq!(parse_job_id("Submitted batch job 5"), None);
}

/// A stand-in sbatch: a shell script with the given body.
fn fake_sbatch(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("sbatch");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn submit_chains_the_summary_after_the_array() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls");
    // Job ids 41 and 42, each call's arguments appended to a log.
    let body = format!(
        "echo \"$*\" >> '{log}'; n=$(wc -l < '{log}'); echo \"$((40 + n));cl\"",
        log = log.display()
    );
    let sbatch = fake_sbatch(dir.path(), &body);
    let ids = submit_with(
        &sbatch,
        Path::new("/x/array.sh"),
        Path::new("/x/summarize.sh"),
    )
    .unwrap();
    assert_eq!(ids, ("41".to_string(), "42".to_string()));
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "--parsable /x/array.sh",
            "--parsable --dependency=afterany:41 /x/summarize.sh"
        ]
    );
}

#[test]
fn submit_reports_sbatch_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let sbatch = fake_sbatch(
        dir.path(),
        "echo 'sbatch: error: invalid partition' >&2; exit 1",
    );
    let err = submit_with(&sbatch, Path::new("/x/a.sh"), Path::new("/x/s.sh")).unwrap_err();
    assert!(matches!(err, SlurmError::SbatchFailed { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("/x/a.sh") && msg.contains("invalid partition"),
        "{msg}"
    );
}

#[test]
fn submit_says_what_to_do_without_sbatch() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-sbatch-here");
    let err = submit_with(&missing, Path::new("/x/a.sh"), Path::new("/x/s.sh")).unwrap_err();
    assert!(matches!(err, SlurmError::SbatchMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("not found on PATH"));
}

#[test]
fn submit_names_the_queued_array_when_the_summary_fails() {
    let dir = tempfile::tempdir().unwrap();
    let body = "case \"$*\" in *afterany*) echo 'bad dependency' >&2; exit 1;; esac; echo 9";
    let sbatch = fake_sbatch(dir.path(), body);
    let err = submit_with(&sbatch, Path::new("/x/a.sh"), Path::new("/x/s.sh")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SlurmError::SummaryNotSubmitted { .. }));
    assert!(
        msg.contains("scancel 9") && msg.contains("afterany:9 /x/s.sh"),
        "{msg}"
    );
    assert!(msg.contains("bad dependency"), "{msg}");
}

#[test]
fn submit_rejects_output_that_is_not_a_job_id() {
    let dir = tempfile::tempdir().unwrap();
    let sbatch = fake_sbatch(dir.path(), "echo 'Submitted batch job 5'");
    let err = submit_with(&sbatch, Path::new("/x/a.sh"), Path::new("/x/s.sh")).unwrap_err();
    assert!(matches!(err, SlurmError::NoJobId { .. }), "{err:?}");
}
