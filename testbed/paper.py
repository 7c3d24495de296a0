"""The 2010 tcpcrypt paper's published figures, kept in one data file with their source
(`testbed/data/paper_2010.json`), for experiments to print beside their own measurements.

The paper measured a Linux kernel tcpcrypt with RSA-exp3-2048 on a 2008 8-core Xeon, where an
RSA decryption took 10.42 ms: its absolute times are not this machine's, its ratios are what
the testbed's results can be held against.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).resolve().parent / "data" / "paper_2010.json"

# The paper's LAN connect-time row closest to each protocol label (None: nothing comparable;
# the paper's uncached tcpcrypt used RSA-exp3, its SSL was RSA key exchange).
LAN_CONNECT_ROW: dict[str, str | None] = {
    "tcp": "TCP",
    "tls12-rsa": "SSL not cached",
    "tls12-rsa-resumed": "SSL cached",
    "tls13": None,
    "tls13-resumed": None,
    "tcpcrypt-x25519": None,
    "tcpcrypt-x25519-resumed": "tcpcrypt cached",
    "tcpcrypt-x25519+cmac": "tcpcrypt CMAC",
    "tcpcrypt-x25519+batch-sign": "tcpcrypt batch sign",
    "tcpcrypt-x25519+pake": "tcpcrypt PAKE",
    "tcpcrypt-rsa-exp3": "tcpcrypt not cached",
    "tcpcrypt-rsa-exp3-resumed": "tcpcrypt cached",
    "tls13-ecdsa": None,
    "tcpcryptd-x25519": None,
    "tcpcryptd-x25519-resumed": "tcpcrypt cached",
    "tcpcryptd-rsa-exp3": "tcpcrypt not cached",
}

# The paper's server-cost ratios, with the two protocol labels whose server CPU per connection
# measures the same thing here (numerator, denominator).
SERVER_COST_RATIOS: dict[str, tuple[str, str]] = {
    "SSL / TCP": ("tls12-rsa", "tcp"),
    "SSL / tcpcrypt": ("tls12-rsa", "tcpcrypt-rsa-exp3"),
    "tcpcrypt / TCP (worst case)": ("tcpcrypt-rsa-exp3", "tcp"),
}


@functools.cache
def paper_figures() -> dict[str, Any]:
    """The whole data file (source, hardware, tables)."""
    figures: dict[str, Any] = json.loads(DATA_FILE.read_text())
    return figures


def lan_connect_ms(label: str) -> float | None:
    """The paper's LAN connect time for the row closest to `label`, or None."""
    row = LAN_CONNECT_ROW.get(label)
    return None if row is None else float(paper_figures()["lan_connect_ms"][row])


def server_cost_ratio(name: str) -> float:
    """One of the paper's server-cost ratios by its name in `SERVER_COST_RATIOS`."""
    return float(paper_figures()["server_cost_ratios"][name])
