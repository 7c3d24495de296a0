"""The daemon's connect and accept helpers over real loopback sockets, under asyncio and uvloop:
a local connect completes (often inside connect() itself), a refused one and one that never
completes fail with their reasons, and an acceptor hands over every waiting connection with
its peer's address. No root needed."""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from tcpcrypt.daemon.socket_calls import Acceptor, connect, stream_socket

Runner = Callable[[Coroutine[Any, Any, None]], None]
RUNNERS: dict[str, Runner] = {"asyncio": asyncio.run, "uvloop": uvloop.run}


@pytest.fixture(params=sorted(RUNNERS))
def run_loop(request: pytest.FixtureRequest) -> Runner:
    return RUNNERS[request.param]


def test_stream_socket_is_non_blocking_from_its_first_call() -> None:
    with stream_socket() as sock:
        assert sock.gettimeout() == 0.0
        assert sock.type == socket.SOCK_STREAM


@pytest.mark.parametrize("local", [True, False])
def test_connect_to_a_listening_server_completes(run_loop: Runner, local: bool) -> None:
    async def main() -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener, stream_socket() as sock:
            await connect(sock, listener.getsockname(), 5.0, local=local)
            assert sock.getpeername() == listener.getsockname()
            accepted, _ = listener.accept()
            accepted.close()

    run_loop(main())


def test_connect_refused_raises_the_reason(run_loop: Runner) -> None:
    async def main() -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            address = listener.getsockname()
        with stream_socket() as sock, pytest.raises(OSError) as caught:
            await connect(sock, address, 5.0, local=True)
        assert caught.value.errno == errno.ECONNREFUSED

    run_loop(main())


def test_connect_that_never_completes_times_out(run_loop: Runner) -> None:
    async def main() -> None:
        # a full accept queue: the kernel drops further SYNs, so the handshake never ends
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(0)
            fillers = [stream_socket() for _ in range(3)]
            for filler in fillers:
                filler.connect_ex(listener.getsockname())
            with stream_socket() as sock, pytest.raises(TimeoutError):
                await connect(sock, listener.getsockname(), 0.3, local=True)
            for filler in fillers:
                filler.close()

    run_loop(main())


def test_acceptor_hands_over_every_waiting_connection_with_its_peer(run_loop: Runner) -> None:
    async def main() -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.setblocking(False)
            clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
            got: list[tuple[socket.socket, tuple[str, int]]] = []
            errors: list[OSError] = []
            acceptor = Acceptor(listener, lambda sock, peer: got.append((sock, peer)),
                                errors.append)
            acceptor.start()
            for _ in range(100):
                if len(got) == 3:
                    break
                await asyncio.sleep(0.01)
            acceptor.stop()
            assert sorted(peer for _, peer in got) == sorted(c.getsockname() for c in clients)
            assert not errors
            late = socket.create_connection(listener.getsockname())
            await asyncio.sleep(0.05)
            assert len(got) == 3  # stopped: no longer accepting
            for sock, _ in got:
                sock.close()
            for client in [*clients, late]:
                client.close()

    run_loop(main())


def test_acceptor_rests_after_running_out_of_descriptors_then_resumes(run_loop: Runner) -> None:
    async def main() -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.setblocking(False)
            clients = [socket.create_connection(listener.getsockname()) for _ in range(2)]
            got: list[socket.socket] = []
            errors: list[OSError] = []
            acceptor = Acceptor(listener, lambda sock, _peer: got.append(sock), errors.append)
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            lowest_free = os.open(os.devnull, os.O_RDONLY)  # the next descriptor's number
            os.close(lowest_free)
            resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # none left
            try:
                acceptor.start()
                for _ in range(100):
                    if errors:
                        break
                    await asyncio.sleep(0.01)
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            assert [error.errno for error in errors] == [errno.EMFILE]
            assert not got
            for _ in range(100):  # after ACCEPT_RETRY_S the listener is read again
                if len(got) == 2:
                    break
                await asyncio.sleep(0.01)
            acceptor.stop()
            assert len(got) == 2
            for sock in [*got, *clients]:
                sock.close()

    run_loop(main())
