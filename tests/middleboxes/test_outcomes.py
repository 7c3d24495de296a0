"""One outcome predictor from the models' declared effect on ENO, shared by middlebox-matrix
and access-population; the plugins in use land in a result's environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from experiments.access_population import predicted_outcome as access_prediction
from experiments.middlebox_matrix import _expected as matrix_expectation
from middleboxes import registry
from middleboxes.base import EnoEffect, Middlebox
from middleboxes.chain import Chain
from middleboxes.outcomes import predicted_outcome
from middleboxes.strip_options import StripOptions
from testbed.environment import capture_environment

FAIL_CLOSED = '''
from middleboxes.base import Drop, EnoEffect, Middlebox

class DropEnoSyns(Middlebox):
    name = "drop-eno-syns"

    def process(self, packet, direction, now):
        return [Drop("eno")] if packet.is_syn() and packet.option(69) else super().process(
            packet, direction, now)

    def eno_effect(self, port):
        return EnoEffect.BLOCKED
'''


@pytest.fixture
def fail_closed_plugin(tmp_path: Path) -> Iterator[Path]:
    models, plugins = dict(registry.MODELS), dict(registry.PLUGIN_MODELS)
    path = tmp_path / "fail_closed.py"
    path.write_text(FAIL_CLOSED)
    registry.load_plugins(str(path))
    yield path
    registry.MODELS.clear()
    registry.MODELS.update(models)
    registry.PLUGIN_MODELS.clear()
    registry.PLUGIN_MODELS.update(plugins)


@pytest.mark.parametrize(("chain", "tcpcrypt"), [
    ("none", "encrypted"),
    ("passthrough", "encrypted"),
    ("seq-rewrite(seed=7),proxy-ack", "encrypted"),
    ("strip-options(on=syn)", "fallback"),
    ("strip-options(on=synack)", "fallback"),
    ("link(delay_ms=1),strip-options(on=all)", "fallback"),
    ("strip-options(on=syn,kinds=30)", "encrypted"),  # MPTCP's option, not ENO's
    ("strip-options(on=syn,kinds=69)", "fallback"),
])
def test_matrix_and_access_population_predict_alike(chain: str, tcpcrypt: str) -> None:
    assert predicted_outcome(chain, "tcpcrypt-x25519", 8000) == tcpcrypt
    assert matrix_expectation(chain, "tcpcrypt-x25519") == tcpcrypt
    assert access_prediction(chain) == tcpcrypt
    assert matrix_expectation(chain, "tcp") == "plaintext"
    assert matrix_expectation(chain, "tls13") == "encrypted"


def test_stripping_on_another_port_passes_eno() -> None:
    model = StripOptions(on="syn", ports=(80,))
    assert model.eno_effect(80) is EnoEffect.STRIPPED
    assert model.eno_effect(8000) is EnoEffect.PASSES
    assert access_prediction("strip-options(on=syn,ports=80)") == "encrypted"  # port 8000
    assert matrix_expectation("strip-options(on=syn,ports=80)", "tcpcrypt-x25519") == (
        "fallback")  # the matrix runs this condition's server on port 80


def test_a_fail_closed_model_declares_its_reset_and_is_predicted_broken(
    fail_closed_plugin: Path,
) -> None:
    assert predicted_outcome("drop-eno-syns", "tcpcrypt-x25519", 8000) == "broken"
    assert matrix_expectation("drop-eno-syns", "tcpcrypt-x25519") == "broken"
    assert matrix_expectation("drop-eno-syns", "tls13") == "encrypted"
    assert access_prediction("drop-eno-syns") == "broken"


def test_in_a_chain_the_first_model_that_touches_eno_decides(fail_closed_plugin: Path) -> None:
    assert predicted_outcome("strip-options(on=syn),drop-eno-syns", "tcpcrypt", 80) == (
        "fallback")  # stripped first: nothing left to block
    assert predicted_outcome("drop-eno-syns,strip-options(on=syn)", "tcpcrypt", 80) == "broken"
    assert Chain([Middlebox()]).eno_effect(80) is EnoEffect.PASSES


def test_the_plugins_in_use_are_recorded_in_the_environment(
    fail_closed_plugin: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MIDDLEBOX_PLUGINS", raising=False)
    assert "middlebox_plugins" not in capture_environment()
    monkeypatch.setenv("MIDDLEBOX_PLUGINS", str(fail_closed_plugin))
    recorded = capture_environment()["middlebox_plugins"]
    assert isinstance(recorded, dict)
    assert recorded["MIDDLEBOX_PLUGINS"] == str(fail_closed_plugin)
    assert recorded["models"]["drop-eno-syns"] == str(fail_closed_plugin)  # type: ignore[index]
    assert len(recorded["sha256"][str(fail_closed_plugin)]) == 64  # type: ignore[index]
