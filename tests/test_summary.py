"""Cross-checks `summary.csv` against pandas, on a real run of the sample sweep.

Recomputes each setting's aggregates from `plan.csv` and `results.csv` with a pandas
groupby over every parameter column except `seed` (n, mean, sample std with ddof=1, min
and max of the final train/val/test accuracy and cost, over the runs with status ok),
ranks the settings by mean validation accuracy (ties share the best rank, as
`rank(method="min")`), and compares all of it with the `summary.csv` that `sweep run`
wrote. Grouping by the parameter values, not by the setting id, also checks that sweep's
setting ids (run ids without `_seed=N`) group the same runs.

By default this trains the sample sweep (see conftest.py). SWEEP_DIR=out/<name> checks
an existing, summarized sweep folder instead.
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
    "train_loss",
    "val_loss",
    "test_loss",
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
def sweep_dir(request) -> pathlib.Path:
    value = os.environ.get("SWEEP_DIR")
    if not value:
        return request.getfixturevalue("sample_sweep")
    path = pathlib.Path(value)
    for name in ["plan.csv", "summary.csv"]:
        assert (path / name).is_file(), f"{path / name} is missing; run `sweep summarize {path}` first"
    return path


@pytest.fixture(scope="module")
def actual(sweep_dir) -> pd.DataFrame:
    return pd.read_csv(sweep_dir / "summary.csv")


@pytest.fixture(scope="module")
def expected(sweep_dir) -> pd.DataFrame:
    """One row per setting, indexed by the parameter columns, computed with pandas only."""
    plan = pd.read_csv(sweep_dir / "plan.csv")
    results_path = sweep_dir / "results.csv"
    if results_path.is_file():
        results = pd.read_csv(results_path)
    else:
        results = pd.DataFrame(columns=["run_id", *PARAMS, "status", *METRICS])
    results = results[results["run_id"].isin(plan["run_id"])]

    by_setting = plan.groupby(PARAMS)
    out = pd.DataFrame({"n_planned": by_setting.size()})
    out["setting_ids"] = by_setting["run_id"].agg(lambda ids: sorted({setting_id(r) for r in ids}))
    for status, column in [("ok", "n"), ("diverged", "n_diverged"), ("failed", "n_failed")]:
        counts = results[results["status"] == status].groupby(PARAMS).size()
        out[column] = counts.reindex(out.index, fill_value=0)

    ok = results[results["status"] == "ok"]
    grouped = ok.groupby(PARAMS)[METRICS].agg(STATS)
    grouped.columns = [f"{m}_{s}" for m, s in grouped.columns]
    out = out.join(grouped.astype(float))
    out["rank"] = out["val_accuracy_mean"].rank(method="min", ascending=False)
    return out


@pytest.fixture(scope="module")
def joined(actual, expected) -> pd.DataFrame:
    """summary.csv rows matched to the pandas rows by their parameter values."""
    merged = actual.merge(
        expected, left_on=PARAMS, right_index=True, how="outer", suffixes=("", "_pd"), indicator=True
    )
    unmatched = merged[merged["_merge"] != "both"]
    assert unmatched.empty, f"settings in only one of summary.csv / pandas:\n{unmatched[PARAMS + ['_merge']]}"
    return merged


def test_every_planned_run_is_counted(sweep_dir, actual):
    assert actual["n_planned"].sum() == len(pd.read_csv(sweep_dir / "plan.csv"))
    if not os.environ.get("SWEEP_DIR"):
        assert len(actual) == 4, "sweeps/sample.toml plans four settings"
        assert (actual["n_planned"] == 3).all() and (actual["n"] == 3).all(), actual[["setting_id", "n"]]


def test_one_row_per_setting(actual, expected, joined):
    assert actual["setting_id"].is_unique
    assert len(actual) == len(expected) == len(joined)


def test_setting_id_is_the_run_id_without_its_seed(joined):
    for _, row in joined.iterrows():
        assert row["setting_ids"] == [row["setting_id"]], row["setting_id"]


def test_counts_match(joined):
    for column in ["n", "n_planned", "n_diverged", "n_failed"]:
        got = joined[column].astype(int).tolist()
        want = joined[f"{column}_pd"].astype(int).tolist()
        assert got == want, column


def test_aggregates_match_pandas_groupby(joined):
    for metric in METRICS:
        for stat in STATS:
            column = f"{metric}_{stat}"
            np.testing.assert_allclose(
                joined[column].to_numpy(float),
                joined[f"{column}_pd"].to_numpy(float),
                rtol=RTOL,
                atol=ATOL,
                equal_nan=True,
                err_msg=column,
            )


def test_rank_is_by_mean_val_accuracy(actual, joined):
    np.testing.assert_array_equal(joined["rank"].to_numpy(float), joined["rank_pd"].to_numpy(float))
    ranks = actual["rank"].to_numpy(float)
    ranked = ranks[~np.isnan(ranks)]
    assert (np.diff(ranked) >= 0).all(), "summary.csv rows are sorted best first"
    assert not np.isnan(ranks[: len(ranked)]).any(), "unranked settings come last"
    means = actual["val_accuracy_mean"].to_numpy(float)[: len(ranked)]
    assert (np.diff(means) <= 0).all(), "mean val accuracy never increases down the ranking"
    if len(ranked):
        best = actual.iloc[0]
        assert best["rank"] == 1
        assert best["val_accuracy_mean"] == np.nanmax(actual["val_accuracy_mean"].to_numpy(float))


def test_std_of_a_single_seed_is_empty(actual):
    assert (actual["n"] + actual["n_diverged"] + actual["n_failed"] <= actual["n_planned"]).all()
    single = actual["n"] == 1
    for metric in METRICS:
        assert actual.loc[single, f"{metric}_std"].isna().all(), f"{metric}_std of one seed is empty"
