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
    let out = sweep()
        .args(["run", "--dry-run"])
        .arg(spec)
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
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
    let run = sweep()
        .args(["run", "--no-summary", "-j", "2", "--out"])
        .arg(&out)
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
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
