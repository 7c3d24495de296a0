"""Every model parameter has a range; non-finite and out-of-range values are refused in one
line by the chain syntax, before any packet flows (a NaN delay held packets forever)."""

from __future__ import annotations

import pytest

from middleboxes.base import MiddleboxConfigError
from middleboxes.registry import MODELS, model_parameters, parse_chain

NON_NUMERIC = {("nat", "public"), ("resegment", "mode"), ("strip-options", "on")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("link(delay_ms=nan)", "delay_ms must be a finite number"),
        ("link(delay_ms=inf)", "delay_ms must be a finite number"),
        ("link(delay_ms=1e9)", "delay_ms must be in 0..60000"),
        ("link(jitter_ms=-inf)", "jitter_ms must be a finite number"),
        ("link(rate_mbps=nan)", "rate_mbps must be a finite number"),
        ("link(rate_mbps=1e-300)", "rate_mbps is 0 \\(no limit\\) or at least 0.001"),
        ("link(rate_mbps=1e300)", "rate_mbps must be in 0..100000"),
        ("link(loss=nan)", "loss must be a finite number"),
        ("link(seed=-1)", "seed must be in"),
        ("resegment(mode=coalesce,hold_ms=nan)", "hold_ms must be a finite number"),
        ("seq-rewrite(idle_s=inf)", "idle_s must be a finite number"),
        ("seq-rewrite(idle_s=0)", "idle_s must be in"),
        ("proxy-ack(max_flows=0)", "max_flows must be in"),
        ("nat(closed_s=-1)", "closed_s must be in"),
        ("nat(first_port=80)", "first_port must be in 1024..65535"),
        ("strip-options(ports=0)", "ports must be in 1..65535"),
        ("strip-options(kinds=300)", "kinds must be in 0..255"),
    ],
)
def test_out_of_range_and_non_finite_parameters_are_refused(text: str, message: str) -> None:
    with pytest.raises(MiddleboxConfigError, match=message) as refused:
        parse_chain(text)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("name", sorted(set(MODELS) - {"passthrough"}))
def test_every_numeric_model_parameter_declares_its_range(name: str) -> None:
    for parameter, _type, _default, accepted in model_parameters(MODELS[name]):
        assert accepted or (name, parameter) in NON_NUMERIC, f"{name}.{parameter} has no range"


def test_defaults_are_inside_their_own_ranges() -> None:
    for name, model in MODELS.items():
        model()  # the constructor checks every range
        assert parse_chain(name).describe() == name or "(" in parse_chain(name).describe()


@pytest.mark.parametrize("text", [
    "seq-rewrite(seed=3,idle_s=30.0,closed_s=2.0,max_flows=100)",
    "proxy-ack(idle_s=5.0)",
    "nat(public=192.0.2.1,first_port=30000,closed_s=1.0)",
    "link(delay_ms=10.0,rate_mbps=0.001)",
])
def test_flow_and_link_parameters_describe_themselves_in_the_chain_syntax(text: str) -> None:
    assert parse_chain(text).describe() == text
