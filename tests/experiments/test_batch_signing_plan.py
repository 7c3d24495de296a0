"""The `batch-signing` arrival plan: an authenticated method's arrivals interleaved with
unauthenticated ones in one stream (no timing measured, only the plan itself)."""

from __future__ import annotations

from experiments.batch_signing_point import arrival_plan


def test_the_method_keeps_its_rate_and_count_with_the_baseline_interleaved() -> None:
    plan = arrival_plan("batch-sign", 2000.0, 300, 0.25, 10.0)
    kinds = [kind for _, kind in plan]
    assert kinds.count("batch-sign") == 300 and kinds.count("none") == 100
    times = [at for at, _ in plan]
    assert times == sorted(times) and times[0] == 10.0
    # the whole stream is evenly spaced; the method's 300 arrivals span 300 / 2000 s
    assert abs((times[-1] - times[0]) - 399 / (2000.0 * 400 / 300)) < 1e-9


def test_both_kinds_reach_every_client_process_share() -> None:
    plan = arrival_plan("sign-each", 500.0, 200, 0.2, 0.0)
    for processes in (2, 3):
        for index in range(processes):
            share = {kind for _, kind in plan[index::processes]}
            assert share == {"sign-each", "none"}


def test_the_shuffle_is_seeded_and_mixes_the_stream() -> None:
    first = arrival_plan("batch-sign", 1000.0, 120, 0.25, 0.0)
    assert first == arrival_plan("batch-sign", 1000.0, 120, 0.25, 0.0)
    kinds = [kind for _, kind in first]
    assert "none" in kinds[:len(kinds) // 2] and "none" in kinds[len(kinds) // 2:]


def test_the_baseline_alone_or_no_share_is_a_single_kind() -> None:
    assert {kind for _, kind in arrival_plan("none", 100.0, 50, 0.25, 0.0)} == {"none"}
    assert {kind for _, kind in arrival_plan("batch-sign", 100.0, 50, 0.0, 0.0)} == {
        "batch-sign"}
