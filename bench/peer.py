"""The numpy peer for the `sweep` benchmark.

This is what a course student or researcher writes for the lab's study: a
one-layer softmax classifier trained with mini-batch gradient descent in numpy
(with its OpenBLAS), and a `multiprocessing` pool (fork, one process per core)
over the grid of settings and seeds.  It does exactly the work `sweep run`
does for the same sweep file: same data split, same preprocessing, same
initialisation distribution, same epochs and batches, and the full train and
val evaluation (loss, cost, accuracy) at epoch 0 and after every epoch, plus
the final test loss and accuracy.  Only the random streams differ, so
accuracies agree statistically, not bit for bit.

Two commands:

  peer.py train      the sweep (one run or a grid x seeds), in a fork pool
  peer.py gradcheck  the lab's naive numerical gradient loop (forward and
                     centred differences), timed on a subset of parameters
                     and extrapolated to all 30,730

Each writes a JSON report to --json (and a one-line summary to stderr).
BLAS threads: the pool sets OPENBLAS_NUM_THREADS=1 before numpy is imported
(one process per core, so BLAS threads would only oversubscribe); a single
process (one run, gradcheck) keeps OpenBLAS's default unless --blas-threads is
given.  The report records which it was and what threadpoolctl says is loaded.
"""

import argparse
import json
import os
import sys
import time


def _early_blas_threads(argv):
    """Set the BLAS thread count before numpy is imported, as it must be."""
    threads = None
    for i, arg in enumerate(argv):
        if arg == "--blas-threads" and i + 1 < len(argv):
            threads = argv[i + 1]
        elif arg.startswith("--blas-threads="):
            threads = arg.split("=", 1)[1]
    if threads is None and len(argv) > 1 and argv[1] == "train":
        jobs = _arg_value(argv, "--jobs")
        if jobs is None or int(jobs) > 1:
            threads = "1"
    if threads is not None and threads != "default":
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = threads
    return threads or "default"


def _arg_value(argv, name):
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


BLAS_THREADS = _early_blas_threads(sys.argv)
T_START = time.perf_counter()

import numpy as np  # noqa: E402

K = 10
D = 3072
RECORD = 1 + D

# The lab's four settings (lambda, eta).
SETTINGS = [(0.0, 0.1), (0.0, 0.001), (0.1, 0.001), (1.0, 0.001)]


def blas_info():
    try:
        from threadpoolctl import threadpool_info

        return [
            {k: v for k, v in pool.items() if k != "filepath"}
            for pool in threadpool_info()
        ]
    except Exception as exc:  # threadpoolctl is optional for the peer itself
        return [{"error": repr(exc)}]


def load_batch(path, dtype):
    """Read a CIFAR-10 binary file: X (d x n) in [0, 1], y (n,)."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % RECORD:
        raise SystemExit(f"{path}: size {raw.size} is not a multiple of {RECORD}")
    raw = raw.reshape(-1, RECORD)
    y = raw[:, 0].astype(np.int64)
    # The transpose keeps each image contiguous (Fortran order), so the column
    # gathers of a mini-batch read contiguous memory.
    X = raw[:, 1:].astype(dtype).T
    X /= 255
    return X, y


def load_data(args, dtype):
    """Load the three splits and standardise them with the training split's
    per-feature mean and population std (ddof=0), in place."""
    d = args.data
    splits = {
        "train": load_batch(os.path.join(d, args.train), dtype),
        "val": load_batch(os.path.join(d, args.val), dtype),
        "test": load_batch(os.path.join(d, args.test), dtype),
    }
    Xtr = splits["train"][0]
    mean = Xtr.mean(axis=1, keepdims=True, dtype=np.float64)
    std = Xtr.std(axis=1, keepdims=True, dtype=np.float64)
    mean, std = mean.astype(dtype), std.astype(dtype)
    out = {}
    for name, (X, y) in splits.items():
        X -= mean
        X /= std
        Y = np.zeros((K, y.size), dtype=dtype)
        Y[y, np.arange(y.size)] = 1
        out[name] = (X, Y, y)
    return out


def softmax(S):
    E = np.exp(S - S.max(axis=0, keepdims=True))
    return E / E.sum(axis=0, keepdims=True)


def evaluate(X, y, W, b, lam):
    """Mean cross-entropy, cost (loss + lambda ||W||^2) and accuracy."""
    S = W @ X + b
    m = S.max(axis=0, keepdims=True)
    lse = m[0] + np.log(np.exp(S - m).sum(axis=0))
    loss = float(np.mean(lse - S[y, np.arange(y.size)]))
    cost = loss + lam * float(np.sum(W * W))
    acc = float(np.mean(S.argmax(axis=0) == y))
    return loss, cost, acc


# Data lives in module globals, loaded in the parent before the pool forks, so
# workers share it copy-on-write instead of each reading the files again.
DATA = None


def train_one(cfg):
    lam, eta, seed, epochs, batch, shuffle, dtype_name = cfg
    dtype = np.dtype(dtype_name)
    Xtr, Ytr, ytr = DATA["train"]
    Xva, _, yva = DATA["val"]
    Xte, _, yte = DATA["test"]
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, 0.01, size=(K, D)).astype(dtype)
    b = rng.normal(0.0, 0.01, size=(K, 1)).astype(dtype)
    n = Xtr.shape[1]
    history = []

    def record(epoch):
        tr = evaluate(Xtr, ytr, W, b, lam)
        va = evaluate(Xva, yva, W, b, lam)
        history.append((epoch,) + tr + va)

    diverged = None
    with np.errstate(over="ignore", invalid="ignore"):
        record(0)
        for epoch in range(1, epochs + 1):
            order = rng.permutation(n) if shuffle else np.arange(n)
            for start in range(0, n, batch):
                idx = order[start : start + batch]
                Xb = Xtr[:, idx]
                Yb = Ytr[:, idx]
                nb = idx.size
                P = softmax(W @ Xb + b)
                G = P - Yb
                dW = (G @ Xb.T) / nb + 2 * lam * W
                db = G.sum(axis=1, keepdims=True) / nb
                W -= eta * dW
                b -= eta * db
            record(epoch)
            if diverged is None and not np.isfinite(history[-1][1]):
                diverged = epoch
        te = evaluate(Xte, yte, W, b, lam)
    assert W.dtype == dtype and b.dtype == dtype, "precision leaked"
    last = history[-1]
    return {
        "lambda": lam,
        "eta": eta,
        "seed": seed,
        "dtype": dtype_name,
        "diverged_epoch": diverged,
        "train_loss": last[1],
        "train_cost": last[2],
        "train_accuracy": last[3],
        "val_loss": last[4],
        "val_cost": last[5],
        "val_accuracy": last[6],
        "test_loss": te[0],
        "test_cost": te[1],
        "test_accuracy": te[2],
        "epochs_recorded": len(history),
        "seconds": time.perf_counter() - t0,
        "pid": os.getpid(),
    }


def parse_seeds(text):
    """'1-3' is an inclusive range; anything else is a comma list."""
    if "-" in text and "," not in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def cmd_train(args):
    global DATA
    dtype = np.float32 if args.precision == "f32" else np.float64
    t_load = time.perf_counter()
    DATA = load_data(args, dtype)
    t_load = time.perf_counter() - t_load
    settings = (
        SETTINGS if args.settings == "all" else [SETTINGS[int(s) - 1] for s in args.settings.split(",")]
    )
    seeds = parse_seeds(args.seeds)
    cfgs = [
        (lam, eta, seed, args.epochs, args.batch, not args.no_shuffle, np.dtype(dtype).name)
        for (lam, eta) in settings
        for seed in seeds
    ]
    t_runs = time.perf_counter()
    if args.jobs == 1:
        results = [train_one(c) for c in cfgs]
        pool_kind = "none (in-process loop)"
    else:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(processes=args.jobs) as pool:
            results = pool.map(train_one, cfgs, chunksize=1)
        pool_kind = f"multiprocessing fork Pool({args.jobs}), chunksize 1"
    t_runs = time.perf_counter() - t_runs
    report = {
        "command": "train",
        "runs": results,
        "n_runs": len(results),
        "precision": args.precision,
        "epochs": args.epochs,
        "batch": args.batch,
        "n_train": int(DATA["train"][0].shape[1]),
        "pool": pool_kind,
        "blas_threads": BLAS_THREADS,
        "seconds_load": t_load,
        "seconds_runs": t_runs,
        "seconds_total": time.perf_counter() - T_START,
        "numpy": np.__version__,
        "blas": blas_info(),
    }
    write_report(args, report)
    for r in results:
        print(
            f"peer run lambda={r['lambda']} eta={r['eta']} seed={r['seed']} {r['dtype']}: "
            f"test acc {r['test_accuracy']:.4f} val acc {r['val_accuracy']:.4f} "
            f"{r['seconds']:.2f} s",
            file=sys.stderr,
        )
    print(
        f"peer train: {len(results)} runs, {args.precision}, load {t_load:.2f} s, "
        f"runs {t_runs:.2f} s, pool: {pool_kind}, BLAS threads {BLAS_THREADS}",
        file=sys.stderr,
    )


def cmd_gradcheck(args):
    """The lab's naive loop: perturb one parameter, recompute the full cost."""
    data = load_data(args, np.float64)
    X, Y, y = data["train"]
    X, Y, y = X[:, : args.n], Y[:, : args.n], y[: args.n]
    lam, h = args.lam, args.step
    rng = np.random.default_rng(args.seed)
    W = rng.normal(0.0, 0.01, size=(K, D))
    b = rng.normal(0.0, 0.01, size=(K, 1))

    def compute_cost(W, b):
        P = softmax(W @ X + b)
        return float(-np.mean(np.log(np.sum(Y * P, axis=0)))) + lam * float(np.sum(W * W))

    P = softmax(W @ X + b)
    G = P - Y
    an_W = G @ X.T / args.n + 2 * lam * W
    an_b = G.sum(axis=1, keepdims=True) / args.n

    n_params = W.size + b.size
    subset = n_params if args.subset <= 0 else min(args.subset, W.size)

    def params():
        # All of b (10 parameters), then the first `subset` entries of W in
        # row-major order, matching the lab's loop order (b first, then W).
        for i in range(b.size):
            yield "b", i
        for k in range(subset if subset < W.size else W.size):
            yield "W", k

    measured = b.size + (subset if subset < W.size else W.size)
    out = {}
    for method in ("forward", "centred"):
        num = {}
        t0 = time.perf_counter()
        c = compute_cost(W, b) if method == "forward" else None
        for name, k in params():
            if name == "b":
                b_try = np.array(b)
                b_try.flat[k] += h
                if method == "forward":
                    num[(name, k)] = (compute_cost(W, b_try) - c) / h
                else:
                    b_m = np.array(b)
                    b_m.flat[k] -= h
                    num[(name, k)] = (compute_cost(W, b_try) - compute_cost(W, b_m)) / (2 * h)
            else:
                W_try = np.array(W)
                W_try.flat[k] += h
                if method == "forward":
                    num[(name, k)] = (compute_cost(W_try, b) - c) / h
                else:
                    W_m = np.array(W)
                    W_m.flat[k] -= h
                    num[(name, k)] = (compute_cost(W_try, b) - compute_cost(W_m, b)) / (2 * h)
        secs = time.perf_counter() - t0
        rel = 0.0
        for (name, k), g in num.items():
            a = (an_W if name == "W" else an_b).flat[k]
            rel = max(rel, abs(a - g) / max(1e-12, abs(a) + abs(g)))
        out[method] = {
            "measured_params": measured,
            "seconds_measured": secs,
            "seconds_per_param": secs / measured,
            "seconds_extrapolated_all": secs / measured * n_params,
            "max_rel_err_vs_analytic": rel,
        }
    total = sum(m["seconds_extrapolated_all"] for m in out.values())
    report = {
        "command": "gradcheck",
        "n": args.n,
        "lambda": lam,
        "step": h,
        "n_params": n_params,
        "measured_params": measured,
        "extrapolated": measured < n_params,
        "methods": out,
        "seconds_both_methods_all_params": total,
        "blas_threads": BLAS_THREADS,
        "numpy": np.__version__,
        "blas": blas_info(),
    }
    write_report(args, report)
    label = "extrapolated from %d params" % measured if measured < n_params else "measured"
    print(
        f"peer gradcheck: forward {out['forward']['seconds_extrapolated_all']:.1f} s, "
        f"centred {out['centred']['seconds_extrapolated_all']:.1f} s for {n_params} params "
        f"({label}); max rel err forward {out['forward']['max_rel_err_vs_analytic']:.2e}, "
        f"centred {out['centred']['max_rel_err_vs_analytic']:.2e}",
        file=sys.stderr,
    )


def write_report(args, report):
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("train", "gradcheck"):
        s = sub.add_parser(name)
        s.add_argument("--data", required=True, help="directory of CIFAR-10 .bin files")
        s.add_argument("--train", default="data_batch_1.bin")
        s.add_argument("--val", default="data_batch_2.bin")
        s.add_argument("--test", default="test_batch.bin")
        s.add_argument("--json", help="write the JSON report here")
        s.add_argument(
            "--blas-threads",
            default=None,
            help="OPENBLAS_NUM_THREADS for this process (default: 1 with a pool, else OpenBLAS's own)",
        )
    t = sub.choices["train"]
    t.add_argument("--precision", choices=("f32", "f64"), default="f64")
    t.add_argument("--epochs", type=int, default=40)
    t.add_argument("--batch", type=int, default=100)
    t.add_argument("--settings", default="all", help="'all' or comma list of 1-4")
    t.add_argument("--seeds", default="1-3", help="'a-b' or comma list")
    t.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    t.add_argument("--no-shuffle", action="store_true")
    g = sub.choices["gradcheck"]
    g.add_argument("--n", type=int, default=1000)
    g.add_argument("--lam", type=float, default=0.0)
    g.add_argument("--step", type=float, default=1e-6)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument(
        "--subset",
        type=int,
        default=200,
        help="time b plus the first SUBSET entries of W and extrapolate (0 = all, no extrapolation)",
    )
    args = p.parse_args()
    {"train": cmd_train, "gradcheck": cmd_gradcheck}[args.cmd](args)


if __name__ == "__main__":
    main()
