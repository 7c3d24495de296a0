"""Host B's straight line after the kernel's negotiation (tcpcrypt.accepted_path) against the
general path (constructor and `adopt_kernel_negotiation`): the same attributes, endpoint,
Init2, events, session and sealed bytes; every other negotiation is left to the general path,
which resets as before."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

from tcpcrypt.accepted_path import AcceptedPaths
from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.connection_tables import suite_table
from tcpcrypt.eno_option import EnoOption, GlobalSuboption, TepSuboption, encode_eno_option
from tcpcrypt.events import ConnectionReset, Event
from tcpcrypt.randomness import seeded_random
from tcpcrypt.resumption import ResumptionCache

X25519, P256 = 0x23, 0x21
NOW = 12.5


def _synack(tep: int, data: bytes = b"") -> bytes:
    return encode_eno_option(EnoOption((GlobalSuboption(b=True), TepSuboption(tep, data))))


def _client(suites: tuple[str, ...], aeads: tuple[str, ...] = ("aes-128-gcm",),
            seed: int = 1) -> tuple[TcpcryptConnection, bytes]:
    a = TcpcryptConnection(active=True, config=TcpcryptConfig(suites=suites, aeads=aeads),
                           random=seeded_random(seed), peer=("b", 1))
    return a, a.syn_option()


def _both(config: TcpcryptConfig, cache: ResumptionCache, syn: bytes, synack: bytes,
          seed: int = 7) -> tuple[TcpcryptConnection | None, TcpcryptConnection]:
    """(the straight line's connection or None, the general path's), each with its own
    random source drawing the same bytes."""
    suites = suite_table(config)
    fast = AcceptedPaths(config, suites, cache, seeded_random(seed)).accept(syn, synack, NOW)
    general = TcpcryptConnection(active=False, config=config, random=seeded_random(seed),
                                 cache=cache, now=NOW, suites=suites)
    general.adopt_kernel_negotiation(syn, synack)
    return fast, general


def _events(connection: TcpcryptConnection) -> list[Event]:
    events = []
    while (event := connection.next_event()) is not None:
        events.append(event)
    return events


def _state(connection: TcpcryptConnection) -> dict[str, Any]:
    """The connection's attributes, its endpoint's in place of the endpoint object (and
    without its random source: each path is given its own, drawing the same bytes)."""
    state = dict(vars(connection))
    del state["_random"]
    state["_eno"] = dict(vars(state.pop("_eno")))
    for name in ("_events", "_outgoing", "_inbuf", "_pending_plaintext"):
        state[name] = list(state[name])
    return state


@pytest.mark.parametrize("server_suites,client_suites,tep", [
    (("x25519",), ("x25519",), X25519),
    (("p256", "x25519"), ("x25519", "p256"), P256),
    (("x25519", "p256"), ("p256", "x25519"), X25519),
])
@pytest.mark.parametrize("capacity", [0, 16])
def test_the_straight_line_reaches_the_general_paths_state_bytes_and_events(
        server_suites: tuple[str, ...], client_suites: tuple[str, ...], tep: int,
        capacity: int) -> None:
    aeads = ("chacha20-poly1305", "aes-128-gcm")
    a, syn = _client(client_suites, aeads)
    synack = _synack(tep)
    fast, general = _both(TcpcryptConfig(suites=server_suites, aeads=aeads),
                          ResumptionCache(capacity), syn, synack)
    assert fast is not None and fast.state is ConnectionState.KEY_EXCHANGE
    assert _state(fast) == _state(general)
    a.on_synack(synack)
    init1 = a.data_to_send()
    for connection in (fast, general):
        connection.receive(init1[:10])  # Init1 in two pieces
        connection.receive(init1[10:])
    assert fast.data_to_send() == general.data_to_send()  # the same Init2
    assert _events(fast) == _events(general)
    assert fast.state is general.state is ConnectionState.ESTABLISHED
    for connection in (fast, general):
        connection.send(b"answer")
    assert fast.data_to_send() == general.data_to_send()
    assert fast.session_id == general.session_id and fast.secret == general.secret
    assert (fast.resumable is None) == (general.resumable is None) == (capacity == 0)


def test_connections_of_one_remembered_pair_share_no_mutable_state() -> None:
    config = TcpcryptConfig()
    paths = AcceptedPaths(config, suite_table(config), ResumptionCache(0), seeded_random(3))
    a, syn = _client(("x25519",))
    synack = _synack(X25519)
    first, second = paths.accept(syn, synack, 1.0), paths.accept(syn, synack, 2.0)
    assert first is not None and second is not None
    assert first._eno is not second._eno and first._inbuf is not second._inbuf
    assert first._events is not second._events and first._outgoing is not second._outgoing
    assert (first._now, second._now) == (1.0, 2.0)
    a.on_synack(synack)
    first.receive(a.data_to_send())
    assert first.state is ConnectionState.ESTABLISHED
    assert second.state is ConnectionState.KEY_EXCHANGE and not second.has_events


@pytest.mark.parametrize("straight", [True, False])
def test_a_finished_connection_is_freed_without_the_garbage_collector(straight: bool) -> None:
    """No reference cycle holds B's connection (nor its endpoint, keys and frame objects):
    a server's connections are freed when dropped, not at the collector's next pass."""
    config = TcpcryptConfig()
    a, syn = _client(("x25519",))
    synack = _synack(X25519)
    if straight:
        paths = AcceptedPaths(config, suite_table(config), ResumptionCache(0), seeded_random(3))
        b = paths.accept(syn, synack, 0.0)
    else:
        b = TcpcryptConnection(active=False, config=config, random=seeded_random(3))
        b.adopt_kernel_negotiation(syn, synack)
    assert b is not None
    a.on_synack(synack)
    b.receive(a.data_to_send())
    a.receive(b.data_to_send())
    a.send(b"request")
    b.receive(a.data_to_send())
    b.send(b"answer")
    assert b.data_to_send() and len(_events(b)) == 2
    gc.disable()
    try:
        gone = [weakref.ref(b), weakref.ref(b._eno), weakref.ref(b._sealer)]  # type: ignore[arg-type]
        del b
        assert [ref() for ref in gone] == [None, None, None]
    finally:
        gc.enable()


@pytest.mark.parametrize("synack,reason", [
    (bytes([69, 3, X25519]), "eno-mismatch"),  # no b=1: not what the core writes
    (bytes([69, 4, 0x01, P256]), "eno-mismatch"),  # a TEP that A did not offer
    (bytes([69, 4, 0x01, 0x24]), "eno-mismatch"),  # offered by A, no suite here (x448)
    (bytes([69, 4, 0x11, X25519]), "eno-mismatch"),  # other global bits
    (_synack(X25519, bytes(9)), "bad-resumption-id"),  # a resumption not in the cache
])
def test_any_other_negotiation_is_left_to_the_general_path_which_resets(
        synack: bytes, reason: str) -> None:
    _, syn = _client(("x448", "x25519"))
    fast, general = _both(TcpcryptConfig(), ResumptionCache(), syn, synack)
    assert fast is None
    assert general.state is ConnectionState.RESET and general.reason == reason
    assert _events(general) == [ConnectionReset(reason)]


def test_a_bad_init1_on_the_straight_line_resets_as_on_the_general_path() -> None:
    _, syn = _client(("x25519",))
    fast, general = _both(TcpcryptConfig(), ResumptionCache(0), syn, _synack(X25519))
    assert fast is not None
    bad_init1 = bytes(8) + bytes(200)  # wrong magic
    for connection in (fast, general):
        connection.receive(bad_init1)
    assert fast.state is general.state is ConnectionState.RESET
    assert fast.reason == general.reason is not None
    assert _events(fast) == _events(general) == [ConnectionReset(fast.reason)]
    assert fast.data_to_send() == general.data_to_send() == b""


def test_options_that_are_not_bytes_take_the_general_path() -> None:
    config = TcpcryptConfig()
    paths = AcceptedPaths(config, suite_table(config), ResumptionCache(0), seeded_random(3))
    _, syn = _client(("x25519",))
    assert paths.accept(bytearray(syn), _synack(X25519), 0.0) is None  # type: ignore[arg-type]
    assert paths.accept(syn, _synack(X25519), 0.0) is not None
