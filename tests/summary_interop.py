"""Cross-checks `summary.csv` against pandas.

Recomputes each setting's aggregates from the sweep's `plan.csv` and `results.csv` with a
pandas groupby (sample std with ddof=1, NaN skipped, rank by mean val accuracy with
method="min") and compares them with the `summary.csv` that `sweep summarize` wrote.

Usage: SWEEP_DIR=out/<name> python -m pytest tests/summary_interop.py
(needs pandas and pytest; run `sweep summarize` on the folder first).
"""

import os
import pathlib

import numpy as np
import pandas as pd
import pytest

PARAMS = ["lambda", "eta", "batch_size", "epochs", "shuffle", "precision", "init_std"]
METRICS = [
    "train_accuracy",
    "val_accuracy",
    "test_accuracy",
    "train_cost",
    "val_cost",
    "test_cost",
]
STATS = ["mean", "std", "min", "max"]
RTOL = 1e-9
# Means and stds are summed in different orders (pandas' groupby std is a one-pass
# algorithm); a std that is exactly 0 on one side can be ~1e-17 on the other, which no
# relative tolerance accepts, so a tiny absolute tolerance is allowed too.
ATOL = 1e-12


def setting_id(run_id: str) -> str:
    """The run id without its `_seed=N` part, as the output contract defines it."""
    return "_".join(p for p in run_id.split("_") if not p.startswith("seed="))


@pytest.fixture(scope="module")
def sweep_dir() -> pathlib.Path:
    value = os.environ.get("SWEEP_DIR")
    if not value:
        pytest.fail("set SWEEP_DIR to a sweep output folder (out/<name>) that `sweep summarize` has summarized")
    path = pathlib.Path(value)
    for name in ["plan.csv", "summary.csv"]:
        assert (path / name).is_file(), f"{path / name} is missing; run `sweep summarize {path}` first"
    return path


@pytest.fixture(scope="module")
def actual(sweep_dir) -> pd.DataFrame:
    return pd.read_csv(sweep_dir / "summary.csv").set_index("setting_id")


@pytest.fixture(scope="module")
def expected(sweep_dir) -> pd.DataFrame:
    plan = pd.read_csv(sweep_dir / "plan.csv")
    plan["setting_id"] = plan["run_id"].map(setting_id)
    results_path = sweep_dir / "results.csv"
    if results_path.is_file():
        results = pd.read_csv(results_path)
    else:
        results = pd.DataFrame(columns=["run_id", "status", *METRICS])
    results = results[results["run_id"].isin(plan["run_id"])].copy()
    results["setting_id"] = results["run_id"].map(setting_id)
    settings = plan.drop_duplicates("setting_id").set_index("setting_id")

    out = settings[PARAMS].copy()
    out["n_planned"] = plan.groupby("setting_id").size()
    for status, column in [("ok", "n"), ("diverged", "n_diverged"), ("failed", "n_failed")]:
        counts = results[results["status"] == status].groupby("setting_id").size()
        out[column] = counts.reindex(out.index, fill_value=0)

    ok = results[results["status"] == "ok"]
    grouped = ok.groupby("setting_id")[METRICS].agg(STATS)
    grouped.columns = [f"{m}_{s}" for m, s in grouped.columns]
    out = out.join(grouped.astype(float))
    out["rank"] = out["val_accuracy_mean"].rank(method="min", ascending=False)
    return out


def test_one_row_per_setting(actual, expected):
    assert actual.index.is_unique
    assert sorted(actual.index) == sorted(expected.index)


def test_parameter_columns_match_the_plan(actual, expected):
    for column in PARAMS:
        got = actual.loc[expected.index, column]
        want = expected[column]
        if pd.api.types.is_numeric_dtype(want) and not pd.api.types.is_bool_dtype(want):
            np.testing.assert_allclose(got.to_numpy(float), want.to_numpy(float), rtol=RTOL, err_msg=column)
        else:
            assert got.astype(str).tolist() == want.astype(str).tolist(), column


def test_counts_match(actual, expected):
    for column in ["n", "n_planned", "n_diverged", "n_failed"]:
        got = actual.loc[expected.index, column].astype(int).tolist()
        assert got == expected[column].astype(int).tolist(), column


def test_aggregates_match_pandas_groupby(actual, expected):
    for metric in METRICS:
        for stat in STATS:
            column = f"{metric}_{stat}"
            got = actual.loc[expected.index, column].to_numpy(float)
            want = expected[column].to_numpy(float)
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=column)


def test_rank_matches_and_rows_are_best_first(actual, expected):
    got = actual.loc[expected.index, "rank"].to_numpy(float)
    np.testing.assert_array_equal(got, expected["rank"].to_numpy(float))
    ranks = actual["rank"].to_numpy(float)
    ranked = ranks[~np.isnan(ranks)]
    assert (np.diff(ranked) >= 0).all(), "summary.csv rows are sorted by rank"
    assert not np.isnan(ranks[: len(ranked)]).any(), "unranked settings come last"


def test_never_averages_over_more_runs_than_finished_ok(actual):
    assert (actual["n"] + actual["n_diverged"] + actual["n_failed"] <= actual["n_planned"]).all()
    for metric in METRICS:
        single = actual["n"] == 1
        assert actual.loc[single, f"{metric}_std"].isna().all(), f"{metric}_std of one seed is empty"
