"""The `path` parameter of connect and throughput, and the engine-bound warning (no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from middleboxes.base import MiddleboxConfigError
from testbed.emulation.paths import check_path, describe_topology, engine_bound
from testbed.runner import ConfigError, run_experiment


@pytest.mark.parametrize(("written", "canonical"), [
    ("none", "none"), ("", "none"), ("proxy-ack", "proxy-ack"),
    ("strip-options(on=syn),link(delay_ms=5)", "strip-options(on=syn),link(delay_ms=5.0)"),
])
def test_a_path_is_read_in_the_chain_syntax(written: str, canonical: str) -> None:
    assert check_path(written) == canonical


@pytest.mark.parametrize("bad", ["proxy-ak", "link(delay_ms=-1)", "strip-options(on=fin)",
                                 "link(delay_ms=5", "nat(public=nowhere)"])
def test_a_bad_path_is_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(MiddleboxConfigError):
        check_path(bad)


@pytest.mark.parametrize("experiment", ["connect", "throughput"])
def test_a_bad_path_is_refused_before_anything_starts(experiment: str, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    with pytest.raises(ConfigError, match="unknown middlebox 'proxy-ak'"):
        run_experiment(experiment, out_dir=out_dir, overrides={"path": "proxy-ak"})
    assert not out_dir.exists()  # nothing ran, nothing written


def test_the_topology_names_the_path() -> None:
    assert "directly" in describe_topology("none")
    assert "proxy-ack" in describe_topology("proxy-ack")


def test_a_saturated_engine_with_idle_endpoints_bounds_the_result() -> None:
    warning = engine_bound({"mb1": 0.97}, {"sender": 0.41, "receiver": 0.55})
    assert warning is not None
    assert "mb1 was running or ready to run 97%" in warning and "sender 0.41" in warning
    assert "bounded by the engine" in warning


@pytest.mark.parametrize(("engines", "endpoints"), [
    ({"mb1": 0.5}, {"sender": 0.3, "receiver": 0.3}),   # nobody saturated
    ({"mb1": 0.95}, {"sender": 0.99, "receiver": 0.4}),  # the sender was the limit too
    ({}, {"sender": 0.2}),                               # no engine on a direct link
])
def test_no_warning_when_the_engine_was_not_the_only_limit(
        engines: dict[str, float], endpoints: dict[str, float]) -> None:
    assert engine_bound(engines, endpoints) is None


def test_engine_figures_take_the_busiest_engine_over_the_measured_seconds() -> None:
    from testbed.emulation.paths import engine_figures

    figures = engine_figures({"mb1": (1.5, 0.3), "mb2": (0.2, 0.1)}, 2.0)
    assert figures == {"engine_cpu": 0.75, "engine_busy": 0.9}
    assert engine_figures({}, 2.0) == {}  # the direct link: no engine, no figures
