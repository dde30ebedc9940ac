"""The JAX peer for `bench/run --only A,B,C`: jax.jit + jax.vmap.

  jax.grad of the functional cost (has_aux: the batch statistics of batch
  norm), vmapped over the runs that share a batch order (the runs of one
  seed), parameters stacked on a leading run axis, SGD by hand.  Jitted: the
  updates between two evaluations as one lax.fori_loop (each update gathers
  its batch from the training split, a device array, inside the loop; the
  batch orders and learning rates are device arrays indexed by the update),
  and the evaluation of a whole split.  --procs P: P processes, each with
  cores/P threads, the runs of every seed group split between them (P = cores:
  one thread each, XLA_FLAGS --xla_cpu_multi_thread_eigen=false; P = 1: one
  process with XLA's default threads), as peer_torch.py's --mode vmap.

It does peer_torch.py's work for the workload (see workloads.py): f32, the
same preprocessing, init distributions, schedule, batch order per seed
(numpy's RNG, not sweep's), batch normalisation by hand (batch mean and biased
variance, eps 1e-5, running averages avg = 0.9 avg + 0.1 stat after every
update, the first batch setting them, 0 and 1 before), and the full train and
val evaluation (mean cross-entropy, cost = loss + lambda sum ||W||^2,
accuracy) at update 0 and every eval_every updates, then the test metrics.
The report goes to --json.

XLA reads its thread settings when jax is first imported, so the parent sets
XLA_FLAGS and JAX_PLATFORMS and never imports jax itself: the fork pool's
workers (or, with --procs 1, this process after the data is loaded) do.  The
data is loaded in the parent, 64-byte aligned, so that jax.device_put in the
workers uses it in place (shared copy-on-write, as torch.from_numpy).
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
ONE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def model_fns(jax, n_layers, bn):
    """forward, cost and evaluate over a dict of parameters W{l}, b{l} (and
    gamma{l}, beta{l} for the hidden layers with bn), for one run."""
    jnp = jax.numpy

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
                    mu, var = z.mean(0), z.var(0)
                    stats.append((jax.lax.stop_gradient(mu), jax.lax.stop_gradient(var)))
                else:
                    mu, var = running[l]
                z = p[f"gamma{l}"] * ((z - mu) / jnp.sqrt(var + EPS)) + p[f"beta{l}"]
            h = jax.nn.relu(z)

    def cross_entropy(S, y):
        return -jnp.take_along_axis(jax.nn.log_softmax(S), y[:, None], axis=1).mean()

    def penalty(p, lam):
        return lam * sum((p[f"W{l}"] ** 2).sum() for l in range(n_layers))

    def cost(p, X, y, lam):
        S, stats = forward(p, X)
        return cross_entropy(S, y) + penalty(p, lam), stats

    def evaluate(p, running, X, y, lam):
        S, _ = forward(p, X, running if bn else None)
        loss = cross_entropy(S, y)
        return jnp.stack([loss, loss + penalty(p, lam), (S.argmax(1) == y).mean(dtype=jnp.float32)])

    return forward, cost, evaluate


def initial(w, seed, n_layers):
    p = {}
    for l, (W, b) in enumerate(cifar.init_params(w, seed)):
        p[f"W{l}"], p[f"b{l}"] = W, b
        if w["batch_norm"] and l < n_layers - 1:
            p[f"gamma{l}"] = np.ones(W.shape[0], np.float32)
            p[f"beta{l}"] = np.zeros(W.shape[0], np.float32)
    return p


def initial_running(w, runs):
    """The running averages of `runs` stacked runs: 0 and 1 before the first update."""
    return ([(np.zeros((runs, h), np.float32), np.ones((runs, h), np.float32)) for h in w["hidden"]]
            if w["batch_norm"] else [])


def fold(jnp, running, stats, first):
    """The running averages after one update's batch statistics (`first`, a
    traced bool: the first update's statistics replace them)."""
    return [(jnp.where(first, bm, MOMENTUM * m + (1 - MOMENTUM) * bm),
             jnp.where(first, bv, MOMENTUM * v + (1 - MOMENTUM) * bv))
            for (m, v), (bm, bv) in zip(running, stats)]


def import_jax():
    """jax, imported here (after the fork) so that XLA_FLAGS takes effect."""
    import jax

    return jax


def compiled(jax, w):
    """The jitted training between two evaluations and the evaluation, of a
    stack of runs."""
    jnp = jax.numpy
    n_layers = len(w["hidden"]) + 1
    _, cost, evaluate = model_fns(jax, n_layers, w["batch_norm"])
    grads = jax.vmap(jax.grad(cost, has_aux=True), in_axes=(0, None, None, 0))

    def step(u, state, Xtr, ytr, orders, etas, lam):
        """Update u (0-based) of every run: gather its batch, one SGD step."""
        p, running = state
        idx = orders[u]
        g, stats = grads(p, Xtr[idx], ytr[idx], lam)
        eta = etas[u]
        p = {k: t - eta.reshape((-1,) + (1,) * (t.ndim - 1)) * g[k] for k, t in p.items()}
        return p, fold(jnp, running, stats, u == 0)

    def advance(p, running, start, stop, Xtr, ytr, orders, etas, lam):
        """Updates start .. stop - 1, one compiled loop (no host round-trip per update)."""
        return jax.lax.fori_loop(start, stop, lambda u, s: step(u, s, Xtr, ytr, orders, etas, lam),
                                 (p, running))

    score = jax.vmap(evaluate, in_axes=(0, 0, None, None, 0))
    return jax.jit(advance, donate_argnums=(0, 1)), jax.jit(score)


def device_data(jax):
    """The splits as jax arrays: X in place (cifar.load aligns it), y as int32."""
    return {k: (jax.device_put(X), jax.device_put(y.astype(np.int32))) for k, (X, y) in cifar.DATA.items()}


def train_vmap(task):
    """Every group of the task (the runs of one seed) vmapped; one after another."""
    jax = import_jax()
    jnp = jax.numpy
    w = ARGS.w
    data = device_data(jax)
    Xtr, ytr = data["train"]
    n_layers = len(w["hidden"]) + 1
    advance, score = compiled(jax, w)
    updates, points = cifar.eval_points(w, len(ytr))
    out = []
    for members in task:
        runs = [w["runs"][i] for i in members]
        seed = runs[0]["seed"]
        inits = [initial(w, r["seed"], n_layers) for r in runs]
        p = {k: jnp.asarray(np.stack([q[k] for q in inits])) for k in inits[0]}
        running = [(jnp.asarray(m), jnp.asarray(v)) for m, v in initial_running(w, len(runs))]
        lam = jnp.asarray([r["lambda"] for r in runs], dtype=jnp.float32)
        etas = jnp.asarray([[workloads.eta_at(w, r, u) for r in runs] for u in range(updates)],
                           dtype=jnp.float32)
        orders = jnp.asarray(np.stack([idx for _, idx in cifar.batch_orders(len(ytr), w["batch"], updates, seed)])
                             .astype(np.int32))
        history = [[] for _ in runs]

        def record(u):
            tr = np.asarray(score(p, running, Xtr, ytr, lam)).tolist()
            va = np.asarray(score(p, running, *data["val"], lam)).tolist()
            for h, a, b in zip(history, tr, va):
                h.append((u, a, b))

        record(0)
        for start, stop in zip(points, points[1:]):
            p, running = advance(p, running, start, stop, Xtr, ytr, orders, etas, lam)
            record(stop)
        te = np.asarray(score(p, running, *data["test"], lam)).tolist()
        out += [cifar.run_record(w, i, h, t) for i, h, t in zip(members, history, te)]
    return out, versions(jax)


def versions(jax):
    import jaxlib

    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cifar.common_args(p)
    p.add_argument("--procs", type=int, default=os.cpu_count(),
                   help="processes; threads = cores / procs")
    args = p.parse_args()
    cores = os.cpu_count()
    args.threads = max(1, cores // args.procs)
    os.environ["JAX_PLATFORMS"] = "cpu"
    if args.threads == 1:
        os.environ["XLA_FLAGS"] = ONE_THREAD_FLAGS
    args.w = workloads.workload(args.workload, args.quick)
    ARGS = args
    t_load = time.perf_counter()
    cifar.DATA = cifar.load(args.w, args.data)
    t_load = time.perf_counter() - t_load
    tasks = cifar.split_for_processes(args.w, args.procs)
    layout = (f"{args.procs} processes x {args.threads} thread(s), "
              f"vmap over {[[len(g) for g in t] for t in tasks]} runs")
    results = cifar.run_tasks(train_vmap, tasks, args.procs)
    runs = [r for rs, _ in results for r in rs]
    versions = {**results[0][1], "jax_threads_per_process": args.threads}
    cifar.finish(args, "jax-vmap", runs, layout, versions, T_START, t_load)


if __name__ == "__main__":
    main()
