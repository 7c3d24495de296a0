"""The CMAC and PAKE bodies: round trips, every wrong size refused, and role labels that make
the two directions' proofs differ; a silent peer is a timeout."""

from __future__ import annotations

import os
import socket
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tcpcrypt.auth import Role, authenticate_cmac
from tcpcrypt.auth.cmac import cmac_tag, encode_cmac_body, key_id, parse_cmac_body
from tcpcrypt.auth.errors import AuthConfigError, AuthTimeout, MessageMalformed
from tcpcrypt.auth.pake import confirmation, parse_confirmation

SID = b"\x23" + bytes(range(32))


@given(st.binary(min_size=16, max_size=16), st.sampled_from(list(Role)))
def test_cmac_body_round_trips(psk: bytes, role: Role) -> None:
    assert parse_cmac_body(encode_cmac_body(psk, role, SID)) == (
        key_id(psk), cmac_tag(psk, role, SID))


@given(st.binary(max_size=60).filter(lambda body: len(body) != 24))
def test_cmac_bodies_of_any_other_size_are_malformed(body: bytes) -> None:
    with pytest.raises(MessageMalformed):
        parse_cmac_body(body)


@given(st.binary(max_size=100).filter(lambda body: len(body) != 64))
def test_pake_confirmations_of_any_other_size_are_malformed(body: bytes) -> None:
    with pytest.raises(MessageMalformed):
        parse_confirmation(body)


def test_role_and_session_id_each_change_every_proof() -> None:
    psk, key = os.urandom(16), os.urandom(32)
    other = SID[:-1] + b"\x00"
    assert cmac_tag(psk, Role.CLIENT, SID) != cmac_tag(psk, Role.SERVER, SID)
    assert cmac_tag(psk, Role.CLIENT, SID) != cmac_tag(psk, Role.CLIENT, other)
    client, server = confirmation(key, Role.CLIENT, SID), confirmation(key, Role.SERVER, SID)
    assert client[:32] != server[:32] and client[32:] != server[32:]
    assert confirmation(key, Role.CLIENT, other)[:32] == client[:32]  # password tag: no SID
    assert confirmation(key, Role.CLIENT, other)[32:] != client[32:]


def test_a_psk_that_is_not_an_aes_key_is_refused_before_anything_is_sent() -> None:
    a, b = socket.socketpair()
    with pytest.raises(AuthConfigError):
        authenticate_cmac(a, b"short", Role.CLIENT, session_id=lambda: SID)
    a.close()
    b.close()


def test_a_silent_peer_is_a_timeout_and_the_connection_is_closed() -> None:
    a, b = socket.socketpair()
    drained = threading.Thread(target=lambda: b.recv(100), daemon=True)
    drained.start()
    with pytest.raises(AuthTimeout):
        authenticate_cmac(a, os.urandom(16), Role.CLIENT, session_id=lambda: SID, timeout=0.2)
    assert a.fileno() == -1
    b.close()
