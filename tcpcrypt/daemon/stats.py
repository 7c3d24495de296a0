"""The daemon's global counters: plain numbers and counts by reason, as JSON-ready dicts."""

from __future__ import annotations

from collections import Counter


class Stats:
    """Named counters; a counter with reasons also keeps a count per reason."""

    def __init__(self) -> None:
        self._totals: Counter[str] = Counter()
        self._reasons: dict[str, Counter[str]] = {}

    def count(self, name: str, reason: str | None = None, amount: int = 1) -> None:
        self._totals[name] += amount
        if reason is not None:
            self._reasons.setdefault(name, Counter())[reason] += amount

    def total(self, name: str) -> int:
        return self._totals[name]

    def by_reason(self, name: str) -> dict[str, int]:
        return dict(self._reasons.get(name, {}))

    def snapshot(self) -> dict[str, object]:
        """{"name": total, ..., "by_reason": {"name": {"reason": count}}}."""
        data: dict[str, object] = dict(sorted(self._totals.items()))
        data["by_reason"] = {name: dict(counts) for name, counts in sorted(self._reasons.items())}
        return data
