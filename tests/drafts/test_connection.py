"""Two sans-IO drafts endpoints: a full exchange in memory, and what each refuses."""

from __future__ import annotations

import pytest

from tcpcrypt.drafts import eno03, handshake
from tcpcrypt.drafts.connection import DraftConnection
from tcpcrypt.errors import PeerError
from tcpcrypt.randomness import seeded_random

SYN = eno03.encode_option([0x21, 0x22])
SYNACK = eno03.encode_option([0x21])


def _pair() -> tuple[DraftConnection, DraftConnection]:
    a = DraftConnection("A", SYN, SYNACK, aeads=(0x01, 0x02), random=seeded_random(2))
    b = DraftConnection("B", SYN, SYNACK, aeads=(0x02, 0x01), random=seeded_random(3))
    return a, b


def test_full_exchange_gives_one_session_id_and_data_both_ways() -> None:
    a, b = _pair()
    a.send(b"early data waits for the keys")
    b.receive(a.data_to_send())
    b.send(b"from B")
    a.receive(b.data_to_send())
    assert a.established and b.established
    assert a.session_id == b.session_id and a.session_id is not None
    assert a.session_id[0] == 0x21 and a.aead == b.aead == 0x02
    assert a.read() == b"from B"
    a.send(b"x" * 5000)
    b.receive(a.data_to_send())
    assert b.read() == b"early data waits for the keys" + b"x" * 5000


def test_init_arriving_byte_by_byte_is_assembled() -> None:
    a, b = _pair()
    for byte in a.data_to_send():
        b.receive(bytes((byte,)))
    assert b.established


def test_a_refuses_an_aead_it_did_not_offer() -> None:
    a = DraftConnection("A", SYN, SYNACK, aeads=(0x01,), random=seeded_random(2))
    a.data_to_send()
    _, point = handshake.draft_suite(0x21).a_start(seeded_random(3))
    with pytest.raises(PeerError, match="unknown-aead"):
        a.receive(handshake.encode_init2(0x02, bytes(32), point))


def test_different_transcripts_give_different_session_ids() -> None:
    a = DraftConnection("A", SYN, SYNACK, random=seeded_random(2))
    b = DraftConnection("B", eno03.encode_option([0x21]), SYNACK, random=seeded_random(3))
    b.receive(a.data_to_send())
    a.receive(b.data_to_send())
    assert a.session_id != b.session_id
