//! The Slurm scripts against a real Slurm: submits what `sweep::exec::slurm` writes
//! to the cluster named by `SLURM_CONF` (in CI, the single-node cluster that
//! `.ci/slurm.sh` starts), with a stand-in for the `sweep` executable that
//! records its arguments and its array task's `SLURM_ARRAY_TASK_*` variables.
//! The test then resolves those variables with `sweep::exec::shard::from_slurm_env`,
//! exactly as `--shard slurm` does inside a task.
//!
//! Without `sbatch` on PATH or without `SLURM_CONF` the tests print why and
//! pass; with `SWEEP_REQUIRE_SLURM=1` (set by `.ci/slurm.sh`) they fail instead,
//! so CI cannot skip them by accident.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sweep::exec::shard::{Shard, from_slurm_env};
use sweep::exec::slurm::{SlurmOptions, submit, write_scripts};

/// How long a job may stay queued before the test gives up. This guards
/// against a hung cluster; it is not a performance assertion.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(180);

/// Why Slurm cannot be used here, if it cannot.
fn slurm_missing() -> Option<String> {
    if std::env::var_os("SLURM_CONF").is_none() {
        return Some("SLURM_CONF is not set (source .ci/slurm.sh to start a local Slurm)".into());
    }
    match Command::new("sbatch").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "sbatch --version failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("sbatch is not runnable: {e}")),
    }
}

/// True if the test should go on; prints the reason and returns false when
/// Slurm is missing, or panics if `SWEEP_REQUIRE_SLURM=1` demands it.
fn have_slurm(test: &str) -> bool {
    let Some(reason) = slurm_missing() else {
        return true;
    };
    if std::env::var("SWEEP_REQUIRE_SLURM").as_deref() == Ok("1") {
        panic!("{test}: SWEEP_REQUIRE_SLURM=1 but {reason}");
    }
    eprintln!("skipping {test}: {reason}");
    false
}

/// A folder with a space in its name, so that quoting is exercised for real.
struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    record: PathBuf,
    options: SlurmOptions,
}

/// Writes the stand-in `sweep`: `run` records its arguments and the task's
/// array variables under `record/`, `summarize` records its arguments and
/// which records existed when it ran.
fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("slurm test");
    let record = root.join("record");
    std::fs::create_dir_all(&record).unwrap();
    let rec = shlex::try_quote(record.to_str().unwrap())
        .unwrap()
        .into_owned();
    let fake = root.join("fake sweep");
    let body = format!(
        r#"#!/bin/bash
set -euo pipefail
rec={rec}
case "$1" in
  run)
    id=$SLURM_ARRAY_TASK_ID
    printf '%s\n' "$@" > "$rec/args-$id"
    env | grep '^SLURM_ARRAY_TASK_' > "$rec/env-$id.tmp"
    mv "$rec/env-$id.tmp" "$rec/env-$id"
    ;;
  summarize)
    printf '%s\n' "$@" > "$rec/summarize-args"
    ls "$rec" > "$rec/summarize-saw"
    ;;
  *) echo "unexpected command $1" >&2; exit 2 ;;
esac
"#
    );
    std::fs::write(&fake, body).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let options = SlurmOptions {
        spec: root.join("grid.toml"),
        out: root.join("out"),
        tasks: 4,
        partition: None,
        time: None,
        cpus_per_task: None,
        extra_args: vec![],
        sweep_bin: fake,
    };
    Setup {
        _tmp: tmp,
        root,
        record,
        options,
    }
}

/// Waits until none of `ids` is pending or running, then checks that every
/// job (and array task) of them completed.
fn wait_for(ids: &[&str]) {
    let list = ids.join(",");
    let start = Instant::now();
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-o", "%i", "-j", &list])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            break;
        }
        if start.elapsed() > QUEUE_TIMEOUT {
            let all = Command::new("squeue").output().unwrap();
            panic!(
                "jobs {list} still queued after {QUEUE_TIMEOUT:?}:\n{}",
                String::from_utf8_lossy(&all.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    for id in ids {
        let out = Command::new("scontrol")
            .args(["-o", "show", "job", id])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.trim().is_empty(),
            "scontrol knows nothing of job {id}"
        );
        for line in text.lines() {
            assert!(
                line.contains("JobState=COMPLETED"),
                "job {id} did not complete: {line}"
            );
        }
    }
}

/// The `SLURM_ARRAY_TASK_*` variables each task recorded, by task id.
fn recorded_envs(record: &Path) -> BTreeMap<u64, HashMap<String, String>> {
    let mut envs = BTreeMap::new();
    for entry in std::fs::read_dir(record).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(id) = name.strip_prefix("env-") else {
            continue;
        };
        let vars: HashMap<String, String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        envs.insert(id.parse().unwrap(), vars);
    }
    envs
}

/// Each task's shard, as `--shard slurm` would resolve it, by task id.
fn resolved_shards(record: &Path) -> BTreeMap<u64, Shard> {
    recorded_envs(record)
        .into_iter()
        .map(|(id, vars)| {
            let shard = from_slurm_env(|k| vars.get(k).cloned())
                .unwrap_or_else(|e| panic!("task {id} with {vars:?}: {e}"));
            (id, shard)
        })
        .collect()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn submitted_array_runs_every_shard_once_then_summarizes() {
    if !have_slurm("submitted_array_runs_every_shard_once_then_summarizes") {
        return;
    }
    let s = setup();
    let (array, summary) = write_scripts(&s.options, "grid").unwrap();
    let (array_id, summary_id) = submit(&array, &summary).unwrap();
    wait_for(&[&array_id, &summary_id]);

    let shards = resolved_shards(&s.record);
    let expected: BTreeMap<u64, Shard> = (0..4)
        .map(|i| (i, Shard::new(i as usize, 4).unwrap()))
        .collect();
    assert_eq!(shards, expected, "task k of --array=0-3 is shard k/4");

    let spec = s.root.join("grid.toml");
    let out = s.root.join("out");
    for id in 0..4 {
        assert_eq!(
            lines(&s.record.join(format!("args-{id}"))),
            [
                "run",
                spec.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--shard",
                "slurm",
                "--jobs",
                "1"
            ]
        );
        let log = out.join(format!("grid/slurm/{array_id}_{id}.out"));
        assert!(log.is_file(), "task log {} is missing", log.display());
    }

    assert_eq!(
        lines(&s.record.join("summarize-args")),
        ["summarize", out.join("grid").to_str().unwrap()]
    );
    let saw = lines(&s.record.join("summarize-saw"));
    for id in 0..4 {
        assert!(
            saw.contains(&format!("env-{id}")),
            "summary ran before task {id} had finished: it saw {saw:?}"
        );
    }
}

#[test]
fn stepped_array_numbers_its_shards_without_gaps() {
    if !have_slurm("stepped_array_numbers_its_shards_without_gaps") {
        return;
    }
    let s = setup();
    let (array, _) = write_scripts(&s.options, "grid").unwrap();
    // The command line overrides the script's own --array=0-3, as a user
    // editing the array would.
    let out = Command::new("sbatch")
        .args(["--parsable", "--array=1-7:2"])
        .arg(&array)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let id = stdout.trim().split(';').next().unwrap().to_string();
    wait_for(&[&id]);

    let shards = resolved_shards(&s.record);
    let expected: BTreeMap<u64, Shard> = [1, 3, 5, 7]
        .into_iter()
        .enumerate()
        .map(|(i, task)| (task, Shard::new(i, 4).unwrap()))
        .collect();
    assert_eq!(
        shards, expected,
        "tasks 1,3,5,7 of --array=1-7:2 are shards 0..4 of 4"
    );
    let vars = &recorded_envs(&s.record)[&7];
    assert_eq!(vars["SLURM_ARRAY_TASK_STEP"], "2");
    assert_eq!(vars["SLURM_ARRAY_TASK_COUNT"], "4");
}

#[test]
fn list_array_is_refused_with_a_clear_error() {
    if !have_slurm("list_array_is_refused_with_a_clear_error") {
        return;
    }
    let s = setup();
    let (array, _) = write_scripts(&s.options, "grid").unwrap();
    let out = Command::new("sbatch")
        .args(["--parsable", "--array=0,3,7"])
        .arg(&array)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let id = stdout.trim().split(';').next().unwrap().to_string();
    wait_for(&[&id]);

    let envs = recorded_envs(&s.record);
    assert_eq!(envs.keys().copied().collect::<Vec<_>>(), [0, 3, 7]);
    for (task, vars) in envs {
        let err = from_slurm_env(|k| vars.get(k).cloned()).unwrap_err();
        assert!(
            err.to_string().contains("like 0-15 or 1-31:2"),
            "task {task}: {err}"
        );
    }
}

/// Every file under `dir`, relative path -> bytes, with the timing fields blanked:
/// `seconds` in result.json and the `seconds` column of results.csv.
fn outputs_without_timing(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.join("runs")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            if name == "result.json" {
                let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
                v["seconds"] = serde_json::Value::Null;
                text = v.to_string();
            }
            files.insert(p.strip_prefix(dir).unwrap().display().to_string(), text);
        }
    }
    let results = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    let mut lines = results.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let sec = header.iter().position(|h| *h == "seconds").unwrap();
    let blanked: Vec<String> = lines
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f[sec] = "";
            f.join(",")
        })
        .collect();
    files.insert("results.csv".into(), blanked.join("\n"));
    for name in ["metrics.csv", "plan.csv"] {
        files.insert(
            name.into(),
            std::fs::read_to_string(dir.join(name)).unwrap(),
        );
    }
    files
}

/// The real `sweep` binary over a real Slurm: a 4-task array over a small version of the
/// sample sweep trains every run exactly once, gives the same outputs as a plain local
/// `sweep run`, and the dependent summary job writes the report.
#[test]
fn sample_sweep_over_a_slurm_array_matches_a_local_run() {
    if !have_slurm("sample_sweep_over_a_slurm_array_matches_a_local_run") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/cifar10-sample");
    let spec = tmp.path().join("mini.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"mini\"\n[data]\ndir = {:?}\ntrain = [\"data_batch_1.bin\"]\nval = [\"data_batch_2.bin\"]\n\
             test = [\"test_batch.bin\"]\n[train]\nepochs = 3\nseed = [1, 2, 3]\n[[grid]]\nlambda = 0.0\neta = [0.1, 0.001]\n\
             [[grid]]\nlambda = [0.1, 1.0]\neta = 0.001\n",
            sample.display().to_string()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_sweep");
    let cluster_out = tmp.path().join("cluster");
    let out = Command::new(bin)
        .args([
            "slurm",
            spec.to_str().unwrap(),
            "--tasks",
            "4",
            "--submit",
            "--out",
        ])
        .arg(&cluster_out)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let ids: Vec<&str> = stdout.lines().collect();
    assert_eq!(ids.len(), 2, "array and summary job ids: {stdout}");
    wait_for(&ids);

    let sweep_dir = cluster_out.join("mini");
    let mut trained: BTreeMap<String, usize> = BTreeMap::new();
    for entry in std::fs::read_dir(sweep_dir.join("slurm")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "out") {
            for line in std::fs::read_to_string(&p).unwrap().lines() {
                // Progress lines read `[k/N] <run_id> ok: ...`.
                let id = line
                    .split("] ")
                    .nth(1)
                    .and_then(|rest| rest.split_once(" ok: "));
                if let Some((id, _)) = id {
                    *trained.entry(id.to_string()).or_default() += 1;
                }
            }
        }
    }
    assert_eq!(trained.len(), 12, "every run trained: {trained:?}");
    assert!(
        trained.values().all(|&n| n == 1),
        "each run trained once: {trained:?}"
    );
    assert!(
        sweep_dir.join("report.html").is_file(),
        "the summary job wrote the report"
    );

    let local_out = tmp.path().join("local");
    let status = Command::new(bin)
        .args(["run", spec.to_str().unwrap(), "-q", "--no-summary", "--out"])
        .arg(&local_out)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        outputs_without_timing(&sweep_dir),
        outputs_without_timing(&local_out.join("mini"))
    );
}
