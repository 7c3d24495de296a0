"""The `kernel` and `xeon-2008` cost profiles, derived from `measured`.

kernel: this machine's costs without tcpcrypt's userspace protocol overhead, i.e. what a
  kernel tcpcrypt would cost here. TCP (the kernel's connection work plus the accepting
  program) and TLS (OpenSSL) stay as measured; each tcpcrypt handshake becomes the sum of its
  primitives: the server's public-key work (X25519 key pair and shared secret; RSA-exp3
  encrypt), the client's (X25519 likewise; RSA-exp3 decrypt, its key pair amortised over the
  key's lifetime as in the 2010 design) and the key schedule on each side, its 7 HMAC-SHA256
  at native speed (`hmac-sha256.native`, no interpreter per call); a resumed handshake is the
  key schedule alone.

xeon-2008: the paper's 8-core 2.66 GHz Xeon. Each class of work is scaled from this machine
  by a factor taken from the paper's own figures for that class, never one factor for all:
  - public key: RSA-2048 exponent-3 encrypt 0.26 ms and decrypt 10.42 ms are the paper's;
    every RSA-2048 private-key operation (TLS 1.2's key transport, TLS 1.3's signature) takes
    the decrypt time. X25519, not in the paper, scales by the paper's RSA-exp3 encrypt time
    over this machine's (the smaller of the two public-key ratios).
  - kernel: TCP's connection work (accept, a request, a response, close) scales by the talk's
    TCP server rate on that machine: 8 cores / 60,156 connections/s, over this machine's
    `tcp.server`. TCP's own cost there is thus the paper's, by construction.
  - library: TLS beyond its RSA operation, the tcpcrypt key schedule and AEAD scale by the
    paper's LAN connect table: "SSL not cached" 11.6 ms less the RSA decrypt, less TCP's
    connect 0.2 ms and the two round trips a full TLS 1.2 handshake adds (each as long as
    TCP's connect) is what the 2008 machine spent on the rest of a TLS 1.2 RSA handshake,
    both sides; the factor is that over the same work here (where it includes Python's `ssl`
    wrapping, hence a factor below 1).
  The talk's SSL server rate (737/s) is not an input: it is what the derived TLS 1.2 cost is
  checked against. The connection-rate ratios follow from these costs.
"""

from __future__ import annotations

from testbed.paper import paper_figures
from testbed.sim.costs import CostProfile, ProfileError

RESUMED = "-resumed"
KEY_SCHEDULE_HMACS = 7
# one key-schedule HMAC (pads not cached, a message of one block) is 4 SHA-256 compressions;
# one PBKDF2 iteration, which `hmac-sha256.native` times, is 2 (its pads are cached)
NATIVE_HMAC_PER_ITERATION = 2.0
PAPER_CORES = 8
TLS12_EXTRA_ROUND_TRIPS = 2
KERNEL_CLASS = ("tcp.server", "tcp.client", "tcp.server_kernel", "tcp.client_kernel")


def native_key_schedule_us(costs: dict[str, float]) -> float:
    try:
        iteration = costs["hmac-sha256.native"]
    except KeyError:
        raise ProfileError("the measured profile has no hmac-sha256.native; rerun "
                           "testbed calibrate") from None
    return KEY_SCHEDULE_HMACS * NATIVE_HMAC_PER_ITERATION * iteration


def kernel_profile(measured: CostProfile) -> CostProfile:
    costs = dict(measured.costs_us)
    schedule = native_key_schedule_us(costs)
    costs["tcpcrypt.key_schedule.interpreted"] = costs["tcpcrypt.key_schedule"]
    costs["tcpcrypt.key_schedule"] = schedule
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
        "handshakes as the sum of their primitives (no userspace protocol overhead; the key "
        "schedule's HMACs at native speed); TCP and TLS as measured", costs,
        dict(measured.aead_ns_per_byte), {**measured.environment, "derived_from": "measured"},
    )


def xeon_scales(kernel: CostProfile) -> dict[str, dict[str, float]]:
    """Each class's factor (2008 machine / this one) and the figures it comes from."""
    paper = paper_figures()
    connect = paper["lan_connect_ms"]
    rsa = paper_rsa_us()
    costs = kernel.costs_us
    tcp_2008_us = PAPER_CORES / paper["talk_connections_per_s"]["TCP server"] * 1e6
    tcp_connect_us = connect["TCP"] * 1000
    rest_2008_us = (connect["SSL not cached"] * 1000 - rsa["decrypt"]
                    - (1 + TLS12_EXTRA_ROUND_TRIPS) * tcp_connect_us)
    rest_here_us = (costs["tls12-rsa.server"] + costs["tls12-rsa.client"]
                    - costs["rsa2048.private"])
    if rest_here_us <= 0 or rest_2008_us <= 0:
        raise ValueError("the TLS 1.2 RSA handshake measured cheaper than its RSA operation")
    return {
        "kernel": {"scale": tcp_2008_us / costs["tcp.server"],
                   "paper_tcp_server_us": tcp_2008_us,
                   "this_machine_tcp_server_us": costs["tcp.server"]},
        "library": {"scale": rest_2008_us / rest_here_us,
                    "paper_rest_of_tls12_handshake_us": rest_2008_us,
                    "this_machine_rest_of_tls12_handshake_us": rest_here_us},
        "public_key": {"scale": rsa["encrypt"] / costs["rsa-exp3.encrypt"],
                       "paper_rsa_exp3_encrypt_us": rsa["encrypt"],
                       "this_machine_rsa_exp3_encrypt_us": costs["rsa-exp3.encrypt"]},
    }


def xeon_2008_profile(kernel: CostProfile) -> CostProfile:
    scales = xeon_scales(kernel)
    s_kernel, s_library, s_public = (scales[c]["scale"] for c in
                                     ("kernel", "library", "public_key"))
    rsa = paper_rsa_us()
    here = kernel.costs_us
    costs = {name: value * s_library for name, value in here.items()}  # library work
    costs.update({name: here[name] * s_kernel for name in KERNEL_CLASS if name in here})
    x25519 = {"x25519.keypair": here["x25519.keypair"] * s_public,
              "x25519.exchange": here["x25519.exchange"] * s_public}
    costs.update(x25519)
    schedule = costs["tcpcrypt.key_schedule"]
    key_exchange = x25519["x25519.keypair"] + x25519["x25519.exchange"]
    private = here["rsa2048.private"]
    costs.update({
        "rsa2048.private": rsa["decrypt"],
        "rsa-exp3.encrypt": rsa["encrypt"],
        "rsa-exp3.decrypt": rsa["decrypt"],
        # RSA key transport (1.2) and an RSA-2048 signature (1.3): the private operation is
        # the paper's, the rest of the handshake library work
        "tls12-rsa.server": rsa["decrypt"] + s_library * (here["tls12-rsa.server"] - private),
        "tls13.server": rsa["decrypt"] + s_library * max(0.0, here["tls13.server"] - private),
        "tcpcrypt-rsa-exp3.server": rsa["encrypt"] + schedule,
        "tcpcrypt-rsa-exp3.client": rsa["decrypt"] + schedule,
        "tcpcrypt-x25519.server": key_exchange + schedule,
        "tcpcrypt-x25519.client": key_exchange + schedule,
    })
    return CostProfile(
        "xeon-2008", "per class of work from Bittau et al. 2010: public key from its RSA-2048 "
        "exp3 times (encrypt 0.26 ms, decrypt 10.42 ms); kernel TCP work from the talk's TCP "
        "server rate (60,156/s on 8 cores); library work (TLS beyond RSA, key schedule, AEAD) "
        "from its LAN connect table (testbed.calibration.derive)", costs,
        {name: value * s_library for name, value in kernel.aead_ns_per_byte.items()},
        {**kernel.environment, "derived_from": "kernel", "xeon_2008_scaling": scales},
    )


def paper_rsa_us() -> dict[str, float]:
    figures = paper_figures()["rsa_exp3_2048_ms"]
    return {"encrypt": figures["encrypt"] * 1000, "decrypt": figures["decrypt"] * 1000}
