"""passthrough: forwards every packet unchanged (the baseline engine cost)."""

from __future__ import annotations

from middleboxes.base import Middlebox


class Passthrough(Middlebox):
    name = "passthrough"
