"""What the torch and JAX peers share: CIFAR-10 loading and preprocessing as
`sweep` does it, the split of a workload's runs into batch-order groups and
processes, the fork pool, and the JSON report.

Data: every split is an n x 3072 f32 matrix (one image per row, C order) and
int64 labels.  x = uint8 / 255, standardised per feature with the training
split's mean and population std (ddof 0, computed in f64); with val_holdout the
last N examples of the concatenated training files are the validation set and
are not part of the statistics (as `sweep`).
"""

import json
import os
import platform
import sys
import time

import numpy as np

import workloads

D = 3072
RECORD = 1 + D


def read_files(data_dir, files):
    raw = np.concatenate([np.fromfile(os.path.join(data_dir, f), dtype=np.uint8) for f in files])
    if raw.size % RECORD:
        raise SystemExit(f"{files}: size {raw.size} is not a multiple of {RECORD}")
    raw = raw.reshape(-1, RECORD)
    return raw[:, 1:], raw[:, 0].astype(np.int64)


def load(w, data_dir):
    """{"train", "val", "test"}: (X n x d f32, y int64), preprocessed as sweep."""
    xtr, ytr = read_files(data_dir, w["train"])
    if w["val"]:
        xva, yva = read_files(data_dir, w["val"])
    else:
        n = w["val_holdout"]
        xtr, xva, ytr, yva = xtr[:-n], xtr[-n:], ytr[:-n], ytr[-n:]
    xte, yte = read_files(data_dir, w["test"])
    # Mean and population std of the training split in f64, a block of rows at
    # a time (no f64 copy of the whole split).
    total = np.zeros(D)
    for i in range(0, len(xtr), 5000):
        total += xtr[i : i + 5000].sum(axis=0, dtype=np.float64)
    mean = total / len(xtr) / 255
    sq = np.zeros(D)
    for i in range(0, len(xtr), 5000):
        sq += ((xtr[i : i + 5000] / 255.0 - mean) ** 2).sum(axis=0)
    std = np.sqrt(sq / len(xtr))
    std[std == 0] = 1
    scale = (1 / 255 / std).astype(np.float32)
    shift = (-mean / std).astype(np.float32)
    out = {}
    for name, (x, y) in (("train", (xtr, ytr)), ("val", (xva, yva)), ("test", (xte, yte))):
        X = aligned_empty(x.shape)
        X[...] = x
        X *= scale
        X += shift
        out[name] = (X, y)
    return out


def aligned_empty(shape, align=64):
    """An uninitialised f32 array whose data starts at a multiple of `align`
    bytes: jax.device_put then uses it in place (no copy), as torch.from_numpy."""
    n = int(np.prod(shape)) * 4
    buf = np.empty(n + align, np.uint8)
    off = -buf.ctypes.data % align
    return buf[off : off + n].view(np.float32).reshape(shape)


def groups(w):
    """Runs that share a batch order (one seed): {seed: [run index, ...]}."""
    out = {}
    for i, r in enumerate(w["runs"]):
        out.setdefault(r["seed"], []).append(i)
    return out


def split_for_processes(w, procs):
    """One task per process: each seed group's runs cut into `procs` contiguous
    parts, process p taking part p of every group, so the processes get equal
    shares.  A task is a list of groups (lists of run indices) of one seed each."""
    tasks = [[] for _ in range(procs)]
    for members in groups(w).values():
        for p in range(procs):
            part = members[p * len(members) // procs : (p + 1) * len(members) // procs]
            if part:
                tasks[p].append(part)
    return [t for t in tasks if t]


def batch_orders(n, batch, updates, seed):
    """The mini-batch index arrays of a run of `updates` updates: a fresh
    permutation of the training examples every epoch, batches in its order."""
    rng = np.random.default_rng(seed)
    per_epoch = n // batch
    order = None
    for u in range(updates):
        if u % per_epoch == 0:
            order = rng.permutation(n)
        k = u % per_epoch
        yield u, order[k * batch : (k + 1) * batch]


def init_params(w, seed):
    """[(W fan_out x fan_in, b)] per layer, f32, drawn with numpy's RNG."""
    rng = np.random.default_rng(seed + 1_000_003)
    dims = [D] + w["hidden"] + [10]
    layers = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        if w["init"] == "std:0.01":
            W = rng.normal(0, 0.01, (fan_out, fan_in))
            b = rng.normal(0, 0.01, fan_out)
        else:
            var = {"xavier": 1.0, "he": 2.0}[w["init"]] / fan_in
            W = rng.normal(0, np.sqrt(var), (fan_out, fan_in))
            b = np.zeros(fan_out)
        layers.append((W.astype(np.float32), b.astype(np.float32)))
    return layers


def eval_points(w, n_train):
    every = workloads.eval_every(w, n_train)
    updates = workloads.total_updates(w, n_train)
    return updates, sorted(set(range(0, updates + 1, every)) | {updates})


# Data loaded in the parent before the pool forks, shared copy-on-write.
DATA = None


def run_tasks(worker, tasks, procs, init=None):
    """worker(task) for every task: in this process if procs == 1, else in a
    fork pool of `procs` processes (init() runs first in each)."""
    if procs == 1:
        if init:
            init()
        return [worker(t) for t in tasks]
    import multiprocessing as mp

    with mp.get_context("fork").Pool(processes=procs, initializer=init) as pool:
        return pool.map(worker, tasks, chunksize=1)


def run_record(w, i, history, test):
    """A run's report entry from its evaluations [(update, tr, va)] with
    tr, va = (loss, cost, accuracy), and test = (loss, cost, accuracy)."""
    r = w["runs"][i]
    u, tr, va = history[-1]
    return {
        "lambda": r["lambda"],
        "eta": r["eta"],
        "seed": r["seed"],
        "updates": u,
        "evals": len(history),
        "train_loss": tr[0],
        "train_cost": tr[1],
        "train_accuracy": tr[2],
        "val_loss": va[0],
        "val_cost": va[1],
        "val_accuracy": va[2],
        "test_loss": test[0],
        "test_cost": test[1],
        "test_accuracy": test[2],
        "val_accuracy_history": [h[2][2] for h in history],
    }


def common_args(p):
    p.add_argument("--workload", choices=("A", "B", "C"), required=True)
    p.add_argument("--quick", action="store_true", help="the workload's short smoke version")
    p.add_argument("--data", default=os.environ.get("SWEEP_BENCH_DATA", "/work/shared/data/cifar-10-batches-bin"))
    p.add_argument("--json", help="write the JSON report here")


def finish(args, peer, runs, layout, versions, t_start, t_load):
    """Write the report and a summary on stderr."""
    runs = sorted(runs, key=lambda r: (r["seed"], r["lambda"], -(r["eta"] or 0)))
    report = {
        "peer": peer,
        "workload": args.workload,
        "quick": args.quick,
        "runs": runs,
        "n_runs": len(runs),
        "layout": layout,
        "seconds_load": t_load,
        "seconds_total": time.perf_counter() - t_start,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, **versions},
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    for r in runs:
        print(
            f"{peer} {args.workload} lambda={r['lambda']:.3g} eta={r['eta']} seed={r['seed']}: "
            f"val acc {r['val_accuracy']:.4f} test acc {r['test_accuracy']:.4f} ({r['evals']} evals)",
            file=sys.stderr,
        )
    print(f"{peer} {args.workload}: {report['seconds_total']:.1f} s, layout {layout}", file=sys.stderr)
