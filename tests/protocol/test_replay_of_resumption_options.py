"""B's replay of a kernel-decided negotiation whose options carry TEP data (resumption): the
remembered verdict of the data-zeroed shape gives exactly what the general endpoint gives
for the real options, including every refusal."""

from __future__ import annotations

import os

import pytest

from tcpcrypt.eno_negotiation import _replay_decided_b, replay_decided_b

X25519, P256 = 0x23, 0x21
V = 0x80


def _option(*body: int | bytes) -> bytes:
    raw = b"".join(bytes((item,)) if isinstance(item, int) else item for item in body)
    return bytes((69, 2 + len(raw))) + raw


def _cases() -> list[tuple[str, bytes, bytes]]:
    a_id, b_id = os.urandom(9), os.urandom(9)
    return [
        ("resumed", _option(X25519 | V, a_id), _option(0x01, X25519 | V, b_id)),
        ("resumed-after-plain-offers", _option(P256, X25519 | V, a_id),
         _option(0x01, X25519 | V, b_id)),
        ("plain-offer-of-the-same-tep-first", _option(X25519, X25519 | V, a_id),
         _option(0x01, X25519 | V, b_id)),
        ("a-global-suboption-first", _option(0x00, X25519 | V, a_id),
         _option(0x01, X25519 | V, b_id)),
        ("tep-not-offered", _option(X25519 | V, a_id), _option(0x01, P256 | V, b_id)),
        ("b-bit-from-a-too", _option(0x01, X25519 | V, a_id), _option(0x01, X25519 | V, b_id)),
        ("synack-without-b-bit", _option(X25519 | V, a_id), _option(0x00, X25519 | V, b_id)),
        ("synack-without-global", _option(X25519 | V, a_id), _option(X25519 | V, b_id)),
        ("data-only-at-b", _option(X25519), _option(0x01, X25519 | V, b_id)),
        ("empty-data-at-b", _option(X25519 | V, a_id), _option(0x01, X25519 | V)),
        ("two-global-suboptions", _option(X25519 | V, a_id),
         _option(0x01, 0x01, X25519 | V, b_id)),
        ("length-byte-in-syn", _option(0x88, X25519 | V, a_id), _option(0x01, X25519 | V, b_id)),
    ]


@pytest.mark.parametrize("name", [case[0] for case in _cases()])
def test_replay_with_tep_data_matches_the_general_endpoint(name: str) -> None:
    for _ in range(3):  # fresh identifiers each round: the remembered verdict is reused
        _, syn, synack = next(case for case in _cases() if case[0] == name)
        assert replay_decided_b(syn, synack) == _replay_decided_b(syn, synack)


def test_a_resumed_replay_carries_this_connections_identifiers_and_transcript() -> None:
    for _ in range(3):
        a_id, b_id = os.urandom(9), os.urandom(9)
        syn, synack = _option(P256, X25519 | V, a_id), _option(0x01, X25519 | V, b_id)
        result = replay_decided_b(syn, synack)
        assert not isinstance(result, str)
        assert (result.tep, result.a_data, result.b_data) == (X25519, a_id, b_id)
        assert result.transcript == syn + synack
