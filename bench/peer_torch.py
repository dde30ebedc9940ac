"""The PyTorch peers for `bench/run --only A,B,C`, in two modes.

  --mode plain  what PyTorch users write: the parameters are tensors with
                requires_grad, the cost goes through autograd (backward()),
                and SGD updates them by hand; one run per task in a fork pool
                of one process per core, torch.set_num_threads(1) in each.
  --mode vmap   torch.func: grad of the functional cost, vmapped over the runs
                that share a batch order (the runs of one seed), parameters
                stacked on a leading run axis.  --procs P: P processes, each
                with cores/P threads, the runs of every seed group split
                between them (P = cores: one thread each; P = 1: one process
                with all cores).

Both do sweep's work for the workload (see workloads.py): f32, the same
preprocessing, init distributions, schedule, batch order per seed (numpy's RNG,
not sweep's), batch normalisation by hand (batch mean and biased variance,
eps 1e-5, running averages avg = 0.9 avg + 0.1 stat after every update, the
first batch setting them, 0 and 1 before), and the full train and val
evaluation (mean cross-entropy, cost = loss + lambda sum ||W||^2, accuracy) at
update 0 and every eval_every updates, then the test metrics.  The report goes
to --json.
"""

import argparse
import os
import time

T_START = time.perf_counter()

import numpy as np  # noqa: E402

import cifar  # noqa: E402
import workloads  # noqa: E402

EPS = 1e-5
MOMENTUM = 0.9
ARGS = None


def model_fns(torch, n_layers, bn):
    """forward, cost and evaluate over a dict of parameters W{l}, b{l} (and
    gamma{l}, beta{l} for the hidden layers with bn); the same functions serve
    autograd (plain) and torch.func (vmap)."""
    F = torch.nn.functional

    def forward(p, X, running=None):
        """Scores, and the batch statistics [(mean, var)] of each hidden layer
        (training with bn; `running` given: normalise with those instead)."""
        h, stats = X, []
        for l in range(n_layers):
            z = h @ p[f"W{l}"].T + p[f"b{l}"]
            if l == n_layers - 1:
                return z, stats
            if bn:
                if running is None:
                    mu, var = z.mean(0), z.var(0, correction=0)
                    stats.append((mu.detach(), var.detach()))
                else:
                    mu, var = running[l]
                z = p[f"gamma{l}"] * ((z - mu) / torch.sqrt(var + EPS)) + p[f"beta{l}"]
            h = torch.relu(z)

    def penalty(p, lam):
        return lam * sum((p[f"W{l}"] ** 2).sum() for l in range(n_layers))

    def cost(p, X, y, lam):
        S, stats = forward(p, X)
        return F.cross_entropy(S, y) + penalty(p, lam), stats

    def evaluate(p, running, X, y, lam):
        S, _ = forward(p, X, running if bn else None)
        loss = F.cross_entropy(S, y)
        return torch.stack([loss, loss + penalty(p, lam), (S.argmax(1) == y).float().mean()])

    return forward, cost, evaluate


def initial(torch, w, seed, n_layers):
    p = {}
    for l, (W, b) in enumerate(cifar.init_params(w, seed)):
        p[f"W{l}"], p[f"b{l}"] = torch.from_numpy(W), torch.from_numpy(b)
        if w["batch_norm"] and l < n_layers - 1:
            p[f"gamma{l}"] = torch.ones(W.shape[0])
            p[f"beta{l}"] = torch.zeros(W.shape[0])
    return p


def initial_running(torch, w):
    return [(torch.zeros(h), torch.ones(h)) for h in w["hidden"]] if w["batch_norm"] else []


def fold(running, stats, first):
    """The running averages after one update's batch statistics."""
    if first:
        return [tuple(s) for s in stats]
    return [(MOMENTUM * m + (1 - MOMENTUM) * bm, MOMENTUM * v + (1 - MOMENTUM) * bv)
            for (m, v), (bm, bv) in zip(running, stats)]


def import_torch(threads):
    import torch

    torch.set_num_threads(threads)
    return torch


def tensors(torch):
    return {k: (torch.from_numpy(X), torch.from_numpy(y)) for k, (X, y) in cifar.DATA.items()}


# ------------------------------------------------------------------- plain


def train_plain(i):
    """One run, autograd and SGD by hand."""
    torch = import_torch(1)
    w = ARGS.w
    run = w["runs"][i]
    data = tensors(torch)
    Xtr, ytr = data["train"]
    n_layers = len(w["hidden"]) + 1
    _, cost, evaluate = model_fns(torch, n_layers, w["batch_norm"])
    p = initial(torch, w, run["seed"], n_layers)
    for t in p.values():
        t.requires_grad_(True)
    running = initial_running(torch, w)
    lam = run["lambda"]
    updates, points = cifar.eval_points(w, len(ytr))
    history = []

    def record(u):
        with torch.no_grad():
            tr = evaluate(p, running, Xtr, ytr, lam).tolist()
            va = evaluate(p, running, *data["val"], lam).tolist()
        history.append((u, tr, va))

    record(0)
    for u, idx in cifar.batch_orders(len(ytr), w["batch"], updates, run["seed"]):
        idx = torch.from_numpy(idx)
        c, stats = cost(p, Xtr[idx], ytr[idx], lam)
        c.backward()
        eta = workloads.eta_at(w, run, u)
        with torch.no_grad():
            for t in p.values():
                t -= eta * t.grad
                t.grad = None
        running = fold(running, stats, u == 0)
        if u + 1 in points:
            record(u + 1)
    with torch.no_grad():
        te = evaluate(p, running, *data["test"], lam).tolist()
    return [cifar.run_record(w, i, history, te)], torch.__version__


# -------------------------------------------------------------------- vmap


def train_vmap(task):
    """Every group of the task (the runs of one seed) vmapped; one after another."""
    torch = import_torch(ARGS.threads)
    from torch.func import grad, vmap

    w = ARGS.w
    data = tensors(torch)
    Xtr, ytr = data["train"]
    n_layers = len(w["hidden"]) + 1
    _, cost, evaluate = model_fns(torch, n_layers, w["batch_norm"])
    step = vmap(grad(cost, has_aux=True), in_dims=(0, None, None, 0))
    score = vmap(evaluate, in_dims=(0, 0, None, None, 0))
    updates, points = cifar.eval_points(w, len(ytr))
    out = []
    for members in task:
        runs = [w["runs"][i] for i in members]
        seed = runs[0]["seed"]
        inits = [initial(torch, w, r["seed"], n_layers) for r in runs]
        p = {k: torch.stack([q[k] for q in inits]) for k in inits[0]}
        running = [(m.expand(len(runs), -1).clone(), v.expand(len(runs), -1).clone())
                   for m, v in initial_running(torch, w)]
        lam = torch.tensor([r["lambda"] for r in runs], dtype=torch.float32)
        etas = torch.tensor([[workloads.eta_at(w, r, u) for r in runs] for u in range(updates)],
                            dtype=torch.float32)
        history = [[] for _ in runs]

        def record(u):
            with torch.no_grad():
                tr = score(p, running, Xtr, ytr, lam).tolist()
                va = score(p, running, *data["val"], lam).tolist()
            for h, a, b in zip(history, tr, va):
                h.append((u, a, b))

        record(0)
        for u, idx in cifar.batch_orders(len(ytr), w["batch"], updates, seed):
            idx = torch.from_numpy(idx)
            g, stats = step(p, Xtr[idx], ytr[idx], lam)
            eta = etas[u]
            with torch.no_grad():
                for k, t in p.items():
                    t -= eta.view(-1, *[1] * (t.dim() - 1)) * g[k]
            running = fold(running, stats, u == 0)
            if u + 1 in points:
                record(u + 1)
        with torch.no_grad():
            te = score(p, running, *data["test"], lam).tolist()
        out += [cifar.run_record(w, i, h, t) for i, h, t in zip(members, history, te)]
    return out, torch.__version__


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cifar.common_args(p)
    p.add_argument("--mode", choices=("plain", "vmap"), required=True)
    p.add_argument("--procs", type=int, default=os.cpu_count(),
                   help="processes (vmap; plain always uses one per core); threads = cores / procs")
    args = p.parse_args()
    cores = os.cpu_count()
    if args.mode == "plain":
        args.procs = cores
    args.threads = max(1, cores // args.procs)
    args.w = workloads.workload(args.workload, args.quick)
    ARGS = args
    t_load = time.perf_counter()
    cifar.DATA = cifar.load(args.w, args.data)
    t_load = time.perf_counter() - t_load
    if args.mode == "plain":
        tasks, worker = list(range(len(args.w["runs"]))), train_plain
        layout = f"fork pool of {args.procs} processes x 1 thread, one run per task"
    else:
        tasks, worker = cifar.split_for_processes(args.w, args.procs), train_vmap
        layout = (f"{args.procs} processes x {args.threads} thread(s), "
                  f"vmap over {[[len(g) for g in t] for t in tasks]} runs")
    results = cifar.run_tasks(worker, tasks, args.procs)
    runs = [r for rs, _ in results for r in rs]
    versions = {"torch": results[0][1], "torch_threads_per_process": args.threads}
    peer = "torch" if args.mode == "plain" else "torch-vmap"
    cifar.finish(args, peer, runs, layout, versions, T_START, t_load)


if __name__ == "__main__":
    main()
