"""``report.html`` in headless Chromium: it renders without script errors and its tables sort.

Skipped when no ``chromium`` is installed (the CI script installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robnas.analysis._analyze import SearchAnalysis, write_search
from robnas.analysis._front import analyze_trials
from robnas.analysis._front import objectives_of as parse_objectives
from robnas.analysis._load import Experiment

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|"
NASTY_ERROR = "ValueError: bad <b>value</b> & '</script><script>throw 1</script>'"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A report of a small in-memory search: front b, d, a; c dominated; e failed; f stopped."""
    path = tmp_path_factory.mktemp("search")
    points = {"a": (0.9, 0.3), "b": (0.6, 0.6), "c": (0.5, 0.5), "d": (0.3, 0.9), "e": (0.0, 0.0),
              "f": (0.2, 0.1)}
    trials = pd.DataFrame([
        {"trial_id": t, "status": "ERROR" if t == "e" else "TERMINATED", "epoch": 1 if t == "f" else 2,
         "complete": t not in "ef", "stopped_early": t == "f", "diverged": False,
         "error": NASTY_ERROR if t == "e" else "", "arch": ARCH, "finished_at": 10.0 * i,
         "wall_time_s": 10.0 * i, "clean_acc": p[0], "robust_acc": p[1], "config/width": 8,
         **{f"config/key_{k}": f"a_long_value_{k}_" * 4 for k in range(12)}}
        for i, (t, p) in enumerate(points.items(), start=1)
    ])
    results = pd.DataFrame([
        {"trial_id": t, "epoch": epoch, "clean_acc": p[0] * epoch / 2, "robust_acc": p[1] * epoch / 2}
        for t, p in points.items() for epoch in (1, 2)
    ])
    experiment = Experiment(path, {"objectives": ["clean_acc", "robust_acc"]}, trials, results, 0.0, 2)
    result = analyze_trials(trials, parse_objectives("clean_acc,robust_acc", []), max_epochs=2)
    write_search(SearchAnalysis(experiment, result, path / "analysis"))
    return path / "analysis" / "report.html"


def _chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
        *args, page.resolve().as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def test_report_renders_without_script_errors(report, tmp_path):
    shot = tmp_path / "report.png"
    run = _chromium(report, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Uncaught" not in run.stderr, run.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (1600, 1200)
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50  # text, tables and pictures, not a blank page


def _sorted_ids(report: Path, tmp_path: Path, header: str, clicks: int) -> list[str]:
    """Click the front table's ``header`` ``clicks`` times; the first column's order after."""
    probe = f"""<script>
var table = document.querySelector("table.sortable");
var th = Array.from(table.querySelectorAll("th")).filter(function (h) {{
  return h.textContent === "{header}";
}})[0];
for (var i = 0; i < {clicks}; i++) th.click();
var ids = Array.from(table.tBodies[0].rows).map(function (r) {{ return r.cells[0].textContent; }});
document.body.setAttribute("data-order", ids.join(","));
</script></body>"""
    page = tmp_path / "probe.html"
    page.write_text(report.read_text().replace("</body>", probe))
    run = _chromium(page, tmp_path, "--dump-dom")
    assert run.returncode == 0 and "Uncaught" not in run.stderr, run.stderr[-2000:]
    marker = 'data-order="'
    start = run.stdout.index(marker) + len(marker)
    return run.stdout[start:run.stdout.index('"', start)].split(",")


def test_front_table_sorts_by_a_clicked_column(report, tmp_path):
    assert _sorted_ids(report, tmp_path, "robust_acc", 1) == ["a", "b", "d"]
    assert _sorted_ids(report, tmp_path, "robust_acc", 2) == ["d", "b", "a"]
    assert _sorted_ids(report, tmp_path, "trial_id", 2) == ["d", "b", "a"]


def test_error_text_is_escaped(report):
    page = report.read_text()
    assert NASTY_ERROR not in page
    assert "ValueError: bad &lt;b&gt;value&lt;/b&gt; &amp;" in page


def test_front_table_fits_the_page(report, tmp_path):
    """With a dozen long config values and the NB201 strings, the front table is no wider
    than an 800-pixel window: configs fold into one cell, long text wraps."""
    probe = """<script>
var table = document.querySelector("table.sortable");
document.body.setAttribute("data-fit", [table.getBoundingClientRect().right, window.innerWidth,
  document.documentElement.scrollWidth].join(","));
</script></body>"""
    page = tmp_path / "fit.html"
    page.write_text(report.read_text().replace("</body>", probe))
    run = _chromium(page, tmp_path, "--dump-dom", "--window-size=800,1000")
    assert run.returncode == 0 and "Uncaught" not in run.stderr, run.stderr[-2000:]
    start = run.stdout.index('data-fit="') + len('data-fit="')
    right, width, scroll = (float(v) for v in run.stdout[start:run.stdout.index('"', start)].split(","))
    assert right <= width and scroll <= width, (right, width, scroll)
