"""Message framing: round trips fed whole and byte by byte, and every kind of bad input
mapped to its own error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tcpcrypt.auth.errors import MessageMalformed, MessageTruncated, PeerRejected
from tcpcrypt.auth.wire import (
    MAX_BODY,
    BodyReader,
    MessageType,
    encode_message,
    prefixed,
    receive_message,
)

from .byte_stream import ByteStream


@given(st.sampled_from([t for t in MessageType if t is not MessageType.REJECT]),
       st.binary(max_size=300), st.integers(1, 7))
def test_message_round_trips_in_any_chunking(kind: MessageType, body: bytes, step: int) -> None:
    stream = ByteStream(encode_message(kind, body) + b"next", step)
    assert receive_message(stream, kind) == body
    assert bytes(stream.incoming) == b"next"  # nothing read past the message


def test_every_proper_prefix_of_a_message_is_truncated() -> None:
    message = encode_message(MessageType.CMAC_TAG, bytes(range(24)))
    for cut in range(len(message)):
        with pytest.raises(MessageTruncated):
            receive_message(ByteStream(message[:cut]), MessageType.CMAC_TAG)


@pytest.mark.parametrize("header", [
    b"\x02\x01\x00\x00",  # unknown version
    b"\x01\x42\x00\x00",  # unknown type
    b"\x01\x01\xff\xff",  # longer than MAX_BODY
    b"GET ",  # an HTTP request is garbage here
    b"\x16\x03\x01\x00",  # so is a TLS record
])
def test_a_header_that_is_not_ours_is_malformed(header: bytes) -> None:
    with pytest.raises(MessageMalformed):
        receive_message(ByteStream(header + bytes(64)), MessageType.CMAC_TAG)


def test_a_message_of_another_type_is_malformed() -> None:
    with pytest.raises(MessageMalformed, match="expected CMAC_TAG"):
        receive_message(ByteStream(encode_message(MessageType.PAKE_MESSAGE, b"x")),
                        MessageType.CMAC_TAG)


def test_a_reject_becomes_peer_rejected_with_its_reason() -> None:
    with pytest.raises(PeerRejected, match="wrong-psk"):
        receive_message(ByteStream(encode_message(MessageType.REJECT, b"wrong-psk")),
                        MessageType.CMAC_TAG)


def test_an_oversized_body_is_refused_when_encoding() -> None:
    with pytest.raises(ValueError):
        encode_message(MessageType.CMAC_TAG, bytes(MAX_BODY + 1))


def test_body_reader_refuses_short_fields_and_trailing_bytes() -> None:
    reader = BodyReader(prefixed(b"abc") + b"\x00\x07")
    assert reader.prefixed("field") == b"abc"
    assert reader.u16("number") == 7
    reader.finish()
    with pytest.raises(MessageMalformed, match="too short"):
        BodyReader(b"\x00\x05abc").prefixed("field")
    trailing = BodyReader(b"ab")
    trailing.take(1, "one byte")
    with pytest.raises(MessageMalformed, match="trailing"):
        trailing.finish()
