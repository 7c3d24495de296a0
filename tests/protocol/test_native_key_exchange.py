"""Host B's X25519 key exchange in C (`tcpcrypt.native.b_init1_x25519`, used by
`TcpcryptConnection` for Init1) against the pure-Python path: the same Init2 and ss[0] for the
same input and randomness (the committed vectors included), the same connection end to end,
and every bad or incomplete Init1 left to the Python path, which decides the same reset."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcrypt import connection, native
from tcpcrypt.aead import AEAD_NAMES, aead_by_name
from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.init_messages import encode_init1, encode_init2
from tcpcrypt.key_schedule import SessionSecret
from tcpcrypt.pair import Pair, connect_pair
from tcpcrypt.randomness import seeded_random
from tcpcrypt.suites import get_suite

TRANSCRIPT = bytes.fromhex("45042324" "450323")
OFFERED_AEADS = (0x01, 0x02, 0x10)


@pytest.fixture(autouse=True)
def built() -> None:
    if os.environ.get("TCPCRYPT_PURE_PYTHON"):
        pytest.skip("TCPCRYPT_PURE_PYTHON is set")
    assert native.b_init1_x25519 is not None, (
        f"the C key exchange is not built: {native.unavailable_reason} (make setup builds it)")


def reference(init1_raw: bytes, chosen: int, seed: int) -> tuple[bytes, bytes]:
    """Init2 and ss[0] as the Python modules compute them (B draws its key, then N_B)."""
    suite = get_suite("x25519")
    random_b = seeded_random(seed)
    pk_a = init1_raw[9 + init1_raw[8] + 32:9 + init1_raw[8] + 64]
    pk_b, es = suite.b_respond(pk_a, random_b)
    init2 = encode_init2(chosen, random_b(32), pk_b)
    nonce_a = init1_raw[9 + init1_raw[8]:9 + init1_raw[8] + 32]
    ss0 = SessionSecret.from_key_exchange(TRANSCRIPT, init1_raw, init2.raw, es, nonce_a)
    return init2.raw, ss0.value


def c_path(buffer: bytes, ours: bytes, seed: int) -> tuple[int, int, bytes, bytes] | None:
    assert native.b_init1_x25519 is not None
    return native.b_init1_x25519(bytearray(buffer), ours, seeded_random(seed), TRANSCRIPT)


def test_the_committed_x25519_vectors_come_out_of_the_c_path() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("test_vectors_crypto.py")  # the committed vectors
    spec = importlib.util.spec_from_file_location("committed_vectors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    vectors: dict[str, dict[str, str]] = module.X25519_VECTORS
    suite = get_suite("x25519")
    for aead_name in AEAD_NAMES:
        random_a = seeded_random(1)
        _, pk_a = suite.a_start(random_a)
        init1 = encode_init1(OFFERED_AEADS, random_a(32), pk_a)
        wire_id = aead_by_name(aead_name).wire_id
        done = c_path(init1.raw, bytes((wire_id,)), 2)
        assert done is not None
        assert done[:2] == (len(init1.raw), wire_id)
        assert done[2].hex() == vectors[aead_name]["init2"]
        assert done[3].hex() == vectors[aead_name]["ss0"]


@settings(max_examples=60)
@given(st.integers(0, 2**32), st.lists(st.sampled_from([1, 2, 0x10, 0x33]), min_size=1,
                                        max_size=6),
       st.binary(max_size=40), st.binary(max_size=30))
def test_c_and_python_give_the_same_init2_and_secret(
    seed: int, offered: list[int], trailer: bytes, after: bytes
) -> None:
    random_a = seeded_random(seed + 1)
    _, pk_a = get_suite("x25519").a_start(random_a)
    init1 = encode_init1(offered, random_a(32), pk_a, trailer)
    ours = bytes((0x10, 0x01, 0x02))
    chosen = next((aead for aead in ours if aead in offered), None)
    done = c_path(init1.raw + after, ours, seed)
    if chosen is None:
        assert done is None
        return
    assert done is not None
    assert done[:2] == (len(init1.raw), chosen)
    assert (done[2], done[3]) == reference(init1.raw, chosen, seed)


def good_init1() -> bytes:
    random_a = seeded_random(7)
    _, pk_a = get_suite("x25519").a_start(random_a)
    return encode_init1(OFFERED_AEADS, random_a(32), pk_a).raw


def test_incomplete_malformed_or_refused_init1_is_left_to_python() -> None:
    raw = good_init1()
    low_order = raw[:-32] + bytes(32)  # an all-zero PK_A: the library refuses the exchange
    bad_magic = b"\x00" + raw[1:]
    too_long = raw[:4] + (4096).to_bytes(4, "big") + raw[8:]
    too_short = raw[:4] + (20).to_bytes(4, "big") + raw[8:]
    no_ids = raw[:8] + b"\x00" + raw[9:]
    for buffer in [raw[:cut] for cut in range(len(raw))] + [
            low_order, bad_magic, too_long, too_short, no_ids]:
        assert c_path(buffer, bytes(OFFERED_AEADS), 3) is None


def _run(seed: int, aeads: tuple[str, ...] = ("aes-128-gcm",), split: bool = False) -> Pair:
    config = TcpcryptConfig(suites=("x25519",), aeads=aeads)
    pair = connect_pair(config, config, random_a=seeded_random(seed),
                        random_b=seeded_random(seed + 1),
                        transform=(lambda _d, data: [data[i:i + 1] for i in range(len(data))])
                        if split else None)
    return pair


def _facts(pair: Pair) -> tuple[object, ...]:
    a, b = pair.a.connection, pair.b.connection
    return (pair.outcome(), a.session_id, b.session_id, b.aead,
            a.secret.value if a.secret else None, b.secret.value if b.secret else None)


@pytest.mark.parametrize("aead", AEAD_NAMES)
@pytest.mark.parametrize("split", [False, True])
def test_a_connection_is_byte_identical_with_and_without_the_c_path(
    aead: str, split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = native.b_init1_x25519
    assert original is not None
    taken: list[bool] = []

    def counted(*args: Any) -> tuple[int, int, bytes, bytes] | None:
        done = original(*args)
        taken.append(done is not None)
        return done

    monkeypatch.setattr(connection, "b_init1_x25519", counted)
    with_c = [_facts(_run(seed, (aead,), split)) for seed in range(0, 40, 7)]
    assert taken.count(True) == len(with_c)  # each connection's Init1 went through C
    monkeypatch.setattr(connection, "b_init1_x25519", None)
    without = [_facts(_run(seed, (aead,), split)) for seed in range(0, 40, 7)]
    assert with_c == without
    assert {facts[0] for facts in with_c} == {"encrypted"}


@pytest.mark.parametrize("garbage", [b"\x15\x10\x1a\x0f" + bytes(80),
                                     b"\x15\x10\x1a\x0e" + (5000).to_bytes(4, "big")])
def test_a_bad_init1_resets_with_the_same_reason_either_way(
    garbage: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def reason() -> str | None:
        b = connection.TcpcryptConnection(active=False, random=seeded_random(5))
        a = connection.TcpcryptConnection(active=True, random=seeded_random(6))
        b.on_syn(a.syn_option())
        a.on_synack(b.synack_option())
        b.on_ack(a.ack_option())
        b.receive(garbage)
        return b.reason

    with_c = reason()
    monkeypatch.setattr(connection, "b_init1_x25519", None)
    assert with_c == reason() is not None


THREADED_FIRST_USE = """
import threading
from tcpcrypt.pair import connect_pair
from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.randomness import system_random
errors = []
def one():
    try:
        pair = connect_pair(TcpcryptConfig(suites=("x25519",)), random_a=system_random,
                            random_b=system_random)
        assert pair.a.connection.session_id == pair.b.connection.session_id is not None
    except BaseException as error:
        errors.append(repr(error))
threads = [threading.Thread(target=one) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(errors or "ok")
"""


def test_threads_of_a_fresh_process_first_use_the_c_exchange_together() -> None:
    """A server's threads once raced on the C path's first lookup of `cryptography`'s key
    constructors (an ImportError inside the exchange): the lookup is made at import now."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", THREADED_FIRST_USE], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
