"""Resumption cache: single use, bounded (oldest out first), expiring; A and B resuming with
each identifier used once."""

from __future__ import annotations

import pytest

from tcpcrypt.errors import UsageError
from tcpcrypt.key_schedule import SessionSecret
from tcpcrypt.resumption import ResumableSession, ResumptionCache

SESSION = ResumableSession(SessionSecret(b"\x01" * 32), 0x23, 0x0001)


def session(fill: int) -> ResumableSession:
    return ResumableSession(SessionSecret(bytes((fill,)) * 32), 0x23, 0x0010)


def test_a_session_is_taken_at_most_once() -> None:
    cache = ResumptionCache(4, 60)
    cache.put(("10.0.0.2", 80), SESSION, now=0)
    assert cache.take(("10.0.0.2", 80), now=1) == SESSION
    assert cache.take(("10.0.0.2", 80), now=1) is None
    assert len(cache) == 0


def test_the_least_recently_stored_entries_go_first_beyond_capacity() -> None:
    cache = ResumptionCache(2, 60)
    cache.put("a", session(1), now=0)
    cache.put("b", session(2), now=1)
    cache.put("a", session(3), now=2)  # storing again makes "a" the newest
    cache.put("c", session(4), now=3)
    assert len(cache) == 2
    assert cache.take("b", now=3) is None
    assert cache.take("a", now=3) == session(3)
    assert cache.take("c", now=3) == session(4)


def test_expired_sessions_are_not_returned() -> None:
    cache = ResumptionCache(2, 10)
    cache.put("a", SESSION, now=0)
    assert cache.peek("a", now=9.9) == SESSION
    assert cache.peek("a", now=10) is None
    assert cache.take("a", now=10) is None


def test_peek_does_not_use_the_entry_up() -> None:
    cache = ResumptionCache(2, 10)
    cache.put("a", SESSION, now=0)
    assert cache.peek("a", now=1) == SESSION
    assert cache.take("a", now=1) == SESSION


def test_expired_entries_are_dropped_when_new_ones_arrive() -> None:
    cache = ResumptionCache(10, 10)
    for index in range(5):
        cache.put(index, SESSION, now=index)
    cache.put("late", SESSION, now=12.5)
    assert len(cache) == 3  # stored at 3, 4 and 12.5 are still live


def test_capacity_zero_disables_resumption() -> None:
    cache = ResumptionCache(0, 10)
    cache.put("a", SESSION, now=0)
    assert cache.take("a", now=0) is None


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(UsageError):
        ResumptionCache(-1, 10)
    with pytest.raises(UsageError):
        ResumptionCache(1, 0)


def test_a_session_knows_both_resumption_ids_and_its_aead() -> None:
    a_id, b_id = SESSION.secret.resumption_ids()
    assert (SESSION.a_resumption_id, SESSION.b_resumption_id) == (a_id, b_id)
    assert SESSION.aead_name == "aes-128-gcm"


def test_a_and_b_resume_to_the_same_next_secret_and_never_reuse_an_identifier() -> None:
    cache_a, cache_b = ResumptionCache(), ResumptionCache()
    ss0 = SessionSecret(b"\x07" * 32)
    peer = ("10.0.0.2", 443)
    cache_a.put(peer, ResumableSession(ss0, 0x23, 1), now=0)
    cache_b.put(ss0.resumption_ids()[0], ResumableSession(ss0, 0x23, 1), now=0)
    sent_ids = []
    for round_number in range(3):
        offered = cache_a.take(peer, now=round_number)
        assert offered is not None
        sent_ids.append(offered.a_resumption_id)
        held = cache_b.take(offered.a_resumption_id, now=round_number)
        assert held is not None
        assert held.b_resumption_id == offered.b_resumption_id
        assert cache_b.take(offered.a_resumption_id, now=round_number) is None  # replay refused
        resumed_a, resumed_b = offered.secret.next(), held.secret.next()
        assert resumed_a == resumed_b and resumed_a.index == round_number + 1
        cache_a.put(peer, ResumableSession(resumed_a, 0x23, 1), now=round_number)
        cache_b.put(resumed_b.resumption_ids()[0], ResumableSession(resumed_b, 0x23, 1),
                    now=round_number)
    assert len(set(sent_ids)) == 3
