"""Cost profiles: per-operation CPU costs the simulated hosts charge, as data files with their
sources (`testbed/data/costs-<name>.json`).

A profile holds `costs_us`, microseconds of one core per operation:
  - `tcp.server`, `tcp.client`: one connection (setup, a request and a response, teardown);
  - `<protocol>.server`, `<protocol>.client` for every other protocol label: the handshake
    on top of TCP (full or `-resumed`);
  - primitives (`rsa2048.private`, `rsa-exp3.encrypt`, `rsa-exp3.decrypt`, `x25519.keypair`,
    `x25519.exchange`, `tcpcrypt.key_schedule`) that derived profiles are built from;
and `aead_ns_per_byte` per AEAD. `testbed calibrate` writes `measured`, and derives `kernel`
and `xeon-2008` from it (see `testbed.calibration.derive`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_PROFILE = "measured"
PROFILE_NAMES = ("measured", "kernel", "xeon-2008")
SIM_PROTOCOLS = (
    "tcp", "tls12-rsa", "tls12-rsa-resumed", "tls13", "tls13-resumed",
    "tcpcrypt-x25519", "tcpcrypt-x25519-resumed", "tcpcrypt-rsa-exp3",
    "tcpcrypt-rsa-exp3-resumed",
)


class ProfileError(ValueError):
    """An unknown or incomplete cost profile; the message is one line."""


@dataclass(frozen=True)
class CostProfile:
    name: str
    source: str
    costs_us: dict[str, float]
    aead_ns_per_byte: dict[str, float]
    environment: dict[str, Any]

    def cost_us(self, operation: str) -> float:
        try:
            return self.costs_us[operation]
        except KeyError:
            raise ProfileError(f"profile {self.name} has no cost for {operation!r}") from None

    def server_us(self, protocol: str) -> float:
        """Server CPU per connection: TCP plus the protocol's handshake."""
        extra = 0.0 if protocol == "tcp" else self.cost_us(f"{protocol}.server")
        return self.cost_us("tcp.server") + extra

    def client_us(self, protocol: str) -> float:
        extra = 0.0 if protocol == "tcp" else self.cost_us(f"{protocol}.client")
        return self.cost_us("tcp.client") + extra

    def to_json(self) -> dict[str, Any]:
        # copies: a loaded profile is cached, and its document must not be edited through this
        return {"name": self.name, "source": self.source, "costs_us": dict(self.costs_us),
                "aead_ns_per_byte": dict(self.aead_ns_per_byte),
                "environment": json.loads(json.dumps(self.environment))}


def profile_path(name: str, directory: Path = DATA_DIR) -> Path:
    return directory / f"costs-{name}.json"


def profile_from_json(document: dict[str, Any]) -> CostProfile:
    try:
        profile = CostProfile(
            str(document["name"]), str(document["source"]),
            {str(k): float(v) for k, v in document["costs_us"].items()},
            {str(k): float(v) for k, v in document["aead_ns_per_byte"].items()},
            dict(document.get("environment", {})),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ProfileError(f"cost profile is malformed: {error}") from None
    for protocol in SIM_PROTOCOLS:
        profile.server_us(protocol)
        profile.client_us(protocol)
    return profile


@functools.cache
def load_profile(name: str, directory: Path = DATA_DIR) -> CostProfile:
    """The profile `name` from the data directory; ProfileError if missing or incomplete."""
    path = profile_path(name, directory)
    if not path.exists():
        known = sorted(p.name[len("costs-"):-len(".json")] for p in directory.glob("costs-*.json"))
        raise ProfileError(f"unknown cost profile {name!r}; known: {', '.join(known) or 'none'}"
                           " (testbed calibrate writes measured, kernel and xeon-2008)")
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ProfileError(f"cost profile {name}: {error}") from None
    return profile_from_json(document)
