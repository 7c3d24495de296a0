"""What an engine's report turns into in a run's warnings (no root: reports made by hand)."""

from __future__ import annotations

from testbed.emulation.middlebox_nodes import EngineReport, engine_warnings


def test_a_clean_engine_report_gives_no_warning() -> None:
    report = EngineReport("mb1", "passthrough", engine={"forwarded": 1000, "socket-drops": 0})
    assert engine_warnings([report]) == []


def test_each_kind_of_trouble_gives_one_sentence_naming_the_node() -> None:
    report = EngineReport(
        "mb2", "link(loss=0.01)",
        engine={"engine-errors": 2, "send-errors": 0, "socket-drops": 146},
        models=[{"model": "link(loss=0.01)", "stats": {"dropped:model-error": 3},
                 "errors": ["ValueError: boom"]}],
    )
    dead = EngineReport("mb3", "nat", problem="the engine died (exit code 1)")
    warnings = engine_warnings([report, dead])
    assert len(warnings) == 4
    assert all(w.startswith("middlebox mb2 (link(loss=0.01))") for w in warnings[:3])
    assert "3 packet(s) dropped because model link(loss=0.01) raised (last: ValueError: boom)" \
        in warnings[0]
    assert "2 engine-errors" in warnings[1]
    assert "dropped 146 frame(s) before the engine read them" in warnings[2]
    assert warnings[3] == "middlebox mb3 (nat): the engine died (exit code 1)"
