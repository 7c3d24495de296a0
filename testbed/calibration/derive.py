"""The `kernel` and `xeon-2008` cost profiles, derived from `measured`.

kernel: this machine's costs without tcpcrypt's userspace protocol overhead, i.e. what a
  kernel tcpcrypt would cost here. TCP (the kernel's connection work plus the accepting
  program) and TLS (OpenSSL, already native code) stay as measured; each tcpcrypt handshake
  becomes the sum of its primitives: the server's public-key work (X25519 key pair and shared
  secret; RSA-exp3 encrypt), the client's (X25519 likewise; RSA-exp3 decrypt, its key pair
  amortised over the key's lifetime as in the 2010 design) and the key schedule's HMACs on each
  side; a resumed handshake is the key schedule alone.

xeon-2008: the paper's 8-core 2.66 GHz Xeon. RSA-2048 exponent-3 encrypt 0.26 ms and decrypt
  10.42 ms are the paper's own timings; TLS 1.2 RSA's private-key operation takes the decrypt
  time. Every other cost is the kernel profile's times a factor s fitted to the paper's own LAN
  connect table: "SSL not cached" (11.6 ms) minus the RSA decrypt (10.42 ms) minus the TCP
  connect (0.2 ms) is what the 2008 machine spent on the rest of a TLS 1.2 RSA handshake, both
  sides; s is that divided by the same work here (server and client TLS 1.2 RSA handshake
  beyond TCP, less this machine's RSA-2048 private operation). The connection-rate ratios
  are never an input: they follow from these costs.
"""

from __future__ import annotations

from typing import Any

from testbed.paper import paper_figures
from testbed.sim.costs import CostProfile

RESUMED = "-resumed"


def kernel_profile(measured: CostProfile) -> CostProfile:
    costs = dict(measured.costs_us)
    schedule = costs["tcpcrypt.key_schedule"]
    x25519 = costs["x25519.keypair"] + costs["x25519.exchange"]
    derived = {
        "tcpcrypt-x25519.server": x25519 + schedule,
        "tcpcrypt-x25519.client": x25519 + schedule,
        "tcpcrypt-rsa-exp3.server": costs["rsa-exp3.encrypt"] + schedule,
        "tcpcrypt-rsa-exp3.client": costs["rsa-exp3.decrypt"] + schedule,
    }
    for name in list(derived):
        protocol, side = name.rsplit(".", 1)
        derived[f"{protocol}{RESUMED}.{side}"] = schedule
    costs.update(derived)
    return CostProfile(
        "kernel", "derived from the measured profile by testbed.calibration.derive: tcpcrypt "
        "handshakes as the sum of their primitives (no userspace protocol overhead); TCP and "
        "TLS as measured", costs, dict(measured.aead_ns_per_byte),
        {**measured.environment, "derived_from": "measured"},
    )


def xeon_scale(kernel: CostProfile) -> tuple[float, dict[str, Any]]:
    """The factor s for non-RSA costs, and how it was obtained."""
    paper = paper_figures()
    connect = paper["lan_connect_ms"]
    rsa_decrypt_us = paper["rsa_exp3_2048_ms"]["decrypt"] * 1000
    rest_2008_us = connect["SSL not cached"] * 1000 - rsa_decrypt_us - connect["TCP"] * 1000
    costs = kernel.costs_us
    rest_here_us = (costs["tls12-rsa.server"] + costs["tls12-rsa.client"]
                    - costs["rsa2048.private"])
    if rest_here_us <= 0:
        raise ValueError("the TLS 1.2 RSA handshake measured cheaper than its RSA operation")
    scale = rest_2008_us / rest_here_us
    return scale, {"scale": scale, "paper_rest_of_tls12_handshake_us": rest_2008_us,
                   "this_machine_rest_of_tls12_handshake_us": rest_here_us}


def xeon_2008_profile(kernel: CostProfile) -> CostProfile:
    scale, how = xeon_scale(kernel)
    rsa = kernel_paper_rsa_us()
    costs = {name: value * scale for name, value in kernel.costs_us.items()}
    schedule = costs["tcpcrypt.key_schedule"]
    costs.update({
        "rsa2048.private": rsa["decrypt"],
        "rsa-exp3.encrypt": rsa["encrypt"],
        "rsa-exp3.decrypt": rsa["decrypt"],
        "tls12-rsa.server": rsa["decrypt"] + scale * (kernel.costs_us["tls12-rsa.server"]
                                                      - kernel.costs_us["rsa2048.private"]),
        "tcpcrypt-rsa-exp3.server": rsa["encrypt"] + schedule,
        "tcpcrypt-rsa-exp3.client": rsa["decrypt"] + schedule,
    })
    return CostProfile(
        "xeon-2008", "RSA-2048 exp3 encrypt 0.26 ms and decrypt 10.42 ms from Bittau et al. "
        "2010 (TLS 1.2 RSA's private operation takes the decrypt time); every other cost is the "
        "kernel profile's times s, fitted to the paper's LAN connect table "
        "(testbed.calibration.derive)", costs,
        {name: value * scale for name, value in kernel.aead_ns_per_byte.items()},
        {**kernel.environment, "derived_from": "kernel", "xeon_2008_scaling": how},
    )


def kernel_paper_rsa_us() -> dict[str, float]:
    figures = paper_figures()["rsa_exp3_2048_ms"]
    return {"encrypt": figures["encrypt"] * 1000, "decrypt": figures["decrypt"] * 1000}
