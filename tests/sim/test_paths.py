"""Path outcomes from the real models and the real tcpcrypt core, and populations of paths."""

from __future__ import annotations

import pytest

from experiments.access_population import predicted_outcome
from testbed.sim.paths import decide
from testbed.sim.population import POPULATIONS, draw_population, wilson_interval
from topologies.access_paths import PROFILES


@pytest.mark.parametrize("chain", [chain for chain, _ in PROFILES["paper-2010"]])
def test_tcpcrypt_outcomes_agree_with_the_emulated_experiments_prediction(chain: str) -> None:
    assert decide(chain, "tcpcrypt-x25519", 8000) == predicted_outcome(chain, 8000)


@pytest.mark.parametrize(
    ("chain", "protocol", "outcome"),
    [
        ("strip-options(on=synack)", "tcpcrypt-rsa-exp3", "fallback"),
        ("strip-options(on=syn,ports=80)", "tcpcrypt-x25519", "encrypted"),  # port 443 here
        ("nat,resegment(max_bytes=100)", "tcpcrypt-x25519", "encrypted"),
        ("resegment(mode=coalesce,max_bytes=1400)", "tls13", "encrypted"),
        ("seq-rewrite", "tcp", "plaintext"),
    ],
)
def test_each_chain_gets_the_outcome_the_models_produce(chain: str, protocol: str,
                                                        outcome: str) -> None:
    assert decide(chain, protocol, 443) == outcome


def test_a_population_counts_every_path_once_by_port_and_chain() -> None:
    population = draw_population("paper-2010-by-port", 20_000, seed=5)
    assert sum(population.values()) == 20_000
    ports, _ = POPULATIONS["paper-2010-by-port"]
    share_80 = sum(n for (port, _), n in population.items() if port == 80) / 20_000
    assert share_80 == pytest.approx(dict(ports)[80], abs=0.02)
    assert draw_population("paper-2010-by-port", 20_000, seed=5) == population


def test_the_wilson_interval_holds_the_share_and_narrows_with_more_paths() -> None:
    small, large = wilson_interval(30, 100), wilson_interval(3000, 10_000)
    assert small[0] < 0.3 < small[1] and large[0] < 0.3 < large[1]
    assert large[1] - large[0] < small[1] - small[0]
