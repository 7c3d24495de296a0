"""Topologies are pure data: inspected without root or Mininet running."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from middleboxes.base import MiddleboxConfigError
from topologies.access_paths import PROFILES, AccessPathsTopo, draw_paths
from topologies.dumbbell import DumbbellTopo
from topologies.line import LineTopo
from topologies.validation import TopologyConfigError


def test_line_links_client_middleboxes_server_in_order() -> None:
    topo = LineTopo(paths=("strip-options(on=syn)", "link(delay_ms=5)"))
    assert [tuple(link) for link in topo.links()] == [
        ("client", "mb1"), ("mb1", "mb2"), ("mb2", "server")]
    assert topo.nodeInfo("mb2") == {"role": "middlebox", "path": "link(delay_ms=5.0)"}


def test_line_without_middleboxes_links_hosts_directly() -> None:
    assert [tuple(link) for link in LineTopo().links()] == [("client", "server")]


def test_dumbbell_shares_one_bottleneck() -> None:
    topo = DumbbellTopo(clients=3, bottleneck="link(rate_mbps=10)")
    degrees = Counter(node for link in topo.links() for node in link)
    assert degrees["left"] == 4 and degrees["right"] == 2 and degrees["server"] == 1


def test_access_paths_draws_reproducibly_from_the_profile() -> None:
    assert draw_paths("paper-2010", 50, seed=4) == draw_paths("paper-2010", 50, seed=4)
    drawn = Counter(draw_paths("paper-2010", 20_000, seed=1))
    share = drawn["seq-rewrite"] / 20_000
    assert 0.09 < share < 0.11
    topo = AccessPathsTopo(clients=5)
    assert len(topo.hosts()) == 11
    assert abs(sum(weight for _, weight in PROFILES["paper-2010"]) - 1.0) < 1e-9


def test_more_cores_than_the_machine_has_are_refused() -> None:
    with pytest.raises(TopologyConfigError, match="cannot be emulated"):
        LineTopo(server_cores=(os.cpu_count() or 1) + 6)
    assert LineTopo(server_cores=1).nodeInfo("server") == {"cores": "1"}


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: LineTopo(paths=("warp-drive",)), MiddleboxConfigError),
        (lambda: DumbbellTopo(clients=0), TopologyConfigError),
        (lambda: AccessPathsTopo(profile="mars"), TopologyConfigError),
        (lambda: LineTopo(server_cores=0), TopologyConfigError),
    ],
)
def test_bad_parameters_are_refused(build: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        build()  # type: ignore[operator]
