"""WSGI over real loopback tcpcrypt: the middleware exposes the connection's session ID (absent
on plain TCP), the demo logs a user in with a session-bound password proof, and refuses a wrong
password, a relay in the middle, a proof replayed on another connection, and plain TCP. ASGI:
the scope gets the ID from the server's extension, and no key without one."""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tcpcrypt.auth.demo_login import LoginDemo, login_proof, password_key
from tcpcrypt.auth.loopback import MitmRelay, connect_inband
from tcpcrypt.auth.web import (
    ENV_KEY,
    SessionIdASGIMiddleware,
    SessionIdMiddleware,
    TcpcryptWSGIServer,
)
from tcpcrypt.inband import InbandTcpcryptSocket

Address = tuple[str, int]


class TcpcryptHTTPConnection(http.client.HTTPConnection):
    """http.client over an in-band tcpcrypt connection (the session ID stays readable)."""

    session_id = b""

    def connect(self) -> None:
        sock: InbandTcpcryptSocket = connect_inband((self.host, self.port or 80))
        self.sock = sock
        self.session_id = sock.getsessid() or b""


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[Address, LoginDemo]]:
    app = LoginDemo({"alice": "wonderland"})
    server = TcpcryptWSGIServer(("127.0.0.1", 0), SessionIdMiddleware(app))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[:2], app  # type: ignore[misc]
    server.shutdown()
    server.server_close()


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, str]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read().decode()


def login(address: Address, user: str, password: str, *, via: Address | None = None,
          proof_for: bytes | None = None) -> tuple[int, str]:
    host, port = via or address
    salt_conn = TcpcryptHTTPConnection(host, port)
    _, salt_hex = get(salt_conn, f"/salt?user={user}")
    conn = TcpcryptHTTPConnection(host, port)
    conn.connect()
    proof = login_proof(password_key(password, bytes.fromhex(salt_hex)),
                        proof_for or conn.session_id)
    conn.request("POST", "/login", body=f"user={user}&proof={proof.hex()}",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    return response.status, response.read().decode()


def test_the_app_sees_the_same_session_id_as_the_client(demo: tuple[Address, LoginDemo]) -> None:
    conn = TcpcryptHTTPConnection(*demo[0])
    conn.connect()
    assert get(conn, "/") == (200, f"session {conn.session_id.hex()}")


def test_plain_tcp_gets_no_session_id_and_no_login(demo: tuple[Address, LoginDemo]) -> None:
    assert get(http.client.HTTPConnection(*demo[0]), "/") == (200, "no tcpcrypt")
    plain = http.client.HTTPConnection(*demo[0])
    plain.request("POST", "/login", body="user=alice&proof=00",
                  headers={ENV_KEY: "23" * 33})  # a header cannot forge the key
    assert plain.getresponse().status == 403


def test_the_right_password_logs_in(demo: tuple[Address, LoginDemo]) -> None:
    assert login(demo[0], "alice", "wonderland") == (200, "welcome alice")


def test_a_wrong_password_or_unknown_user_is_refused(demo: tuple[Address, LoginDemo]) -> None:
    assert login(demo[0], "alice", "looking-glass")[0] == 401
    assert login(demo[0], "mallory", "wonderland")[0] == 401


def test_a_proof_made_for_another_connection_is_refused(demo: tuple[Address, LoginDemo]) -> None:
    earlier = TcpcryptHTTPConnection(*demo[0])
    earlier.connect()
    assert login(demo[0], "alice", "wonderland", proof_for=earlier.session_id)[0] == 401


def test_a_relay_in_the_middle_cannot_log_in_with_the_users_proof(
        demo: tuple[Address, LoginDemo]) -> None:
    with MitmRelay(demo[0]) as relay:
        for _ in range(3):
            assert login(demo[0], "alice", "wonderland", via=relay.address)[0] == 401
        assert relay.relayed["to-server"] > 0  # the proof did go through the relay


def run_asgi(app: SessionIdASGIMiddleware, scope: dict[str, Any]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)

    app.app = inner

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: Any) -> None:
        return None

    asyncio.run(app(scope, receive, send))
    return seen


def test_asgi_scope_gets_the_servers_session_id_and_nothing_forged() -> None:
    middleware = SessionIdASGIMiddleware(lambda *args: None)  # type: ignore[arg-type,return-value]
    sid = b"\x23" + bytes(range(32))
    extensions = {"tcpcrypt": {"session_id": sid}}
    with_id = run_asgi(middleware, {"type": "http", "extensions": extensions})
    assert with_id[ENV_KEY] == sid.hex()
    # addresses no tcpcryptd knows (and on this machine usually no daemon at all)
    forged = run_asgi(middleware, {"type": "http", ENV_KEY: "00", "server": ("127.0.0.1", 1),
                                   "client": ("127.0.0.1", 2)})
    assert ENV_KEY not in forged
    lifespan = run_asgi(middleware, {"type": "lifespan"})
    assert ENV_KEY not in lifespan
