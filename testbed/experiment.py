"""What an experiment module declares: its spec, parameters, expectations, and what it returns.

An experiment is one module in `experiments/` with a docstring ("Scenario: ... Covers: ..."),
a module-level `SPEC: ExperimentSpec` and `def run(ctx: RunContext) -> ExperimentOutput`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from middleboxes.base import span

ParamValue = int | float | str | bool
RUNTIMES = ("memory", "emulation", "simulation")
RUNTIME_ALIASES = {"sim": "simulation", "emu": "emulation"}


def canonical_runtime(name: str) -> str:
    """The runtime's full name ("sim" -> "simulation"); ValueError for an unknown one."""
    runtime = RUNTIME_ALIASES.get(name, name)
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r}; known: sim, emulation, memory")
    return runtime


@dataclass(frozen=True)
class Param:
    """One parameter: its default, its value under --quick (None: the default), help text,
    and what it accepts: a number's inclusive range (`low`..`high`, required for numbers), a
    text's `choices` or its own `validate` (which raises ValueError), and for a list of
    middlebox chains `chains=True` (`testbed list NAME` then shows the chain syntax)."""

    name: str
    default: ParamValue
    quick: ParamValue | None = None
    help: str = ""
    validate: Callable[[ParamValue], object] | None = None  # raises ValueError if bad
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    chains: bool = False

    def __post_init__(self) -> None:
        for value in (self.default, self.quick):
            if value is not None:
                self.check(value)

    def declared(self) -> bool:
        """Whether the parameter says what it accepts (a test holds every one to it)."""
        if isinstance(self.default, bool):
            return True
        if isinstance(self.default, (int, float)):
            return self.low is not None and self.high is not None
        return bool(self.choices or self.validate)

    def accepted(self) -> str:
        """What the parameter accepts, for listings."""
        if self.low is not None and self.high is not None:
            return span(self.low, self.high)
        if self.choices:
            return "|".join(self.choices)
        if isinstance(self.default, bool):
            return "true|false"
        return "see help"

    def check(self, value: ParamValue) -> None:
        """ValueError with a one-line message unless `value` is accepted."""
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value}")
        ranged = self.low is not None and self.high is not None
        if ranged and not isinstance(value, (str, bool)) and not (
                self.low <= value <= self.high):  # type: ignore[operator]
            raise ValueError(f"must be in {self.accepted()}, got {value}")
        if self.choices and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}, got {value!r}")
        if self.validate is not None:
            try:
                self.validate(value)
            except ValueError:
                raise
            except Exception as error:  # a validator's own error type: still one line
                raise ValueError(str(error) or type(error).__name__) from None

    def parse(self, text: str) -> ParamValue:
        """The value of `text` as this parameter's type; ValueError with a clear message."""
        kind = type(self.default)
        if kind is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"parameter {self.name} wants true/false, got {text!r}")
        try:
            value: ParamValue = kind(text)
        except ValueError:
            raise ValueError(
                f"parameter {self.name} wants {kind.__name__}, got {text!r}"
            ) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"parameter {self.name} wants a finite number, got {text!r}")
        return value


@dataclass(frozen=True)
class ExpectationOutcome:
    name: str
    lhs: str
    op: str
    rhs: str
    factor: float
    offset: float
    lhs_value: float | None
    bound: float | None
    passed: bool
    source: str
    description: str
    checked: bool = True  # False: the run left out a row the expectation is about

    @property
    def failed(self) -> bool:
        """Checked and not met (an expectation not checked is no failure)."""
        return self.checked and not self.passed

    @property
    def verdict(self) -> str:
        return "not checked" if not self.checked else "PASS" if self.passed else "FAIL"


def metric_point(name: str) -> str | None:
    """The point of a metric named `<prefix>.<quantity>.<row>.<point>` (its fourth dotted
    part, e.g. `keepalive` of `web.rps.tls13.keepalive`); None for a name with fewer parts."""
    parts = name.split(".")
    return parts[3] if len(parts) >= 4 else None


def metric_row(name: str) -> str | None:
    """The row a metric named `<prefix>.<quantity>.<row>[.<point>...]` belongs to (its third
    dotted part, e.g. `tls13` of `connect.server_cpu_us.tls13` and of
    `rate.conn_per_s.tls13.2`); None for a name with fewer parts."""
    parts = name.split(".")
    return parts[2] if len(parts) >= 3 else None


def _left_out(name: str, rows: tuple[str, Collection[str]],
              points: tuple[str, Collection[str]] | None) -> tuple[str, str] | None:
    """(parameter, value) that keeps metric `name` out of a run with these rows and points,
    or None when its row and point were both in the run."""
    row = metric_row(name)
    if row is not None and row not in rows[1]:
        return rows[0], row
    point = metric_point(name) if points is not None else None
    if points is not None and point is not None and point not in points[1]:
        return points[0], point
    return None


_OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Expectation:
    """A check: holds when metrics[lhs] op factor * metrics[rhs] + offset.

    Prefer ratios of two metrics of the same run; `rhs=""` makes `offset` an absolute bound,
    for targets that are absolute by nature (packets per second of an engine, a ratio the
    experiment computes). `needs_rows`: rows its metrics are computed from besides their own
    (a ratio over TCP's row): a run that left one of them out does not check it.
    """

    name: str
    lhs: str
    op: str
    rhs: str
    factor: float = 1.0
    offset: float = 0.0
    source: str = ""
    needs_rows: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"expectation {self.name}: op must be >= or <=, got {self.op}")

    def evaluate(self, metrics: Mapping[str, float],
                 rows: tuple[str, Collection[str]] | None = None,
                 points: tuple[str, Collection[str]] | None = None) -> ExpectationOutcome:
        """The outcome against `metrics`. `rows` (the rows parameter's name and the rows the
        run included) tells a row left out of the run from one that ran and gave no metric,
        and `points` likewise for the metrics' fourth part (e.g. web-server's `modes`): an
        expectation whose every missing metric belongs to a left-out row or point is not
        checked; any other missing metric fails it."""
        missing = [name for name in (self.lhs, self.rhs) if name and name not in metrics]
        if missing and rows is not None:
            left_out = [_left_out(name, rows, points) for name in missing]
            needed = [(rows[0], row) for row in self.needs_rows if row not in rows[1]]
            if all(left_out) or needed:
                included = dict([rows, *([points] if points else [])])
                values: dict[str, list[str]] = {}
                for param, value in [*filter(None, left_out), *needed]:
                    values.setdefault(param, []).append(value)
                reasons = [f"{', '.join(dict.fromkeys(found))} not in this run "
                           f"({param}={','.join(included[param])})"
                           for param, found in values.items()]
                return self._outcome(None, None, False, "not checked: " + "; ".join(reasons),
                                     checked=False)
        if missing:
            return self._outcome(None, None, False, f"missing metric {', '.join(missing)}")
        lhs_value = float(metrics[self.lhs])
        rhs_value = float(metrics[self.rhs]) if self.rhs else 0.0
        bound = self.factor * rhs_value + self.offset
        passed = _OPS[self.op](lhs_value, bound)
        text = f"{self.lhs} = {lhs_value:.4g} {self.op} {bound:.4g}"
        return self._outcome(lhs_value, bound, passed, text)

    def _outcome(
        self, lhs_value: float | None, bound: float | None, passed: bool, text: str,
        checked: bool = True,
    ) -> ExpectationOutcome:
        return ExpectationOutcome(
            self.name, self.lhs, self.op, self.rhs, self.factor, self.offset,
            lhs_value, bound, passed, self.source, text, checked,
        )


@dataclass(frozen=True)
class ExperimentSpec:
    """`runtime` is the default runtime; `runtimes` all those the experiment supports (empty:
    the default only). Experiments that import Mininet themselves stay emulation-only.
    `rows_param` names the parameter listing a run's rows (comma-separated labels, e.g.
    `protocols`), for an experiment whose metrics are named `<prefix>.<quantity>.<row>...`:
    an expectation about a row the run left out is then not checked rather than failed."""

    name: str
    description: str
    runtime: str
    params: tuple[Param, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    bench: bool = False
    runtimes: tuple[str, ...] = ()
    rows_param: str = ""
    points_param: str = ""  # the parameter listing the metrics' fourth part (with rows_param)

    def __post_init__(self) -> None:
        for kind, name in (("rows_param", self.rows_param),
                           ("points_param", self.points_param)):
            if name and self.param(name) is None:
                raise ValueError(f"experiment {self.name}: {kind} {name!r} is not one of its "
                                 "parameters")
        if self.points_param and not self.rows_param:
            raise ValueError(f"experiment {self.name}: points_param needs rows_param")
        for runtime in (self.runtime, *self.runtimes):
            if runtime not in RUNTIMES:
                raise ValueError(f"experiment {self.name}: runtime must be one of {RUNTIMES}")
        if self.runtimes and self.runtime not in self.runtimes:
            raise ValueError(f"experiment {self.name}: default runtime {self.runtime} is not "
                             f"among its runtimes {self.runtimes}")

    @property
    def supported_runtimes(self) -> tuple[str, ...]:
        return self.runtimes or (self.runtime,)

    def param(self, name: str) -> Param | None:
        return next((param for param in self.params if param.name == name), None)

    def run_rows(self, params: Mapping[str, ParamValue]) -> tuple[str, list[str]] | None:
        """(`rows_param`, the rows these parameters include), or None without `rows_param`."""
        if not self.rows_param:
            return None
        text = str(params.get(self.rows_param, ""))
        return self.rows_param, [row.strip() for row in text.split(",") if row.strip()]

    def evaluate(self, metrics: Mapping[str, float], params: Mapping[str, ParamValue],
                 not_run: Collection[str] = ()) -> list[ExpectationOutcome]:
        """Every expectation's outcome for a run with these parameters and metrics;
        `not_run`: rows the parameters named that the runtime could not run (see
        `ExperimentOutput.rows_not_run`), taken as left out."""
        rows = self.run_rows(params)
        if rows is not None and not_run:
            rows = rows[0], [row for row in rows[1] if row not in not_run]
        points = None
        if self.points_param:
            text = str(params.get(self.points_param, ""))
            points = (self.points_param, [x.strip() for x in text.split(",") if x.strip()])
        return [expectation.evaluate(metrics, rows, points)
                for expectation in self.expectations]


@dataclass
class ExperimentOutput:
    rows: list[dict[str, Any]]
    metrics: dict[str, float]
    figures: list[Path] = field(default_factory=list)
    # per-item measurements kept in the result for plots (name -> values), not printed
    samples: dict[str, list[float]] = field(default_factory=dict)
    # rows the parameters named that this runtime cannot run (a warning says so): an
    # expectation about them is not checked, as for a row the parameters left out
    rows_not_run: list[str] = field(default_factory=list)


class ProgressTask(Protocol):
    def advance(self, n: int = 1) -> None: ...


class RunContext:
    """What a running experiment gets: parameters, seed, progress, warnings, environment."""

    def __init__(
        self,
        params: Mapping[str, ParamValue],
        *,
        seed: int,
        quick: bool,
        repeat: int,
        out_dir: Path,
        progress_factory: Callable[[int, str], AbstractContextManager[ProgressTask]],
        runtime: str = "memory",
        profile: str | None = None,
    ) -> None:
        self.params = dict(params)
        self.runtime = runtime
        self.profile = profile  # the cost profile, in simulation
        self.seed = seed
        self.quick = quick
        self.repeat = repeat
        self.out_dir = out_dir
        self.warnings: list[str] = []
        self.environment: dict[str, object] = {}
        self._progress_factory = progress_factory

    def network(self, topology: Any) -> AbstractContextManager[Any]:
        """A network for `topology` (a `testbed.scenario.Topology`) in this run's runtime:
        Mininet in emulation, a simpy world in simulation. The experiment never imports
        either; it hands the network workloads (`testbed.scenario`) to run."""
        from testbed.runtimes import open_network

        return open_network(self.runtime, topology, profile=self.profile, seed=self.seed)

    def progress(self, total: int, description: str) -> AbstractContextManager[ProgressTask]:
        return self._progress_factory(total, description)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def add_environment(self, key: str, value: object) -> None:
        self.environment[key] = value
