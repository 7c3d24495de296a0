"""Checks of topology parameters against this machine, made before anything is built."""

from __future__ import annotations

import os

from middleboxes.registry import parse_chain


class TopologyConfigError(ValueError):
    """A topology parameter that cannot be honoured here."""


def checked_cores(cores: int) -> int:
    available = os.cpu_count() or 1
    if cores < 1:
        raise TopologyConfigError(f"a server needs at least 1 core, got {cores}")
    if cores > available:
        raise TopologyConfigError(
            f"a server of {cores} cores cannot be emulated on this {available}-core machine "
            "(it would be silently scaled down); use the simulation runtime for larger servers"
        )
    return cores


def checked_path(path: str) -> str:
    """The canonical form of a middlebox chain; MiddleboxConfigError if it is invalid."""
    return parse_chain(path).describe()
