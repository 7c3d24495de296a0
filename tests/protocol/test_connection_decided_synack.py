"""Host B replaying a SYN-ACK decided elsewhere (the kernel): same bytes, or a reset."""

from __future__ import annotations

from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.randomness import seeded_random
from tcpcrypt.resumption import ResumptionCache

X25519 = 0x23


def _pair(b_cache: ResumptionCache | None = None) -> tuple[TcpcryptConnection,
                                                            TcpcryptConnection]:
    a = TcpcryptConnection(active=True, config=TcpcryptConfig(), random=seeded_random(1),
                           peer=("b", 1))
    b = TcpcryptConnection(active=False, config=TcpcryptConfig(), random=seeded_random(2),
                           cache=b_cache)
    return a, b


def test_b_adopting_the_kernels_synack_reaches_the_same_session_as_a() -> None:
    a, b = _pair()
    syn = a.syn_option()
    synack = bytes([69, 4, 0x01, X25519])
    b.adopt_decided_synack(syn, synack)
    b.on_ack(bytes([69, 2]))
    a.on_synack(synack)
    b.receive(a.data_to_send())
    a.receive(b.data_to_send())
    assert a.state is b.state is ConnectionState.ESTABLISHED
    assert a.session_id == b.session_id is not None


def test_a_synack_the_core_would_not_write_resets() -> None:
    a, b = _pair()
    b.adopt_decided_synack(a.syn_option(), bytes([69, 3, X25519]))  # no b=1
    assert b.state is ConnectionState.RESET and b.reason == "eno-mismatch"


def test_a_resumption_answer_without_the_cached_session_resets() -> None:
    a, b = _pair(ResumptionCache())
    syn = a.syn_option()
    b.adopt_decided_synack(syn, bytes([69, 13, 0x01, 0x80 | X25519]) + bytes(9))
    assert b.state is ConnectionState.RESET and b.reason == "bad-resumption-id"


def test_fall_back_and_abort_decided_outside_the_core() -> None:
    a, b = _pair()
    a.syn_option()
    a.fall_back("syncookie")
    assert a.state is ConnectionState.FALLBACK and a.reason == "syncookie"
    b.abort("state-lost")
    assert b.state is ConnectionState.RESET and b.reason == "state-lost"


def test_b_adopting_the_kernels_whole_negotiation_reaches_the_same_session_as_a() -> None:
    a, b = _pair()
    syn = a.syn_option()
    synack = bytes([69, 4, 0x01, X25519])
    b.adopt_kernel_negotiation(syn, synack)
    assert b.state is ConnectionState.KEY_EXCHANGE and b.role is not None
    a.on_synack(synack)
    b.receive(a.data_to_send())
    a.receive(b.data_to_send())
    assert a.state is b.state is ConnectionState.ESTABLISHED
    assert a.session_id == b.session_id is not None


def test_a_remembered_replay_still_refuses_a_synack_the_core_would_not_write() -> None:
    for _ in range(2):  # the second time comes from the remembered replays
        a, b = _pair()
        b.adopt_kernel_negotiation(a.syn_option(), bytes([69, 4, 0x00, X25519]))  # b=0
        assert b.state is ConnectionState.RESET and b.reason == "eno-mismatch"


def test_a_kernel_choice_that_a_did_not_offer_resets() -> None:
    a, b = _pair()
    syn = a.syn_option()  # offers x25519 only
    b.adopt_kernel_negotiation(syn, bytes([69, 4, 0x01, 0x24]))
    assert b.state is ConnectionState.RESET and b.reason == "eno-mismatch"
    _, b = _pair()
    b.adopt_decided_synack(syn, bytes([69, 4, 0x01, 0x24]))
    assert b.state is ConnectionState.RESET and b.reason == "eno-mismatch"


def test_a_syn_the_core_answers_without_eno_resets_instead_of_falling_back() -> None:
    synack = bytes([69, 4, 0x01, X25519])
    for syn in (bytes([69, 4, 0x01, X25519]), bytes([69, 3, 0x9F])):  # b=1 in A's SYN; junk
        _, b = _pair()
        b.adopt_kernel_negotiation(syn, synack)
        assert b.state is ConnectionState.RESET and b.reason == "eno-mismatch"
        _, b = _pair()
        b.adopt_decided_synack(syn, synack)
        assert b.state is ConnectionState.RESET and b.reason == "eno-mismatch"


def test_a_kernel_resumption_answer_without_the_cached_session_resets() -> None:
    a, b = _pair(ResumptionCache())
    syn = a.syn_option()
    b.adopt_kernel_negotiation(syn, bytes([69, 13, 0x01, 0x80 | X25519]) + bytes(9))
    assert b.state is ConnectionState.RESET and b.reason == "bad-resumption-id"


def test_a_kernel_resumption_of_a_cached_session_resumes_at_both_ends() -> None:
    a_cache, b_cache = ResumptionCache(), ResumptionCache()
    a = TcpcryptConnection(active=True, config=TcpcryptConfig(), random=seeded_random(1),
                           peer=("b", 1), cache=a_cache)
    b = TcpcryptConnection(active=False, config=TcpcryptConfig(), random=seeded_random(2),
                           cache=b_cache)
    syn, synack = a.syn_option(), bytes([69, 4, 0x01, X25519])
    b.adopt_kernel_negotiation(syn, synack)
    a.on_synack(synack)
    b.receive(a.data_to_send())
    a.receive(b.data_to_send())
    first = a.session_id
    a = TcpcryptConnection(active=True, config=TcpcryptConfig(), random=seeded_random(3),
                           peer=("b", 1), cache=a_cache)
    b = TcpcryptConnection(active=False, config=TcpcryptConfig(), random=seeded_random(4),
                           cache=b_cache)
    syn = a.syn_option()
    session = b_cache.peek(syn[-9:], 0.0)
    assert session is not None
    synack = bytes([69, 13, 0x01, 0x80 | X25519]) + session.b_resumption_id
    b.adopt_kernel_negotiation(syn, synack)
    a.on_synack(synack)
    assert a.state is b.state is ConnectionState.ESTABLISHED and a.resumed and b.resumed
    assert a.session_id == b.session_id != first
    again = TcpcryptConnection(active=False, config=TcpcryptConfig(), random=seeded_random(5),
                               cache=b_cache)
    again.adopt_kernel_negotiation(syn, synack)  # single use: the session was taken
    assert again.state is ConnectionState.RESET and again.reason == "bad-resumption-id"
