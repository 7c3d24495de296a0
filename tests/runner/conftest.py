"""A throwaway experiments package, so runner tests never depend on (or fake) real ones."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

GOOD = '''
"""Scenario: arithmetic on parameters. Covers: the runner."""
from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param

CALLS = []
SPEC = ExperimentSpec(
    name="toy", description="a toy", runtime="memory",
    params=(Param("count", 10, quick=2), Param("scale", 1.5), Param("label", "x"),
            Param("flag", False)),
    expectations=(Expectation("double", lhs="toy.big", op=">=", rhs="toy.small", factor=2.0),),
    bench=True,
)

def run(ctx):
    CALLS.append(dict(ctx.params))
    if ctx.params["label"] == "crash":
        raise RuntimeError("crashed mid-run")
    with ctx.progress(ctx.params["count"], "toy") as task:
        for _ in range(ctx.params["count"]):
            task.advance()
    big = ctx.params["count"] * ctx.params["scale"] * (ctx.seed + 1)
    ctx.warn("toy warning")
    figure = ctx.out_dir / "toy.png"
    figure.write_bytes(str(ctx.seed).encode())  # stands in for a plot: which run wrote it
    return ExperimentOutput(rows=[{"count": ctx.params["count"], "big": big}], figures=[figure],
                            metrics={"toy.big": big, "toy.small": 1.0 + ctx.seed})
'''


@pytest.fixture
def toy_package(tmp_path: Path) -> Iterator[str]:
    name = f"toy_experiments_{abs(hash(tmp_path)) % 10**8}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text('"""toy"""\n')
    (package / "toy.py").write_text(textwrap.dedent(GOOD))
    (package / "broken.py").write_text("import no_such_module_anywhere\n")
    (package / "helper_without_spec.py").write_text("X = 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        for module in [m for m in sys.modules if m.startswith(name)]:
            del sys.modules[module]
