"""The straight-line resumed connection (tcpcrypt.resumed_path) against the general path: the
same SYN option, the same state, session ID and sealed bytes; every refusal goes to the
general path with its verdict; identifiers stay single-use."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time

import pytest

from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.eno_negotiation import Role
from tcpcrypt.eno_option import EnoOption, GlobalSuboption, TepSuboption, encode_eno_option
from tcpcrypt.events import ConnectionReset, Established
from tcpcrypt.library.context import TcpcryptContext
from tcpcrypt.randomness import system_random
from tcpcrypt.resumed_path import prepare, prepare_next
from tcpcrypt.resumption import ResumableSession

PEER = ("192.0.2.7", 443)


def _full_exchange(ctx_a: TcpcryptContext, ctx_b: TcpcryptContext
                   ) -> tuple[TcpcryptConnection, TcpcryptConnection]:
    """A full key exchange of A (`ctx_a`) with B (`ctx_b`), driven to ESTABLISHED."""
    a = ctx_a.new_connection(True, PEER)
    b = ctx_b.new_connection(False, None)
    b.on_syn(a.syn_option())
    a.on_synack(b.synack_option())
    b.on_ack(a.ack_option())
    for _ in range(3):
        b.receive(a.data_to_send())
        a.receive(b.data_to_send())
    assert a.state is b.state is ConnectionState.ESTABLISHED
    return a, b


def same_in_c_and_pure_python(script: str) -> str:
    """`script`'s output with the C fast path and with TCPCRYPT_PURE_PYTHON=1, each in its
    own interpreter; asserts they are the same and not empty."""
    runs = []
    for pure in ("", "1"):
        environment = dict(os.environ, TCPCRYPT_PURE_PYTHON=pure)
        done = subprocess.run([sys.executable, "-W", "ignore", "-c", script],
                              capture_output=True, text=True, env=environment, check=True)
        runs.append(done.stdout)
    assert runs[0] and runs[0] == runs[1]
    return runs[0]


def _synack(session: ResumableSession) -> bytes:
    """The SYN-ACK option B's core (and the kernel) writes to resume `session`."""
    suboptions = (GlobalSuboption(b=True), TepSuboption(session.tep, session.b_resumption_id))
    return encode_eno_option(EnoOption(suboptions))


def _pair(**context: object) -> tuple[TcpcryptContext, TcpcryptContext]:
    ctx_a, ctx_b = TcpcryptContext(**context), TcpcryptContext(**context)  # type: ignore[arg-type]
    _full_exchange(ctx_a, ctx_b)
    return ctx_a, ctx_b


def _general_a(ctx: TcpcryptContext, synack: bytes | None) -> tuple[TcpcryptConnection, bytes]:
    connection = ctx.new_connection(True, PEER)
    syn = connection.syn_option()
    if synack is not None:
        connection.on_synack(synack)
    return connection, syn


def _public(connection: TcpcryptConnection) -> dict[str, object]:
    events = []
    while (event := connection.next_event()) is not None:
        events.append(event)
    return {"state": connection.state, "suite": connection.suite, "aead": connection.aead,
            "session_id": connection.session_id, "resumed": connection.resumed,
            "reason": connection.reason, "role": connection.role, "events": events,
            "secret": connection.secret,
            "resumable": None if connection.resumable is None else (
                connection.resumable.secret, connection.resumable.a_resumption_id,
                connection.resumable.b_resumption_id)}


@pytest.mark.parametrize("suites", [("x25519",), ("p256", "x25519")])
@pytest.mark.parametrize("prepared", [False, True])
def test_straight_line_resumption_matches_the_general_path(suites: tuple[str, ...],
                                                           prepared: bool) -> None:
    ctx_a, ctx_b = _pair(suites=suites)
    twin_a, twin_b = copy.deepcopy(ctx_a.cache), copy.deepcopy(ctx_b.cache)
    now = time.monotonic()
    fast_a = ctx_a.resumed_paths.offer_resumption(PEER, now)
    assert fast_a is not None
    syn = fast_a._eno._sent_syn
    assert syn is not None
    (_, (_, b_session)), = ctx_b.cache._entries.items()
    synack = _synack(b_session)
    general_ctx_a = TcpcryptContext(suites=suites, cache=twin_a)
    general_a, general_syn = _general_a(general_ctx_a, synack)
    assert syn == general_syn  # the same SYN option byte for byte
    if prepared:
        assert fast_a._resuming is not None
        fast_a._resuming.keep_prepared(prepare(fast_a._resuming, Role.A, ctx_a.config, True))
        b_session.keep_prepared(prepare(b_session, Role.B, ctx_b.config, True))
    ctx_a.resumed_paths.adopt_synack(fast_a, synack)
    fast_b = ctx_b.resumed_paths.accept_resumption(syn, synack, now)
    assert fast_b is not None
    general_b = TcpcryptConnection(active=False, config=ctx_b.config, random=system_random,
                                   cache=twin_b, suites=ctx_b.suites, now=now)
    general_b.adopt_kernel_negotiation(syn, synack)
    assert set(vars(fast_a)) == set(vars(general_a))
    assert set(vars(fast_b)) == set(vars(general_b))
    assert vars(fast_a._eno).keys() == vars(general_a._eno).keys()
    assert fast_a._eno.result == general_a._eno.result
    assert fast_b._eno.result == general_b._eno.result
    for fast, general in ((fast_a, general_a), (fast_b, general_b)):
        fast.send(b"request")
        general.send(b"request")
        assert fast.data_to_send() == general.data_to_send()  # same keys, same frame
        assert _public(fast) == _public(general)
    assert fast_a.resumed and fast_b.resumed and fast_a.session_id == fast_b.session_id
    # the next resumption was cached by both ends, identically to the general path
    assert ctx_a.cache.peek(PEER, now) is not None and twin_a.peek(PEER, now) is not None
    assert ctx_a.cache.peek(PEER, now).secret == twin_a.peek(PEER, now).secret  # type: ignore[union-attr]


def test_a_prepared_resumption_gives_the_same_bytes_as_one_derived_on_use() -> None:
    ctx_a, ctx_b = _pair()
    twin_a, twin_b = copy.deepcopy(ctx_a.cache), copy.deepcopy(ctx_b.cache)
    outputs = []
    for cache_a, cache_b, ahead in ((ctx_a.cache, ctx_b.cache, True), (twin_a, twin_b, False)):
        a_ctx = TcpcryptContext(cache=cache_a)
        b_ctx = TcpcryptContext(cache=cache_b)
        now = time.monotonic()
        a = a_ctx.resumed_paths.offer_resumption(PEER, now)
        assert a is not None and a._resuming is not None
        syn = a._eno._sent_syn
        assert syn is not None
        (_, (_, b_session)), = cache_b._entries.items()
        if ahead:
            b_session.keep_prepared(prepare(b_session, Role.B, b_ctx.config, True))
        a_ctx.resumed_paths.adopt_synack(a, _synack(b_session))
        b = b_ctx.resumed_paths.accept_resumption(syn, _synack(b_session), now)
        assert b is not None
        b.send(b"answer")
        outputs.append((a.session_id, b.data_to_send()))
        prepare_next(a)
        prepare_next(b)
    assert outputs[0] == outputs[1]


def test_a_different_synack_goes_to_the_general_path_with_its_verdict() -> None:
    ctx_a, ctx_b = _pair()
    now = time.monotonic()
    a = ctx_a.resumed_paths.offer_resumption(PEER, now)
    assert a is not None and a._resuming is not None
    wrong = TepSuboption(a._resuming.tep, bytes(9))
    ctx_a.resumed_paths.adopt_synack(a, encode_eno_option(
        EnoOption((GlobalSuboption(b=True), wrong))))
    assert a.state is ConnectionState.RESET and a.reason == "bad-resumption-id"
    assert ctx_a.cache.peek(PEER, now) is None  # used up, as by the general path


def test_a_full_key_exchange_answer_is_taken_by_the_general_path() -> None:
    ctx_a, ctx_b = _pair()
    a = ctx_a.resumed_paths.offer_resumption(PEER, time.monotonic())
    assert a is not None and a._resuming is not None
    plain = encode_eno_option(EnoOption((GlobalSuboption(b=True), TepSuboption(a._resuming.tep))))
    ctx_a.resumed_paths.adopt_synack(a, plain)
    assert a.state is ConnectionState.KEY_EXCHANGE and a.data_to_send()  # Init1 goes out


def test_b_resumption_identifiers_are_single_use_on_the_straight_line() -> None:
    ctx_a, ctx_b = _pair()
    now = time.monotonic()
    a = ctx_a.resumed_paths.offer_resumption(PEER, now)
    assert a is not None and a._eno._sent_syn is not None
    (_, (_, b_session)), = ctx_b.cache._entries.items()
    syn, synack = a._eno._sent_syn, _synack(b_session)
    assert ctx_b.resumed_paths.accept_resumption(syn, synack, now) is not None
    assert ctx_b.resumed_paths.accept_resumption(syn, synack, now) is None  # replayed SYN
    general = TcpcryptConnection(active=False, config=ctx_b.config, random=a._random,
                                 cache=ctx_b.cache, suites=ctx_b.suites, now=now)
    general.adopt_kernel_negotiation(syn, synack)
    assert general.state is ConnectionState.RESET and general.reason == "bad-resumption-id"
    assert isinstance(general.next_event(), ConnectionReset)


def test_b_refuses_a_mismatched_answer_and_the_general_path_resets() -> None:
    ctx_a, ctx_b = _pair()
    now = time.monotonic()
    a = ctx_a.resumed_paths.offer_resumption(PEER, now)
    assert a is not None and a._eno._sent_syn is not None and a._resuming is not None
    bad = encode_eno_option(EnoOption((GlobalSuboption(b=True),
                                       TepSuboption(a._resuming.tep, bytes(9)))))
    assert ctx_b.resumed_paths.accept_resumption(a._eno._sent_syn, bad, now) is None
    general = TcpcryptConnection(active=False, config=ctx_b.config, random=a._random,
                                 cache=ctx_b.cache, suites=ctx_b.suites, now=now)
    general.adopt_kernel_negotiation(a._eno._sent_syn, bad)
    assert general.reason == "bad-resumption-id"
    assert not isinstance(general.next_event(), Established)


_PREPARED_BYTES = """
import sys
from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.eno_negotiation import Role
from tcpcrypt.key_schedule import SessionSecret
from tcpcrypt.resumed_path import prepare
from tcpcrypt.resumption import ResumableSession
session = ResumableSession(SessionSecret(bytes(range(32)), 3), 0x21, 0x0001)
out = []
for role in (Role.A, Role.B):
    kit = prepare(session, role, TcpcryptConfig(), True)
    assert kit.following is not None
    out += [kit.session_id, kit.sealer.seal(b"resumed request"), kit.following.secret.value,
            kit.following.a_resumption_id, kit.following.b_resumption_id]
sys.stdout.write(b"".join(out).hex())
"""


def test_prepared_resumption_is_the_same_in_c_and_in_pure_python() -> None:
    same_in_c_and_pure_python(_PREPARED_BYTES)


def test_only_host_a_derives_ahead_even_after_a_resumed_connection() -> None:
    ctx_a = TcpcryptContext()
    ctx_b = TcpcryptContext()
    a = ctx_a.new_connection(True, PEER)
    b = ctx_b.new_connection(False, None)
    b.on_syn(a.syn_option())
    a.on_synack(b.synack_option())
    b.on_ack(a.ack_option())
    for _ in range(3):
        b.receive(a.data_to_send())
        a.receive(b.data_to_send())
    prepare_next(a)
    prepare_next(b)
    assert a.resumable is not None and a.resumable.prepared is not None  # A caches to resume
    assert b.resumable is not None and b.resumable.prepared is None  # a full exchange at B
    now = time.monotonic()
    resumed_a = ctx_a.resumed_paths.offer_resumption(PEER, now)
    assert resumed_a is not None and resumed_a._eno._sent_syn is not None
    synack = _synack(b.resumable)
    ctx_a.resumed_paths.adopt_synack(resumed_a, synack)
    resumed_b = ctx_b.resumed_paths.accept_resumption(resumed_a._eno._sent_syn, synack, now)
    assert resumed_b is not None and resumed_b.resumed
    prepare_next(resumed_b, ctx_b.resumed_paths)
    assert resumed_b.resumable is not None and resumed_b.resumable.prepared is None
