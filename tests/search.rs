//! Search beyond grids through the real binary: distribution axes drawn by `[search]`,
//! and the `logspace` shorthand.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{Table, sweep, write_sample_spec};

const SEARCH: &str = "[train]\nepochs = 1\nseed = [1, 2]\n\
    lambda = { log_uniform = [1e-4, 1e-1] }\n\
    eta = { logspace = [-3, -2, 3] }\n\
    batch_size = { int_uniform = [50, 200] }\n\
    [search]\nsamples = 4\nseed = 11\n";

/// `sweep run --dry-run`'s plan (its stdout), with `extra` arguments.
fn dry_run(spec: &Path, extra: &[&str]) -> String {
    ok(sweep().args(["run", "--dry-run"]).arg(spec).args(extra))
}

/// Four draws of (lambda, batch_size), each crossed with the three logspace etas and the
/// two seeds: 24 runs, the same plan on every invocation and thread count, each drawn
/// value within its bounds and named in its run id by text that reads back to it exactly.
#[test]
fn random_search_plans_the_same_draws_everywhere_and_trains_them() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_sample_spec(tmp.path(), "search.toml", "search", SEARCH);
    let plan = dry_run(&spec, &[]);
    assert_eq!(plan, dry_run(&spec, &["-j", "1"]));
    assert_eq!(plan, dry_run(&spec, &["-j", "2"]));
    let other_seed = write_sample_spec(
        tmp.path(),
        "other.toml",
        "search",
        &SEARCH.replace("seed = 11", "seed = 12"),
    );
    assert_ne!(
        plan,
        dry_run(&other_seed, &[]),
        "the draws come from the search seed"
    );

    let out = tmp.path().join("out");
    ok(sweep()
        .args(["run", "--no-summary", "-j", "2", "--out"])
        .arg(&out)
        .arg(&spec));
    let results = Table::read(&out.join("search/results.csv"));
    assert_eq!(results.rows.len(), 24);
    let planned: BTreeSet<&str> = plan
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    let ran: BTreeSet<&str> = results.column("run_id").into_iter().collect();
    assert_eq!(planned, ran);

    let lambdas: BTreeSet<&str> = results.column("lambda").into_iter().collect();
    let batches: BTreeSet<&str> = results.column("batch_size").into_iter().collect();
    let etas: BTreeSet<&str> = results.column("eta").into_iter().collect();
    assert_eq!(
        (lambdas.len(), batches.len()),
        (4, 4),
        "{lambdas:?} {batches:?}"
    );
    assert_eq!(
        etas,
        BTreeSet::from(["0.001", "0.0031622776601683794", "0.01"])
    );
    for (id, (lambda, batch)) in results.column("run_id").iter().zip(
        results
            .column("lambda")
            .iter()
            .zip(results.column("batch_size")),
    ) {
        let x: f64 = lambda.parse().unwrap();
        assert!((1e-4..1e-1).contains(&x), "{id}: lambda {x}");
        let b: u32 = batch.parse().unwrap();
        assert!((50..=200).contains(&b), "{id}: batch {b}");
        let in_id = id
            .split('_')
            .find_map(|p| p.strip_prefix("lambda="))
            .unwrap();
        assert_eq!(in_id.parse::<f64>().unwrap(), x, "{id}");
        assert_eq!(in_id, x.to_string(), "{id}: the shortest text of {x}");
        assert!(id.contains(&format!("batch={b}_")), "{id}");
    }
    for status in results.column("status") {
        assert_eq!(status, "ok");
    }
}

/// A coarse search over three distributions with a relative data folder, a comment to
/// keep and a gradient check the fine search drops.
const COARSE: &str = "name = \"coarse\"\n\
    [data]\nformat = \"cifar10-bin\"\ndir = \"../data\"\n\
    train = [\"data_batch_1.bin\"]\nval = [\"data_batch_2.bin\"]\n\
    [train]\nepochs = 2\nseed = [1, 2]\n\
    [[grid]]\n\
    lambda = { log_uniform = [1e-4, 1e-1] }   # the lab's range\n\
    eta = { uniform = [0.005, 0.05] }\n\
    batch_size = { int_uniform = [50, 200] }\n\
    [search]\nsamples = 8\nseed = 5\n\
    [gradcheck]\nbatch_sizes = [2]\nlambda = [0.0]\ndims = 5\n";

/// `tmp/sweeps/coarse.toml` reading the sample data through `tmp/data`, run into
/// `tmp/out`; returns the sweeps folder.
fn coarse_sweep(tmp: &Path) -> std::path::PathBuf {
    let sweeps = tmp.join("sweeps");
    std::fs::create_dir_all(&sweeps).unwrap();
    std::os::unix::fs::symlink(common::sample_dir(), tmp.join("data")).unwrap();
    std::fs::write(sweeps.join("coarse.toml"), COARSE).unwrap();
    ok(sweep()
        .args(["run", "--no-summary", "--out"])
        .arg(tmp.join("out"))
        .arg(sweeps.join("coarse.toml")));
    sweeps
}

/// Runs `cmd`, asserts exit 0 and returns stdout.
fn ok(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `cmd`, asserts exit 2 and returns stderr.
fn refused(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}

/// The settings of `results.csv` by mean validation accuracy over seeds, best first,
/// ties by setting id, computed here from the per-run rows.
fn ranked(results: &Table) -> Vec<(String, [f64; 3])> {
    let mut by: std::collections::BTreeMap<String, ([f64; 3], Vec<f64>)> = Default::default();
    for row in &results.rows {
        let id = &row[results.col("run_id")];
        let setting = id[..id.rfind("_seed=").unwrap()].to_string();
        let v = |c: &str| row[results.col(c)].parse::<f64>().unwrap();
        by.entry(setting)
            .or_insert(([v("lambda"), v("eta"), v("batch_size")], Vec::new()))
            .1
            .push(v("val_accuracy"));
    }
    let mut out: Vec<(String, [f64; 3], f64)> = by
        .into_iter()
        .map(|(id, (p, accs))| {
            let mean = accs.iter().sum::<f64>() / accs.len() as f64;
            (id, p, mean)
        })
        .collect();
    out.sort_by(|a, b| b.2.partial_cmp(&a.2).unwrap().then(a.0.cmp(&b.0)));
    out.into_iter().map(|(id, p, _)| (id, p)).collect()
}

fn bounds(doc: &toml::Table, key: &str, dist: &str) -> [f64; 2] {
    let b = doc["grid"].as_array().unwrap()[0][key][dist]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not {dist}: {doc}"))
        .iter()
        .map(|v| v.as_float().or(v.as_integer().map(|i| i as f64)).unwrap())
        .collect::<Vec<_>>();
    [b[0], b[1]]
}

/// `sweep refine --top 3` narrows each distribution to the span of the three best
/// settings widened by the documented margin (a quarter of the span, at least a twentieth
/// of the old range, log10 for log_uniform, rounded outward), keeps the rest of the file,
/// and the fine sweep runs inside the new bounds.
#[test]
fn refine_narrows_each_distribution_around_the_top_settings_and_the_fine_sweep_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = coarse_sweep(tmp.path());
    let coarse = tmp.path().join("out/coarse");
    let stdout = ok(sweep().args(["refine", "--top", "3"]).arg(&coarse));
    let fine_path = sweeps.join("coarse-fine.toml");
    assert_eq!(stdout.lines().next().unwrap(), fine_path.to_str().unwrap());
    let text = std::fs::read_to_string(&fine_path).unwrap();
    let fine: toml::Table = text.parse().unwrap();
    assert_eq!(fine["name"].as_str(), Some("coarse-fine"));
    assert_eq!(
        fine["search"]["refined_from"].as_str().unwrap(),
        coarse.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(fine["search"]["samples"].as_integer(), Some(8));
    assert_eq!(
        fine["data"]["dir"].as_str(),
        Some("../data"),
        "same folder: kept"
    );
    assert!(!fine.contains_key("gradcheck"), "{text}");
    assert!(
        text.contains("# the lab's range"),
        "comments are kept:\n{text}"
    );
    assert!(
        text.starts_with("# Refined by `sweep refine` from "),
        "{text}"
    );

    let top: Vec<[f64; 3]> = ranked(&Table::read(&coarse.join("results.csv")))
        .into_iter()
        .take(3)
        .map(|(_, p)| p)
        .collect();
    let axes = [
        ("lambda", "log_uniform", [1e-4, 1e-1], true),
        ("eta", "uniform", [0.005, 0.05], false),
        ("batch_size", "int_uniform", [50.0, 200.0], false),
    ];
    for (i, (key, dist, old, log)) in axes.into_iter().enumerate() {
        let new = bounds(&fine, key, dist);
        let f = |x: f64| if log { x.log10() } else { x };
        let (lo, hi) = top
            .iter()
            .map(|p| p[i])
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        let pad = ((f(hi) - f(lo)) / 4.0).max((f(old[1]) - f(old[0])) / 20.0);
        assert!(
            old[0] <= new[0] && new[0] < new[1] && new[1] <= old[1],
            "{key} {new:?}"
        );
        // Outward rounding (three digits, or whole numbers) moves a bound by at most 1 %
        // of its value, or by 1 for an int.
        let slack = |x: f64| {
            if dist == "int_uniform" {
                1.0
            } else {
                f(x * 1.01) - f(x)
            }
        };
        let want_lo = (f(lo) - pad).max(f(old[0]));
        let want_hi = (f(hi) + pad).min(f(old[1]));
        assert!(
            f(new[0]) <= want_lo + 1e-12 && f(new[0]) >= want_lo - slack(new[0]),
            "{key}: low {} for top {top:?}, want ~{want_lo}",
            new[0]
        );
        assert!(
            f(new[1]) >= want_hi - 1e-12 && f(new[1]) <= want_hi + slack(new[1]),
            "{key}: high {} for top {top:?}, want ~{want_hi}",
            new[1]
        );
    }

    let out = tmp.path().join("out");
    ok(sweep()
        .args(["run", "--no-summary", "--out"])
        .arg(&out)
        .arg(&fine_path));
    let results = Table::read(&out.join("coarse-fine/results.csv"));
    assert_eq!(results.rows.len(), 16, "8 draws x 2 seeds");
    for (i, (key, dist, ..)) in axes.into_iter().enumerate() {
        let [lo, hi] = bounds(&fine, key, dist);
        for v in results.column(key) {
            let v: f64 = v.parse().unwrap();
            assert!(lo <= v && v <= hi, "{key} = {v} outside [{lo}, {hi}] ({i})");
        }
    }

    // Elsewhere, with fewer samples: the data folder is written as an absolute path.
    std::fs::create_dir_all(tmp.path().join("elsewhere/deeper")).unwrap();
    let other = tmp.path().join("elsewhere/deeper/f.toml");
    ok(sweep()
        .args([
            "refine",
            "--top",
            "2",
            "--samples",
            "3",
            "--metric",
            "val_cost",
            "--out",
        ])
        .arg(&other)
        .arg(&coarse));
    let f: toml::Table = std::fs::read_to_string(&other).unwrap().parse().unwrap();
    assert_eq!(f["search"]["samples"].as_integer(), Some(3));
    assert_eq!(
        f["data"]["dir"].as_str().unwrap(),
        common::sample_dir()
            .canonicalize()
            .unwrap()
            .to_str()
            .unwrap()
    );
    let plan = ok(sweep().args(["run", "--dry-run"]).arg(&other));
    assert_eq!(plan.lines().count(), 1 + 6, "3 draws x 2 seeds");
}

/// Each refusal exits 2, names the problem and writes no sweep file.
#[test]
fn refine_refusals_exit_2_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = coarse_sweep(tmp.path());
    let coarse = tmp.path().join("out/coarse");
    let files = || -> Vec<_> {
        let mut v: Vec<_> = std::fs::read_dir(&sweeps)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let before = files();
    let refine = |args: &[&str], dir: &Path| {
        let mut c = sweep();
        c.arg("refine").args(args).arg(dir);
        c
    };
    let cases: Vec<(&[&str], std::path::PathBuf, &str)> = vec![
        (
            &["--top", "9"],
            coarse.clone(),
            "--top 9 asks for more settings than",
        ),
        (&["--top", "0"], coarse.clone(), "--top must be at least 1"),
        (
            &["--top", "2", "--metric", "val_acc"],
            coarse.clone(),
            "val_accuracy",
        ),
        (
            &["--top", "2"],
            tmp.path().join("sweeps"),
            "not a sweep output folder",
        ),
    ];
    for (args, dir, expect) in cases {
        let err = refused(&mut refine(args, &dir));
        assert!(err.contains(expect), "{args:?}: {err}");
        assert_eq!(files(), before, "{args:?} wrote a file");
    }

    // An existing file is not overwritten.
    let taken = sweeps.join("taken.toml");
    std::fs::write(&taken, "keep me").unwrap();
    let err = refused(&mut refine(
        &["--top", "2", "--out", taken.to_str().unwrap()],
        &coarse,
    ));
    assert!(
        err.contains("exists; refine will not overwrite it"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "keep me");

    // No finished run: only the gradient check ran.
    let text = COARSE.replace("name = \"coarse\"", "name = \"unrun\"");
    std::fs::write(sweeps.join("unrun.toml"), text).unwrap();
    ok(sweep()
        .args(["run", "--gradcheck-only", "--out"])
        .arg(tmp.path().join("out"))
        .arg(sweeps.join("unrun.toml")));
    let err = refused(&mut refine(&["--top", "1"], &tmp.path().join("out/unrun")));
    assert!(
        err.contains("has no finished run of grid[0].lambda"),
        "{err}"
    );

    // A grid has nothing to narrow.
    let grid = "name = \"grid\"\n[data]\ndir = \"../data\"\ntrain = [\"data_batch_1.bin\"]\n\
        val = [\"data_batch_2.bin\"]\n[train]\nepochs = 1\nlambda = [0.0, 0.1]\n";
    std::fs::write(sweeps.join("grid.toml"), grid).unwrap();
    ok(sweep()
        .args(["run", "--no-summary", "--out"])
        .arg(tmp.path().join("out"))
        .arg(sweeps.join("grid.toml")));
    let err = refused(&mut refine(&["--top", "1"], &tmp.path().join("out/grid")));
    assert!(err.contains("draws no axis from a distribution"), "{err}");

    // A folder from before origin.json was recorded.
    std::fs::remove_file(coarse.join("origin.json")).unwrap();
    let err = refused(&mut refine(&["--top", "1"], &coarse));
    assert!(err.contains("has no origin.json"), "{err}");
    let after: Vec<_> = files()
        .into_iter()
        .filter(|n| !["taken.toml", "unrun.toml", "grid.toml"].contains(&n.to_str().unwrap()))
        .collect();
    assert_eq!(after, before, "no refusal wrote a sweep file");
}

/// Nine drawn lambdas by two seeds raced over 8 epochs from 1, keeping a third per rung:
/// rungs at 1, 3 and 8 epochs, 9 -> 3 -> 1 candidates.
const HALVING: &str = "[train]\nepochs = 8\neta = 0.01\nseed = [1, 2]\n\
    lambda = { log_uniform = [1e-4, 1.0] }\n\
    [search]\nsamples = 9\nseed = 2\nmethod = \"halving\"\nmin_epochs = 1\nfactor = 3\n";

/// Each setting's mean over seeds of the validation accuracy its runs recorded after
/// `epoch` epochs (from every run's own metrics.csv), best first, ties by setting id.
fn ranked_at(root: &Path, settings: &[String], epoch: &str) -> Vec<String> {
    let results = Table::read(&root.join("results.csv"));
    let mut scored: Vec<(f64, String)> = settings
        .iter()
        .map(|s| {
            let accs: Vec<f64> = results
                .column("run_id")
                .into_iter()
                .filter(|id| id.starts_with(&format!("{s}_seed=")))
                .map(|id| {
                    let m = Table::read(&root.join("runs").join(id).join("metrics.csv"));
                    let row = m
                        .rows
                        .iter()
                        .find(|r| r[m.col("epoch")] == epoch && r[m.col("split")] == "val")
                        .unwrap_or_else(|| panic!("{id} has no val row at epoch {epoch}"));
                    row[m.col("accuracy")].parse().unwrap()
                })
                .collect();
            assert_eq!(accs.len(), 2, "{s}");
            (accs.iter().sum::<f64>() / 2.0, s.clone())
        })
        .collect();
    scored.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, s)| s).collect()
}

fn setting_of(run_id: &str) -> String {
    run_id[..run_id.rfind("_seed=").unwrap()].to_string()
}

/// Halving keeps exactly the expected counts per rung, cuts by the mean over seeds at
/// each rung (ties by setting id), records the stopped runs with their epochs and
/// weights, and its survivor (and a run stopped at a later rung) equals the same run
/// trained straight through.
#[test]
fn halving_keeps_a_third_per_rung_and_its_promoted_runs_equal_straight_training() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_sample_spec(tmp.path(), "race.toml", "race", HALVING);
    let out = tmp.path().join("out");
    ok(sweep()
        .args(["run", "--no-summary", "-j", "2", "--out"])
        .arg(&out)
        .arg(&spec));
    let root = out.join("race");
    let results = Table::read(&root.join("results.csv"));
    assert_eq!(results.rows.len(), 18);
    let by = |status: &str, stopped: &str| -> Vec<String> {
        let mut s: Vec<String> = results
            .rows
            .iter()
            .filter(|r| {
                r[results.col("status")] == status && r[results.col("stopped_epoch")] == stopped
            })
            .map(|r| r[results.col("run_id")].clone())
            .collect();
        s.sort();
        s
    };
    let (at1, at3, ok) = (by("stopped", "1"), by("stopped", "3"), by("ok", ""));
    assert_eq!((at1.len(), at3.len(), ok.len()), (12, 4, 2), "{results:?}");

    let settings = |ids: &[String]| -> Vec<String> {
        let mut s: Vec<String> = ids.iter().map(|id| setting_of(id)).collect();
        s.dedup();
        s
    };
    let all: Vec<String> = {
        let mut s = settings(
            &results
                .column("run_id")
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        );
        s.sort();
        s.dedup();
        s
    };
    assert_eq!(all.len(), 9);
    let rung0 = ranked_at(&root, &all, "1");
    let mut promoted: Vec<String> = settings(&[at3.clone(), ok.clone()].concat());
    promoted.sort();
    promoted.dedup();
    let mut want = rung0[..3].to_vec();
    want.sort();
    assert_eq!(promoted, want, "rung 0 promotes the best three at epoch 1");
    let rung1 = ranked_at(&root, &promoted, "3");
    assert_eq!(
        settings(&ok),
        [rung1[0].clone()],
        "rung 1 promotes the best at epoch 3"
    );

    // Stopped runs keep what they had: metrics up to their epoch and their weights.
    for (id, epochs) in at1
        .iter()
        .map(|i| (i, "1"))
        .chain(at3.iter().map(|i| (i, "3")))
    {
        let m = Table::read(&root.join("runs").join(id).join("metrics.csv"));
        assert_eq!(m.column("epoch").last().copied(), Some(epochs), "{id}");
        assert!(root.join("runs").join(id).join("W.npy").is_file(), "{id}");
    }

    // Straight through: the survivor over all 8 epochs, a rung-1 loser over 3.
    let lambda = |id: &str| {
        id.split('_')
            .find_map(|p| p.strip_prefix("lambda="))
            .unwrap()
            .to_string()
    };
    for (id, epochs) in [(&ok[0], 8), (&at3[0], 3)] {
        let body = format!(
            "[train]\nepochs = {epochs}\neta = 0.01\nseed = [1, 2]\nlambda = {}\n",
            lambda(id)
        );
        let name = format!("straight{epochs}");
        let plain = write_sample_spec(tmp.path(), &format!("{name}.toml"), &name, &body);
        let run = sweep()
            .args(["run", "--no-summary", "--out"])
            .arg(&out)
            .arg(&plain)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(0));
        let straight_id = id.replace("epochs=8", &format!("epochs={epochs}"));
        for file in ["W.npy", "b.npy", "metrics.csv"] {
            let a = std::fs::read(root.join("runs").join(id).join(file)).unwrap();
            let b =
                std::fs::read(out.join(&name).join("runs").join(&straight_id).join(file)).unwrap();
            assert!(
                a == b,
                "{id}/{file} differs from training it straight for {epochs} epochs"
            );
        }
    }

    // The report draws the race and ranks only the candidate that finished.
    sweep().arg("summarize").arg(&root).assert().success();
    assert!(root.join("figures/halving.png").is_file());
    let report = std::fs::read_to_string(root.join("report.html")).unwrap();
    assert!(report.contains("<h2>Successive halving</h2>"), "{report}");
    assert!(
        report.contains("8 of 9 candidates were stopped"),
        "{report}"
    );
    let summary = Table::read(&root.join("summary.csv"));
    let ranked: Vec<&str> = summary
        .column("rank")
        .into_iter()
        .filter(|r| !r.is_empty())
        .collect();
    assert_eq!(ranked, ["1"]);
}

/// A cyclic race counts its rungs in cycles (2 * step_size updates each), and pauses
/// there mid-epoch (24 updates of 10-batch epochs); the survivor's weights equal straight
/// training.
#[test]
fn halving_of_cyclic_runs_counts_rungs_in_cycles() {
    let tmp = tempfile::tempdir().unwrap();
    let body = "[train]\nschedule = \"cyclic\"\neta_min = 1e-5\neta_max = 0.1\nstep_size = 12\n\
        cycles = 3\nbatch_size = 100\nseed = [1]\nlambda = { log_uniform = [1e-4, 1.0] }\n\
        [search]\nsamples = 3\nseed = 4\nmethod = \"halving\"\nmin_epochs = 1\nfactor = 3\n";
    let spec = write_sample_spec(tmp.path(), "cyc.toml", "cyc", body);
    let out = tmp.path().join("out");
    ok(sweep()
        .args(["run", "--no-summary", "--out"])
        .arg(&out)
        .arg(&spec));
    let root = out.join("cyc");
    let results = Table::read(&root.join("results.csv"));
    let status = results.column("status");
    assert_eq!(status.iter().filter(|s| **s == "stopped").count(), 2);
    assert_eq!(status.iter().filter(|s| **s == "ok").count(), 1);
    for (id, s) in results.column("run_id").iter().zip(&status) {
        let m = Table::read(&root.join("runs").join(id).join("metrics.csv"));
        let last: usize = m.column("update").last().unwrap().parse().unwrap();
        let want = if *s == "ok" { 2 * 12 * 3 } else { 2 * 12 };
        assert_eq!(last, want, "{id} ({s}) ends after {last} updates");
    }
    let winner =
        results.column("run_id")[status.iter().position(|s| *s == "ok").unwrap()].to_string();
    let lambda = winner
        .split('_')
        .find_map(|p| p.strip_prefix("lambda="))
        .unwrap();
    let plain = write_sample_spec(
        tmp.path(),
        "plain.toml",
        "plain",
        body.replace(
            "lambda = { log_uniform = [1e-4, 1.0] }",
            &format!("lambda = {lambda}"),
        )
        .split("[search]")
        .next()
        .unwrap(),
    );
    ok(sweep()
        .args(["run", "--no-summary", "--out"])
        .arg(&out)
        .arg(&plain));
    for file in ["W.npy", "b.npy"] {
        assert!(
            std::fs::read(root.join("runs").join(&winner).join(file)).unwrap()
                == std::fs::read(out.join("plain/runs").join(&winner).join(file)).unwrap(),
            "{file} of {winner}"
        );
    }
}

/// A race runs in one process: `--shard` and a multi-task Slurm array are refused.
#[test]
fn halving_refuses_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_sample_spec(tmp.path(), "race.toml", "race", HALVING);
    let out = tmp.path().join("out");
    let err = refused(
        sweep()
            .args(["run", "--shard", "0/2", "--out"])
            .arg(&out)
            .arg(&spec),
    );
    assert!(err.contains("run it without --shard"), "{err}");
    let err = refused(
        sweep()
            .args(["slurm", "--tasks", "2", "--out"])
            .arg(&out)
            .arg(&spec),
    );
    assert!(err.contains("sweep slurm --tasks 1"), "{err}");
    assert!(!out.exists(), "nothing written");
}
