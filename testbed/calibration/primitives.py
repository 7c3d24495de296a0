"""CPU of the operations tcpcrypt and TLS are built from, and of this project's tcpcrypt
handshake in memory (the sans-IO core, both sides timed apart, full and resumed)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import statistics
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, x25519

from tcpcrypt.aead import AEAD_NAMES, aead_by_name
from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.randomness import seeded_random
from tcpcrypt.resumption import ResumptionCache
from tcpcrypt.suites import RsaKeyHolder, get_suite

# HMAC-SHA256 calls in one tcpcrypt key schedule (RFC 8548): Extract for ss[0], then CPRF for
# the session ID, the resumption identifiers, mk[0], k_ab and k_ba, and ss[1] for resumption.
KEY_SCHEDULE_HMACS = 7


def per_call_us(call: Callable[[], object], count: int) -> float:
    """Median thread CPU of `call` over `count` calls, in us."""
    samples = []
    for _ in range(count):
        start = time.thread_time_ns()
        call()
        samples.append(time.thread_time_ns() - start)
    return statistics.median(samples) / 1000


def host_costs_us(rounds: int = 40) -> dict[str, float]:
    """This host's RSA-2048 PSS sign and X25519 (key pair + exchange), median thread CPU in us:
    the two figures results are read against on hosts of differing speed."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    peer = x25519.X25519PrivateKey.generate().public_key()
    return {
        "host.rsa2048_sign_us": per_call_us(
            lambda: key.sign(b"\x00" * 68, pss, hashes.SHA256()), rounds),
        "host.x25519_us": per_call_us(
            lambda: x25519.X25519PrivateKey.generate().exchange(peer), rounds),
    }


def key_agreement_cpu_ns(suite: str, seed: int, rsa_keys: RsaKeyHolder) -> tuple[int, int]:
    """Thread CPU time of the public-key operations alone: A's start+finish, B's respond."""
    algorithm = get_suite(suite, rsa_keys=rsa_keys)
    random_a, random_b = seeded_random(seed), seeded_random(seed + 1)
    start = time.thread_time_ns()
    state, pk_a = algorithm.a_start(random_a)
    a_ns = time.thread_time_ns() - start
    start = time.thread_time_ns()
    pk_b, es_b = algorithm.b_respond(pk_a, random_b)
    b_ns = time.thread_time_ns() - start
    start = time.thread_time_ns()
    es_a = algorithm.a_finish(state, pk_b)
    a_ns += time.thread_time_ns() - start
    if es_a != es_b:
        raise RuntimeError(f"{suite}: A and B derived different secrets")
    return a_ns, b_ns


def b_key_agreement_us(suite: str, count: int, seed: int, rsa_keys: RsaKeyHolder) -> list[float]:
    """B's public-key operation alone (`key_agreement_cpu_ns`), `count` times, in us: what
    `protocol-costs` reports as `protocol.kex_cpu_us.B.<suite>`, for experiments that measure
    it alongside their own rows."""
    return [key_agreement_cpu_ns(suite, seed + index * 2, rsa_keys)[1] / 1000
            for index in range(count)]


def primitive_costs(count: int) -> dict[str, float]:
    """RSA-2048 (e=65537) private op as TLS 1.2 RSA uses it, RSA-exp3 encrypt and decrypt as
    tcpcrypt's suite does them, X25519, and a key schedule's HMACs (all OpenSSL underneath)."""
    tls_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    premaster = tls_key.public_key().encrypt(os.urandom(48), padding.PKCS1v15())
    keys = RsaKeyHolder(lifetime_s=float("inf"))
    suite = get_suite("rsa-exp3-2048", rsa_keys=keys)
    state, pk_a = suite.a_start(seeded_random(1))
    pk_b, _ = suite.b_respond(pk_a, seeded_random(2))
    peer = x25519.X25519PrivateKey.generate().public_key()
    mine = x25519.X25519PrivateKey.generate()
    key = os.urandom(32)
    return {
        "rsa2048.private": per_call_us(lambda: tls_key.decrypt(premaster, padding.PKCS1v15()),
                                       count),
        "rsa-exp3.encrypt": per_call_us(lambda: suite.b_respond(pk_a, seeded_random(3)), count),
        "rsa-exp3.decrypt": per_call_us(lambda: suite.a_finish(state, pk_b), count),
        "x25519.keypair": per_call_us(
            lambda: x25519.X25519PrivateKey.generate().public_key(), count),
        "x25519.exchange": per_call_us(
            lambda: mine.exchange(peer), count),
        "tcpcrypt.key_schedule": KEY_SCHEDULE_HMACS * per_call_us(
            lambda: hmac.digest(key, b"\x01" * 64, "sha256"), count * 10),
        "hmac-sha256.native": native_hmac_us(),
    }


def native_hmac_us(iterations: int = 20000, rounds: int = 5) -> float:
    """One HMAC-SHA256 iteration of OpenSSL's PBKDF2 loop (C, no interpreter per HMAC): the
    median over `rounds` of the thread CPU of `iterations` of them, per iteration, in us."""
    key = os.urandom(32)
    samples = []
    for _ in range(rounds):
        start = time.thread_time_ns()
        hashlib.pbkdf2_hmac("sha256", key, b"testbed-salt", iterations)
        samples.append((time.thread_time_ns() - start) / iterations)
    return statistics.median(samples) / 1000


def aead_ns_per_byte(size: int = 16384, total: int = 8_000_000) -> dict[str, float]:
    """Seal + open CPU per byte of each AEAD at `size`-byte records."""
    costs = {}
    for name in AEAD_NAMES:
        spec = aead_by_name(name)
        cipher = spec.new(os.urandom(spec.key_length))
        data = os.urandom(size)
        count = max(1, total // size)
        start = time.thread_time_ns()
        for index in range(count):
            nonce = index.to_bytes(12, "big")
            cipher.decrypt(nonce, cipher.encrypt(nonce, data, b""), b"")
        costs[name] = (time.thread_time_ns() - start) / (count * size)
    return costs


class _Clock:
    def __init__(self) -> None:
        self.ns = 0

    def timed(self, call: Callable[[], object]) -> object:
        start = time.thread_time_ns()
        value = call()
        self.ns += time.thread_time_ns() - start
        return value


def _drive(a: TcpcryptConnection, b: TcpcryptConnection, a_clock: _Clock,
           b_clock: _Clock) -> None:
    """TCP-ENO, then the key exchange's stream bytes both ways, each side on its clock."""
    syn = a_clock.timed(a.syn_option)
    b_clock.timed(lambda: b.on_syn(syn))  # type: ignore[arg-type]
    synack = b_clock.timed(b.synack_option)
    a_clock.timed(lambda: a.on_synack(synack))  # type: ignore[arg-type]
    ack = a_clock.timed(a.ack_option)
    b_clock.timed(lambda: b.on_ack(ack))  # type: ignore[arg-type]
    for _ in range(3):
        up = a_clock.timed(a.data_to_send)
        if up:
            b_clock.timed(functools.partial(b.receive, up))  # type: ignore[arg-type]
        down = b_clock.timed(b.data_to_send)
        if down:
            a_clock.timed(functools.partial(a.receive, down))  # type: ignore[arg-type]


def tcpcrypt_handshake_us(suite: str, resumed: bool, count: int) -> tuple[float, float]:
    """Median (A = client, B = server) CPU per handshake of this project's core, in us."""
    config = TcpcryptConfig(suites=(suite,))
    keys = RsaKeyHolder(lifetime_s=float("inf"))
    cache_a, cache_b = ResumptionCache(), ResumptionCache()
    a_samples, b_samples = [], []
    for index in range(count + 1):  # the first one (full) seeds the caches when resuming
        a_clock, b_clock = _Clock(), _Clock()
        a = a_clock.timed(lambda i=index: TcpcryptConnection(  # type: ignore[misc]
            active=True, config=config, random=seeded_random(2 * i), rsa_keys=keys,
            cache=cache_a if resumed else None, peer="server"))
        b = b_clock.timed(lambda i=index: TcpcryptConnection(  # type: ignore[misc]
            active=False, config=config, random=seeded_random(2 * i + 1), rsa_keys=keys,
            cache=cache_b if resumed else None))
        assert isinstance(a, TcpcryptConnection) and isinstance(b, TcpcryptConnection)
        _drive(a, b, a_clock, b_clock)
        if a.state is not ConnectionState.ESTABLISHED or b.state is not ConnectionState.ESTABLISHED:
            raise RuntimeError(f"{suite}: handshake did not establish ({a.reason}, {b.reason})")
        if index and resumed and not (a.resumed and b.resumed):
            raise RuntimeError(f"{suite}: connection {index} did not resume")
        if index or not resumed:
            a_samples.append(a_clock.ns / 1000)
            b_samples.append(b_clock.ns / 1000)
    return statistics.median(a_samples), statistics.median(b_samples)
