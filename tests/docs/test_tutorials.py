"""The docs' tutorials run as printed: the middlebox plugin file and its test from
docs/middleboxes.md, the experiment from docs/experiments.md. (The tutorial's matrix command
runs in tests/emulation/test_tutorial_matrix.py.)"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from middleboxes import registry
from testbed.runner import run_experiment

DOCS = Path(__file__).resolve().parents[2] / "docs"


def code_blocks(document: str, section: str, language: str) -> list[str]:
    """The `language` code blocks of the `## section` of docs/`document`, in order."""
    text = (DOCS / document).read_text()
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 1)
    body = text[start: end if end != -1 else len(text)]
    return re.findall(rf"```{language}\n(.*?)```", body, re.S)


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """The tutorial registers plugin models: take them out again afterwards."""
    models, plugins = dict(registry.MODELS), dict(registry.PLUGIN_MODELS)
    yield
    registry.MODELS.clear()
    registry.MODELS.update(models)
    registry.PLUGIN_MODELS.clear()
    registry.PLUGIN_MODELS.update(plugins)


def test_the_middlebox_tutorial_plugin_and_its_test_run_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None
) -> None:
    plugin, check = code_blocks("middleboxes.md", "Tutorial: two middleboxes in one file",
                                "python")
    (tmp_path / "my_models.py").write_text(plugin)
    monkeypatch.chdir(tmp_path)
    exec(compile(check, "docs/middleboxes.md", "exec"), {})  # its asserts are the test
    assert registry.PLUGIN_MODELS["clear-ecn"] == registry.PLUGIN_MODELS["nop-eno"] == (
        "my_models.py")


def test_the_tutorial_matrix_command_names_the_tutorials_models() -> None:
    (command,) = code_blocks("middleboxes.md", "Tutorial: two middleboxes in one file", "sh")
    assert "MIDDLEBOX_PLUGINS=$PWD/my_models.py" in command
    assert "conditions=none;clear-ecn;nop-eno" in command


def test_the_experiment_tutorial_runs_as_printed(tmp_path: Path) -> None:
    (source,) = code_blocks("experiments.md", "Writing an experiment", "python")
    package = tmp_path / "tutorial_experiments"
    package.mkdir()
    (package / "__init__.py").write_text('"""the tutorial\'s experiment"""\n')
    (package / "my_experiment.py").write_text(source)
    sys.path.insert(0, str(tmp_path))
    try:
        result = run_experiment("my-experiment", quick=True, out_dir=tmp_path / "out",
                                package="tutorial_experiments")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("tutorial_experiments")]:
            del sys.modules[name]
    assert [row["function"] for row in result.rows] == ["sha256", "blake2b"]
    assert set(result.metrics) == {"my.MBps.sha256", "my.MBps.blake2b"}
    assert all(value > 0 for value in result.metrics.values())
    assert len(result.expectations) == 1 and (tmp_path / "out" / "my-experiment.json").exists()
