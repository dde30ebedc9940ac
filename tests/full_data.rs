//! Acceptance on the real CIFAR-10 files in `../shared/data` (CI has them; elsewhere
//! these tests print why they skip): the lab's study through the real binary
//! reproduces the published test accuracies, and the gradient check on real data agrees.

mod common;

use common::Table;

use std::path::Path;
use std::process::Command;

/// Runs the shipped `sweeps/<name>.toml` on the real files into a fresh folder (outputs
/// in `<folder>/<name>/`), or None with a printed reason when they are absent.
fn run_shipped(name: &str) -> Option<tempfile::TempDir> {
    let data = common::shared_cifar10()?;
    let out = tempfile::tempdir().unwrap();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("sweeps/{name}.toml"));
    let status = Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["-q", "run", spec.to_str().unwrap(), "--no-summary", "--out"])
        .arg(out.path())
        .arg("--data")
        .arg(&data)
        .status()
        .unwrap();
    assert!(status.success(), "sweep run sweeps/{name}.toml");
    Some(out)
}

/// The mean over its seeds of `metric` of the runs whose `key` columns hold `values`,
/// checking that there are `seeds` of them.
fn mean_of(results: &Table, metric: &str, key: &[(&str, &str)], seeds: usize) -> f64 {
    let m = results.col(metric);
    let cols: Vec<(usize, &str)> = key.iter().map(|(k, v)| (results.col(k), *v)).collect();
    let picked: Vec<f64> = results
        .rows
        .iter()
        .filter(|r| cols.iter().all(|&(c, v)| r[c] == v))
        .map(|r| r[m].parse().unwrap())
        .collect();
    assert_eq!(picked.len(), seeds, "{key:?}: {seeds} seeds");
    picked.iter().sum::<f64>() / seeds as f64
}

/// `sweep run sweeps/report.toml` on the full files: the lab's four settings, 40 epochs,
/// batch 100, seeds 1-3. Published solutions of this lab report test accuracies of about
/// 28, 39, 39 and 37.5 percent; the first setting (eta = 0.1) is noisy.
#[test]
fn report_sweep_reproduces_the_labs_accuracies() {
    let Some(out) = run_shipped("report") else {
        return;
    };
    let results = Table::read(&out.path().join("report/results.csv"));
    let (lambda, eta, acc) = (
        results.column("lambda"),
        results.column("eta"),
        results.column("test_accuracy"),
    );
    let expected = [
        ("0.0", "0.1", 0.28, 0.04),
        ("0.0", "0.001", 0.39, 0.01),
        ("0.1", "0.001", 0.39, 0.01),
        ("1.0", "0.001", 0.375, 0.01),
    ];
    for (l, e, target, tol) in expected {
        let accs: Vec<f64> = (0..acc.len())
            .filter(|&i| lambda[i] == l && eta[i] == e)
            .map(|i| acc[i].parse().unwrap())
            .collect();
        assert_eq!(accs.len(), 3, "lambda {l}, eta {e}: three seeds");
        let mean = accs.iter().sum::<f64>() / 3.0;
        assert!(
            (mean - target).abs() <= tol,
            "lambda {l}, eta {e}: mean test accuracy {mean}, expected {target} ± {tol}"
        );
    }
    let grad = Table::read(&out.path().join("report/gradcheck.csv"));
    let (method, abs) = (grad.column("method"), grad.column("max_abs_diff"));
    let norm = grad.column("norm_diff");
    assert_eq!(method.len(), 4 * 4 * 2 * 2 * 2);
    // Relative errors of near-zero entries are dominated by rounding, so the bounds are on
    // absolute differences: centred differences agree to about 1e-9, forward ones carry
    // their O(h) truncation error (about 1e-7 per entry).
    for i in 0..method.len() {
        let (a, n): (f64, f64) = (abs[i].parse().unwrap(), norm[i].parse().unwrap());
        if method[i] == "centred" {
            assert!(
                a < 1e-8 && n < 1e-6,
                "row {i}: centred max abs {a}, norm {n}"
            );
        } else {
            assert!(
                a < 1e-5 && n < 1e-4,
                "row {i}: forward max abs {a}, norm {n}"
            );
        }
    }
}

/// `sweeps/lab3.toml`: the third lab's k-layer networks with and without batch norm, on
/// all five batches less the last 5,000, seeds 1-3. The course reports about 53.5 % (3
/// layers, batch norm; public solutions 52.1-53.8) and 52.5 % without (52.1-54.0), and
/// 51.5 % for 9 layers with batch norm (50.8-52.0), several points lower without
/// (46.4-49.4). Its gradient check covers every array of the batch-normalised 3072-50-50-10
/// network at full dimension.
#[test]
fn lab3_reproduces_the_courses_batch_norm_accuracies_and_gradients() {
    let Some(out) = run_shipped("lab3") else {
        return;
    };
    let results = Table::read(&out.path().join("lab3/results.csv"));
    let acc = |hidden: &str, bn: &str| {
        mean_of(
            &results,
            "test_accuracy",
            &[("hidden", hidden), ("batch_norm", bn)],
            3,
        )
    };
    let three = "[50, 50]";
    let nine = "[50, 30, 20, 20, 10, 10, 10, 10]";
    let (three_bn, three_plain) = (acc(three, "true"), acc(three, "false"));
    let (nine_bn, nine_plain) = (acc(nine, "true"), acc(nine, "false"));
    assert!(
        (0.52..=0.545).contains(&three_bn),
        "3 layers, batch norm: {three_bn}"
    );
    assert!(
        (0.515..=0.545).contains(&three_plain),
        "3 layers, no batch norm: {three_plain}"
    );
    assert!(
        (0.505..=0.525).contains(&nine_bn),
        "9 layers, batch norm: {nine_bn}"
    );
    assert!(
        (0.45..=0.50).contains(&nine_plain),
        "9 layers, no batch norm: {nine_plain}"
    );
    assert!(
        nine_bn - nine_plain > 0.015,
        "batch norm helps the deep net: {nine_bn} vs {nine_plain}"
    );

    let grad = Table::read(&out.path().join("lab3/gradcheck.csv"));
    let (method, batch) = (grad.column("method"), grad.column("batch_size"));
    let (param, zero) = (grad.column("param"), grad.column("zero_by_construction"));
    let (abs, norm, rel) = (
        grad.column("max_abs_diff"),
        grad.column("norm_diff"),
        grad.column("max_rel_err"),
    );
    let arrays: std::collections::BTreeSet<&str> = param.iter().copied().collect();
    assert_eq!(
        arrays.len(),
        10,
        "W, b, gamma, beta of two layers and W3, b3: {arrays:?}"
    );
    for i in 0..method.len() {
        let f = |v: &[&str]| v[i].parse::<f64>().unwrap();
        if zero[i] == "true" {
            assert!(
                param[i] == "b1" || param[i] == "b2",
                "row {i}: {}",
                param[i]
            );
            assert!(
                f(&abs) < 1e-9,
                "row {i}: a zero gradient, numerically {}",
                abs[i]
            );
        } else if method[i] == "centred" {
            assert!(f(&norm) < 1e-5, "row {i} ({}): norm {}", param[i], norm[i]);
            if batch[i] == "100" {
                assert!(
                    f(&rel) < 1e-4,
                    "row {i} ({}): relative {}",
                    param[i],
                    rel[i]
                );
            }
        }
    }
}

/// `sweeps/lab3-init.toml`: with every weight drawn from N(0, sigma^2), the 3-layer
/// network without batch norm stops learning at sigma = 1e-3 and 1e-4 (about 10 %, chance),
/// and with batch norm it stays near 50 % at every sigma.
#[test]
fn lab3_init_shows_batch_norm_surviving_tiny_initial_weights() {
    let Some(out) = run_shipped("lab3-init") else {
        return;
    };
    let results = Table::read(&out.path().join("lab3-init/results.csv"));
    for std in ["0.1", "0.001", "0.0001"] {
        let acc = |bn| {
            mean_of(
                &results,
                "test_accuracy",
                &[("init_std", std), ("batch_norm", bn)],
                3,
            )
        };
        let (with, without) = (acc("true"), acc("false"));
        assert!(
            (0.49..=0.55).contains(&with),
            "sigma {std}, batch norm: {with}"
        );
        if std == "0.1" {
            assert!(
                (0.48..=0.53).contains(&without),
                "sigma {std}, no batch norm: {without}"
            );
        } else {
            assert!(
                without < 0.12,
                "sigma {std}, no batch norm collapses: {without}"
            );
        }
    }
}

/// `sweeps/lab2-search.toml` on the full data: eight log-uniform draws of lambda for the
/// 3072-50-10 network, two cycles, land in the lab's range (about 51-53 % on test), and
/// `sweep refine --top 3` writes a fine search inside the coarse range around the best.
/// Measured (release): best val 52.68 % at lambda 2.5e-4 (test 51.46 %), 75 s.
#[test]
fn lab2_search_lands_in_the_labs_range_and_refines_around_the_best() {
    let Some(out) = run_shipped("lab2-search") else {
        return;
    };
    let root = out.path().join("lab2-search");
    let results = Table::read(&root.join("results.csv"));
    assert_eq!(results.rows.len(), 8);
    let mut by_val: Vec<(f64, f64, f64)> = results
        .rows
        .iter()
        .map(|r| {
            let v = |c: &str| r[results.col(c)].parse::<f64>().unwrap();
            (v("val_accuracy"), v("test_accuracy"), v("lambda"))
        })
        .collect();
    by_val.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
    for (val, test, lambda) in &by_val[..3] {
        assert!((1e-5..1e-1).contains(lambda));
        assert!((0.50..0.54).contains(val), "val {val} at lambda {lambda}");
        assert!(
            (0.50..0.535).contains(test),
            "test {test} at lambda {lambda}"
        );
    }
    let fine = out.path().join("fine.toml");
    let status = Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["-q", "refine", "--top", "3", "--out"])
        .arg(&fine)
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success());
    let doc: toml::Table = std::fs::read_to_string(&fine).unwrap().parse().unwrap();
    let b = doc["train"]["lambda"]["log_uniform"].as_array().unwrap();
    let (lo, hi) = (b[0].as_float().unwrap(), b[1].as_float().unwrap());
    let (top_lo, top_hi) = by_val[..3]
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, z), t| {
            (a.min(t.2), z.max(t.2))
        });
    assert!(
        1e-5 <= lo && lo <= top_lo && top_hi <= hi && hi <= 1e-1,
        "[{lo}, {hi}]"
    );
    assert!(
        hi / lo < 1e4,
        "narrower than the coarse four decades: [{lo}, {hi}]"
    );
    let plan = Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["-q", "run", "--dry-run"])
        .arg(&fine)
        .output()
        .unwrap();
    assert!(plan.status.success());
    assert_eq!(
        String::from_utf8(plan.stdout).unwrap().lines().count(),
        1 + 8
    );
}
