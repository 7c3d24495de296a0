"""Topologies are pure data: inspected without root or Mininet running."""

from __future__ import annotations

import os
from collections import Counter, deque
from typing import Any

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
        (lambda: AccessPathsTopo(paths=()), TopologyConfigError),
        (lambda: AccessPathsTopo(clients=3, paths=("passthrough",)), TopologyConfigError),
        (lambda: AccessPathsTopo(paths=("passthrough", "warp-drive")), MiddleboxConfigError),
    ],
)
def test_bad_parameters_are_refused(build: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        build()  # type: ignore[operator]


def test_access_paths_takes_explicit_chains_one_per_client_in_order() -> None:
    topo = AccessPathsTopo(paths=("passthrough", "strip-options(on=syn)"))
    assert sorted(topo.hosts()) == ["c1", "c2", "mb1", "mb2", "server"]
    assert topo.nodeInfo("mb2")["path"] == "strip-options(on=syn)"
    assert topo.nodeInfo("mb1")["path"] == "passthrough"


def neighbours(topo: Any, node: str) -> list[str]:
    return [b if a == node else a for a, b in topo.links() if node in (a, b)]


def hops_to_server(topo: Any) -> dict[str, int]:
    hops, queue = {"server": 0}, deque(["server"])
    while queue:
        node = queue.popleft()
        for neighbour in neighbours(topo, node):
            if neighbour not in hops:
                hops[neighbour] = hops[node] + 1
                queue.append(neighbour)
    return hops


@pytest.mark.parametrize("topo", [
    LineTopo(paths=("passthrough", "seq-rewrite", "proxy-ack")),
    DumbbellTopo(clients=5),
    AccessPathsTopo(clients=6, seed=4),
], ids=["line", "dumbbell", "access-paths"])
def test_a_middlebox_nodes_last_interface_faces_the_server(topo: Any) -> None:
    """The emulation runtime gives the engine the last interface as its server side and
    bridges the others on the client side: the topologies add the server-side link last."""
    hops = hops_to_server(topo)
    for node in topo.hosts():
        if topo.nodeInfo(node).get("role") != "middlebox":
            continue
        by_port = sorted((topo.port(node, neighbour)[0], neighbour)
                         for neighbour in neighbours(topo, node))
        *client_side, (_, server_side) = by_port
        assert hops[server_side] == hops[node] - 1, (node, by_port)
        assert client_side and all(hops[n] == hops[node] + 1 for _, n in client_side)
