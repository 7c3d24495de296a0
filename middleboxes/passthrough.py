"""passthrough: forwards every packet unchanged (the baseline engine cost)."""

from __future__ import annotations

from middleboxes.base import Middlebox, Scope


class Passthrough(Middlebox):
    name = "passthrough"
    scope = Scope.NOTHING
