"""Shared fixtures of the Python tests: one real run of the sample sweep per session.

The sample sweep (sweeps/sample.toml: 4 settings x 3 seeds on the 3x1,000-image CIFAR-10
sample, plus a gradient check) takes about 10 s with the debug binary, so the browser test
and the summary test share a single output folder instead of training twice.
"""

import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
SAMPLE_SPEC = REPO / "sweeps" / "sample.toml"


def sweep_bin() -> pathlib.Path:
    """The `sweep` binary named by SWEEP_BIN, as scripts/test sets it."""
    value = os.environ.get("SWEEP_BIN")
    if not value:
        pytest.fail(
            "SWEEP_BIN is not set; run the tests with scripts/test, or build with `cargo build` "
            "and set SWEEP_BIN=$PWD/target/debug/sweep"
        )
    path = pathlib.Path(value)
    if not path.is_file():
        pytest.fail(f"SWEEP_BIN={value} is not a file; build it with `cargo build` first")
    return path


@pytest.fixture(scope="session")
def sample_sweep(tmp_path_factory) -> pathlib.Path:
    """Runs `sweep run sweeps/sample.toml --out TMP` and returns TMP/sample."""
    out = tmp_path_factory.mktemp("sweep-out")
    proc = subprocess.run(
        [str(sweep_bin()), "run", str(SAMPLE_SPEC), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"sweep run failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    folder = out / "sample"
    for name in ["plan.csv", "results.csv", "summary.csv", "report.html"]:
        assert (folder / name).is_file(), f"sweep run did not write {folder / name}"
    return folder
