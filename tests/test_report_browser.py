"""Opens the sample sweep's report.html from disk in headless chromium.

Checks what a reader would notice first: every figure loads (no broken image icons), and
the settings table has one row per setting of the sweep, in the plan's settings. It also
saves a full-page screenshot next to the report and prints its path.

The page is inspected without a DevTools client: a copy of report.html next to the
original (so its relative `figures/...` paths still resolve) gets a small script that,
after the page has loaded, scrolls to each image (they are `loading="lazy"`, as a reader
would scroll to them), waits for it, and writes the results as JSON into a
`<pre id="sweep-checks">`; chromium's `--dump-dom` prints the DOM and the test parses it.
This works offline and needs no Python package beyond pytest.

Needs Debian's chromium (`apt-get install chromium`; scripts/test installs it when run as
root). CHROMIUM may name another binary.
"""

import html
import json
import os
import pathlib
import re
import shutil
import subprocess

import pandas as pd
import pytest

CHECKS_ID = "sweep-checks"
CHECK_SCRIPT = """
<script>
window.addEventListener("load", async () => {
  const waitFor = (img) => img.complete ? Promise.resolve() : new Promise((resolve) => {
    img.addEventListener("load", resolve, { once: true });
    img.addEventListener("error", resolve, { once: true });
  });
  for (const img of document.images) {
    img.scrollIntoView();
    await waitFor(img);
  }
  window.scrollTo(0, 0);
  const rows = Array.from(document.querySelectorAll("#settings tbody tr"));
  const result = {
    title: document.title,
    images: Array.from(document.images).map((img) => ({
      src: img.getAttribute("src"),
      complete: img.complete,
      naturalWidth: img.naturalWidth,
      naturalHeight: img.naturalHeight,
    })),
    settingsTables: document.querySelectorAll("table#settings").length,
    settingsRows: rows.map((tr) => (tr.querySelector("td.id") || tr).textContent.trim()),
    pageHeight: document.documentElement.scrollHeight,
  };
  const pre = document.createElement("pre");
  pre.id = "%s";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>
""" % CHECKS_ID

BASE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]
WIDTH = 1400
# Chromium's --screenshot captures the window only, so the window is made as tall as the
# page (within reason) to get the whole report in one picture.
MAX_SCREENSHOT_HEIGHT = 16000


def chromium_binary() -> str:
    candidates = [os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")]
    for c in candidates:
        if c and pathlib.Path(c).is_file():
            return c
    pytest.fail(
        "chromium is not installed, and the report's browser test needs it: run "
        "`apt-get update && apt-get install -y --no-install-recommends chromium fonts-dejavu-core` "
        "as root (scripts/test does this when it can), or set CHROMIUM to a chromium binary"
    )


def run_chromium(args: list[str], profile: pathlib.Path) -> subprocess.CompletedProcess:
    profile.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [chromium_binary(), *BASE_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, f"chromium exited with {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def page_checks(sample_sweep, tmp_path_factory) -> dict:
    report = (sample_sweep / "report.html").read_text(encoding="utf-8")
    assert report.count("</body>") == 1, "report.html has exactly one </body>"
    probe = sample_sweep / "report-browser-check.html"
    probe.write_text(report.replace("</body>", CHECK_SCRIPT + "</body>"), encoding="utf-8")
    proc = run_chromium(
        [f"--window-size={WIDTH},1000", "--virtual-time-budget=15000", "--dump-dom", probe.as_uri()],
        tmp_path_factory.mktemp("chromium-profile"),
    )
    match = re.search(rf'<pre id="{CHECKS_ID}">(.*?)</pre>', proc.stdout, re.S)
    assert match, (
        "the check script never reported: the page did not finish loading within the time budget "
        f"or a script error stopped it. chromium stderr:\n{proc.stderr[-3000:]}"
    )
    return json.loads(html.unescape(match.group(1)))


def setting_ids(sweep_dir: pathlib.Path) -> list[str]:
    """Distinct setting ids of the plan: run ids without their `_seed=N` part."""
    plan = pd.read_csv(sweep_dir / "plan.csv")
    ids = plan["run_id"].map(lambda r: "_".join(p for p in r.split("_") if not p.startswith("seed=")))
    return sorted(ids.unique())


def test_page_is_the_sweeps_report(page_checks):
    assert page_checks["title"] == "Sweep report: sample"


def test_every_image_loaded(page_checks, sample_sweep):
    images = page_checks["images"]
    n_settings = len(setting_ids(sample_sweep))
    # The overlay chart, plus each setting's curves and its first seed's weight montage.
    assert len(images) >= 1 + 2 * n_settings, images
    broken = [img for img in images if not img["complete"] or img["naturalWidth"] <= 0]
    assert not broken, f"images that did not load: {broken}"
    for img in images:
        assert (sample_sweep / img["src"]).is_file(), f"{img['src']} is not a file next to report.html"


def test_settings_table_has_one_row_per_setting(page_checks, sample_sweep):
    expected = setting_ids(sample_sweep)
    assert len(expected) == 4, "sweeps/sample.toml plans four settings"
    assert page_checks["settingsTables"] == 1
    assert len(page_checks["settingsRows"]) == len(expected)
    assert sorted(page_checks["settingsRows"]) == expected


def test_screenshot(page_checks, sample_sweep, tmp_path_factory, capsys):
    height = min(max(page_checks["pageHeight"], 1000), MAX_SCREENSHOT_HEIGHT)
    shot = sample_sweep / "report-screenshot.png"
    run_chromium(
        [
            f"--window-size={WIDTH},{height}",
            "--virtual-time-budget=15000",
            f"--screenshot={shot}",
            (sample_sweep / "report.html").as_uri(),
        ],
        tmp_path_factory.mktemp("chromium-profile"),
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{shot} is not a PNG"
    width, shot_height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, shot_height) == (WIDTH, height), (width, shot_height)
    with capsys.disabled():
        print(f"\nreport screenshot: {shot}")
