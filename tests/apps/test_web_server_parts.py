"""The web-server experiment's parts that need no network: wrk's report parsed, Apache's
configuration per protocol, parameters refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.apps.apache import WEB_PROTOCOLS, write_config
from testbed.apps.wrk_runner import milliseconds, parse
from testbed.runner import ConfigError, run_experiment

WRK_REPORT = """Running 3s test @ https://10.0.0.2:8080/index.html
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.68ms    1.91ms  30.12ms   90.10%
    Req/Sec     5.21k   412.33     5.80k    70.00%
  Latency Distribution
     50%    2.25ms
     75%    2.90ms
     90%    3.98ms
     99%   14.06ms
  15563 requests in 3.00s, 5.15MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   5184.21
Transfer/sec:      1.72MB
"""


def test_wrk_report_gives_rate_percentiles_and_failures() -> None:
    figures = parse(WRK_REPORT)
    assert figures["rps"] == 5184.21 and figures["requests"] == 15563
    assert figures["p50_ms"] == 2.25 and figures["p99_ms"] == 14.06
    assert figures["socket_errors"] == 3 and figures["bad_responses"] == 4
    assert [milliseconds(t) for t in ("850.00us", "1.5ms", "2.00s")] == [0.85, 1.5, 2000.0]
    with pytest.raises(ValueError, match="no wrk report"):
        parse("unable to connect")


def test_apache_config_keeps_everything_in_its_directory(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    config = write_config(tmp_path / "tcp", 8080, WEB_PROTOCOLS["tcp"], cert, key).read_text()
    for directive in ("ServerRoot", "PidFile", "DefaultRuntimeDir", "ErrorLog"):
        line = next(line for line in config.splitlines() if line.startswith(directive))
        assert str(tmp_path / "tcp") in line
    assert "mod_mpm_event.so" in config and "SSLEngine" not in config
    assert (tmp_path / "tcp" / "htdocs" / "index.html").stat().st_size == 128


def test_tls_configs_turn_resumption_off_unless_asked(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    def config(label: str) -> str:
        return write_config(tmp_path / label, 8443, WEB_PROTOCOLS[label], cert, key).read_text()
    rsa, full, resumed = config("tls12-rsa"), config("tls13"), config("tls13-resumed")
    assert "SSLProtocol -all +TLSv1.2" in rsa and "SSLCipherSuite AES128-GCM-SHA256" in rsa
    for text in (rsa, full):
        assert "SSLSessionCache none" in text and "SSLSessionTickets off" in text
    assert "SSLSessionTickets on" in resumed and "shmcb:" in resumed
    assert "SSL_SESSION_RESUMED" in full  # every request logs whether it resumed


@pytest.mark.parametrize(("key", "value", "message"), [
    ("protocols", "tcp,quic", "unknown protocols"),
    ("modes", "close,pipelined", "modes are close, keepalive"),
    ("seconds", "0", "seconds: must be in 1..120"),
])
def test_bad_parameters_are_refused_before_the_network_starts(
    tmp_path: Path, key: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        run_experiment("web-server", quick=True, out_dir=tmp_path, overrides={key: value})
