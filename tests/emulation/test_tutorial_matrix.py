"""The middlebox tutorial's matrix command (docs/middleboxes.md), run as printed in a shell
with the tutorial's plugin file: the declared effects decide the expected outcomes, every
cell is as expected, and the result records the plugins."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "middleboxes.md"
SECTION = "## Tutorial: two middleboxes in one file"


def test_the_tutorial_plugins_run_in_the_matrix_as_the_docs_say(tmp_path: Path) -> None:
    text = DOC.read_text()
    body = text[text.index(SECTION):text.index("\n## ", text.index(SECTION) + 1)]
    plugin = re.findall(r"```python\n(.*?)```", body, re.S)[0]
    (command,) = re.findall(r"```sh\n(.*?)```", body, re.S)
    (tmp_path / "my_models.py").write_text(plugin)
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    environment.pop("MIDDLEBOX_PLUGINS", None)
    if "TESTBED_LOCK_WAIT_S" in os.environ:  # a longer wait asked for by whoever runs this
        command = command.replace("TESTBED_LOCK_WAIT_S=600",
                                  f"TESTBED_LOCK_WAIT_S={os.environ['TESTBED_LOCK_WAIT_S']}")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=tmp_path,
                          env=environment, capture_output=True, text=True, timeout=900,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "results" / "middlebox-matrix.json").read_text())
    cells = {(row["middlebox"], row["protocol"]): row for row in result["rows"]}
    assert cells[("nop-eno", "tcpcrypt-x25519")]["outcome"] == "fallback"
    assert cells[("nop-eno", "tcpcrypt-x25519")]["expected"] == "fallback"
    assert cells[("clear-ecn", "tcpcrypt-x25519")]["outcome"] == "encrypted"
    assert cells[("nop-eno", "tcp")]["outcome"] == "plaintext"
    assert result["metrics"]["matrix.unexpected_cells"] == 0
    plugins = result["environment"]["middlebox_plugins"]
    assert set(plugins["models"]) >= {"clear-ecn", "nop-eno"}
    assert all(cell["diagnosis"] is None for cell in cells.values())  # nothing to explain
