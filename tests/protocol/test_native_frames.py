"""The C frame classes (`tcpcrypt.native.frame_sealer` / `frame_opener`, what `FrameSealer` and
`FrameOpener` construct when built) against the Python reference (`PureFrameSealer` /
`PureFrameOpener`), for all three AEADs: the same frames byte for byte for streams of every
size around the frame limit, single frames and rekeys; the same data delivered however the
stream is cut (one byte at a time included) with the same `buffered`, `offset` and
`generation`; the same keys(j) calls; every error with the same class, reason and message,
the state it leaves, a dead opener, and nothing delivered from a failing call."""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcrypt import native
from tcpcrypt.aead import AEAD_NAMES, aead_by_name
from tcpcrypt.errors import TcpcryptError
from tcpcrypt.frames import (
    FRAME_OVERHEAD,
    MAX_FRAME_PLAINTEXT,
    FrameOpener,
    FrameSealer,
    PureFrameOpener,
    PureFrameSealer,
    frame_nonce,
)

LAST_OFFSET = (1 << 64) - 1


@pytest.fixture(autouse=True)
def built() -> None:
    if os.environ.get("TCPCRYPT_PURE_PYTHON"):
        pytest.skip("TCPCRYPT_PURE_PYTHON is set")
    assert native.frame_sealer is not None and native.frame_opener is not None, (
        f"the C frames are not built: {native.unavailable_reason} (make setup builds it)")


class Keys:
    """keys(j) for one direction, recording the generations asked for."""

    def __init__(self, aead: str, fail_from: int | None = None) -> None:
        self.length = aead_by_name(aead).key_length
        self.fail_from = fail_from
        self.asked: list[int] = []
        self.owner: object = None

    def __call__(self, generation: int) -> bytes:
        self.asked.append(generation)
        if self.fail_from is not None and generation >= self.fail_from:
            raise KeyError(f"no key {generation}")
        return bytes([generation + 1]) * self.length


def sealers(aead: str, limit: int = 64) -> tuple[FrameSealer, FrameSealer, Keys, Keys]:
    """(Python sealer, C sealer, their keys)."""
    spec, python_keys, c_keys = aead_by_name(aead), Keys(aead), Keys(aead)
    return PureFrameSealer(spec, python_keys, limit), FrameSealer(spec, c_keys, limit), \
        python_keys, c_keys


def openers(aead: str, limit: int = 0xFFFF,
            fail_from: int | None = None) -> tuple[FrameOpener, FrameOpener, Keys, Keys]:
    spec = aead_by_name(aead)
    python_keys, c_keys = Keys(aead, fail_from), Keys(aead, fail_from)
    return PureFrameOpener(spec, python_keys, limit), FrameOpener(spec, c_keys, limit), \
        python_keys, c_keys


def outcome(call: Callable[[], Any]) -> tuple[str, str, str]:
    """What a call did: ("ok", its result's repr, type) or (error class, reason, message)."""
    try:
        result = call()
    except (TcpcryptError, KeyError, TypeError) as error:
        return type(error).__name__, getattr(error, "reason", ""), str(error)
    return "ok", repr(result), type(result).__name__


def state(opener: FrameOpener) -> tuple[int, int, int]:
    return opener.offset, opener.generation, opener.buffered


def forge(aead: str, generation: int, offset: int, plaintext: bytes) -> bytes:
    """A frame sealed by hand (any control byte) under Keys' key of `generation`."""
    header = (len(plaintext) + 16).to_bytes(2, "big")
    key = bytes([generation + 1]) * aead_by_name(aead).key_length
    return header + aead_by_name(aead).new(key).encrypt(frame_nonce(offset), plaintext, header)


def test_frame_sealer_and_opener_construct_the_c_classes_when_built() -> None:
    spec, keys = aead_by_name("aes-128-gcm"), Keys("aes-128-gcm")
    sealer, opener = FrameSealer(spec, keys), FrameOpener(spec, keys)
    assert isinstance(sealer, native.frame_sealer) and isinstance(sealer, FrameSealer)
    assert isinstance(opener, native.frame_opener) and isinstance(opener, FrameOpener)
    assert not isinstance(PureFrameSealer(spec, keys), native.frame_sealer)
    assert not isinstance(PureFrameOpener(spec, keys), native.frame_opener)
    assert type(sealer).seal_stream is native.frame_sealer.seal_stream  # one C call
    assert type(opener).feed is native.frame_opener.feed


@pytest.mark.parametrize("aead", AEAD_NAMES)
@pytest.mark.parametrize("limit", [1, 64, 16384, MAX_FRAME_PLAINTEXT])
def test_streams_of_every_size_are_the_same_frames(aead: str, limit: int) -> None:
    python, c, python_keys, c_keys = sealers(aead, limit)
    sizes = sorted({0, 1, 2, limit - 1, limit, limit + 1, 2 * limit, 2 * limit + 1, 3 * limit - 1})
    for index, size in enumerate(size for size in sizes if size >= 0):
        data = os.urandom(size)
        for rekey in (False, True):
            ours = c.seal_stream(memoryview(data), rekey)
            assert ours == python.seal_stream(data, rekey=rekey)
            assert type(ours) is bytearray
            frames = -(-size // limit) or (1 if rekey else 0)
            assert len(ours) == size + frames * FRAME_OVERHEAD
        assert (c.offset, c.generation) == (python.offset, python.generation), index
    assert c_keys.asked == python_keys.asked
    assert c.max_frame_plaintext == python.max_frame_plaintext == limit


@pytest.mark.parametrize("aead", AEAD_NAMES)
def test_single_frames_with_rekeys_are_the_same_bytes(aead: str) -> None:
    python, c, python_keys, c_keys = sealers(aead)
    for index in range(30):
        data, rekey = bytes([index]) * (index * 3 % 65), index % 4 == 3
        ours = c.seal(bytearray(data), rekey=rekey)
        assert type(ours) is bytes
        assert ours == python.seal(data, rekey)
    assert c.generation == python.generation == 7
    assert c_keys.asked == python_keys.asked == list(range(8))


def rekeyed_stream(aead: str, limit: int = 64) -> tuple[bytes, list[bytes]]:
    """A stream of frames from several seal_stream calls with rekeys, and the data sent."""
    python, _, _, _ = sealers(aead, limit)
    stream, sent = bytearray(), []
    for index, size in enumerate((5, 200, 0, 64, 1000, 0, 1, 129)):
        data = os.urandom(size)
        stream += python.seal_stream(data, rekey=index in (2, 3, 5, 7))
        sent.append(data)
    return bytes(stream), sent


@pytest.mark.parametrize("aead", AEAD_NAMES)
def test_both_openers_deliver_the_same_from_one_stream_with_rekeys(aead: str) -> None:
    stream, sent = rekeyed_stream(aead)
    python, c, python_keys, c_keys = openers(aead)
    ours = c.feed(stream)
    assert ours == python.feed(stream)
    assert all(type(chunk) is bytearray for chunk in ours)
    assert b"".join(ours) == b"".join(sent)
    assert state(c) == state(python) == (len(stream), 4, 0)
    assert c_keys.asked == python_keys.asked


@pytest.mark.parametrize("aead", AEAD_NAMES)
def test_feeding_one_byte_at_a_time_delivers_the_same_in_step(aead: str) -> None:
    stream, sent = rekeyed_stream(aead)
    python, c, _, _ = openers(aead)
    received = bytearray()
    for position in range(len(stream)):
        byte = stream[position : position + 1]
        ours = c.feed(byte)
        assert ours == python.feed(byte)
        assert state(c) == state(python), position
        received += b"".join(ours)
    assert c.feed(b"") == python.feed(b"") == []
    assert received == b"".join(sent)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(AEAD_NAMES), st.lists(st.integers(0, 2000), max_size=12))
def test_any_cut_of_the_stream_delivers_the_same(aead: str, cuts: list[int]) -> None:
    stream, sent = rekeyed_stream(aead)
    python, c, _, _ = openers(aead)
    bounds = [0, *sorted(cut % (len(stream) + 1) for cut in cuts), len(stream)]
    received = bytearray()
    for start, end in zip(bounds, bounds[1:], strict=False):
        ours = c.feed(stream[start:end])
        assert ours == python.feed(stream[start:end])
        assert state(c) == state(python)
        received += b"".join(ours)
    assert received == b"".join(sent)


def bad_inputs(aead: str) -> dict[str, tuple[str, bytes, int]]:
    """Per case: (the reason, the bytes to feed after one good frame, the opener's limit)."""
    good = forge(aead, 0, 0, b"\x00good")
    at = len(good)
    tampered = bytearray(forge(aead, 0, at, b"\x00tampered"))
    tampered[5] ^= 0x40
    return {
        "too-short": ("frame-too-short", b"\x00\x10", 0xFFFF),
        "too-long": ("frame-too-long", b"\x00\x52", 0x51),
        "tampered": ("bad-tag", bytes(tampered), 0xFFFF),
        "two-generations-ahead": ("bad-tag", forge(aead, 2, at, b"\x01late"), 0xFFFF),
        "flag-under-current-key": ("bad-rekey", forge(aead, 0, at, b"\x01abc"), 0xFFFF),
        "next-key-without-flag": ("bad-rekey", forge(aead, 1, at, b"\x00abc"), 0xFFFF),
        "reserved-bits": ("reserved-control-bits", forge(aead, 0, at, b"\x02abc"), 0xFFFF),
        "reserved-bits-next-key": ("reserved-control-bits", forge(aead, 1, at, b"\x81a"), 0xFFFF),
    }


@pytest.mark.parametrize("aead", AEAD_NAMES)
@pytest.mark.parametrize("case", list(bad_inputs("aes-128-gcm")))
@pytest.mark.parametrize("pieces", [1, 3])
def test_every_error_is_the_same_and_leaves_a_dead_opener_having_delivered_nothing(
    aead: str, case: str, pieces: int
) -> None:
    reason, bad, limit = bad_inputs(aead)[case]
    stream = forge(aead, 0, 0, b"\x00good") + bad
    python, c, python_keys, c_keys = openers(aead, limit)
    # The stream in `pieces` calls; the last one fails, and delivers nothing.
    cut = [len(stream) * index // pieces for index in range(pieces + 1)]
    results = []
    for opener in (python, c):
        results.append([outcome(lambda o=opener, a=a, b=b: o.feed(stream[a:b]))
                        for a, b in zip(cut, cut[1:], strict=False)])
    assert results[0] == results[1]
    failed = results[1][-1]
    assert failed[0] in ("DecodeError", "AuthenticationError", "PeerError")
    assert failed[1] == reason
    assert all(result[0] == "ok" for result in results[1][:-1])
    assert state(c) == state(python)
    assert c.buffered == 0
    assert c_keys.asked == python_keys.asked
    for opener in (python, c):  # dead from then on
        assert outcome(lambda o=opener: o.feed(b""))[0] == "UsageError"
    assert outcome(lambda: c.feed(b"x")) == outcome(lambda: python.feed(b"x"))


@pytest.mark.parametrize("aead", AEAD_NAMES)
def test_frames_completed_before_a_tampered_one_in_the_same_call_are_not_delivered(
    aead: str
) -> None:
    python_sealer, c_sealer, _, _ = sealers(aead)
    data = os.urandom(300)
    stream = c_sealer.seal_stream(data)
    assert stream == python_sealer.seal_stream(data)
    stream[-1] ^= 1  # the last of five frames
    python, c, _, _ = openers(aead)
    failed = outcome(lambda: c.feed(stream))
    assert failed == outcome(lambda: python.feed(stream))
    assert failed[:2] == ("AuthenticationError", "bad-tag")
    assert c.offset == python.offset == 4 * (64 + FRAME_OVERHEAD)  # opened, not delivered
    assert outcome(lambda: c.feed(stream))[0] == "UsageError"


def test_the_opener_limit_is_an_attribute_both_check_on_every_frame() -> None:
    stream, _ = rekeyed_stream("aes-128-gcm")
    python, c, _, _ = openers("aes-128-gcm")
    assert c.max_ciphertext_length == python.max_ciphertext_length == 0xFFFF
    assert c.feed(stream[:1]) == python.feed(stream[:1])
    c.max_ciphertext_length = python.max_ciphertext_length = 20  # the first frame is 22
    assert outcome(lambda: c.feed(stream[1:])) == outcome(lambda: python.feed(stream[1:]))
    assert c.max_ciphertext_length == 20


def test_the_nonce_space_limit_is_the_same_on_both_sides() -> None:
    python, c, _, _ = sealers("chacha20-poly1305")
    for sealer in (python, c):
        sealer._offset = LAST_OFFSET - 30
    # The first frame starts inside the nonce space, the second would not.
    first = [outcome(lambda s=s: s.seal_stream(bytes(100))) for s in (python, c)]
    assert first[0] == first[1]
    assert first[1][:2] == ("UsageError", "")
    assert "nonce space is exhausted" in first[1][2]
    assert c.offset == python.offset == LAST_OFFSET - 30 + 64 + FRAME_OVERHEAD
    assert outcome(lambda: c.seal(b"")) == outcome(lambda: python.seal(b""))
    sealer, _, _, _ = sealers("chacha20-poly1305")
    sealer._offset = LAST_OFFSET - 18
    last = sealer.seal(b"")  # a frame may start at the last offset there is... and end past it
    assert frame_nonce(LAST_OFFSET - 18)[4:] == (LAST_OFFSET - 18).to_bytes(8, "big")
    python_opener, c_opener, _, _ = openers("chacha20-poly1305")
    for opener in (python_opener, c_opener):
        opener._offset = LAST_OFFSET - 18
    assert c_opener.feed(last) == python_opener.feed(last) == [b""]
    assert c_opener.offset == python_opener.offset == LAST_OFFSET + 1
    late = outcome(lambda: c_opener.feed(last))
    assert late == outcome(lambda: python_opener.feed(last))
    assert late[:2] == ("PeerError", "nonce-space-exhausted")


def test_usage_errors_are_the_same() -> None:
    spec, keys = aead_by_name("aes-128-gcm"), Keys("aes-128-gcm")
    for limit in (0, -1, MAX_FRAME_PLAINTEXT + 1, 1 << 70):
        assert outcome(lambda n=limit: FrameSealer(spec, keys, n)) == outcome(
            lambda n=limit: PureFrameSealer(spec, keys, n))
    for limit in (16, 0x10000, 1 << 70):
        assert outcome(lambda n=limit: FrameOpener(spec, keys, n)) == outcome(
            lambda n=limit: PureFrameOpener(spec, keys, n))
    python, c, _, _ = sealers("aes-128-gcm", 64)
    assert outcome(lambda: c.seal(bytes(65))) == outcome(lambda: python.seal(bytes(65)))
    assert outcome(lambda: c.seal(bytes(65)))[0] == "UsageError"
    assert outcome(lambda: FrameSealer(aead_by_name("aes-256-gcm"), keys))[0] == "UsageError"


def test_a_failing_keys_call_propagates_the_same_way() -> None:
    spec = aead_by_name("aes-256-gcm")
    failing_python, failing_c = Keys("aes-256-gcm", 1), Keys("aes-256-gcm", 1)
    python, c = PureFrameSealer(spec, failing_python, 64), FrameSealer(spec, failing_c, 64)
    assert outcome(lambda: c.seal_stream(b"x", True)) == outcome(
        lambda: python.seal_stream(b"x", True))
    assert (c.generation, c.offset) == (python.generation, python.offset) == (1, 0)
    stream, _ = rekeyed_stream("aes-256-gcm")
    python_opener, c_opener, _, _ = openers("aes-256-gcm", fail_from=1)
    ours = outcome(lambda: c_opener.feed(stream))
    assert ours == outcome(lambda: python_opener.feed(stream))
    assert ours[0] == "KeyError"
    assert state(c_opener) == state(python_opener)
    # Not a peer's error: the opener is not dead (as in Python), its pending bytes are gone.
    assert outcome(lambda: c_opener.feed(b"")) == outcome(lambda: python_opener.feed(b""))


def test_the_c_classes_take_only_the_c_aead_objects() -> None:
    spec = aead_by_name("aes-128-gcm")
    original = spec.factory
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    object.__setattr__(spec, "factory", AESGCM)
    try:
        error = outcome(lambda: FrameSealer(spec, Keys("aes-128-gcm")))
    finally:
        object.__setattr__(spec, "factory", original)
    assert error[0] == "TypeError" and "C AEAD objects" in error[2]


def test_the_c_objects_are_collected_with_their_cycles() -> None:
    spec = aead_by_name("aes-128-gcm")
    opener_keys, sealer_keys = Keys("aes-128-gcm"), Keys("aes-128-gcm")
    opener, sealer = FrameOpener(spec, opener_keys), FrameSealer(spec, sealer_keys)
    opener_keys.owner, sealer_keys.owner = opener, sealer  # each -> its keys -> itself
    assert opener.feed(sealer.seal_stream(b"cycle")[:7]) == []  # some bytes pending
    dead = [weakref.ref(opener), weakref.ref(sealer)]
    del opener, sealer, opener_keys, sealer_keys
    gc.collect()
    assert [reference() for reference in dead] == [None, None]


def test_a_keys_callback_cannot_feed_the_opener_it_serves() -> None:
    spec = aead_by_name("aes-128-gcm")
    keys = Keys("aes-128-gcm")
    stream, _ = rekeyed_stream("aes-128-gcm")
    served: list[FrameOpener] = []

    def feeding_keys(generation: int) -> bytes:
        if served:
            served[0].feed(b"")
        return keys(generation)

    served.append(FrameOpener(spec, feeding_keys))
    failed = outcome(lambda: served[0].feed(stream))
    assert failed[0] == "UsageError" and "inside feed" in failed[2]
    assert keys.asked == [0]  # refused in the first next-key lookup, before its key
