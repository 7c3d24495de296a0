"""The library's shape rules that hold before the kernel is involved (no root needed)."""

from __future__ import annotations

import socket

import pytest

import tcpcrypt
from tcpcrypt.errors import UsageError
from tcpcrypt.kernel.api import before_connect
from tcpcrypt.kernel.records import decode_sock, encode_active, encode_listener


def test_wrapping_a_connected_socket_says_to_wrap_before_connect() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    try:
        with pytest.raises(UsageError, match="before connect"):
            tcpcrypt.TcpcryptContext().wrap_socket(client)
    finally:
        client.close()
        listener.close()


def test_a_client_wraps_only_a_socket_that_has_not_started_connecting_or_listening() -> None:
    fresh = socket.socket()
    bound = socket.socket()
    bound.bind(("127.0.0.1", 0))
    listening = socket.create_server(("127.0.0.1", 0))
    try:
        assert before_connect(fresh) and before_connect(bound)
        assert not before_connect(listening)
        with pytest.raises(UsageError, match="before connect"):
            tcpcrypt.TcpcryptContext().wrap_socket(listening)
    finally:
        for sock in (fresh, bound, listening):
            sock.close()


def test_wrapping_a_listening_socket_says_to_wrap_before_listen() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        with pytest.raises(UsageError, match="before calling listen"):
            tcpcrypt.TcpcryptContext().wrap_socket(listener, server_side=True)
    finally:
        listener.close()


def test_only_tcp_sockets_are_wrapped() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(UsageError, match="TCP sockets"):
            tcpcrypt.wrap_socket(udp)
    finally:
        udp.close()


def test_a_bad_suite_is_refused_when_the_context_is_made() -> None:
    with pytest.raises(UsageError):
        tcpcrypt.TcpcryptContext(suites=["nope"])


def test_kernel_records_round_trip_and_refuse_bad_options() -> None:
    record = decode_sock(encode_active(bytes([69, 4, 0x23, 0x21])))
    assert (record.mode, record.state, record.syn_option) == ("A", "idle", bytes([69, 4, 0x23,
                                                                                  0x21]))
    assert decode_sock(encode_listener([0x23])).mode == "B-listen"
    for bad in (bytes([69, 5, 0x23]), bytes([70, 3, 0x23]), bytes([69]), bytes([69, 41]) +
                bytes(39)):
        with pytest.raises(UsageError):
            encode_active(bad)
    with pytest.raises(UsageError):
        encode_listener([0x10])
