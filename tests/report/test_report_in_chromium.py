"""The HTML report opened in a real browser (headless Chromium from Debian): every plot loads
(naturalWidth > 0) and the console shows no error. A page with a broken image is caught, so
the check can fail."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from testbed.claims import all_claims, load_results
from testbed.report_html import render

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian package `chromium`, in the "
    "Makefile's APT_PACKAGES; `make setup` installs it)")

# The test's own probe, added to a copy of the page: once everything has loaded it writes
# each image's natural width, and any error the page raised, into the DOM Chromium dumps.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener("load", () => {
  const widths = Array.from(document.images).map(i => i.complete ? i.naturalWidth : -1);
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({widths: widths, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""


def _open(page: Path, profile: Path) -> tuple[dict[str, list[object]], list[str]]:
    """Chromium's view of `page`: the probe's findings and the console lines it logged."""
    assert CHROMIUM is not None
    probed = page.with_name("probed-" + page.name)
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"chromium dumped no probe (exit {done.returncode}): {done.stderr[-600:]}"
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    findings: dict[str, list[object]] = json.loads(found.group(1).replace("&quot;", '"'))
    return findings, console


def test_every_plot_of_the_report_loads_in_chromium_without_console_errors(
        tmp_path: Path, write_results: Callable[..., Path]) -> None:
    results = load_results(write_results(tmp_path / "results"))
    page = tmp_path / "report.html"
    page.write_text(render(results, all_claims(results)))
    findings, console = _open(page, tmp_path / "profile")
    widths = findings["widths"]
    assert len(widths) == 6  # latency CDF, server CPU, throughput, web, matrix, rate
    assert all(isinstance(w, int) and w > 0 for w in widths), widths
    assert findings["errors"] == [] and console == [], (findings, console)


def test_a_broken_plot_is_caught(tmp_path: Path, write_results: Callable[..., Path]) -> None:
    results = load_results(write_results(tmp_path / "results", "throughput"))
    page = tmp_path / "report.html"
    text = render(results, all_claims(results))
    page.write_text(re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,bm90IGEgcG5n", text, count=1))
    findings, _ = _open(page, tmp_path / "profile")
    assert findings["widths"] == [0]
    assert findings["errors"]  # the image's load error
