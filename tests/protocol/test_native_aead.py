"""The C fast path's AEAD objects (`tcpcrypt.native.aead_cipher`, used by `tcpcrypt.aead` for
frames) against `cryptography`'s AESGCM and ChaCha20Poly1305: the same ciphertext and tag for
the same key, nonce, data and associated data, the same plaintext back, InvalidTag for any
changed byte (with nothing of the forged plaintext left in the buffer), objects reused for
many operations, and whole framed streams identical whichever objects seal and open them (the
Python frame classes here; tests/protocol/test_native_frames.py compares the C ones)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcrypt import native
from tcpcrypt.aead import AEADS, AeadSpec, aead_by_name
from tcpcrypt.frames import PureFrameOpener, PureFrameSealer

KINDS: list[tuple[int, int, Callable[[bytes], Any]]] = [
    (0, 16, AESGCM), (0, 32, AESGCM), (1, 32, ChaCha20Poly1305)]


@pytest.fixture(autouse=True)
def built() -> None:
    if os.environ.get("TCPCRYPT_PURE_PYTHON"):
        pytest.skip("TCPCRYPT_PURE_PYTHON is set")
    assert native.aead_cipher is not None, (
        f"the C AEAD is not built: {native.unavailable_reason} (make setup builds it)")


def _native(kind: int, key: bytes) -> Any:
    assert native.aead_cipher is not None
    return native.aead_cipher(kind, key)


def test_the_aead_table_uses_the_c_objects_when_built() -> None:
    for spec in AEADS:
        assert type(spec.new(bytes(spec.key_length))).__name__ == "Aead"


@settings(max_examples=60)
@given(st.sampled_from(range(len(KINDS))), st.binary(min_size=32, max_size=32),
       st.binary(min_size=12, max_size=12), st.binary(max_size=300), st.binary(max_size=20))
def test_c_and_cryptography_seal_and_open_the_same_bytes(
    which: int, key: bytes, nonce: bytes, data: bytes, ad: bytes
) -> None:
    kind, length, reference = KINDS[which]
    ours, theirs = _native(kind, key[:length]), reference(key[:length])
    sealed = theirs.encrypt(nonce, data, ad)
    assert ours.encrypt(nonce, data, ad) == sealed
    assert ours.decrypt(nonce, sealed, ad) == data
    into = bytearray(len(data) + 16)
    assert ours.encrypt_into(nonce, data, ad, into) == len(into)
    assert bytes(into) == sealed
    plain = bytearray(len(data))
    assert ours.decrypt_into(nonce, memoryview(into), ad, plain) == len(data)
    assert plain == data
    assert ours.encrypt(nonce, data, None) == theirs.encrypt(nonce, data, None)


@pytest.mark.parametrize("which", range(len(KINDS)))
def test_any_changed_byte_raises_invalid_tag_and_leaves_no_plaintext(which: int) -> None:
    kind, length, reference = KINDS[which]
    key, nonce, data, ad = os.urandom(length), os.urandom(12), b"secret data!" * 3, b"\x00\x25"
    ours = _native(kind, key)
    sealed = reference(key).encrypt(nonce, data, ad)
    for position in (0, len(data) // 2, len(sealed) - 1):
        forged = bytearray(sealed)
        forged[position] ^= 0x01
        plain = bytearray(len(data))
        with pytest.raises(InvalidTag):
            ours.decrypt_into(nonce, bytes(forged), ad, plain)
        assert plain == bytes(len(data))
        with pytest.raises(InvalidTag):
            ours.decrypt(nonce, bytes(forged), ad)
    with pytest.raises(InvalidTag):
        ours.decrypt(nonce, sealed, b"\x00\x26")  # other associated data
    with pytest.raises(InvalidTag):
        ours.decrypt(nonce, sealed[:15], ad)  # shorter than a tag
    assert ours.decrypt(nonce, sealed, ad) == data  # still usable after failures


@pytest.mark.parametrize("length", [8, 12, 16, 12, 8])
def test_aes_gcm_takes_the_nonce_lengths_cryptography_takes(length: int) -> None:
    key, data = bytes(range(16)), b"the drafts' frames use 8-byte nonces"
    ours, theirs = _native(0, key), AESGCM(key)
    for size in (length, 12, length):  # one object, the nonce length changing between calls
        nonce = bytes(range(size))
        assert ours.encrypt(nonce, data, b"h") == theirs.encrypt(nonce, data, b"h")
        assert ours.decrypt(nonce, theirs.encrypt(nonce, data, b"h"), b"h") == data


def test_one_object_serves_many_operations_with_fresh_nonces() -> None:
    key = os.urandom(16)
    ours, theirs = _native(0, key), AESGCM(key)
    for index in range(300):
        nonce = index.to_bytes(12, "big")
        data = os.urandom(index)
        assert ours.encrypt(nonce, data, b"ad") == theirs.encrypt(nonce, data, b"ad")
        assert ours.decrypt(nonce, theirs.encrypt(nonce, data, b"ad"), b"ad") == data


def test_bad_keys_nonces_and_buffers_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="16- or 32-byte key"):
        _native(0, bytes(24))
    with pytest.raises(ValueError, match="32-byte key"):
        _native(1, bytes(16))
    cipher = _native(0, bytes(16))
    with pytest.raises(ValueError, match="8 to 128 bytes"):
        cipher.encrypt(bytes(7), b"data", None)
    with pytest.raises(ValueError, match="12 bytes"):
        _native(1, bytes(32)).encrypt(bytes(8), b"data", None)
    with pytest.raises(ValueError, match="must be 20 bytes"):
        cipher.encrypt_into(bytes(12), b"data", None, bytearray(19))


def _frames(spec: AeadSpec, new: Callable[[bytes], Any], chunks: list[bytes]) -> bytes:
    original = spec.factory
    object.__setattr__(spec, "factory", new)
    try:
        sealer = PureFrameSealer(spec, lambda generation: bytes([generation]) * spec.key_length, 64)
        out = b"".join(sealer.seal_stream(chunk, rekey=index == 2)
                       for index, chunk in enumerate(chunks))
        opener = PureFrameOpener(spec, lambda generation: bytes([generation]) * spec.key_length)
        assert b"".join(opener.feed(out)) == b"".join(chunks)
        return out
    finally:
        object.__setattr__(spec, "factory", original)


@pytest.mark.parametrize("name", ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"])
def test_framed_streams_with_a_rekey_are_identical_either_way(name: str) -> None:
    spec = aead_by_name(name)
    reference = ChaCha20Poly1305 if name.startswith("chacha") else AESGCM
    chunks = [os.urandom(size) for size in (5, 200, 0, 64, 1000)]
    assert _frames(spec, spec.factory, chunks) == _frames(spec, reference, chunks)
