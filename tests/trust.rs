//! Reliability of `sweep run` under failure (issue 6): killed at random moments and
//! resumed, several runners on one output folder, stale claims of killed runners, and
//! diverging or failing runs recorded as data.
//!
//! Every check compares against one uninterrupted single-process sweep: the outputs must
//! be byte-identical apart from the timing fields (`seconds` in `result.json`,
//! `results.csv` and `gradcheck.csv`). Kill points are drawn from a seeded PRNG; set
//! `TRUST_SEED` to replay or vary them (the seed in use is printed).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sweep");

/// Eight runs, each its own fused unit (seed x batch size), so that runs finish one by
/// one and a kill can land between them; plus a small gradient check.
const TRUST_BODY: &str = r#"
[train]
epochs = 4
lambda = 0.1
eta = 0.01
seed = [1, 2, 3, 4]
batch_size = [50, 100]

[gradcheck]
batch_sizes = [2]
segments = 1
lambda = [0.1]
methods = ["centred"]
"#;

const TRUST_RUNS: usize = 8;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/cifar10-sample")
}

/// Writes a sweep file named `name` with `body` into `dir`; returns its path.
fn write_spec(dir: &Path, name: &str, body: &str) -> PathBuf {
    let text = format!(
        "name = \"{name}\"\n\n[data]\nformat = \"cifar10-bin\"\ndir = {:?}\n\
         train = [\"data_batch_1.bin\"]\nval = [\"data_batch_2.bin\"]\ntest = [\"test_batch.bin\"]\n{body}",
        data_dir().display().to_string()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn sweep_cmd(spec: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("run")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .arg("--no-summary")
        .args(extra)
        .env_remove("SWEEP_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn spawn(spec: &Path, out: &Path, extra: &[&str]) -> Child {
    sweep_cmd(spec, out, extra).spawn().unwrap()
}

fn run_to_end(spec: &Path, out: &Path, extra: &[&str]) -> Output {
    sweep_cmd(spec, out, extra).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run ids that this process reports as trained with `status` (`ok` or `diverged`):
/// progress lines look like `[k/N] <run_id> ok: ...` or `[k/N] <run_id> diverged at ...`.
fn reported(stderr: &str, status: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for line in stderr.lines() {
        let Some(open) = line.find('[') else { continue };
        let Some(close) = line[open..].find("] ") else {
            continue;
        };
        let counter = &line[open + 1..open + close];
        let Some((k, n)) = counter.split_once('/') else {
            continue;
        };
        if k.parse::<usize>().is_err() || n.parse::<usize>().is_err() {
            continue;
        }
        let rest = &line[open + close + 2..];
        if let Some((id, tail)) = rest.split_once(' ')
            && (tail.starts_with(&format!("{status}:")) || tail.starts_with(&format!("{status} ")))
        {
            ids.push(id.to_string());
        }
    }
    ids
}

/// `N` from the line `skipping N of M runs already finished`, or 0 without such a line.
fn skipped(stderr: &str, planned: usize) -> usize {
    for line in stderr.lines() {
        if let Some(i) = line.find("skipping ") {
            let words: Vec<&str> = line[i..].split_whitespace().collect();
            assert_eq!(words[2], "of");
            assert_eq!(words[3].parse::<usize>().unwrap(), planned, "{line}");
            return words[1].parse().unwrap();
        }
    }
    0
}

/// Blanks the `seconds` column of a CSV, keeping every other field's text.
fn blank_seconds_csv(bytes: &[u8]) -> Vec<u8> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut col = None;
    for rec in r.records() {
        let rec = rec.expect("a well-formed CSV");
        let mut fields: Vec<String> = rec.iter().map(str::to_string).collect();
        match col {
            None => col = fields.iter().position(|f| f == "seconds"),
            Some(c) => fields[c] = "<seconds>".into(),
        }
        w.write_record(&fields).unwrap();
    }
    assert!(col.is_some(), "no seconds column");
    w.into_inner().unwrap()
}

/// Blanks the `"seconds": ...` line of a pretty-printed `result.json`.
fn blank_seconds_json(bytes: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(bytes).expect("UTF-8 result.json");
    serde_json::from_str::<serde_json::Value>(text).expect("result.json is complete JSON");
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("\"seconds\":") {
                "<seconds>".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    lines.join("\n").into_bytes()
}

/// Every visible file under `root` (hidden files and folders such as `runs/.tmp`,
/// `runs/.claims` and `.lock` are the machinery's own), keyed by relative path, with the
/// timing fields blanked.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).unwrap();
            let bytes = match name.as_str() {
                "result.json" => blank_seconds_json(&bytes),
                "results.csv" | "gradcheck.csv" => blank_seconds_csv(&bytes),
                _ => bytes,
            };
            out.insert(rel, bytes);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Asserts two snapshots are equal, naming the first differing file.
fn assert_same(got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>, what: &str) {
    let got_keys: Vec<_> = got.keys().collect();
    let want_keys: Vec<_> = want.keys().collect();
    assert_eq!(got_keys, want_keys, "{what}: different files");
    for (k, v) in want {
        assert!(
            got[k] == *v,
            "{what}: {k} differs from the uninterrupted sweep"
        );
    }
}

/// Run ids whose folder holds a `result.json`, with that file's exact bytes.
fn finished_runs(sweep_root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(sweep_root.join("runs")) else {
        return out;
    };
    for e in entries {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if let Ok(bytes) = std::fs::read(e.path().join("result.json")) {
            out.insert(name, bytes);
        }
    }
    out
}

/// The uninterrupted single-process sweep everything is compared against.
struct Reference {
    _dir: tempfile::TempDir,
    spec: PathBuf,
    plan: BTreeSet<String>,
    files: BTreeMap<String, Vec<u8>>,
    seconds: f64,
}

fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let spec = write_spec(dir.path(), "trust", TRUST_BODY);
        let out = dir.path().join("out");
        let t = Instant::now();
        let o = run_to_end(&spec, &out, &["-j", "2"]);
        let seconds = t.elapsed().as_secs_f64();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let ok = reported(&stderr(&o), "ok");
        assert_eq!(ok.len(), TRUST_RUNS, "{}", stderr(&o));
        let plan: BTreeSet<String> = ok.into_iter().collect();
        assert_eq!(plan.len(), TRUST_RUNS);
        let files = snapshot(&out.join("trust"));
        for id in &plan {
            for f in [
                "params.json",
                "metrics.csv",
                "W.npy",
                "b.npy",
                "result.json",
            ] {
                assert!(files.contains_key(&format!("runs/{id}/{f}")), "{id}/{f}");
            }
        }
        for f in [
            "sweep.toml",
            "plan.csv",
            "metrics.csv",
            "results.csv",
            "gradcheck.csv",
        ] {
            assert!(files.contains_key(f), "{f}");
        }
        Reference {
            _dir: dir,
            spec,
            plan,
            files,
            seconds,
        }
    })
}

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny seeded PRNG for kill delays.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Kills `sweep run` with SIGKILL at 24 seeded random moments, each followed by a
/// resume: nothing finished is redone (its `result.json` is untouched and it is not
/// reported as trained again), the resume trains exactly the unfinished runs, and the
/// final outputs equal the uninterrupted sweep's. Kill points are uniform over the
/// uninterrupted duration T (20 points), plus 4 drawn over [0, 30 ms] after the last run
/// is reported, to land in the gradient check and the rebuild of the sweep CSVs.
#[test]
fn kill_anywhere_then_resume_gives_the_uninterrupted_outputs() {
    let r = reference();
    let seed = std::env::var("TRUST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_u64);
    eprintln!(
        "TRUST_SEED={seed}; uninterrupted sweep took {:.2}s",
        r.seconds
    );
    let mut rng = SplitMix(seed);
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = BTreeMap::new();
    for trial in 0..24 {
        let out = tmp.path().join(format!("out{trial}"));
        let mut child = spawn(&r.spec, &out, &["-j", "2"]);
        let delay = if trial < 20 {
            let delay = Duration::from_secs_f64(rng.unit() * r.seconds);
            std::thread::sleep(delay);
            delay
        } else {
            // The last few kill points land after every run has been reported, in the
            // gradient check and the rebuild of the sweep CSVs.
            let lines = BufReader::new(child.stderr.take().unwrap()).lines();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut ok = 0;
                for line in lines.map_while(Result::ok) {
                    ok += reported(&line, "ok").len();
                    if ok == TRUST_RUNS {
                        let _ = tx.send(());
                    }
                }
            });
            let _ = rx.recv_timeout(Duration::from_secs(120));
            let delay = Duration::from_secs_f64(rng.unit() * 0.03);
            std::thread::sleep(delay);
            delay
        };
        let killed = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        child.wait().unwrap();
        let root = out.join("trust");
        let before = finished_runs(&root);
        let tables = ["results.csv", "gradcheck.csv"].map(|f| root.join(f).exists());
        *seen.entry(before.len()).or_insert(0) += 1;

        let o = run_to_end(&r.spec, &out, &["-j", "2"]);
        let err = stderr(&o);
        let ctx = format!("trial {trial} (seed {seed}, kill at {delay:?}):\n{err}");
        assert_eq!(o.status.code(), Some(0), "{ctx}");
        let trained: BTreeSet<String> = reported(&err, "ok").into_iter().collect();
        assert_eq!(trained.len(), reported(&err, "ok").len(), "{ctx}");
        assert_eq!(skipped(&err, TRUST_RUNS), before.len(), "{ctx}");
        assert_eq!(trained.len(), TRUST_RUNS - before.len(), "{ctx}");
        for (id, bytes) in &before {
            assert!(!trained.contains(id), "{ctx}\n{id} was trained again");
            let now = std::fs::read(root.join("runs").join(id).join("result.json")).unwrap();
            assert!(now == *bytes, "{ctx}\n{id}/result.json was rewritten");
        }
        let all: BTreeSet<String> = trained
            .union(&before.keys().cloned().collect())
            .cloned()
            .collect();
        assert_eq!(all, r.plan, "{ctx}");
        assert_same(&snapshot(&root), &r.files, &ctx);
        assert_eq!(leftovers(&root), Vec::<String>::new(), "{ctx}");
        eprintln!(
            "trial {trial}: killed {:.2}s {} ({}), {} runs finished before the kill, \
             results.csv/gradcheck.csv existed: {tables:?}",
            delay.as_secs_f64(),
            if trial < 20 {
                "after start"
            } else {
                "after the last run"
            },
            if killed { "running" } else { "already exited" },
            before.len()
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
    eprintln!("finished runs at kill time -> trials: {seen:?}");
}

/// Debris of a crash from every stage (an assembling run folder, a run folder without
/// `result.json`, half-written CSVs and their temporary files) is never taken as
/// finished: the next run trains every run and the outputs equal the reference.
#[test]
fn crash_debris_is_not_taken_as_finished() {
    let r = reference();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let root = out.join("trust");
    let ids: Vec<&String> = r.plan.iter().collect();
    let reference_run = |id: &str, f: &str| r.files[&format!("runs/{id}/{f}")].clone();
    let half = |b: Vec<u8>| b[..b.len() / 2].to_vec();
    std::fs::create_dir_all(root.join(format!("runs/.tmp/{}.99999-0", ids[0]))).unwrap();
    std::fs::write(
        root.join(format!("runs/.tmp/{}.99999-0/W.npy", ids[0])),
        half(reference_run(ids[0], "W.npy")),
    )
    .unwrap();
    let partial = root.join("runs").join(ids[1]);
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(
        partial.join("params.json"),
        reference_run(ids[1], "params.json"),
    )
    .unwrap();
    std::fs::write(partial.join("W.npy"), half(reference_run(ids[1], "W.npy"))).unwrap();
    std::fs::write(partial.join("metrics.csv"), b"epoch,split,loss,co").unwrap();
    std::fs::write(
        root.join("results.csv"),
        half(r.files["results.csv"].clone()),
    )
    .unwrap();
    std::fs::write(root.join(".results.csv.tmp-99999-0"), b"run_id,lam").unwrap();
    std::fs::write(root.join("metrics.csv"), b"run_id,lambda\nx,").unwrap();

    let o = run_to_end(&r.spec, &out, &["-j", "2"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(skipped(&err, TRUST_RUNS), 0, "{err}");
    let trained: BTreeSet<String> = reported(&err, "ok").into_iter().collect();
    assert_eq!(trained, r.plan, "{err}");
    assert_same(&snapshot(&root), &r.files, "after crash debris");
    assert_eq!(leftovers(&root), Vec::<String>::new(), "{err}");
}

/// What is left under `runs/.tmp/`: after a runner has claimed every run, nothing (a
/// claim clears what a killed runner left of its run).
fn leftovers(root: &Path) -> Vec<String> {
    match std::fs::read_dir(root.join("runs").join(".tmp")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Three runners started together on one output folder: each run is trained by exactly
/// one of them, all exit 0, and the outputs equal a single runner's. Repeated a few
/// times because the interleaving differs each time.
#[test]
fn concurrent_runners_train_each_run_once() {
    let r = reference();
    let tmp = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let out = tmp.path().join(format!("out{round}"));
        let children: Vec<Child> = (0..3).map(|_| spawn(&r.spec, &out, &["-j", "1"])).collect();
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let mut union = BTreeSet::new();
        let mut total = 0;
        let all_err: String = outputs
            .iter()
            .enumerate()
            .map(|(i, o)| format!("--- runner {i}:\n{}", stderr(o)))
            .collect();
        for o in &outputs {
            assert_eq!(o.status.code(), Some(0), "round {round}:\n{all_err}");
            let ok = reported(&stderr(o), "ok");
            total += ok.len();
            union.extend(ok);
        }
        assert_eq!(union, r.plan, "round {round}:\n{all_err}");
        assert_eq!(
            total, TRUST_RUNS,
            "round {round}: a run was trained twice:\n{all_err}"
        );
        assert_same(
            &snapshot(&out.join("trust")),
            &r.files,
            &format!("round {round}"),
        );
    }
}

/// A runner killed with SIGKILL while it holds claims does not block the runs it
/// claimed: the next runner trains every unfinished run, none is left to another runner,
/// and the outputs equal the reference. The runner is killed once it has finished one run
/// and claimed another (a claim file exists for a run without `result.json`); if the
/// claimed run happens to finish before the kill lands, the attempt is repeated.
#[test]
fn claims_of_a_killed_runner_are_recovered() {
    let r = reference();
    let tmp = tempfile::tempdir().unwrap();
    let claimed =
        |root: &Path| std::fs::read_dir(root.join("runs/.claims")).map_or(0, |d| d.count());
    for attempt in 0..5 {
        let out = tmp.path().join(format!("out{attempt}"));
        let root = out.join("trust");
        let mut child = spawn(&r.spec, &out, &["-j", "1"]);
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut log = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            log.push_str(&line);
            log.push('\n');
            if !reported(&line, "ok").is_empty() {
                break;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while claimed(&root) <= finished_runs(&root).len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let before = finished_runs(&root);
        if before.len() == TRUST_RUNS || claimed(&root) <= before.len() {
            eprintln!("attempt {attempt}: no claim held at the kill; again");
            continue;
        }
        eprintln!(
            "attempt {attempt}: killed with {} finished and {} claimed",
            before.len(),
            claimed(&root)
        );
        let o = run_to_end(&r.spec, &out, &["-j", "2"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert!(err.contains(" 0 left to another runner"), "{err}");
        let trained: BTreeSet<String> = reported(&err, "ok").into_iter().collect();
        assert_eq!(trained.len(), TRUST_RUNS - before.len(), "{err}");
        assert!(before.keys().all(|id| !trained.contains(id)), "{err}");
        assert_same(&snapshot(&root), &r.files, "after a killed runner");
        return;
    }
    panic!("could not kill a runner while it held a claim in 5 attempts");
}

fn results_rows(root: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(root.join("results.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records()
        .map(|rec| {
            header
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(str::to_string))
                .collect()
        })
        .collect()
}

const DIVERGE_BODY: &str = r#"
[train]
epochs = 5
seed = 1

[[grid]]
lambda = 1.0
eta = 10.0
batch_size = 100

[[grid]]
lambda = 0.0
eta = [0.01, 0.001]
batch_size = 50
seed = [1, 2]
"#;

/// A diverging run (eta = 10, lambda = 1) is recorded as diverged with its epoch in
/// `result.json` and `results.csv`; the other runs finish; the exit code is 1.
#[test]
fn divergence_is_recorded_and_others_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path(), "diverge", DIVERGE_BODY);
    let out = tmp.path().join("out");
    let o = run_to_end(&spec, &out, &["-j", "2"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(reported(&err, "ok").len(), 4, "{err}");
    let diverged = reported(&err, "diverged");
    assert_eq!(diverged.len(), 1, "{err}");
    assert!(diverged[0].starts_with("lambda=1_eta=10_"), "{err}");
    let rows = results_rows(&out.join("diverge"));
    assert_eq!(rows.len(), 5);
    let bad: Vec<_> = rows.iter().filter(|r| r["status"] != "ok").collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["status"], "diverged");
    assert_eq!(bad[0]["run_id"], diverged[0]);
    let epoch: usize = bad[0]["diverged_epoch"].parse().expect("an epoch number");
    assert!((1..=5).contains(&epoch), "diverged_epoch {epoch}");
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            out.join("diverge/runs")
                .join(&diverged[0])
                .join("result.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(json["status"], "diverged");
    assert_eq!(json["diverged_epoch"], epoch);
    for row in rows.iter().filter(|r| r["status"] == "ok") {
        assert!(row["diverged_epoch"].is_empty() && row["error"].is_empty());
        let acc: f64 = row["val_accuracy"].parse().unwrap();
        assert!((0.0..=1.0).contains(&acc));
    }
    // A resume redoes nothing: a diverged run is a finished run.
    let o = run_to_end(&spec, &out, &["-j", "2"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(skipped(&err, 5), 5, "{err}");
    assert!(reported(&err, "ok").is_empty() && reported(&err, "diverged").is_empty());
}

/// With `--fail-fast`, the diverging first run stops every other run (they train in
/// lockstep with it, so they stop after its epoch): each is reported as stopped, has no
/// folder and no results row; the exit code is 1. A later run without the flag trains
/// them.
#[test]
fn fail_fast_stops_starting_runs_and_reports_them() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path(), "diverge", DIVERGE_BODY);
    let out = tmp.path().join("out");
    let o = run_to_end(&spec, &out, &["-j", "1", "--fail-fast"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(reported(&err, "diverged").len(), 1, "{err}");
    let not_started: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("an earlier run failed or diverged"))
        .collect();
    assert!(err.contains(" 4 skipped"), "{err}");
    let root = out.join("diverge");
    assert_eq!(finished_runs(&root).len(), 1, "{err}");
    let rows = results_rows(&root);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "diverged");
    for line in &not_started {
        assert!(line.contains("lambda=0_eta="), "{line}");
    }
    assert!(not_started.len() >= 4, "each skipped run is named:\n{err}");

    let o = run_to_end(&spec, &out, &["-j", "2"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(skipped(&err, 5), 1, "{err}");
    assert_eq!(reported(&err, "ok").len(), 4, "{err}");
}

/// A run whose destination is taken by a file fails on its own: it is reported as failed
/// with an error naming the path, the file is left as it was, the other runs finish and
/// are recorded, and the exit code is 1. Moving the file away lets a resume train it.
#[test]
fn a_failing_run_is_reported_and_the_others_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(
        tmp.path(),
        "blocked",
        DIVERGE_BODY.replace("eta = 10.0", "eta = 0.01").as_str(),
    );
    let out = tmp.path().join("out");
    let root = out.join("blocked");
    let blocked = root.join("runs/lambda=1_eta=0.01_batch=100_epochs=5_seed=1");
    std::fs::create_dir_all(blocked.parent().unwrap()).unwrap();
    std::fs::write(&blocked, b"user data").unwrap();

    let o = run_to_end(&spec, &out, &["-j", "2"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(" 1 failed"), "{err}");
    let id = blocked.file_name().unwrap().to_str().unwrap();
    assert!(
        err.lines().any(|l| l.contains(&format!("run {id}: "))
            && l.contains("not a folder")
            && l.contains(&blocked.display().to_string())),
        "{err}"
    );
    assert_eq!(std::fs::read(&blocked).unwrap(), b"user data");
    let ok = reported(&err, "ok");
    assert_eq!(ok.len(), 4, "{err}");
    let rows = results_rows(&root);
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter()
            .all(|r| r["status"] == "ok" && r["run_id"] != id)
    );

    std::fs::remove_file(&blocked).unwrap();
    let o = run_to_end(&spec, &out, &["-j", "2"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(skipped(&err, 5), 4, "{err}");
    assert_eq!(reported(&err, "ok"), vec![id.to_string()], "{err}");
}

/// A successive-halving race (27 drawn settings by two seeds, rungs at 1, 3 and 9
/// epochs) killed at seeded random moments and resumed ends with the outputs of the
/// uninterrupted race: the same runs stopped at the same rungs, byte for byte (timing
/// aside), whatever had been written when the kill landed.
#[test]
fn a_killed_halving_race_resumes_to_the_same_outcome() {
    const RACE: &str = "[train]\nepochs = 9\neta = 0.01\nseed = [1, 2]\n\
        lambda = { log_uniform = [1e-4, 1.0] }\n\
        [search]\nsamples = 27\nseed = 3\nmethod = \"halving\"\nmin_epochs = 1\nfactor = 3\n";
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "race", RACE);
    let reference = dir.path().join("reference");
    let t = Instant::now();
    let o = run_to_end(&spec, &reference, &["-j", "2"]);
    let seconds = t.elapsed().as_secs_f64();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let want = snapshot(&reference.join("race"));
    let results = String::from_utf8(want["results.csv"].clone()).unwrap();
    assert_eq!(results.matches(",ok,").count(), 2 * 3, "{results}");
    assert_eq!(results.matches(",stopped,").count(), 2 * 24, "{results}");

    let mut rng = SplitMix(0x4a1f);
    let mut seen = BTreeMap::new();
    for trial in 0..10 {
        let out = dir.path().join(format!("out{trial}"));
        let mut child = spawn(&spec, &out, &["-j", "2"]);
        // Most of the race's first moments go to loading; kill in its later 60 %.
        let delay = Duration::from_secs_f64((0.4 + 0.6 * rng.unit()) * seconds);
        std::thread::sleep(delay);
        let _ = child.kill();
        child.wait().unwrap();
        *seen
            .entry(finished_runs(&out.join("race")).len())
            .or_insert(0) += 1;
        let o = run_to_end(&spec, &out, &["-j", "2"]);
        let ctx = format!("trial {trial} (kill at {delay:?}):\n{}", stderr(&o));
        assert_eq!(o.status.code(), Some(0), "{ctx}");
        assert_same(&snapshot(&out.join("race")), &want, &ctx);
        std::fs::remove_dir_all(&out).unwrap();
    }
    eprintln!("race took {seconds:.2}s; runs written at kill time -> trials: {seen:?}");
}
