"""Fixtures for the kernel program's tests: a private copy of the program (own pin dir, own
cgroup that this test process joins) and two network namespaces (kernel_lab.Pair). Everything
created here is removed here, and the session fixture checks that nothing of the program is
left pinned or attached."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kernel_lab import Pair, sh  # noqa: E402


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "kernel program tests need root"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "the kernel has no BTF"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    for item in items:
        if "tests/kernel" in str(item.fspath) and reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def kernel_program() -> Iterator[Path]:
    from tcpcrypt.kernel.loader import BPFFS, cgroup2_root, private_program

    tag = f"test-{os.getpid()}"
    with private_program(tag) as directory:
        yield directory
    assert not (BPFFS / f"tcpcrypt-{tag}").exists(), "pins left behind"
    assert not (cgroup2_root() / f"tcpcrypt-{tag}").exists(), "cgroup left behind"


@pytest.fixture
def pair(kernel_program: Path) -> Iterator[Pair]:
    tag = f"{os.getpid() % 100000}"
    pair = Pair(a=f"tck{tag}a", b=f"tck{tag}b", a_if=f"tk{tag}a", b_if=f"tk{tag}b")
    for ns in (pair.a, pair.b):
        sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", pair.a_if, "netns", pair.a, "type", "veth", "peer", "name",
           pair.b_if, "netns", pair.b)
        for ns, interface, ip in ((pair.a, pair.a_if, pair.a_ip), (pair.b, pair.b_if, pair.b_ip)):
            pair.run(ns, "ip", "addr", "add", f"{ip}/24", "dev", interface)
            pair.run(ns, "ip", "link", "set", interface, "up")
            pair.run(ns, "ip", "link", "set", "lo", "up")
            pair.run(ns, "ethtool", "-K", interface, "tso", "off", "gso", "off", "gro", "off",
                     check=False)
        yield pair
    finally:
        for process in pair.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for ns in (pair.a, pair.b):
            sh("ip", "netns", "del", ns, check=False)


