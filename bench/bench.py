"""Benchmark `sweep` against its numpy peer on the same work, side by side.

Run it through `bench/run` (which creates bench/.venv with numpy and
threadpoolctl first).  For every benchmark it times `sweep run` and
`bench/peer.py` on the same sweep (same data, epochs, batches, evaluation),
alternating the two in each repeat so that background load hits both alike,
and prints a markdown table with min and median wall seconds of each and the
ratio peer/sweep of the medians.  The table also goes to
bench/results/latest.md.

Timing is whole-command wall time (process start to exit, including data
loading), measured with os.wait4, which also gives the CPU time of the whole
tree and the peak RSS of the largest process in it.  For the study, whose
memory is reported, a sampler thread also sums PSS over the whole process tree
(smaps_rollup every 0.5 s), which is the fair memory figure for the peer's
fork pool, whose workers share the parent's data copy-on-write.

This is not part of the test suite: it makes no assertions about speed.
"""

import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import workloads

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
PEER = os.path.join(BENCH_DIR, "peer.py")

# The sweep command lines, in one place.  `{spec}` and `{out}` are filled in.
# The gradient check needs a gradcheck-only mode of `sweep run`; until its
# final spelling is settled it can be overridden with SWEEP_BENCH_GRADCHECK_ARGS
# (a shell-quoted string with the same placeholders).
SWEEP_RUN_ARGS = ["run", "{spec}", "--out", "{out}", "-j", "{jobs}"]
SWEEP_GRADCHECK_ARGS = shlex.split(
    os.environ.get(
        "SWEEP_BENCH_GRADCHECK_ARGS",
        "run {spec} --out {out} -j {jobs} --gradcheck-only",
    )
)

# OpenBLAS variables that may be set on this machine and make numpy choose a
# slower kernel; they are removed from the peer's environment only.
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# The lab's grid: setting 1 is (lambda 0, eta 0.1), then (0, 0.001),
# (0.1, 0.001), (1, 0.001), matching peer.py's SETTINGS order.
GRID_ALL = """[[grid]]
lambda = 0.0
eta = [0.1, 0.001]
[[grid]]
lambda = [0.1, 1.0]
eta = 0.001
"""
GRID_SETTING_2 = """[[grid]]
lambda = 0.0
eta = 0.001
"""


def sweep_spec(name, data, epochs, seeds, precision, grid, gradcheck=False):
    files = data["files"]
    text = f"""name = "{name}"
[data]
format = "cifar10-bin"
dir = "{data['dir']}"
train = ["{files[0]}"]
val = ["{files[1]}"]
test = ["{files[2]}"]
[train]
epochs = {epochs}
batch_size = 100
seed = [{", ".join(str(s) for s in seeds)}]
shuffle = true
precision = "{precision}"
{grid}"""
    if gradcheck:
        text += """[gradcheck]
batch_sizes = [1000]
segments = 0
lambda = [0.0]
methods = ["forward", "centred"]
step = 1e-6
seed = 0
"""
    return text


# ---------------------------------------------------------------- measuring


def tree_pids(root):
    """The pids of root and all its descendants (via /proc/*/stat)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PssSampler(threading.Thread):
    def __init__(self, pid, interval=0.5):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak_kb = pid, interval, 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            total = sum(pss_kb(p) for p in tree_pids(self.pid))
            self.peak_kb = max(self.peak_kb, total)
            self.stop.wait(self.interval)


def measure(cmd, env=None, cwd=None, sample_pss=False):
    """Run cmd; return wall seconds, peak RSS (largest process) and, with
    sample_pss, peak PSS (whole tree, sampled) in MB, the exit code and stderr.

    The sampler reads /proc/PID/smaps_rollup of every process of the tree,
    which costs the measured command CPU and page-table locks (ten times a
    second, one f32 run of sweep took 1.10-1.24 s against 1.01-1.03 s
    without), so only the benchmarks whose memory is reported ask for it,
    and it samples twice a second: the runs it watches last over 5 s and
    hold their peak for most of that."""
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
    sampler = PssSampler(proc.pid) if sample_pss else None
    if sampler:
        sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if sampler:
        sampler.stop.set()
        sampler.join()
    err.seek(0)
    return {
        "seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "pss_mb": sampler.peak_kb / 1024 if sampler else None,
        "code": proc.returncode,
        "stderr": err.read().decode(errors="replace"),
    }


def peer_env():
    env = dict(os.environ)
    for var in OPENBLAS_OVERRIDES:
        env.pop(var, None)
    return env


# --------------------------------------------------------------- benchmarks


class Bench:
    """One benchmark: a sweep command and a peer command for the same work."""

    def __init__(self, key, label, sweep_args, spec, peer_args, runs, kind="train"):
        self.key, self.label = key, label
        self.sweep_args, self.spec, self.peer_args = sweep_args, spec, peer_args
        self.runs, self.kind = runs, kind
        # Memory (peak RSS and PSS) is reported for the study only (see `measure`).
        self.sample_pss = key.startswith("study")
        self.sweep, self.peer = [], []
        self.peer_report, self.sweep_results = None, None


def build_benches(args, full, sample):
    E, SE, J = args.epochs, args.scaling_epochs, str(args.jobs)
    py = [os.path.join(BENCH_DIR, ".venv", "bin", "python"), PEER]
    data_flags = lambda d: [  # noqa: E731
        "--data", d["dir"], "--train", d["files"][0], "--val", d["files"][1], "--test", d["files"][2]
    ]
    benches = []
    for prec in ("f32", "f64"):
        benches.append(
            Bench(
                f"study-{prec}",
                f"12-run study, {prec}, -j {J} (full data, {E} epochs)",
                SWEEP_RUN_ARGS,
                sweep_spec(f"bench12{prec}", full, E, [1, 2, 3], prec, GRID_ALL),
                py + ["train"] + data_flags(full)
                + ["--precision", prec, "--epochs", str(E), "--seeds", "1-3", "--jobs", J],
                12,
            )
        )
    for prec in ("f32", "f64"):
        benches.append(
            Bench(
                f"single-{prec}",
                f"one run, setting 2 (lambda 0, eta 0.001), {prec} ({E} epochs)",
                SWEEP_RUN_ARGS,
                sweep_spec(f"bench1{prec}", full, E, [1], prec, GRID_SETTING_2),
                py + ["train"] + data_flags(full)
                + ["--precision", prec, "--epochs", str(E), "--settings", "2", "--seeds", "1",
                   "--jobs", "1", "--blas-threads", args.peer_single_blas_threads],
                1,
            )
        )
    benches.append(
        Bench(
            "gradcheck",
            "gradient check, all 30,730 params, n=1000, forward+centred, f64",
            SWEEP_GRADCHECK_ARGS,
            sweep_spec("benchgc", full, 1, [0], "f64", GRID_SETTING_2, gradcheck=True),
            py + ["gradcheck"] + data_flags(full) + ["--n", "1000", "--subset", str(args.gradcheck_subset),
                                                  "--blas-threads", args.peer_single_blas_threads],
            0,
            kind="gradcheck",
        )
    )
    for n_seeds in (3, 30):
        n = 4 * n_seeds
        benches.append(
            Bench(
                f"scaling-{n}",
                f"scaling: {n} runs on the sample (1000 images), f32, {SE} epochs",
                SWEEP_RUN_ARGS,
                sweep_spec(f"bench{n}s", sample, SE, list(range(1, n_seeds + 1)), "f32", GRID_ALL),
                py + ["train"] + data_flags(sample)
                + ["--precision", "f32", "--epochs", str(SE), "--seeds", f"1-{n_seeds}", "--jobs", J],
                n,
            )
        )
    for name in ("A", "B", "C"):
        benches.append(workload_bench(args, full, name))
    if args.only:
        keys = args.only.split(",")
        benches = [b for b in benches if b.key in keys or b.key.split("-")[0] in keys]
    return benches


# ------------------------------------------------ workloads A, B, C: many peers

# Peer name -> (script, extra flags).  torch-vmap and jax-vmap run in both
# layouts (2 processes x 1 thread, 1 x 2); the report names the faster.
FRAMEWORK_PEERS = {
    "torch": ("peer_torch.py", ["--mode", "plain"]),
    "torch-vmap-2x1": ("peer_torch.py", ["--mode", "vmap", "--procs", "2"]),
    "torch-vmap-1x2": ("peer_torch.py", ["--mode", "vmap", "--procs", "1"]),
    "jax-vmap-2x1": ("peer_jax.py", ["--procs", "2"]),
    "jax-vmap-1x2": ("peer_jax.py", ["--procs", "1"]),
}
# The peer families with two layouts: "torch-vmap-2x1" belongs to "torch-vmap".
LAYOUT_FAMILIES = ("torch-vmap", "jax-vmap")


def peer_family(peer):
    """The family a peer name is selected and compared by (--peers, faster layout)."""
    family = peer.rsplit("-", 1)[0]
    return family if family in LAYOUT_FAMILIES else peer


class WorkloadBench:
    """Workload A, B or C: sweep and every selected peer on the same work."""

    kind = "workload"
    sample_pss = False

    def __init__(self, key, label, spec, peers, w):
        self.key, self.label, self.spec, self.w = key, label, spec, w
        self.sweep_args, self.runs = SWEEP_RUN_ARGS, len(w["runs"])
        self.peers = peers  # name -> argv
        self.sweep, self.sweep_results = [], None
        self.peer_m = {name: [] for name in peers}
        self.peer_reports = {}


def workload_bench(args, full, name):
    w = workloads.workload(name, quick=args.quick)
    py = os.path.join(BENCH_DIR, ".venv", "bin", "python")
    selected = args.peers.split(",")
    peers = {}
    if name == "A":
        spec = sweep_spec("A", full, w["epochs"], [1, 2, 3], "f32", GRID_ALL)
        if "numpy" in selected:
            d = full
            peers["numpy"] = [py, PEER, "train", "--data", d["dir"], "--train", d["files"][0],
                              "--val", d["files"][1], "--test", d["files"][2], "--precision", "f32",
                              "--epochs", str(w["epochs"]), "--seeds", "1-3", "--jobs", str(args.jobs)]
    else:
        spec = workloads.sweep_spec(w, full["dir"])
    for peer, (script, flags) in FRAMEWORK_PEERS.items():
        if peer_family(peer) in selected or peer in selected:
            peers[peer] = [py, os.path.join(BENCH_DIR, script), "--workload", name, "--data", full["dir"]] + flags + (
                ["--quick"] if args.quick else [])
    label = {
        "A": f"A: lab-1 study, 12 linear runs, f32, {w['epochs']} epochs",
        "B": "B: 3072-50-10, 8 lambdas, cyclic eta",
        "C": "C: 3072-50-50-10 + batch norm, 8 lambdas, cyclic eta",
    }[name]
    if w["cyclic"]:
        c = w["cyclic"]
        label += f" ({2 * c['step_size'] * c['cycles']} updates, eval every {w['eval_every']})"
    return WorkloadBench(name, label, spec, peers, w)


def run_workload_peer(bench, name):
    fd, path = tempfile.mkstemp(prefix="peer-", suffix=".json")
    os.close(fd)
    try:
        argv = bench.peers[name]
        m = measure(argv + ["--json", path], env=peer_env())
        m["cmd"] = " ".join(["python", os.path.relpath(argv[1], REPO)] + argv[2:])
        if m["code"] != 0:
            m["error"] = f"exit {m['code']}: {m['stderr'].strip()[-300:]}"
        else:
            with open(path) as f:
                bench.peer_reports[name] = json.load(f)
        return m
    finally:
        os.unlink(path)


def needed_packages(benches):
    """The pip packages the selected peers need beyond numpy."""
    need = set()
    for b in benches:
        for name in getattr(b, "peers", {}):
            if name.startswith("torch"):
                need.add("torch")
            elif name.startswith("jax"):
                need.add("jax")
    return sorted(need)


def ensure_packages(packages):
    """Install missing peer packages into this venv (bench/.venv): torch's CPU
    wheel index first, plain PyPI (CUDA wheels, about 6 GB) if that fails;
    jax as jax[cpu] from PyPI (jax and jaxlib)."""
    import importlib.util

    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if not missing:
        return
    pip = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
    if "torch" in missing:
        print("bench: installing torch (CPU wheel index, else PyPI)", file=sys.stderr)
        r = subprocess.run(pip + ["--retries", "1", "--timeout", "15", "torch",
                                  "--index-url", "https://download.pytorch.org/whl/cpu"])
        if r.returncode != 0:
            subprocess.run(pip + ["torch"], check=True)
        missing.remove("torch")
    if "jax" in missing:
        print("bench: installing jax[cpu] (PyPI)", file=sys.stderr)
        subprocess.run(pip + ["jax[cpu]"], check=True)
        missing.remove("jax")
    if missing:
        subprocess.run(pip + missing, check=True)


def sweep_accuracies(bench):
    """(lambda, eta or None) -> [val accuracy] of sweep's runs."""
    out = {}
    for r in bench.sweep_results or []:
        if r.get("val_accuracy"):
            eta = float(r["eta"]) if bench.key == "A" else None
            out.setdefault((float(r["lambda"]), eta), []).append(float(r["val_accuracy"]))
    return out


def peer_accuracies(report):
    out = {}
    for r in (report or {}).get("runs", []):
        eta = float(r["eta"]) if r.get("eta") is not None else None
        out.setdefault((float(r["lambda"]), eta), []).append(r["val_accuracy"])
    return out


def workload_report(benches):
    benches = [b for b in benches if b.kind == "workload"]
    if not benches:
        return []
    lines = [
        "",
        "Workloads A, B, C: whole-process wall seconds, min / median; ratio = peer / sweep "
        "(min / median of each):",
        "",
        "| workload | side | layout | seconds min / median | ratio min / median |",
        "| --- | --- | --- | --- | --- |",
    ]
    for b in benches:
        sw = [m["seconds"] for m in b.sweep if "error" not in m]
        lines.append(f"| {b.label} | sweep | -j 2 | {fmt_pair(sw)} | 1 |")
        best = {}
        for name, ms in b.peer_m.items():
            pe = [m["seconds"] for m in ms if "error" not in m]
            rep_ = b.peer_reports.get(name) or {}
            layout = rep_.get("layout") or rep_.get("pool", "?")
            rat = (f"{min(pe) / min(sw):.2f} / {statistics.median(pe) / statistics.median(sw):.2f}"
                   if pe and sw else "n/a")
            lines.append(f"| {b.key} | {name} | {layout} | {fmt_pair(pe)} | {rat} |")
            family = peer_family(name)
            if pe and (family not in best or statistics.median(pe) < best[family][1]):
                best[family] = (name, statistics.median(pe))
        for family, (name, med) in best.items():
            if family in LAYOUT_FAMILIES:
                lines.append(f"| {b.key} | {family}: faster layout | {name} | median {med:.2f} | |")
    for b in benches:
        if b.key in ("B", "C"):
            rss = [m["rss_mb"] for m in b.sweep if "error" not in m]
            lines.append(f"| {b.key} | sweep peak RSS, MB | | {fmt_pair(rss, 0)} | |")
    lines += ["", "Final validation accuracy per run (mean over seeds for A), sweep beside each peer:", ""]
    for b in benches:
        names = list(b.peer_m)
        lines += [f"| {b.key} lambda | eta | sweep | " + " | ".join(names) + " |",
                  "| --- " * (3 + len(names)) + "|"]
        sw = sweep_accuracies(b)
        pe = {n: peer_accuracies(b.peer_reports.get(n)) for n in names}
        keys = sorted(set(sw) | {k for p in pe.values() for k in p}, key=lambda k: (k[0], -(k[1] or 0)))
        cell = lambda v: f"{statistics.mean(v):.4f}" if v else "n/a"  # noqa: E731
        for k in keys:
            lines.append(f"| {k[0]:.3g} | {k[1] if k[1] is not None else 'cyclic'} | {cell(sw.get(k))} | "
                         + " | ".join(cell(pe[n].get(k)) for n in names) + " |")
        lines.append("")
    versions = {}
    for b in benches:
        for r in b.peer_reports.values():
            versions.update({k: v for k, v in r.get("versions", {}).items() if not k.endswith("process")})
    versions.setdefault("python", platform.python_version())
    lines.append("Peer versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    return lines


def run_sweep(bench, sweep_bin, jobs):
    tmp = tempfile.mkdtemp(prefix="sweep-bench-")
    try:
        spec = os.path.join(tmp, "spec.toml")
        with open(spec, "w") as f:
            f.write(bench.spec)
        out = os.path.join(tmp, "out")
        argv = [a.format(spec=spec, out=out, jobs=jobs) for a in bench.sweep_args]
        m = measure([sweep_bin] + argv, cwd=tmp, sample_pss=bench.sample_pss)
        m["cmd"] = " ".join(["sweep"] + argv)
        if m["code"] != 0:
            m["error"] = f"exit {m['code']}: {m['stderr'].strip()[-300:]}"
            return m
        name = bench.spec.split('"')[1]
        if bench.kind in ("train", "workload"):
            path = os.path.join(out, name, "results.csv")
            try:
                with open(path) as f:
                    rows = list(csv.DictReader(f))
            except OSError as exc:
                m["error"] = f"no results.csv: {exc}"
                return m
            if len(rows) != bench.runs:
                m["error"] = f"results.csv has {len(rows)} rows, expected {bench.runs}"
            bench.sweep_results = rows
        else:
            path = os.path.join(out, name, "gradcheck.csv")
            if not os.path.exists(path):
                m["error"] = "no gradcheck.csv"
            else:
                with open(path) as f:
                    bench.sweep_results = list(csv.DictReader(f))
        return m
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_peer(bench):
    fd, report = tempfile.mkstemp(prefix="peer-", suffix=".json")
    os.close(fd)
    try:
        m = measure(bench.peer_args + ["--json", report], env=peer_env(), sample_pss=bench.sample_pss)
        m["cmd"] = " ".join(["python", "bench/peer.py"] + bench.peer_args[2:])
        if m["code"] != 0:
            m["error"] = f"exit {m['code']}: {m['stderr'].strip()[-300:]}"
            return m
        with open(report) as f:
            bench.peer_report = json.load(f)
        if bench.kind == "gradcheck":
            # Replace the timed subset of the loop by its extrapolation to all
            # parameters; start-up and data loading stay as measured.
            r = bench.peer_report
            measured = sum(x["seconds_measured"] for x in r["methods"].values())
            m["measured_seconds"] = m["seconds"]
            m["seconds"] = m["seconds"] - measured + r["seconds_both_methods_all_params"]
        return m
    finally:
        os.unlink(report)


# ------------------------------------------------------------------ report


def fmt_pair(values, digits=2):
    if not values:
        return "n/a"
    return f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f}"


def ratio(peer, sweep):
    if not peer or not sweep:
        return "n/a"
    return f"{statistics.median(peer) / statistics.median(sweep):.2f}x"


def machine_info():
    info = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache"):
                info[k.strip()] = v.strip()
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        info["Memory"] = f"{kb / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return info


def git_rev():
    r = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain"], capture_output=True, text=True)
    return r.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def accuracy_table(benches):
    """Mean final test accuracy per setting, sweep vs peer, so a reader can
    see that both did the same training."""
    lines = []
    for b in benches:
        if b.kind != "train" or not b.key.startswith(("study", "single")):
            continue
        peer = {}
        for r in (b.peer_report or {}).get("runs", []):
            peer.setdefault((float(r["lambda"]), float(r["eta"])), []).append(r["test_accuracy"])
        sweep = {}
        for r in b.sweep_results or []:
            if r.get("test_accuracy"):
                key = (float(r["lambda"]), float(r["eta"]))
                sweep.setdefault(key, []).append(float(r["test_accuracy"]))
        for key in sorted(set(peer) | set(sweep), key=lambda k: (k[0], -k[1])):
            s = sweep.get(key)
            p = peer.get(key)
            lines.append(
                f"| {b.key} | {key[0]:g} | {key[1]:g} | "
                + (f"{statistics.mean(s) * 100:.2f}% (n={len(s)})" if s else "n/a")
                + " | "
                + (f"{statistics.mean(p) * 100:.2f}% (n={len(p)})" if p else "n/a")
                + " |"
            )
    if not lines:
        return []
    return [
        "",
        "Final test accuracy, mean over seeds (last repeat):",
        "",
        "| benchmark | lambda | eta | sweep | peer |",
        "| --- | --- | --- | --- | --- |",
    ] + lines


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def report(args, benches, sweep_info, load_before):
    peer_meta = next((b.peer_report for b in benches if b.peer_report), None) or {}
    blas = peer_meta.get("blas", [])
    blas_txt = "; ".join(
        f"{p.get('internal_api')} {p.get('version')} kernel {p.get('architecture')} "
        f"({p.get('threading_layer')})"
        for p in blas
    ) or "unknown"
    env_txt = ", ".join(f"{v}={os.environ[v]!r}" for v in OPENBLAS_OVERRIDES if v in os.environ)
    lines = [
        f"# sweep vs its peers ({datetime.datetime.now().isoformat(timespec='seconds')})",
        "",
        f"- machine: {', '.join(f'{k} {v}' for k, v in machine_info().items())}",
        f"- sweep: {sweep_info}; commit {git_rev()}",
        f"- peer: Python {platform.python_version()}, numpy {peer_meta.get('numpy', '?')}, "
        f"BLAS {blas_txt} (threadpoolctl, inside the peer)",
        f"- peer pool: multiprocessing fork Pool({args.jobs}), chunksize 1, OPENBLAS_NUM_THREADS=1 set "
        "before numpy is imported, data loaded once in the parent before the fork; the one-run "
        f"and gradient-check peers are single processes with OpenBLAS threads: {args.peer_single_blas_threads}",
        "- peer env: " + (f"unset for the peer only: {env_txt}" if env_txt else
                          "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE not set"),
        f"- load average (1/5/15 min) before: {load_before}, after: {loadavg()}; numbers taken "
        "with other work running on the machine are not comparable",
        f"- repeats: {args.repeats}; times are whole-command wall seconds (start-up and data "
        "loading included), min / median; ratio = peer median / sweep median (>1: sweep faster)",
    ]
    if not benches:  # only the workloads A, B, C, whose tables follow
        return "\n".join(lines) + "\n"
    lines += [
        "",
        "| benchmark | sweep min / median s | peer min / median s | ratio peer/sweep |",
        "| --- | --- | --- | --- |",
    ]
    for b in benches:
        label = b.label
        if b.kind == "gradcheck" and b.peer_report and b.peer_report.get("extrapolated"):
            label += (
                f" (peer EXTRAPOLATED from {b.peer_report['measured_params']} params timed, "
                f"max rel err fwd {b.peer_report['methods']['forward']['max_rel_err_vs_analytic']:.1e})"
            )
        threads = sorted({str(p.get("num_threads")) for p in (b.peer_report or {}).get("blas", [])})
        if threads:
            label += f" [peer: {'/'.join(threads)} BLAS thread(s) per process]"
        sw = [m["seconds"] for m in b.sweep if "error" not in m]
        pe = [m["seconds"] for m in b.peer if "error" not in m]
        lines.append(f"| {label} | {fmt_pair(sw)} | {fmt_pair(pe)} | {ratio(pe, sw)} |")
    for b in benches:
        if not b.sample_pss:
            continue
        for what, key in (("peak RSS, largest process", "rss_mb"), ("peak PSS, whole process tree", "pss_mb")):
            sw = [m[key] for m in b.sweep if "error" not in m]
            pe = [m[key] for m in b.peer if "error" not in m]
            lines.append(
                f"| {b.key}: {what}, MB | {fmt_pair(sw, 0)} | {fmt_pair(pe, 0)} | {ratio(pe, sw)} |"
            )
    s12 = next((b for b in benches if b.key == "scaling-12"), None)
    s120 = next((b for b in benches if b.key == "scaling-120"), None)
    if s12 and s120:
        def growth(a, b):
            a = [m["seconds"] for m in a if "error" not in m]
            b = [m["seconds"] for m in b if "error" not in m]
            return f"{statistics.median(b) / statistics.median(a):.2f}" if a and b else "n/a"
        lines.append(
            f"| scaling: 120-run / 12-run time (10 = linear) | {growth(s12.sweep, s120.sweep)} | "
            f"{growth(s12.peer, s120.peer)} | |"
        )
    lines += [
        "",
        "CPU seconds (user + sys, whole process tree), min / median; less sensitive to other "
        "load than wall time, though a spinning multithreaded BLAS inflates it:",
        "",
        "| benchmark | sweep CPU s | peer CPU s |",
        "| --- | --- | --- |",
    ]
    for b in benches:
        if b.kind == "gradcheck":
            continue
        sw = [m["cpu_seconds"] for m in b.sweep if "error" not in m]
        pe = [m["cpu_seconds"] for m in b.peer if "error" not in m]
        lines.append(f"| {b.key} | {fmt_pair(sw)} | {fmt_pair(pe)} |")
    lines += accuracy_table(benches)
    errors = []
    for b in benches:
        for side, ms in (("sweep", b.sweep), ("peer", b.peer)):
            for m in ms:
                if "error" in m:
                    errors.append(f"- {b.key} {side}: {m['error']}")
    if errors:
        lines += ["", "Errors:", ""] + sorted(set(errors))
    lines += ["", "Commands (last repeat):", ""]
    for b in benches:
        for side, ms in (("sweep", b.sweep), ("peer", b.peer)):
            if ms:
                lines.append(f"- {b.key} {side}: `{ms[-1]['cmd']}`")
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------- main


def main():
    p = argparse.ArgumentParser(description="sweep vs numpy peer, side by side")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke run: 1 repeat, 3 epochs, small gradcheck subset")
    p.add_argument("--data", default=os.environ.get("SWEEP_BENCH_DATA", "/work/shared/data/cifar-10-batches-bin"),
                   help="full CIFAR-10 binary dir (env SWEEP_BENCH_DATA)")
    p.add_argument("--sample", default=os.path.join(REPO, "data", "cifar10-sample"))
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--scaling-epochs", type=int, default=40)
    p.add_argument("--gradcheck-subset", type=int, default=200,
                   help="W entries the peer's naive loop times before extrapolating (0 = all)")
    p.add_argument("--peer-single-blas-threads", default="default",
                   help="OpenBLAS threads of the single-process peers (one run, gradcheck); "
                   "'default' leaves OpenBLAS's own choice (one per core)")
    p.add_argument("--only", help="comma list of benchmarks or groups: study (study-f32, study-f64), single (single-f32, single-f64), "
                   "gradcheck, scaling (scaling-12, scaling-120), and the workloads A, B, C (sweep against every peer)")
    p.add_argument("--peers", default="numpy,torch,torch-vmap,jax-vmap",
                   help="peers of the workloads A, B, C: numpy (A only), torch (plain autograd, pool of one "
                   "process per core), torch-vmap (torch.func vmap, in both layouts 2x1 and 1x2), "
                   "jax-vmap (jax.jit + jax.vmap, in both layouts 2x1 and 1x2)")
    p.add_argument("--peer-only", action="store_true", help="do not build or run sweep")
    p.add_argument("--no-build", action="store_true", help="use the existing target/release/sweep")
    p.add_argument("--sweep-bin", default=os.path.join(REPO, "target", "release", "sweep"))
    p.add_argument("--jobs", type=int, default=2, help="sweep -j and peer pool size")
    p.add_argument("--out", default=os.path.join(BENCH_DIR, "results", "latest.md"))
    args = p.parse_args()
    if args.quick:
        args.repeats, args.epochs, args.scaling_epochs = 1, 3, 3
        args.gradcheck_subset = min(args.gradcheck_subset, 20)

    full = {"dir": os.path.abspath(args.data), "files": ["data_batch_1.bin", "data_batch_2.bin", "test_batch.bin"]}
    sample = {"dir": os.path.abspath(args.sample), "files": full["files"]}
    for d in (full, sample):
        for f in d["files"]:
            if not os.path.exists(os.path.join(d["dir"], f)):
                sys.exit(f"bench: missing {os.path.join(d['dir'], f)}; pass --data/--sample or set SWEEP_BENCH_DATA")

    run_sweep_side = not args.peer_only
    sweep_info = "not run (--peer-only)"
    if run_sweep_side and not args.no_build:
        print("bench: cargo build --release", file=sys.stderr)
        r = subprocess.run(["cargo", "build", "--release"], cwd=REPO)
        if r.returncode != 0:
            print("bench: cargo build failed; measuring the peer only", file=sys.stderr)
            run_sweep_side, sweep_info = False, "build failed"
    if run_sweep_side:
        if not os.access(args.sweep_bin, os.X_OK):
            run_sweep_side, sweep_info = False, f"no binary at {args.sweep_bin}"
        else:
            v = subprocess.run([args.sweep_bin, "--version"], capture_output=True, text=True)
            sweep_info = (v.stdout.strip() or "version unknown") + " (release build), -j " + str(args.jobs)

    benches = build_benches(args, full, sample)
    ensure_packages(needed_packages(benches))
    load_before = loadavg()
    if float(load_before.split()[0]) > 0.5:
        print(f"bench: warning: load average {load_before}; the machine is busy, numbers will be noisy",
              file=sys.stderr)
    for rep in range(args.repeats):
        for b in benches:
            # Alternate which side goes first so drift in background load
            # does not favour either.
            order = ("sweep", "peer") if rep % 2 == 0 else ("peer", "sweep")
            for side in order:
                if side == "sweep":
                    if not run_sweep_side:
                        continue
                    m = run_sweep(b, args.sweep_bin, args.jobs)
                    b.sweep.append(m)
                elif b.kind == "workload":
                    names = list(b.peers)  # rotated each repeat, like the sweep/peer order
                    names = names[rep % len(names):] + names[: rep % len(names)] if names else names
                    for name in names:
                        m = run_workload_peer(b, name)
                        b.peer_m[name].append(m)
                        print(f"bench: [{rep + 1}/{args.repeats}] {b.key} {name}: {m['seconds']:.2f} s, "
                              f"rss {m['rss_mb']:.0f} MB ({m.get('error', 'ok')[:200]})", file=sys.stderr)
                    continue
                else:
                    m = run_peer(b)
                    b.peer.append(m)
                status = m.get("error", "ok")
                print(
                    f"bench: [{rep + 1}/{args.repeats}] {b.key} {side}: {m['seconds']:.2f} s, "
                    f"rss {m['rss_mb']:.0f} MB"
                    + (f", pss {m['pss_mb']:.0f} MB" if m["pss_mb"] is not None else "")
                    + f" ({status[:200]})",
                    file=sys.stderr,
                )

    text = report(args, [b for b in benches if b.kind != "workload"], sweep_info, load_before)
    text += "\n".join(workload_report(benches)) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
