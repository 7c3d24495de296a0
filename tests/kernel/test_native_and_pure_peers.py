"""The library with its C fast path (tcpcrypt.native: key schedule, bpf(2) calls) and without
it (TCPCRYPT_PURE_PYTHON: the pure-Python reference and ctypes) talk to each other through the
kernel's TCP-ENO: the same session IDs at both ends, full and resumed, whichever end is which."""

from __future__ import annotations

import pytest
from kernel_lab import Pair, finish

PORT = 7400


@pytest.mark.parametrize("pure_end", ["server", "client"])
def test_a_pure_python_end_and_a_c_end_agree_on_every_session(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, pure_end: str
) -> None:
    if pure_end == "server":
        monkeypatch.setenv("TCPCRYPT_PURE_PYTHON", "1")
    server = pair.start_server(pair.b, "lib-server", str(PORT), "3")
    if pure_end == "server":
        monkeypatch.delenv("TCPCRYPT_PURE_PYTHON")
    else:
        monkeypatch.setenv("TCPCRYPT_PURE_PYTHON", "1")
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "3")
    servers = finish(server)
    assert [c["encrypted"] for c in clients] == [True, True, True]
    assert [c["resumed"] for c in clients] == [s["resumed"] for s in servers] == [
        False, True, True]
    assert [c["sessid"] for c in clients] == [s["sessid"] for s in servers]
    assert [c["answer"] for c in clients] == [f"echo:secret-line-{i}\n" for i in range(3)]
