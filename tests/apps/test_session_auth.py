"""The connect experiment's authenticated rows: both ends of each method over real loopback
tcpcrypt (the in-band shim), a relay in the middle refused, and the labels wired up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpcrypt.auth import AuthError
from tcpcrypt.auth.loopback import LoopbackServer, MitmRelay, connect_inband
from testbed.apps import loadgen
from testbed.apps.protocols import PROTOCOLS
from testbed.apps.session_auth import METHODS, ClientAuth, ServerAuth
from testbed.paper import lan_connect_ms
from testbed.runner import ConfigError, run_experiment


def _pair(method: str, tmp_path: Path) -> tuple[ServerAuth, ClientAuth]:
    public_key = tmp_path / "public.pem"
    server = ServerAuth(method, public_key)
    return server, ClientAuth(method, public_key if method == "batch-sign" else None)


@pytest.mark.parametrize("method", METHODS)
def test_both_ends_of_each_method_agree_on_the_session_id(method: str, tmp_path: Path) -> None:
    server_auth, client_auth = _pair(method, tmp_path)
    with LoopbackServer(server_auth) as server:
        stream = connect_inband(server.address)
        try:
            assert client_auth(stream) == stream.getsessid()
        finally:
            stream.close()
        assert server.results.get(timeout=10) == stream.getsessid()


@pytest.mark.parametrize("method", METHODS)
def test_a_relay_in_the_middle_is_an_authentication_error(method: str, tmp_path: Path) -> None:
    server_auth, client_auth = _pair(method, tmp_path)
    with LoopbackServer(server_auth) as server, MitmRelay(server.address) as relay:
        stream = connect_inband(relay.address)
        with pytest.raises(AuthError):
            client_auth(stream)


def test_the_auth_rows_are_labels_mapped_to_the_papers_table() -> None:
    assert {PROTOCOLS[f"tcpcrypt-x25519+{m}"].auth for m in METHODS} == set(METHODS)
    assert lan_connect_ms("tcpcrypt-x25519+cmac") == 11.4
    assert lan_connect_ms("tcpcrypt-x25519+batch-sign") == 11.2
    assert lan_connect_ms("tcpcrypt-x25519+pake") == 15.2


def test_batch_sign_without_the_servers_key_is_refused_before_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        loadgen.main(["--host", "192.0.2.1", "--protocol", "tcpcrypt-x25519+batch-sign"])
    assert "--trusted-key" in capsys.readouterr().err


def test_throughput_refuses_an_authenticated_row(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="authentication rows"):
        run_experiment("throughput", quick=True, out_dir=tmp_path,
                       overrides={"protocols": "tcpcrypt-x25519+cmac"})


def test_a_failed_authentication_is_the_rows_error_never_a_success() -> None:
    from testbed.measurements import _auth_figures

    spec = PROTOCOLS["tcpcrypt-x25519+pake"]
    figures = _auth_figures(spec, [{"authenticated": 1.0, "first_byte_ms": 20.0},
                                   {"auth_error": "peer-rejected: wrong-password"}])
    assert figures["authenticated"] == 0.5
    assert figures["auth_failures"] == 1
    assert figures["error"] == "1 of 2 failed: peer-rejected: wrong-password"
    assert _auth_figures(PROTOCOLS["tcpcrypt-x25519"], [{"first_byte_ms": 1.0}]) == {}
