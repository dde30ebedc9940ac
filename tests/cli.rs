//! End-to-end tests of `sweep run` (and the help texts) through the real binary: the
//! output layout and CSV headers of the output contract, `--dry-run`, resuming and
//! `--force`, determinism across worker counts, fused versus solo training, the refusal
//! of bad sweep files and data before anything is written, and diverging runs.
//!
//! Every sweep here trains on the shipped CIFAR-10 sample for a couple of epochs, so each
//! test takes a second or two even in a debug build.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use predicates::prelude::*;

use common::{
    Entry, RECORD, Table, is_hidden, npy_header, sample_data_section, sample_dir, snapshot, sweep,
    visible_names, write_npy_split, write_sample_spec,
};

/// Parameter columns of `plan.csv`, in contract order.
const PARAMS: [&str; 24] = [
    "lambda",
    "eta",
    "batch_size",
    "epochs",
    "seed",
    "shuffle",
    "precision",
    "init_std",
    "hidden",
    "init",
    "loss",
    "schedule",
    "eta_min",
    "eta_max",
    "step_size",
    "cycles",
    "decay",
    "decay_every",
    "eval_every",
    "augment",
    "dropout",
    "batch_norm",
    "bn_momentum",
    "bn_eps",
];

/// The cells of the one-layer lab's runs for the axes after `init_std`: the defaults, and
/// empty where an axis does not apply (no cyclic or step schedule, no hidden layer).
const LAB1_REST: [&str; 16] = [
    "[]",
    "normal",
    "cross-entropy",
    "constant",
    "",
    "",
    "",
    "",
    "",
    "",
    "0",
    "none",
    "",
    "",
    "",
    "",
];

fn with_params(first: &[&str], last: &[&str]) -> Vec<String> {
    first
        .iter()
        .chain(PARAMS.iter())
        .chain(last.iter())
        .map(|s| s.to_string())
        .collect()
}

fn plan_header() -> Vec<String> {
    with_params(&["run_id"], &[])
}

fn metrics_header() -> Vec<String> {
    // The loss function's column is renamed where `loss` is the metric.
    let params = PARAMS.map(|c| if c == "loss" { "loss_function" } else { c });
    ["run_id"]
        .iter()
        .chain(&params)
        .chain(&[
            "epoch",
            "update",
            "learning_rate",
            "split",
            "loss",
            "cost",
            "accuracy",
        ])
        .map(|s| s.to_string())
        .collect()
}

fn results_header() -> Vec<String> {
    with_params(
        &["run_id"],
        &[
            "status",
            "diverged_epoch",
            "train_loss",
            "train_cost",
            "train_accuracy",
            "val_loss",
            "val_cost",
            "val_accuracy",
            "test_loss",
            "test_cost",
            "test_accuracy",
            "seconds",
            "error",
            "stopped_epoch",
        ],
    )
}

fn gradcheck_header() -> Vec<String> {
    [
        "batch_size",
        "segment",
        "lambda",
        "method",
        "param",
        "norm_diff",
        "max_abs_diff",
        "max_rel_err",
        "seconds",
        "kinks",
        "zero_by_construction",
    ]
    .map(String::from)
    .to_vec()
}

/// A small sample sweep: two etas by two seeds, two epochs, and a tiny gradient check.
const SMALL: &str = "\
[train]
epochs = 2
batch_size = 100
seed = [1, 2]

[[grid]]
lambda = 0.0
eta = [0.1, 0.01]

[gradcheck]
batch_sizes = [1, 5]
segments = 1
lambda = [0.0, 0.1]
methods = [\"forward\", \"centred\"]
dims = 20
";

/// The runs of [`SMALL`], in plan order (seed turns fastest), written out by hand from
/// the contract's id format.
const SMALL_IDS: [&str; 4] = [
    "lambda=0_eta=0.1_batch=100_epochs=2_seed=1",
    "lambda=0_eta=0.1_batch=100_epochs=2_seed=2",
    "lambda=0_eta=0.01_batch=100_epochs=2_seed=1",
    "lambda=0_eta=0.01_batch=100_epochs=2_seed=2",
];

/// The `plan.csv` rows of [`SMALL`].
fn small_plan_rows() -> Vec<Vec<String>> {
    [("0.1", "1"), ("0.1", "2"), ("0.01", "1"), ("0.01", "2")]
        .iter()
        .zip(SMALL_IDS)
        .map(|((eta, seed), id)| {
            [id, "0.0", eta, "100", "2", seed, "true", "f32", "0.01"]
                .iter()
                .chain(&LAB1_REST)
                .map(|s| s.to_string())
                .collect()
        })
        .collect()
}

/// Runs `sweep run` on `spec` into `out` and asserts it succeeded; returns stderr.
fn run_ok(spec: &Path, out: &Path, extra: &[&str]) -> String {
    let assert = sweep()
        .arg("run")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .arg("--no-summary")
        .args(extra)
        .assert()
        .success();
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

#[test]
fn small_sweep_writes_the_contract_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_sample_spec(tmp.path(), "small.toml", "small", SMALL);
    let out = tmp.path().join("out");
    run_ok(&spec, &out, &["-j", "2"]);
    let root = out.join("small");

    // gradcheck.json records which check gradcheck.csv answers (artifacts.rs), so that a
    // rerun can skip the check; everything else is what the contract lists.
    assert_eq!(
        visible_names(&root),
        [
            "gradcheck.csv",
            "gradcheck.json",
            "metrics.csv",
            "origin.json",
            "plan.csv",
            "results.csv",
            "runs",
            "sweep.toml"
        ]
    );
    assert_eq!(
        fs::read(root.join("sweep.toml")).unwrap(),
        fs::read(&spec).unwrap()
    );
    let origin: serde_json::Value =
        serde_json::from_slice(&fs::read(root.join("origin.json")).unwrap()).unwrap();
    assert_eq!(
        origin["spec"],
        spec.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(
        origin["data_dir"],
        sample_dir().canonicalize().unwrap().to_str().unwrap()
    );

    let plan = Table::read(&root.join("plan.csv"));
    assert_eq!(plan.header, plan_header());
    assert_eq!(plan.rows, small_plan_rows());

    let mut ids = SMALL_IDS.map(String::from).to_vec();
    ids.sort();
    assert_eq!(visible_names(&root.join("runs")), ids);
    for id in SMALL_IDS {
        let run = root.join("runs").join(id);
        assert_eq!(
            visible_names(&run),
            [
                "W.npy",
                "b.npy",
                "metrics.csv",
                "model.json",
                "params.json",
                "result.json"
            ],
            "{id}"
        );
        let w = npy_header(&run.join("W.npy"));
        assert_eq!(
            (w.descr.as_str(), w.fortran_order, w.shape),
            ("<f4", false, vec![10, 3072]),
            "{id}"
        );
        let b = npy_header(&run.join("b.npy"));
        assert_eq!((b.descr.as_str(), b.shape), ("<f4", vec![10]), "{id}");

        let params: serde_json::Value =
            serde_json::from_slice(&fs::read(run.join("params.json")).unwrap()).unwrap();
        let keys: Vec<&str> = params
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected_keys = PARAMS.to_vec();
        expected_keys.sort();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort();
        assert_eq!(keys_sorted, expected_keys, "{id}");
        let row = &plan.rows[plan.column("run_id").iter().position(|r| *r == id).unwrap()];
        assert_eq!(
            params["eta"].as_f64().unwrap(),
            row[2].parse::<f64>().unwrap()
        );
        assert_eq!(
            params["seed"].as_u64().unwrap(),
            row[5].parse::<u64>().unwrap()
        );
        assert_eq!(params["epochs"], 2);
        assert_eq!(params["batch_size"], 100);
        assert_eq!(params["shuffle"], true);
        assert_eq!(params["precision"], "f32");

        let result: serde_json::Value =
            serde_json::from_slice(&fs::read(run.join("result.json")).unwrap()).unwrap();
        assert_eq!(result["status"], "ok", "{id}");
        assert!(result["seconds"].as_f64().unwrap() >= 0.0, "{id}");
    }

    let metrics = Table::read(&root.join("metrics.csv"));
    assert_eq!(metrics.header, metrics_header());
    assert_eq!(metrics.rows.len(), SMALL_IDS.len() * (2 + 1) * 2);
    for id in SMALL_IDS {
        let mine: Vec<&Vec<String>> = metrics.rows.iter().filter(|r| r[0] == id).collect();
        let epoch_split: Vec<(&str, &str)> = mine
            .iter()
            .map(|r| {
                (
                    r[metrics.col("epoch")].as_str(),
                    r[metrics.col("split")].as_str(),
                )
            })
            .collect();
        assert_eq!(
            epoch_split,
            [
                ("0", "train"),
                ("0", "val"),
                ("1", "train"),
                ("1", "val"),
                ("2", "train"),
                ("2", "val")
            ],
            "{id}"
        );
        for r in &mine {
            let acc: f64 = r[metrics.col("accuracy")].parse().unwrap();
            assert!((0.0..=1.0).contains(&acc), "{id}: accuracy {acc}");
            let loss: f64 = r[metrics.col("loss")].parse().unwrap();
            assert!(loss.is_finite() && loss > 0.0, "{id}: loss {loss}");
        }
        // The per-run file holds the same epochs as the sweep-level table.
        let own = Table::read(&root.join("runs").join(id).join("metrics.csv"));
        assert_eq!(own.rows.len(), mine.len(), "{id}");
        for (a, b) in own.rows.iter().zip(&mine) {
            assert_eq!(a[..], b[b.len() - a.len()..], "{id}");
        }
    }

    let results = Table::read(&root.join("results.csv"));
    assert_eq!(results.header, results_header());
    assert_eq!(results.column("run_id"), SMALL_IDS);
    assert!(results.column("status").iter().all(|s| *s == "ok"));
    assert!(
        results
            .column("diverged_epoch")
            .iter()
            .all(|s| s.is_empty())
    );
    assert!(results.column("error").iter().all(|s| s.is_empty()));
    for col in [
        "train_accuracy",
        "val_accuracy",
        "test_accuracy",
        "test_loss",
    ] {
        for v in results.column(col) {
            let v: f64 = v.parse().unwrap_or_else(|_| panic!("{col} = {v:?}"));
            assert!(v.is_finite(), "{col} = {v}");
        }
    }

    let check = Table::read(&root.join("gradcheck.csv"));
    assert_eq!(check.header, gradcheck_header());
    // 2 batch sizes x (first + 1 random segment) x 2 lambdas x 2 methods x (W, b).
    assert_eq!(check.rows.len(), 2 * 2 * 2 * 2 * 2);
    let set = |c: &str| {
        let mut v: Vec<&str> = check.column(c);
        v.sort();
        v.dedup();
        v
    };
    assert_eq!(set("batch_size"), ["1", "5"]);
    assert_eq!(set("segment"), ["first", "random-1"]);
    assert_eq!(set("method"), ["centred", "forward"]);
    assert_eq!(set("param"), ["W", "b"]);
    for v in check.column("max_rel_err") {
        let v: f64 = v.parse().unwrap();
        assert!(v.is_finite() && v >= 0.0, "max_rel_err {v}");
    }

    // A dry run of the same file prints exactly what plan.csv holds.
    let dry = sweep()
        .args(["run", "--dry-run"])
        .arg(&spec)
        .assert()
        .success();
    assert_eq!(
        dry.get_output().stdout,
        fs::read(root.join("plan.csv")).unwrap()
    );
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_sample_spec(tmp.path(), "small.toml", "small", SMALL);
    let out = tmp.path().join("out");
    let assert = sweep()
        .arg("run")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .arg("--dry-run")
        .assert()
        .success();
    let mut expected = plan_header().join(",") + "\n";
    for row in small_plan_rows() {
        expected.push_str(&row.join(","));
        expected.push('\n');
    }
    assert_eq!(
        String::from_utf8_lossy(&assert.get_output().stdout),
        expected
    );
    assert!(!out.exists(), "--dry-run created {}", out.display());
    let names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["small.toml"]);
}

/// Two runs (two seeds) of two epochs, without a gradient check.
const TWO: &str = "[train]\nepochs = 2\nbatch_size = 100\neta = 0.01\nseed = [1, 2]\n";

#[test]
fn rerun_skips_finished_runs_and_force_retrains_them() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_sample_spec(tmp.path(), "two.toml", "two", TWO);
    let out = tmp.path().join("out");
    run_ok(&spec, &out, &[]);
    let runs = out.join("two").join("runs");
    let before = snapshot(&runs);
    let results_before = fs::read(out.join("two/results.csv")).unwrap();
    assert!(before.keys().any(|p| p.ends_with("W.npy")));

    let stderr = run_ok(&spec, &out, &[]);
    assert!(stderr.contains("skipping 2 of 2 runs"), "{stderr}");
    let after = snapshot(&runs);
    let visible = |s: &std::collections::BTreeMap<PathBuf, Entry>| {
        s.iter()
            .filter(|(p, _)| !is_hidden(p))
            .map(|(p, e)| (p.clone(), e.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        visible(&after),
        visible(&before),
        "a rerun touched a finished run folder"
    );
    assert_eq!(
        fs::read(out.join("two/results.csv")).unwrap(),
        results_before
    );

    let stderr = run_ok(&spec, &out, &["--force"]);
    assert!(!stderr.contains("skipping"), "{stderr}");
    let forced = snapshot(&runs);
    for (path, entry) in visible(&before) {
        let (
            Entry::File {
                bytes: old,
                inode: old_inode,
                ..
            },
            Some(Entry::File {
                bytes: new,
                inode: new_inode,
                ..
            }),
        ) = (entry, forced.get(&path))
        else {
            continue;
        };
        assert_ne!(
            old_inode,
            *new_inode,
            "{} was not rewritten",
            path.display()
        );
        // Retraining is deterministic: the weights come out the same.
        if path.ends_with("W.npy") || path.ends_with("b.npy") {
            assert_eq!(&old, new, "{}", path.display());
        }
    }
}

#[test]
fn runs_of_another_arithmetic_are_not_reused_and_force_retrains_them() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_sample_spec(tmp.path(), "two.toml", "two", TWO);
    let out = tmp.path().join("out");
    run_ok(&spec, &out, &[]);
    // One run as an earlier sweep wrote it: no `arithmetic` field (revision 1).
    let runs = out.join("two").join("runs");
    let result = runs.join(&visible_names(&runs)[0]).join("result.json");
    let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&result).unwrap()).unwrap();
    assert_eq!(json["arithmetic"], sweep::train::ARITHMETIC);
    json.as_object_mut().unwrap().remove("arithmetic");
    fs::write(&result, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let visible = || {
        snapshot(&runs)
            .into_iter()
            .filter(|(p, _)| !is_hidden(p))
            .collect::<Vec<_>>()
    };
    let before = visible();

    let refused = sweep()
        .arg("run")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let expected = format!("revision 1, now {}", sweep::train::ARITHMETIC);
    assert!(
        stderr.contains(&expected) && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(visible() == before, "a refused run changed a run folder");

    run_ok(&spec, &out, &["--force"]);
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&result).unwrap()).unwrap();
    assert_eq!(json["arithmetic"], sweep::train::ARITHMETIC);
}

/// Four runs over two batch sizes, so fused groups and single runs both occur, and a tiny
/// gradient check.
const DETERMINISM: &str = "\
[train]
epochs = 2
seed = [1, 2]

[[grid]]
batch_size = 100
lambda = 0.0
eta = [0.1, 0.01]

[[grid]]
batch_size = 50
lambda = 0.01
eta = 0.01
seed = 3

[gradcheck]
batch_sizes = [2]
segments = 1
lambda = [0.0]
methods = [\"centred\"]
dims = 20
";

/// `bytes` with the `seconds` field or column removed, for files that record timings.
fn without_timing(rel: &Path, bytes: &[u8]) -> Vec<u8> {
    let name = rel.file_name().unwrap().to_string_lossy();
    if name == "result.json" {
        let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        assert!(
            v.as_object_mut().unwrap().remove("seconds").is_some(),
            "no seconds in {}",
            rel.display()
        );
        return serde_json::to_vec(&v).unwrap();
    }
    if name.ends_with(".csv") {
        let mut r = csv::Reader::from_reader(bytes);
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        let skip = header.iter().position(|h| h == "seconds");
        let mut w = csv::Writer::from_writer(Vec::new());
        let keep = |rec: Vec<String>| -> Vec<String> {
            rec.into_iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != skip)
                .map(|(_, f)| f)
                .collect()
        };
        w.write_record(keep(header.clone())).unwrap();
        for rec in r.records() {
            w.write_record(keep(rec.unwrap().iter().map(String::from).collect()))
                .unwrap();
        }
        return w.into_inner().unwrap();
    }
    bytes.to_vec()
}

#[test]
fn one_and_two_workers_write_identical_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_sample_spec(tmp.path(), "det.toml", "det", DETERMINISM);
    let (out1, out2) = (tmp.path().join("j1"), tmp.path().join("j2"));
    run_ok(&spec, &out1, &["-j", "1"]);
    run_ok(&spec, &out2, &["-j", "2"]);
    let files = |out: &Path| {
        snapshot(&out.join("det"))
            .into_iter()
            .filter(|(p, e)| !is_hidden(p) && matches!(e, Entry::File { .. }))
            .map(|(p, e)| match e {
                Entry::File { bytes, .. } => (p, bytes),
                Entry::Dir => unreachable!(),
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (files(&out1), files(&out2));
    let names = |v: &[(PathBuf, Vec<u8>)]| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
    assert_eq!(
        a.iter().filter(|(p, _)| p.ends_with("W.npy")).count(),
        5,
        "expected 5 runs"
    );
    for ((path, x), (_, y)) in a.iter().zip(&b) {
        let name = path.file_name().unwrap().to_string_lossy();
        if name.ends_with(".npy") {
            assert!(x == y, "{} differs between -j 1 and -j 2", path.display());
        } else {
            assert!(
                without_timing(path, x) == without_timing(path, y),
                "{} differs between -j 1 and -j 2 (apart from seconds)",
                path.display()
            );
        }
    }
}

#[test]
fn shards_leave_the_tables_to_summarize_which_matches_an_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_sample_spec(tmp.path(), "det.toml", "det", DETERMINISM);
    let (whole, sharded) = (tmp.path().join("whole"), tmp.path().join("sharded"));
    run_ok(&spec, &whole, &[]);
    for shard in ["0/2", "1/2"] {
        let log = run_ok(&spec, &sharded, &["--shard", shard]);
        assert!(
            log.contains("sweep summarize"),
            "shard {shard} says who builds the tables:\n{log}"
        );
        for table in ["metrics.csv", "results.csv"] {
            assert!(
                !sharded.join("det").join(table).exists(),
                "shard {shard} wrote the sweep-level {table}"
            );
        }
    }
    sweep()
        .args(["summarize", "--no-figures"])
        .arg(sharded.join("det"))
        .assert()
        .success();
    for table in ["metrics.csv", "results.csv"] {
        let read = |out: &Path| Table::read(&out.join("det").join(table)).without("seconds");
        assert_eq!(
            read(&sharded),
            read(&whole),
            "{table} after two shards and summarize differs from one whole run"
        );
    }
}

#[test]
fn a_run_trained_fused_matches_the_same_run_trained_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let base = "[train]\nepochs = 2\nbatch_size = 100\nseed = 1\nlambda = 0.0\n";
    let fused = write_sample_spec(
        tmp.path(),
        "fused.toml",
        "fused",
        &format!("{base}eta = [0.1, 0.01]\n"),
    );
    let solo = write_sample_spec(
        tmp.path(),
        "solo.toml",
        "solo",
        &format!("{base}eta = 0.01\n"),
    );
    let out = tmp.path().join("out");
    run_ok(&fused, &out, &["-j", "1"]);
    run_ok(&solo, &out, &["-j", "1"]);
    let id = "lambda=0_eta=0.01_batch=100_epochs=2_seed=1";
    assert_eq!(visible_names(&out.join("solo/runs")), [id]);
    assert_eq!(visible_names(&out.join("fused/runs")).len(), 2);
    for file in ["W.npy", "b.npy", "metrics.csv"] {
        let a = fs::read(out.join("fused/runs").join(id).join(file)).unwrap();
        let b = fs::read(out.join("solo/runs").join(id).join(file)).unwrap();
        assert!(a == b, "{file} of {id} differs between fused and solo");
    }
}

#[test]
fn a_diverging_run_exits_1_and_the_others_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let body = "\
[train]
epochs = 5
batch_size = 100
seed = 1

[[grid]]
lambda = 1.0
eta = 10.0

[[grid]]
lambda = 0.0
eta = [0.01, 0.001]
";
    let spec = write_sample_spec(tmp.path(), "div.toml", "div", body);
    let out = tmp.path().join("out");
    sweep()
        .arg("run")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .arg("--no-summary")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("diverged"));
    let results = Table::read(&out.join("div/results.csv"));
    assert_eq!(results.header, results_header());
    assert_eq!(
        results.column("run_id"),
        [
            "lambda=1_eta=10_batch=100_epochs=5_seed=1",
            "lambda=0_eta=0.01_batch=100_epochs=5_seed=1",
            "lambda=0_eta=0.001_batch=100_epochs=5_seed=1",
        ]
    );
    assert_eq!(results.column("status"), ["diverged", "ok", "ok"]);
    let epoch: usize = results.column("diverged_epoch")[0]
        .parse()
        .expect("diverged_epoch is set");
    assert!((1..=5).contains(&epoch), "diverged_epoch {epoch}");
    assert_eq!(&results.column("diverged_epoch")[1..], ["", ""]);
    for v in &results.column("val_accuracy")[1..] {
        let v: f64 = v.parse().unwrap();
        assert!((0.0..=1.0).contains(&v));
    }
}

#[test]
fn help_texts_exit_0_and_mention_every_flag() {
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["--help"],
            &[
                "run",
                "summarize",
                "refine",
                "data",
                "slurm",
                "--verbose",
                "--quiet",
                "--help",
                "--version",
            ],
        ),
        (
            &["run", "--help"],
            &[
                "<SPEC>",
                "--out",
                "--data",
                "--jobs",
                "--dry-run",
                "--force",
                "--fail-fast",
                "--shard",
                "--no-summary",
                "--gradcheck-only",
                "--verbose",
                "--quiet",
                "--help",
            ],
        ),
        (
            &["refine", "--help"],
            &["<DIR>", "--top", "--metric", "--samples", "--out", "--help"],
        ),
        (
            &["summarize", "--help"],
            &[
                "<DIR>",
                "--format",
                "--no-figures",
                "--top",
                "--verbose",
                "--quiet",
                "--help",
            ],
        ),
    ];
    for (args, flags) in cases {
        let assert = sweep().args(args).assert().success();
        let text = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
        for flag in flags {
            assert!(
                text.contains(flag),
                "`sweep {args:?}` lacks {flag}:\n{text}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Refusals: bad sweep files, bad data, and bad output paths.
// ---------------------------------------------------------------------------------------

/// A valid body for the bad-input cases: one tiny run.
const TINY: &str = "[train]\nepochs = 1\nbatch_size = 100\n";

/// Where a refused sweep should have pointed.
enum Out {
    /// The shared out folder with the earlier sweep in it.
    Shared,
    /// A path that is a file.
    IsFile,
    /// A folder that cannot be created or written.
    Unwritable,
}

struct Case {
    name: &'static str,
    /// The sweep file. A `§` marks where the offending value starts; it is removed
    /// before writing, and the expected message must then contain `file:line:column:`.
    text: String,
    /// Substrings stderr must contain.
    expect: Vec<String>,
    out: Out,
}

fn data_with(train: &str, val: &str) -> String {
    format!(
        "[data]\ndir = \"{}\"\ntrain = {train}\nval = {val}\n",
        sample_dir().display()
    )
}

fn case(name: &'static str, text: impl Into<String>, expect: &[&str]) -> Case {
    Case {
        name,
        text: text.into(),
        expect: expect.iter().map(|s| s.to_string()).collect(),
        out: Out::Shared,
    }
}

/// `[data]` for the sample, then `rest`.
fn sample(rest: &str) -> String {
    format!("{}\n{rest}", sample_data_section())
}

/// Writes the bad data files the data cases use into `dir`.
fn write_bad_data(dir: &Path) {
    let train = fs::read(sample_dir().join("data_batch_1.bin")).unwrap();
    fs::write(dir.join("truncated.bin"), &train[..2 * RECORD + 100]).unwrap();
    fs::write(dir.join("empty.bin"), b"").unwrap();
    let mut bad = train[..5 * RECORD].to_vec();
    bad[3 * RECORD] = 10;
    fs::write(dir.join("label10.bin"), bad).unwrap();
    // Examples of 32 values: data that is not images.
    write_npy_split(dir, "train", 40, 32, 10, 1);
    write_npy_split(dir, "val", 20, 32, 10, 2);
}

fn cases(data: &Path) -> Vec<Case> {
    let bad_data = |file: &str| {
        format!(
            "[data]\ndir = \"{}\"\ntrain = [\"{file}\"]\nval = [\"{}\"]\n\n{TINY}",
            data.display(),
            sample_dir().join("data_batch_2.bin").display()
        )
    };
    let train_val = |line: &str| sample(&format!("[train]\nepochs = 1\n{line}\n"));
    let v = vec![
        case(
            "malformed toml",
            sample("[train\nepochs = 1\n"),
            &["invalid sweep file", "line 8"],
        ),
        case(
            "no [data] table",
            TINY,
            &["invalid sweep file", "missing field `data`"],
        ),
        case(
            "unknown top-level key",
            format!("learning_rate = 0.1\n{}", sample(TINY)),
            &["unknown field `learning_rate`"],
        ),
        case(
            "unknown key in [train]",
            train_val("lr = 0.1"),
            &["unknown field `lr`"],
        ),
        case(
            "unknown key in [[grid]]",
            sample(&format!("{TINY}[[grid]]\netaa = 0.1\n")),
            &["unknown field `etaa`"],
        ),
        case(
            "unknown key in [gradcheck]",
            sample(&format!("{TINY}[gradcheck]\nsegmnts = 1\n")),
            &["unknown field `segmnts`"],
        ),
        case(
            "unknown key in [data]",
            sample(TINY).replacen("[data]", "[data]\nvalidation = [\"x.bin\"]", 1),
            &["unknown field `validation`"],
        ),
        case(
            "duplicate key",
            train_val("epochs = 3"),
            &["invalid sweep file", "duplicate key"],
        ),
        case(
            "epochs is a string",
            train_val("batch_size = §\"many\""),
            &["`train.batch_size` must be a whole number >= 1, found the string \"many\""],
        ),
        case(
            "shuffle is a number",
            train_val("shuffle = §1"),
            &["`train.shuffle` must be true or false"],
        ),
        case(
            "eta is a table",
            train_val("eta = §{ a = 1 }"),
            &["`train.eta` has the unknown key `a`; a drawn axis is one of { log_uniform"],
        ),
        case(
            "eta = 0",
            train_val("eta = §0"),
            &["`train.eta` must be a number > 0, found 0"],
        ),
        case(
            "eta < 0 in a grid list",
            sample(&format!("{TINY}[[grid]]\neta = §[0.1, -0.5]\n")),
            &["`grid.eta` [1] must be a number > 0, found -0.5"],
        ),
        case(
            "eta = nan",
            train_val("eta = §nan"),
            &["`train.eta` must be a number > 0, found NaN"],
        ),
        case(
            "eta = inf",
            train_val("eta = §inf"),
            &["`train.eta` must be a number > 0, found inf"],
        ),
        case(
            "lambda < 0",
            sample(&format!("{TINY}[[grid]]\nlambda = §-0.1\n")),
            &["`grid.lambda` must be a number >= 0, found -0.1"],
        ),
        case(
            "batch size 0",
            train_val("batch_size = §0"),
            &["`train.batch_size` must be a whole number >= 1, found 0"],
        ),
        case(
            "batch size larger than the training set",
            train_val("batch_size = [100, 1001]"),
            &["batch_size = 1001 but the training split has only 1000 examples"],
        ),
        case(
            "epochs 0",
            sample("[train]\nbatch_size = 100\nepochs = §0\n"),
            &["`train.epochs` must be a whole number from 1 to 100000, found 0"],
        ),
        case(
            "empty list",
            train_val("seed = §[]"),
            &["`train.seed` is an empty list"],
        ),
        case(
            "bad precision",
            train_val("precision = §\"f16\""),
            &["`train.precision` must be \"f32\" or \"f64\", found the string \"f16\""],
        ),
        case(
            "bad format",
            sample(TINY).replacen("format = \"cifar10-bin\"", "format = §\"png\"", 1),
            &[
                "`data.format` must be \"cifar10-bin\", \"cifar10-python\" or \"npy\", found the string \"png\"",
            ],
        ),
        case(
            "missing [data].train",
            format!(
                "§[data]\ndir = \"{}\"\nval = [\"data_batch_2.bin\"]\n\n{TINY}",
                sample_dir().display()
            ),
            &["`data.train` is missing"],
        ),
        case(
            "missing val",
            format!(
                "§[data]\ndir = \"{}\"\ntrain = [\"data_batch_1.bin\"]\n\n{TINY}",
                sample_dir().display()
            ),
            &["`data.val` is missing"],
        ),
        case(
            "val and val_holdout",
            format!(
                "{}val_holdout = §100\n\n{TINY}",
                data_with("[\"data_batch_1.bin\"]", "[\"data_batch_2.bin\"]")
            ),
            &["`data.val_holdout` cannot be used together with data.val"],
        ),
        case(
            "train file is not a string",
            format!("{}\n{TINY}", data_with("§[1]", "[\"data_batch_2.bin\"]")),
            &["`data.train` [0] must be a file name, found integer 1"],
        ),
        case(
            "gradcheck batch size larger than the training set",
            sample(&format!(
                "{TINY}[gradcheck]\nbatch_sizes = [1, 2000]\ndims = 20\n"
            )),
            &["gradcheck batch size 2000 is larger than the 1000 training examples"],
        ),
        case(
            "hidden width of 0",
            train_val("hidden = §[50, 0]"),
            &["`train.hidden` must be a width from 1 to 65536, found 0"],
        ),
        case(
            "unknown init",
            train_val("init = §\"relu6\""),
            &[
                "`train.init` must be one of \"normal\", \"xavier\" or \"he\", found the string \"relu6\"",
            ],
        ),
        case(
            "unknown loss",
            train_val("loss = §\"adam\""),
            &["`train.loss` must be one of \"cross-entropy\" or \"hinge\""],
        ),
        case(
            "unknown schedule",
            train_val("schedule = §\"adam\""),
            &["`train.schedule` must be one of \"constant\", \"cyclic\" or \"step\""],
        ),
        case(
            "cycles with a constant rate",
            train_val("cycles = §2"),
            &["`train.cycles` applies only to schedule = \"cyclic\""],
        ),
        case(
            "epochs with a cyclic rate",
            sample("[train]\nschedule = \"cyclic\"\nepochs = §3\n"),
            &["`train.epochs` does not apply to a cyclic schedule"],
        ),
        case(
            "dropout without hidden layers",
            train_val("dropout = §0.5"),
            &["`train.dropout` applies only to networks with hidden layers"],
        ),
        case(
            "dropout of 1",
            train_val("hidden = [50]\ndropout = §1.0"),
            &["`train.dropout` must be a number >= 0 and < 1, found 1"],
        ),
        case(
            "eta_min above eta_max",
            sample("[train]\nschedule = \"cyclic\"\neta_min = §0.1\neta_max = 0.01\n"),
            &["`train.eta_min` eta_min (0.1) must be below eta_max (0.01)"],
        ),
        case(
            "unknown augmentation",
            train_val("augment = §\"rotate\""),
            &["`train.augment` must be one of \"none\" or \"flip\""],
        ),
        case(
            "batch norm momentum of 1",
            train_val("hidden = [50]\nbatch_norm = true\nbn_momentum = §1.0"),
            &["`train.bn_momentum` must be a number >= 0 and < 1, found 1"],
        ),
        case(
            "negative batch norm eps",
            train_val("hidden = [50]\nbatch_norm = true\nbn_eps = §-1e-5"),
            &["`train.bn_eps` must be a number > 0 and < 1, found -0.00001"],
        ),
        case(
            "batch norm with batches of 1",
            train_val("hidden = [50]\nbatch_size = 1\nbatch_norm = §true"),
            &["`train.batch_norm` needs mini-batches of at least 2 examples"],
        ),
        case(
            "batch norm without hidden layers",
            train_val("batch_norm = §true"),
            &["`train.batch_norm` applies only to networks with hidden layers"],
        ),
        case(
            "batch norm momentum without batch norm",
            train_val("hidden = [50]\nbn_momentum = §0.5"),
            &["`train.bn_momentum` applies only to batch_norm = true"],
        ),
        case(
            "batch norm of the wrong type",
            train_val("hidden = [50]\nbatch_norm = §\"yes\""),
            &["`train.batch_norm` must be true or false, found the string \"yes\""],
        ),
        case(
            "a distribution with low >= high",
            train_val("lambda = §{ uniform = [0.1, 0.01] }\n[search]\nsamples = 4"),
            &["`train.lambda` `uniform` needs low < high, found [0.1, 0.01]"],
        ),
        case(
            "a log-uniform bound <= 0",
            train_val("lambda = §{ log_uniform = [0, 0.1] }\n[search]\nsamples = 4"),
            &["`train.lambda` `log_uniform` needs bounds > 0"],
        ),
        case(
            "an unknown distribution",
            train_val("eta = §{ normal = [0.01, 0.1] }\n[search]\nsamples = 4"),
            &["`train.eta` has the unknown key `normal`"],
        ),
        case(
            "a distribution bound the axis refuses",
            train_val("eta = §{ uniform = [0, 0.1] }\n[search]\nsamples = 4"),
            &["`train.eta` `uniform` bound 0.0: must be a number > 0, found 0"],
        ),
        case(
            "a float distribution on a whole-number axis",
            train_val("batch_size = §{ uniform = [50, 200] }\n[search]\nsamples = 4"),
            &["`train.batch_size` takes whole numbers; draw it with int_uniform, not uniform"],
        ),
        case(
            "drawn seeds",
            train_val("seed = §{ int_uniform = [1, 9] }\n[search]\nsamples = 4"),
            &["`train.seed` cannot be drawn"],
        ),
        case(
            "a distribution without samples",
            train_val("lambda = §{ log_uniform = [1e-5, 0.1] }"),
            &[
                "`train.lambda` is a distribution; say how many draws to make with [search] samples = N",
            ],
        ),
        case(
            "samples without a distribution",
            train_val("lambda = [0.1]\n[search]\nsamples = §4"),
            &["`search.samples` draws distribution axes, but no axis is one"],
        ),
        case(
            "zero samples",
            train_val("lambda = { log_uniform = [1e-5, 0.1] }\n[search]\nsamples = §0"),
            &["`search.samples` must be a whole number from 1 to 1000000, found 0"],
        ),
        case(
            "an unknown search method",
            train_val("lambda = [0.1, 1.0]\n[search]\nmethod = §\"hyperband\"\nmin_epochs = 1"),
            &[
                "`search.method` must be \"halving\"",
                "found the string \"hyperband\"",
            ],
        ),
        case(
            "an unknown halving metric",
            train_val(
                "lambda = [0.1, 1.0]\n[search]\nmethod = \"halving\"\nmin_epochs = 1\nmetric = §\"val_acc\"",
            ),
            &["`search.metric` unknown metric \"val_acc\"; use val_accuracy"],
        ),
        case(
            "a halving factor below 2",
            train_val(
                "lambda = [0.1, 1.0]\n[search]\nmethod = \"halving\"\nmin_epochs = 1\nfactor = §1",
            ),
            &["`search.factor` must be a whole number from 2 to 1000"],
        ),
        case(
            "min_epochs beyond epochs",
            train_val("lambda = [0.1, 1.0]\n[search]\nmethod = \"halving\"\nmin_epochs = §2"),
            &["`search.min_epochs` is 2, more than the 1 epochs the runs train"],
        ),
        case(
            "halving without min_epochs",
            train_val("lambda = [0.1, 1.0]\n[search]\nmethod = §\"halving\""),
            &["`search.method` \"halving\" needs min_epochs = N"],
        ),
        case(
            "halving over runs of different lengths",
            sample("[train]\nepochs = [1, 2]\n[search]\nmethod = \"halving\"\nmin_epochs = §1\n"),
            &[
                "`search.min_epochs` successive halving compares candidates at the same length",
                "(1 epochs, 2 epochs)",
            ],
        ),
        case(
            "a halving key without the method",
            train_val("lambda = [0.1, 1.0]\n[search]\nfactor = §3\nsamples = 2"),
            &["`search.factor` belongs to successive halving; add method = \"halving\""],
        ),
        case(
            "a logspace of no values",
            train_val("lambda = §{ logspace = [-5, -1, 0] }"),
            &[
                "`train.lambda` `logspace` = [start, stop, n] takes n from 1 to 10000, found integer 0",
            ],
        ),
        case(
            "flip on data that is not images",
            format!(
                "[data]\nformat = \"npy\"\ndir = \"{}\"\n\
                 train = [{{ x = \"X_train.npy\", y = \"y_train.npy\" }}]\n\
                 val = [{{ x = \"X_val.npy\", y = \"y_val.npy\" }}]\n\
                 [train]\nepochs = 1\nbatch_size = 10\naugment = §\"flip\"\n",
                data.display()
            ),
            &[
                "`train.augment` \"flip\" mirrors images of 3 x 32 x 32 planes (3072 values), \
                 but the data's examples have 32 values",
            ],
        ),
        case(
            "gradcheck hidden width of 0",
            sample(&format!("{TINY}[gradcheck]\nhidden = §[0]\n")),
            &["`gradcheck.hidden` must be a width from 1 to 65536, found 0"],
        ),
        case(
            "gradcheck step out of range",
            sample(&format!("{TINY}[gradcheck]\nstep = §2.0\n")),
            &["`gradcheck.step` must be a number between 0 and 1, found 2"],
        ),
        case(
            "missing data file",
            bad_data("nope.bin"),
            &["nope.bin is missing"],
        ),
        case(
            "truncated data file",
            bad_data("truncated.bin"),
            &[
                "truncated.bin is 6246 bytes, not a multiple of the 3073-byte",
                "cut short after 100 bytes",
            ],
        ),
        case(
            "label byte 10",
            bad_data("label10.bin"),
            &["label10.bin, record 3 (byte offset 9219): label 10 is not a class 0..=9"],
        ),
        case(
            "zero-length data file",
            bad_data("empty.bin"),
            &["empty.bin is empty"],
        ),
        Case {
            out: Out::IsFile,
            ..case(
                "output path is a file",
                sample(TINY),
                &["exists and is not a folder"],
            )
        },
        Case {
            out: Out::Unwritable,
            ..case(
                "unwritable output folder",
                sample(TINY),
                &["cannot create output folder"],
            )
        },
    ];
    v
}

/// The `file:line:column:` of the `§` marker in `text` (1-based, columns in bytes), and
/// the text without the marker.
fn locate(path: &Path, text: &str) -> (Option<String>, String) {
    let Some(at) = text.find('§') else {
        return (None, text.to_string());
    };
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (
        Some(format!("{}:{line}:{column}:", path.display())),
        text.replacen('§', "", 1),
    )
}

/// A folder path that `sweep` cannot create or write. As root, permission bits do not
/// stop writes, so fall back to a path whose parent is a file.
fn unwritable(tmp: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let locked = tmp.join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
    if fs::write(locked.join("probe"), b"").is_err() {
        return locked.join("out");
    }
    let _ = fs::remove_file(locked.join("probe"));
    let file = tmp.join("a-file");
    fs::write(&file, b"not a folder").unwrap();
    file.join("out")
}

#[test]
fn bad_inputs_exit_2_name_the_problem_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir(&data).unwrap();
    write_bad_data(&data);

    // An earlier sweep called `earlier` already lives in the shared out folder; every bad
    // sweep file below is also called `earlier.toml`, so a refusal that wrote anything
    // would land in that folder.
    let out = tmp.path().join("out");
    let earlier = write_sample_spec(tmp.path(), "earlier.toml", "earlier", TINY);
    run_ok(&earlier, &out, &[]);
    let before = snapshot(&out);
    assert!(before.contains_key(Path::new("earlier/results.csv")));

    let file_out = tmp.path().join("out-file");
    fs::write(&file_out, b"i am a file").unwrap();
    let bad_out = unwritable(tmp.path());

    let cases = cases(&data);
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("case-{i}"));
        fs::create_dir(&dir).unwrap();
        let path = dir.join("earlier.toml");
        let (location, text) = locate(&path, &c.text);
        fs::write(&path, &text).unwrap();
        let target = match c.out {
            Out::Shared => out.clone(),
            Out::IsFile => file_out.clone(),
            Out::Unwritable => bad_out.clone(),
        };
        let output = sweep()
            .arg("run")
            .arg(&path)
            .arg("--out")
            .arg(&target)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut problems = Vec::new();
        if output.status.code() != Some(2) {
            problems.push(format!("exit code {:?}, not 2", output.status.code()));
        }
        let mut expect = c.expect.clone();
        if let Some(loc) = location {
            let key = c.expect[0]
                .split('`')
                .nth(1)
                .unwrap_or_default()
                .to_string();
            expect.push(format!("{loc} `{key}`"));
        }
        for e in &expect {
            if !stderr.contains(e.as_str()) {
                problems.push(format!("stderr lacks {e:?}"));
            }
        }
        if snapshot(&out) != before {
            problems.push("the out folder changed".into());
        }
        if fs::read(&file_out).unwrap() != b"i am a file" {
            problems.push("the file given as --out changed".into());
        }
        if bad_out.exists() {
            problems.push(format!("{} was created", bad_out.display()));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "case {i} ({}):\n  {}\n  stderr: {}",
                c.name,
                problems.join("\n  "),
                stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// `gradcheck.dims` larger than the data's dimension is only known once the data is
/// loaded, but it must still be refused before any run trains or any file is written.
#[test]
fn gradcheck_dims_beyond_the_data_are_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_sample_spec(
        tmp.path(),
        "dims.toml",
        "dims",
        &format!("{TINY}[gradcheck]\nbatch_sizes = [1]\ndims = 5000\n"),
    );
    let out = tmp.path().join("out");
    sweep()
        .arg("run")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .arg("--no-summary")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "gradcheck dims = 5000 exceeds the data's 3072 input dimensions",
        ));
    assert!(
        snapshot(&out).is_empty(),
        "refused sweep wrote {:?}",
        snapshot(&out).keys().collect::<Vec<_>>()
    );
}

#[test]
fn unknown_flags_and_missing_spec_exit_2() {
    sweep()
        .args(["run", "--no-such-flag", "x.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--no-such-flag"));
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.toml");
    sweep()
        .arg("run")
        .arg(&missing)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("cannot read sweep file")
                .and(predicate::str::contains(missing.display().to_string())),
        );
    assert!(!tmp.path().join("out").exists());
}
