"""Test order: the emulation tests run last, so the fast in-memory tests report first.

No test here times anything or compares CPU ratios: performance is `testbed regress`'s
business (`.ci/run`), against bands measured from this machine's own dispersion.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: "tests/emulation/" in str(item.path))  # stable: order kept
