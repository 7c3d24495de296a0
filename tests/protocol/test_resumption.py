"""Resumption cache: single use, bounded, expiring."""

from __future__ import annotations

import pytest

from tcpcrypt.errors import UsageError
from tcpcrypt.key_schedule import SessionSecret
from tcpcrypt.resumption import ResumableSession, ResumptionCache

SESSION = ResumableSession(SessionSecret(b"\x01" * 32), 0x23, 1)


def test_a_session_is_taken_at_most_once() -> None:
    cache = ResumptionCache(4, 60)
    cache.put("peer", SESSION, now=0)
    assert cache.take("peer", now=1) == SESSION
    assert cache.take("peer", now=1) is None


def test_oldest_entries_are_evicted_beyond_capacity() -> None:
    cache = ResumptionCache(2, 60)
    for key in ("a", "b", "c"):
        cache.put(key, SESSION, now=0)
    assert len(cache) == 2
    assert cache.take("a", now=0) is None
    assert cache.take("c", now=0) == SESSION


def test_expired_sessions_are_not_returned() -> None:
    cache = ResumptionCache(2, 10)
    cache.put("a", SESSION, now=0)
    assert cache.peek("a", now=5) == SESSION
    assert cache.take("a", now=10) is None


def test_capacity_zero_disables_resumption() -> None:
    cache = ResumptionCache(0, 10)
    cache.put("a", SESSION, now=0)
    assert cache.take("a", now=0) is None


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(UsageError):
        ResumptionCache(-1, 10)
    with pytest.raises(UsageError):
        ResumptionCache(1, 0)
