"""Emulation tests need root and Mininet; elsewhere they are skipped with the reason.

tcpcryptd negotiates TCP-ENO through the kernel program and loads it when it is not loaded; so
that a test run never leaves it loaded for the whole machine, the emulation tests run under a
private copy (its own pins and cgroup, removed at the end of the session).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "emulation tests need root"
    else:
        try:
            import mininet.net  # noqa: F401
        except ImportError:
            reason = "Mininet is not installed"
    for item in items:
        if "tests/emulation" in str(item.fspath):
            item.add_marker(pytest.mark.emulation)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def private_kernel_program() -> Iterator[None]:
    """A private TCP-ENO program for the session, when this machine can load one."""
    if os.geteuid() != 0:
        yield
        return
    from tcpcrypt.kernel.loader import KernelUnavailable, private_program

    try:
        program = private_program(f"emu{os.getpid()}")
        program.__enter__()
    except KernelUnavailable:
        yield  # tests that need it fail with the daemon's own one-line reason
        return
    try:
        yield
    finally:
        program.__exit__(None, None, None)
