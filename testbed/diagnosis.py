"""What a broken or unexpected cell keeps, so that it can be understood from the result alone:
each daemon's records (state and reason, A and B) and what the path's models counted while the
cell ran (counters after minus before, from the engines' reports)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

Counters = dict[str, Counter[str]]  # model (as described) -> its counters


def daemon_diagnosis(view: Mapping[str, Any] | None) -> str | None:
    """"client: fallback (eno-absent) x2; server: reset (bad-mac)": each daemon's records by
    state and reason, and any error reading them; None without daemons."""
    if view is None:
        return None
    parts: list[str] = []
    for side in ("client", "server"):
        records = view.get(side) or []
        seen = Counter(f"{r.get('state')}" + (f" ({r['reason']})" if r.get("reason") else "")
                       for r in records)
        text = ", ".join(f"{what} x{count}" if count > 1 else what
                         for what, count in sorted(seen.items())) or "no record"
        if view.get(f"{side}_error"):
            text += f" [error: {view[f'{side}_error']}]"
        parts.append(f"{side}: {text}")
    return "; ".join(parts)


def model_counters(reports: Sequence[Any]) -> Counters:
    """Every model's counters from engine reports (`EngineReport`s)."""
    counters: Counters = {}
    for report in reports:
        for model in report.models:
            counters.setdefault(str(model["model"]), Counter()).update(
                {str(k): int(v) for k, v in model["stats"].items()})
    return counters


def counters_delta(before: Counters, after: Counters) -> str | None:
    """"strip-options(on=syn): seen=12 forward=12 stripped=2": what each model counted
    between the two snapshots; None when nothing was counted."""
    parts: list[str] = []
    for model, now in after.items():
        change = Counter(now)
        change.subtract(before.get(model, Counter()))
        shown = " ".join(f"{key}={value}" for key, value in sorted(change.items()) if value)
        if shown:
            parts.append(f"{model}: {shown}")
    return "; ".join(parts) or None


def diagnosis(view: Mapping[str, Any] | None, before: Counters, after: Counters
              ) -> str | None:
    """Both daemons' records and the models' counters over the cell, in one line."""
    parts = [text for text in (daemon_diagnosis(view), counters_delta(before, after)) if text]
    return " | ".join(parts) or None
