"""Reads `sweep run`'s outputs with numpy and pandas, as a user of the results would.

Runs a small sweep (one f32 and one f64 run, a few epochs, on the shipped CIFAR-10 sample)
with the binary named by SWEEP_BIN, then checks that every CSV parses with the dtypes the
output contract implies, that W.npy and b.npy load with the documented shapes, dtypes and
memory order, and that the recorded metrics agree with an independent numpy
reimplementation of the preprocessing and the classifier's scores.

Usage: SWEEP_BIN=target/debug/sweep python -m pytest -q tests/test_interop.py
(scripts/test sets SWEEP_BIN).
"""

import json
import os
import pathlib
import subprocess

import numpy as np
import pandas as pd
import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "cifar10-sample"
RECORD = 1 + 3072
EPOCHS = 3
LAMBDA = 0.01
PARAMS = [
    "lambda", "eta", "batch_size", "epochs", "seed", "shuffle", "precision", "init_std",
    "hidden", "init", "loss", "schedule", "eta_min", "eta_max", "step_size", "cycles",
    "decay", "decay_every", "eval_every", "augment", "dropout", "batch_norm", "bn_momentum",
    "bn_eps",
]
RUN_IDS = {
    "f32": f"lambda={LAMBDA}_eta=0.01_batch=100_epochs={EPOCHS}_seed=1",
    "f64": f"lambda={LAMBDA}_eta=0.01_batch=100_epochs={EPOCHS}_seed=1_f64",
}

SPEC = f"""\
name = "interop"

[data]
dir = "{SAMPLE}"
train = ["data_batch_1.bin"]
val = ["data_batch_2.bin"]
test = ["test_batch.bin"]

[train]
epochs = {EPOCHS}
batch_size = 100
eta = 0.01
lambda = {LAMBDA}
seed = 1
precision = ["f32", "f64"]

[gradcheck]
batch_sizes = [2]
segments = 1
lambda = [0.0]
dims = 20
"""


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> pathlib.Path:
    binary = os.environ.get("SWEEP_BIN")
    if not binary:
        pytest.fail("set SWEEP_BIN to the sweep binary (e.g. SWEEP_BIN=$PWD/target/debug/sweep); scripts/test does")
    if not pathlib.Path(binary).is_file():
        pytest.fail(f"SWEEP_BIN={binary} is not a file; build it with `cargo build`")
    tmp = tmp_path_factory.mktemp("interop")
    spec = tmp / "interop.toml"
    spec.write_text(SPEC)
    env = {k: v for k, v in os.environ.items() if k != "SWEEP_LOG"}
    done = subprocess.run(
        [binary, "run", str(spec), "--out", str(tmp / "out"), "--no-summary", "-j", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return tmp / "out" / "interop"


def read_split(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels and raw pixel bytes of one CIFAR-10 binary batch file."""
    raw = np.fromfile(SAMPLE / name, dtype=np.uint8)
    assert raw.size % RECORD == 0
    records = raw.reshape(-1, RECORD)
    return records[:, 1:], records[:, 0].astype(np.int64)


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every split, preprocessed as documented: the training split's per-feature mean
    and population std (0 -> 1) of pixels / 255 in float64, then each pixel
    fma(pixel, f32((1/255)/std), f32(-mean/std)) in float32. The fused multiply-add is
    emulated in float64: a pixel (8 bits) times a float32 (24) is exact, and so is the
    sum with the float32 shift at these magnitudes, so one rounding to float32 remains."""
    splits = {
        "train": read_split("data_batch_1.bin"),
        "val": read_split("data_batch_2.bin"),
        "test": read_split("test_batch.bin"),
    }
    x_train = splits["train"][0].astype(np.float64) / 255.0
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0, ddof=0)
    std[std == 0] = 1.0
    factor = ((1.0 / 255.0) / std).astype(np.float32).astype(np.float64)
    shift = (-mean / std).astype(np.float32).astype(np.float64)
    return {
        name: ((x.astype(np.float64) * factor + shift).astype(np.float32), y)
        for name, (x, y) in splits.items()
    }


def dtype_name(column: pd.Series) -> str:
    """The column's dtype, with every string dtype (object of str in pandas 2, `str` in
    pandas 3) called "string"."""
    if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
        assert column.map(lambda v: isinstance(v, str)).all(), f"{column.name} mixes types"
        return "string"
    return str(column.dtype)


def check_dtypes(df: pd.DataFrame, expected: dict[str, str], path: pathlib.Path) -> None:
    actual = {c: dtype_name(df[c]) for c in df.columns}
    assert list(actual) == list(expected), f"{path}: columns {list(actual)}"
    assert actual == expected, f"{path}: dtypes differ"


PARAM_DTYPES = {
    "lambda": "float64",
    "eta": "float64",
    "batch_size": "int64",
    "epochs": "int64",
    "seed": "int64",
    "shuffle": "bool",
    "precision": "string",
    "init_std": "float64",
    # The axes of the later labs, at their defaults: a one-layer run has no hidden layer
    # and a constant rate, so the cyclic, step and dropout cells are empty (NaN).
    "hidden": "string",
    "init": "string",
    "loss": "string",
    "schedule": "string",
    **{c: "float64" for c in ["eta_min", "eta_max", "step_size", "cycles", "decay", "decay_every"]},
    "eval_every": "int64",
    "augment": "string",
    "dropout": "float64",
    # batch_norm and its constants apply only to networks: empty (NaN) here.
    **{c: "float64" for c in ["batch_norm", "bn_momentum", "bn_eps"]},
}
METRIC_DTYPES = {"loss": "float64", "cost": "float64", "accuracy": "float64"}


def test_every_csv_parses_with_the_expected_dtypes(sweep_dir):
    plan = pd.read_csv(sweep_dir / "plan.csv")
    check_dtypes(plan, {"run_id": "string", **PARAM_DTYPES}, sweep_dir / "plan.csv")
    assert sorted(plan["run_id"]) == sorted(RUN_IDS.values())
    assert set(plan["precision"]) == {"f32", "f64"}

    metrics = pd.read_csv(sweep_dir / "metrics.csv")
    check_dtypes(
        metrics,
        {
            "run_id": "string",
            # `loss` is the metric here; the loss function's column is `loss_function`.
            **{("loss_function" if c == "loss" else c): t for c, t in PARAM_DTYPES.items()},
            "epoch": "int64",
            "update": "int64",
            "learning_rate": "float64",
            "split": "string",
            **METRIC_DTYPES,
        },
        sweep_dir / "metrics.csv",
    )
    assert len(metrics) == 2 * (EPOCHS + 1) * 2
    assert set(metrics["split"]) == {"train", "val"}
    assert metrics["accuracy"].between(0, 1).all()

    results = pd.read_csv(sweep_dir / "results.csv")
    finals = [f"{s}_{m}" for s in ["train", "val", "test"] for m in ["loss", "cost", "accuracy"]]
    # diverged_epoch, error and stopped_epoch are empty in every row here, which pandas
    # reads as NaN (float64); they are checked for emptiness below.
    check_dtypes(
        results,
        {
            "run_id": "string",
            **PARAM_DTYPES,
            "status": "string",
            "diverged_epoch": "float64",
            **{c: "float64" for c in finals},
            "seconds": "float64",
            "error": "float64",
            "stopped_epoch": "float64",
        },
        sweep_dir / "results.csv",
    )
    assert results["stopped_epoch"].isna().all()
    assert (results["status"] == "ok").all()
    assert results["diverged_epoch"].isna().all()
    assert results["error"].isna().all()
    assert results[finals].notna().all().all()

    check = pd.read_csv(sweep_dir / "gradcheck.csv")
    check_dtypes(
        check,
        {
            "batch_size": "int64",
            "segment": "string",
            "lambda": "float64",
            "method": "string",
            "param": "string",
            "norm_diff": "float64",
            "max_abs_diff": "float64",
            "max_rel_err": "float64",
            "seconds": "float64",
            # Empty for the smooth cross-entropy (NaN); a count for the hinge.
            "kinks": "float64",
            "zero_by_construction": "bool",
        },
        sweep_dir / "gradcheck.csv",
    )
    assert check["kinks"].isna().all()
    assert not check["zero_by_construction"].any(), "no batch norm in the one-layer check"
    assert set(check["segment"]) == {"first", "random-1"}

    for run_id in RUN_IDS.values():
        own = pd.read_csv(sweep_dir / "runs" / run_id / "metrics.csv")
        assert own["epoch"].dtype == np.int64
        for column in METRIC_DTYPES:
            assert own[column].dtype == np.float64
        params = json.loads((sweep_dir / "runs" / run_id / "params.json").read_text())
        assert sorted(params) == sorted(PARAMS)
        row = plan.set_index("run_id").loc[run_id]
        for key in PARAMS:
            if key == "hidden":
                # The widths, as the sweep file writes them: "[]", "[50, 50]".
                assert params[key] == json.loads(row[key]), (run_id, key)
            elif pd.isna(row[key]):
                # A key that does not apply to the run (eta_min of a constant rate) is an
                # empty cell; params.json still holds its default.
                assert key in {"eta_min", "eta_max", "step_size", "cycles", "decay", "decay_every", "dropout",
                               "batch_norm", "bn_momentum", "bn_eps"}
            else:
                assert params[key] == row[key], (run_id, key)


@pytest.mark.parametrize("precision", ["f32", "f64"])
def test_weights_load_with_the_documented_shape_dtype_and_order(sweep_dir, precision):
    run = sweep_dir / "runs" / RUN_IDS[precision]
    dtype = np.float32 if precision == "f32" else np.float64
    w = np.load(run / "W.npy")
    b = np.load(run / "b.npy")
    assert w.shape == (10, 3072) and w.dtype == dtype
    assert w.flags.c_contiguous and not w.flags.f_contiguous
    assert b.shape == (10,) and b.dtype == dtype
    assert np.isfinite(w).all() and np.isfinite(b).all()


def evaluate(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[int, float]:
    """Correct predictions and mean cross-entropy, computed in float64."""
    scores = x.astype(np.float64) @ w.astype(np.float64).T + b.astype(np.float64)
    top = scores.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(scores - top).sum(axis=1))
    loss = float(np.mean(log_norm - scores[np.arange(len(y)), y]))
    correct = int((scores.argmax(axis=1) == y).sum())
    return correct, loss


@pytest.mark.parametrize("precision", ["f32", "f64"])
def test_recorded_metrics_match_numpy(sweep_dir, data, precision):
    run_id = RUN_IDS[precision]
    run = sweep_dir / "runs" / run_id
    w, b = np.load(run / "W.npy"), np.load(run / "b.npy")
    metrics = pd.read_csv(sweep_dir / "metrics.csv")
    mine = metrics[metrics["run_id"] == run_id]
    last = mine[mine["epoch"] == EPOCHS].set_index("split")
    penalty = LAMBDA * float(np.sum(w.astype(np.float64) ** 2))

    for split in ["train", "val"]:
        x, y = data[split]
        correct, loss = evaluate(w, b, x, y)
        assert last.loc[split, "accuracy"] == correct / len(y), split
        assert last.loc[split, "loss"] == pytest.approx(loss, rel=1e-5), split
        assert last.loc[split, "cost"] == pytest.approx(loss + penalty, rel=1e-5), split

    results = pd.read_csv(sweep_dir / "results.csv").set_index("run_id").loc[run_id]
    for split in ["train", "val"]:
        for m in ["loss", "cost", "accuracy"]:
            assert results[f"{split}_{m}"] == last.loc[split, m], (split, m)
    x, y = data["test"]
    correct, loss = evaluate(w, b, x, y)
    assert results["test_accuracy"] == correct / len(y)
    assert results["test_loss"] == pytest.approx(loss, rel=1e-5)

    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "ok"
    assert result["val"]["accuracy"] == last.loc["val", "accuracy"]


NET_SPEC = f"""\
name = "net"

[data]
dir = "{SAMPLE}"
train = ["data_batch_1.bin"]
val = ["data_batch_2.bin"]
test = ["test_batch.bin"]

[train]
hidden = [[20], [16, 12]]
init = "he"
lambda = 0.005
loss = ["cross-entropy", "hinge"]
schedule = "cyclic"
eta_min = 1e-4
eta_max = 0.02
step_size = 25
cycles = 1
eval_every = 20
seed = 1
precision = ["f32", "f64"]
batch_norm = [false, true]
"""


@pytest.fixture(scope="module")
def net_dir(tmp_path_factory) -> pathlib.Path:
    binary = os.environ.get("SWEEP_BIN")
    if not binary:
        pytest.fail("set SWEEP_BIN to the sweep binary; scripts/test does")
    tmp = tmp_path_factory.mktemp("net")
    spec = tmp / "net.toml"
    spec.write_text(NET_SPEC)
    done = subprocess.run(
        [binary, "run", str(spec), "--out", str(tmp / "out"), "--no-summary", "-j", "2"],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return tmp / "out" / "net"


def rebuild(run: pathlib.Path):
    """The network of a run folder, from model.json and its .npy files (the README's recipe)."""
    model = json.loads((run / "model.json").read_text())
    arrays = {a["name"]: np.load(run / a["file"]) for a in model["arrays"]}
    for a in model["arrays"]:
        assert list(arrays[a["name"]].shape) == a["shape"] and arrays[a["name"]].dtype == a["dtype"]

    def scores(x):
        h = x.astype(np.float64).T
        for layer in model["layers"]:
            w = arrays[layer["weights"]].astype(np.float64)
            h = w @ h + arrays[layer["bias"]].astype(np.float64)[:, None]
            if "batch_norm" in layer:
                bn = layer["batch_norm"]
                g, b, m, v = (arrays[bn[k]].astype(np.float64)[:, None] for k in ["gamma", "beta", "mean", "var"])
                h = g * (h - m) / np.sqrt(v + bn["eps"]) + b
            if layer["activation"] == "relu":
                h = np.maximum(h, 0.0)
        return h.T

    weights = [arrays[layer["weights"]] for layer in model["layers"]]
    return model, scores, weights


def test_saved_networks_rebuild_in_numpy_and_give_the_recorded_metrics(net_dir, data):
    results = pd.read_csv(net_dir / "results.csv").set_index("run_id")
    assert len(results) == 16
    for run_id, row in results.iterrows():
        assert row["status"] == "ok", run_id
        model, scores, weights = rebuild(net_dir / "runs" / run_id)
        assert model["loss"] == row["loss"]
        assert len(model["layers"]) == len(json.loads(row["hidden"])) + 1
        normalised = [layer for layer in model["layers"] if "batch_norm" in layer]
        assert len(normalised) == (len(model["layers"]) - 1 if row["batch_norm"] else 0), run_id
        penalty = row["lambda"] * sum(float(np.sum(w.astype(np.float64) ** 2)) for w in weights)
        f64 = row["precision"] == "f64"
        for split in ["train", "val", "test"]:
            x, y = data[split]
            s = scores(x)
            truth = s[np.arange(len(y)), y]
            if model["loss"] == "hinge":
                margins = np.maximum(0.0, s - truth[:, None] + 1.0)
                margins[np.arange(len(y)), y] = 0.0
                loss = float(margins.sum(axis=1).mean())
            else:
                top = s.max(axis=1)
                loss = float(np.mean(top + np.log(np.exp(s - top[:, None]).sum(axis=1)) - truth))
            accuracy = float((s.argmax(axis=1) == y).mean())
            rel = 1e-9 if f64 else 1e-4
            assert row[f"{split}_loss"] == pytest.approx(loss, rel=rel), (run_id, split)
            assert row[f"{split}_cost"] == pytest.approx(loss + penalty, rel=rel), (run_id, split)
            if f64:
                assert row[f"{split}_accuracy"] == accuracy, (run_id, split)
            else:
                assert abs(row[f"{split}_accuracy"] - accuracy) <= 2 / len(y), (run_id, split)
        metrics = pd.read_csv(net_dir / "runs" / run_id / "metrics.csv")
        assert list(metrics["update"].unique()) == [0, 20, 40, 50]
