"""Host A's resumed connection built ahead (`ResumedPaths.make_ready`, at the previous
connection's close): the same SYN option, kernel record, state, session ID and sealed bytes as
the general path; a ready offer of another context is not used; any other SYN-ACK goes to the
general path; the objects are the same in C and in pure Python; the key log file is read
when the context is made."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.eno_negotiation import Role
from tcpcrypt.eno_option import EnoOption, GlobalSuboption, TepSuboption, encode_eno_option
from tcpcrypt.kernel.records import encode_active
from tcpcrypt.key_schedule import SessionSecret
from tcpcrypt.library.context import TcpcryptContext
from tcpcrypt.randomness import system_random
from tcpcrypt.resumed_path import prepare, prepare_next
from tcpcrypt.resumption import ResumableSession
from tests.protocol.test_resumed_path import (
    PEER,
    _full_exchange,
    _general_a,
    _public,
    _synack,
    same_in_c_and_pure_python,
)


def _ready_pair(suites: tuple[str, ...] = ("x25519",), maker: TcpcryptContext | None = None
                ) -> tuple[TcpcryptContext, TcpcryptContext, ResumptionTwins]:
    """Two contexts after a full exchange, A's cached session made ready by `maker`'s paths
    (A's own by default); the twins are copies of both caches taken before."""
    ctx_a, ctx_b = TcpcryptContext(suites=suites), TcpcryptContext(suites=suites)
    _full_exchange(ctx_a, ctx_b)
    twins = ResumptionTwins(copy.deepcopy(ctx_a.cache), copy.deepcopy(ctx_b.cache))
    session = ctx_a.cache.peek(PEER, time.monotonic())
    assert session is not None
    paths = (maker or ctx_a).resumed_paths
    session.keep_prepared(paths.make_ready(session, prepare(session, Role.A, ctx_a.config, True)))
    return ctx_a, ctx_b, twins


class ResumptionTwins:
    """Copies of A's and B's caches, for the general path to run on."""

    def __init__(self, a: object, b: object) -> None:
        self.a, self.b = a, b


def _b_session(ctx_b: TcpcryptContext) -> ResumableSession:
    (_, (_, session)), = ctx_b.cache._entries.items()
    return session


@pytest.mark.parametrize("suites", [("x25519",), ("p256", "x25519")])
def test_a_ready_offer_gives_the_general_path_s_bytes_and_state(suites: tuple[str, ...]) -> None:
    ctx_a, ctx_b, twins = _ready_pair(suites)
    now = time.monotonic()
    fast_a = ctx_a.resumed_paths.offer_resumption(PEER, now)
    assert fast_a is not None and fast_a._resuming is not None
    ready = fast_a._resuming.prepared.ready  # type: ignore[union-attr]
    assert ready is not None and fast_a._eno._sent_syn is ready.syn  # the ready one was used
    assert not ready.spare and fast_a._peer == PEER and fast_a._now == now  # handed out once
    synack = _synack(_b_session(ctx_b))
    general_a, general_syn = _general_a(TcpcryptContext(suites=suites, cache=twins.a), synack)
    assert ready.syn == general_syn
    assert ctx_a.resumed_paths.kernel_record(fast_a) == encode_active(general_syn)
    ctx_a.resumed_paths.adopt_synack(fast_a, synack)
    assert set(vars(fast_a)) == set(vars(general_a))
    assert vars(fast_a._eno) == vars(general_a._eno) | {"_chooser": fast_a._eno._chooser}
    fast_b = ctx_b.resumed_paths.accept_resumption(general_syn, synack, now)
    general_b = TcpcryptConnection(active=False, config=ctx_b.config, random=system_random,
                                   cache=twins.b, suites=ctx_b.suites, now=now)  # type: ignore[arg-type]
    general_b.adopt_kernel_negotiation(general_syn, synack)
    assert fast_b is not None
    for fast, general in ((fast_a, general_a), (fast_b, general_b)):
        fast.send(b"request")
        general.send(b"request")
        assert fast.data_to_send() == general.data_to_send()
        assert _public(fast) == _public(general)
    assert fast_a.session_id == fast_b.session_id and fast_a.resumed
    following = ctx_a.cache.peek(PEER, now)
    assert following is not None and following.secret == twins.a.peek(PEER, now).secret  # type: ignore[attr-defined]


def test_a_ready_offer_of_another_context_is_not_used() -> None:
    other = TcpcryptContext()
    ctx_a, ctx_b, twins = _ready_pair(maker=other)
    fast_a = ctx_a.resumed_paths.offer_resumption(PEER, time.monotonic())
    assert fast_a is not None and fast_a._resuming is not None
    ready = fast_a._resuming.prepared.ready  # type: ignore[union-attr]
    assert ready is not None and ready.paths is other.resumed_paths
    syn = fast_a._eno._sent_syn
    assert syn is not None and syn is not ready.syn and syn == ready.syn  # built anew
    assert ctx_a.resumed_paths.kernel_record(fast_a) == encode_active(syn)
    ctx_a.resumed_paths.adopt_synack(fast_a, _synack(_b_session(ctx_b)))
    assert fast_a.state is ConnectionState.ESTABLISHED and fast_a.resumed


def test_a_ready_offer_answered_otherwise_goes_to_the_general_path() -> None:
    ctx_a, _, _ = _ready_pair()
    fast_a = ctx_a.resumed_paths.offer_resumption(PEER, time.monotonic())
    assert fast_a is not None and fast_a._resuming is not None
    tep = fast_a._resuming.tep
    plain = encode_eno_option(EnoOption((GlobalSuboption(b=True), TepSuboption(tep))))
    ctx_a.resumed_paths.adopt_synack(fast_a, plain)  # B chose a full exchange
    assert fast_a.state is ConnectionState.KEY_EXCHANGE and fast_a.data_to_send()
    ctx_a2, _, _ = _ready_pair()
    fast_a2 = ctx_a2.resumed_paths.offer_resumption(PEER, time.monotonic())
    assert fast_a2 is not None
    wrong = TepSuboption(tep, bytes(9))  # not B's identifier of the session
    ctx_a2.resumed_paths.adopt_synack(fast_a2, encode_eno_option(
        EnoOption((GlobalSuboption(b=True), wrong))))
    assert fast_a2.state is ConnectionState.RESET and fast_a2.reason == "bad-resumption-id"


@pytest.mark.parametrize("paths", ["none", "own", "another context's"])
def test_a_closed_client_connection_is_made_ready_only_with_its_context_s_paths(
    paths: str
) -> None:
    ctx_a, ctx_b = TcpcryptContext(), TcpcryptContext()
    a, b = _full_exchange(ctx_a, ctx_b)
    given = {"none": None, "own": ctx_a.resumed_paths,
             "another context's": TcpcryptContext().resumed_paths}[paths]
    prepare_next(a, given)
    prepare_next(b, ctx_b.resumed_paths)
    assert a.resumable is not None and a.resumable.prepared is not None
    assert (a.resumable.prepared.ready is not None) is (paths == "own")
    assert b.resumable is not None and b.resumable.prepared is None  # B derives on use


_READY_BYTES = """
import sys
from tcpcrypt.eno_negotiation import Role
from tcpcrypt.key_schedule import SessionSecret
from tcpcrypt.library.context import TcpcryptContext
from tcpcrypt.resumed_path import prepare
from tcpcrypt.resumption import ResumableSession
context = TcpcryptContext()
session = ResumableSession(SessionSecret(bytes(range(32)), 3), 0x23, 0x0001)
kit = context.resumed_paths.make_ready(session, prepare(session, Role.A, context.config, True))
ready = kit.ready
assert ready is not None and ready.result is not None
out = [ready.syn, ready.record, ready.synack, ready.result.transcript,
       ready.established["session_id"], ready.established["_sealer"].seal(b"resumed request")]
sys.stdout.write(b"".join(out).hex())
"""


def test_a_ready_offer_is_the_same_in_c_and_in_pure_python() -> None:
    same_in_c_and_pure_python(_READY_BYTES)


def test_the_key_log_file_is_named_when_the_context_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TCPCRYPT_KEYLOG", raising=False)
    before = TcpcryptContext()
    monkeypatch.setenv("TCPCRYPT_KEYLOG", str(tmp_path / "keys"))
    after = TcpcryptContext()
    for context in (before, after):
        a, _ = _full_exchange(context, TcpcryptContext())
        context.established_unregistered(a)
    lines = (tmp_path / "keys").read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("TCPCRYPT_MK0 ")


def test_host_b_s_prepared_resumption_gets_nothing_ready() -> None:
    _, ctx_b = TcpcryptContext(), TcpcryptContext()
    session = ResumableSession(SessionSecret(bytes(range(32)), 3), 0x23, 0x0001)
    kit = prepare(session, Role.B, ctx_b.config, True)
    assert ctx_b.resumed_paths.make_ready(session, kit) is kit and kit.ready is None
