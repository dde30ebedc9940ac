"""The three workloads that `sweep` and its peers run for `bench/run --only A,B,C`.

Pure Python (no numpy), so that bench.py builds `sweep`'s sweep files and the
peers build their runs from the same definitions.

- A: the lab-1 study (the `study-f32` bench): a linear softmax classifier,
  4 settings (lambda, eta) x seeds 1-3, 40 epochs, batch 100, constant eta,
  W and b ~ N(0, 0.01^2); train data_batch_1, val data_batch_2, test
  test_batch; evaluation at epoch 0 and after every epoch.
- B: a two-layer net 3072-50-10 (ReLU, Xavier init, biases 0), 8 lambdas
  logspace(-5, -1, 8), seed 1; train data_batch_1..5 less the last 5000
  examples (the validation set); cyclical eta 1e-5..0.1, n_s 900, 2 cycles
  (3600 updates); evaluation every 450 updates.
- C: B with two hidden layers of 50, batch normalisation on both (by hand,
  running averages 0.9 / 0.1), He init, n_s 2250 (9000 updates).

`quick=True` shortens each to a smoke run (A: 3 epochs; B and C: one cycle of
n_s 50, i.e. 100 updates, evaluated every 50), for sweep and peers alike.
"""

DATA_FILES_ALL = [f"data_batch_{i}.bin" for i in range(1, 6)]

# The lab's four settings (lambda, eta), in peer.py's SETTINGS order.
SETTINGS_A = [(0.0, 0.1), (0.0, 0.001), (0.1, 0.001), (1.0, 0.001)]


def logspace(lo, hi, n):
    """numpy.logspace(lo, hi, n) without numpy."""
    return [10 ** (lo + (hi - lo) * i / (n - 1)) for i in range(n)]


def workload(name, quick=False):
    """The workload as a dict:

    train / val / test: file lists (val None with val_holdout = N, the last N
      training examples); hidden: hidden widths ([] = linear); batch_norm;
    init: "std:0.01" (W and b ~ N(0, 0.01^2)), "xavier" (W ~ N(0, 1/fan_in),
      b 0) or "he" (W ~ N(0, 2/fan_in), b 0);
    runs: list of {"lambda", "eta", "seed"} ("eta" None for the cyclic rate);
    epochs (constant eta) or cyclic {"eta_min", "eta_max", "step_size", "cycles"};
    eval_every: updates between evaluations (None: every epoch).
    """
    if name == "A":
        return {
            "name": "A",
            "train": ["data_batch_1.bin"],
            "val": ["data_batch_2.bin"],
            "val_holdout": None,
            "test": ["test_batch.bin"],
            "hidden": [],
            "batch_norm": False,
            "init": "std:0.01",
            "batch": 100,
            "runs": [{"lambda": lam, "eta": eta, "seed": s} for (lam, eta) in SETTINGS_A for s in (1, 2, 3)],
            "epochs": 3 if quick else 40,
            "cyclic": None,
            "eval_every": None,
        }
    if name in ("B", "C"):
        step = {"B": 900, "C": 2250}[name]
        return {
            "name": name,
            "train": DATA_FILES_ALL,
            "val": None,
            "val_holdout": 5000,
            "test": ["test_batch.bin"],
            "hidden": [50] if name == "B" else [50, 50],
            "batch_norm": name == "C",
            "init": "xavier" if name == "B" else "he",
            "batch": 100,
            "runs": [{"lambda": lam, "eta": None, "seed": 1} for lam in logspace(-5, -1, 8)],
            "epochs": None,
            "cyclic": {
                "eta_min": 1e-5,
                "eta_max": 0.1,
                "step_size": 50 if quick else step,
                "cycles": 1 if quick else 2,
            },
            "eval_every": 50 if quick else 450,
        }
    raise ValueError(f"unknown workload {name!r} (A, B or C)")


def total_updates(w, n_train):
    if w["cyclic"]:
        return 2 * w["cyclic"]["step_size"] * w["cyclic"]["cycles"]
    return w["epochs"] * (n_train // w["batch"])


def eval_every(w, n_train):
    return w["eval_every"] or n_train // w["batch"]


def eta_at(w, run, update):
    """The learning rate of `run` at `update` (0-based), as sweep's schedules."""
    c = w["cyclic"]
    if not c:
        return run["eta"]
    n_s = c["step_size"]
    t = update % (2 * n_s)
    rise = t if t <= n_s else 2 * n_s - t
    return c["eta_min"] + rise / n_s * (c["eta_max"] - c["eta_min"])


def sweep_spec(w, data_dir):
    """`sweep`'s sweep file for B or C (A's is bench.py's study-f32 file)."""
    assert w["cyclic"], "A's sweep file is bench.py's sweep_spec(..., GRID_ALL)"
    q = lambda files: "[" + ", ".join(f'"{f}"' for f in files) + "]"  # noqa: E731
    c = w["cyclic"]
    hidden = w["hidden"][0] if len(w["hidden"]) == 1 else w["hidden"]
    lams = [r["lambda"] for r in w["runs"]]
    seeds = sorted({r["seed"] for r in w["runs"]})
    lines = [
        f'name = "{w["name"]}"',
        "[data]",
        'format = "cifar10-bin"',
        f'dir = "{data_dir}"',
        f"train = {q(w['train'])}",
        f"val_holdout = {w['val_holdout']}",
        f"test = {q(w['test'])}",
        "[train]",
        f"hidden = [{hidden}]",
        f'init = "{w["init"]}"',
    ]
    if w["batch_norm"]:
        lines.append("batch_norm = true")
    lines += [
        f"batch_size = {w['batch']}",
        'schedule = "cyclic"',
        f"eta_min = {c['eta_min']}",
        f"eta_max = {c['eta_max']}",
        f"step_size = {c['step_size']}",
        f"cycles = {c['cycles']}",
        f"eval_every = {w['eval_every']}",
        "seed = [" + ", ".join(str(s) for s in seeds) + "]",
        "lambda = [" + ", ".join(repr(lam) for lam in lams) + "]",
    ]
    return "\n".join(lines) + "\n"
