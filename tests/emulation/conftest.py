"""Emulation tests need root and Mininet; elsewhere they are skipped with the reason."""

from __future__ import annotations

import os

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
