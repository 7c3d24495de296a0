"""One point of the `batch-signing` experiment (not an experiment: no SPEC): an authenticated
method at an arrival rate, its arrivals interleaved with unauthenticated (`none`) ones in one
stream (`arrival_plan`), so the latency it adds is a paired comparison under the same
disturbance. Starts the server processes (the workers around the shared signer, or the TLS
server), the client processes, marks the phases, and sums every server process's figures per
method.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from cryptography.hazmat.primitives import serialization

from experiments import batch_signing_clients, batch_signing_server, batch_signing_worker
from tcpcrypt.auth.shared_signer import SignerProcess
from tcpcrypt.auth.signing import PublicKey, SigningKey

NO_AUTH = batch_signing_server.NO_AUTH


def _tls_client(address: tuple[str, int], credential: Any) -> None:
    with socket.create_connection(address, timeout=30) as raw, \
            credential.wrap_socket(raw, server_hostname=batch_signing_server.TLS_NAME) as tls:
        if tls.recv(1) != b"k":
            raise ConnectionError("TLS server sent nothing")


def _credential(method: str, material: bytes | PublicKey) -> Any:
    if method == NO_AUTH:
        return None
    if method == "tls":
        assert isinstance(material, bytes)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=material.decode())
        return context
    return material


def worker_cpus(workers: int, pin: bool = True) -> list[int | None]:
    """The CPU each worker is pinned to (None: unpinned): one per CPU this process may use,
    in order; more workers than CPUs (or 0 asked: as many as CPUs) run unpinned beyond the
    first round, and all of them unless `pin`."""
    allowed = sorted(os.sched_getaffinity(0))
    count = workers or len(allowed)
    return [allowed[index] if pin and index < len(allowed) else None
            for index in range(count)]


def arrival_plan(method: str, rate: float, count: int, none_share: float,
                 began: float, seed: int = 12) -> list[tuple[float, str]]:
    """`count` arrivals of `method` at `rate` per second, interleaved with unauthenticated
    ones making up `none_share` of the stream (0: none; `method` none: only those): evenly
    spaced at the stream's total rate, each slot's method a seeded shuffle, so both kinds
    meet the same seconds, workers and client processes."""
    if method == NO_AUTH or none_share <= 0:
        kinds = [method] * count
    else:
        extra = max(1, round(count * none_share / (1 - none_share)))
        kinds = [method] * count + [NO_AUTH] * extra
        random.Random(seed).shuffle(kinds)
    total_rate = rate * len(kinds) / max(1, count)
    return [(began + index / total_rate, kind) for index, kind in enumerate(kinds)]


class _Servers:
    """The shared signer (batch signing) and the workers around it, all processes."""

    def __init__(self, methods: tuple[str, ...], params: dict[str, Any]) -> None:
        self.spawn = multiprocessing.get_context("spawn")
        self.signer: SignerProcess | None = None
        self.workers: list[tuple[Any, Connection]] = []
        key_pem: bytes | None = None
        self.public_keys: dict[str, PublicKey] = {}
        if "batch-sign" in methods:
            self.signer = SignerProcess("rsa-2048", max_batch=int(params["max_batch"]),
                                        window_s=float(params["window_ms"]) / 1000)
            self.public_keys["batch-sign"] = self.signer.public_key
        if "sign-each" in methods:  # every worker signs its own IDs with the same key
            key = SigningKey.generate("rsa-2048")
            key_pem, self.public_keys["sign-each"] = key.private_pem(), key.public_key()
        port = 0
        for cpu in worker_cpus(int(params["workers"]), bool(params.get("pin_workers", 1))):
            parent, child = self.spawn.Pipe()
            process = self.spawn.Process(
                target=batch_signing_worker.serve_worker,
                args=(child, methods, port, self.signer.path if self.signer else None,
                      key_pem, cpu))
            process.start()
            self.workers.append((process, parent))
            if not parent.poll(60):
                raise RuntimeError(f"{'+'.join(methods)} worker did not start")
            _, address = parent.recv()
            port = address[1]
        self.address: tuple[str, int] = ("127.0.0.1", port)

    def mark(self, word: str) -> dict[str, Any] | None:
        for _, pipe in self.workers:
            pipe.send(word)
        return self.signer.stats() if self.signer else None

    def collect(self) -> list[dict[str, Any]]:
        return [pipe.recv() for _, pipe in self.workers]

    def close(self) -> None:
        for process, pipe in self.workers:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
            pipe.close()
        if self.signer is not None:
            self.signer.close()


def machine_busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine so far, every tenant's (/proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _public_pem(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def client_processes(asked: int) -> int:
    return asked or len(os.sched_getaffinity(0))


class _Clients:
    """The client processes, each with its share of the connections opened."""

    def __init__(self, address: tuple[str, int], count: int, params: dict[str, Any],
                 public_pems: dict[str, bytes]) -> None:
        spawn = multiprocessing.get_context("spawn")
        processes = min(count, client_processes(int(params["client_processes"])))
        threads = max(1, int(params["clients"]) // processes)
        self.shares = [len(range(index, count, processes)) for index in range(processes)]
        self.members: list[tuple[Any, Connection]] = []
        for share in self.shares:
            parent, child = spawn.Pipe()
            process = spawn.Process(target=batch_signing_clients.client_main,
                                    args=(child, address, share, threads, public_pems))
            process.start()
            self.members.append((process, parent))
        for _, pipe in self.members:
            if not pipe.poll(120) or pipe.recv() != "open":
                raise RuntimeError("a client process did not open its connections")

    def arrive(self, schedule: list[tuple[float, str]]
               ) -> tuple[batch_signing_clients.Arrivals, float]:
        """Arrival i goes to process i mod n; all their arrivals and CPU time together."""
        count = len(self.members)
        for index, (_, pipe) in enumerate(self.members):
            pipe.send(("go", schedule[index::count]))
        merged, cpu = batch_signing_clients.Arrivals(), 0.0
        for _, pipe in self.members:
            part, part_cpu = pipe.recv()
            merged.merge(part)
            cpu += part_cpu
        return merged, cpu

    def close(self) -> None:
        for process, pipe in self.members:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
            pipe.close()


def _tls_point(rate: float, count: int) -> dict[str, Any]:
    """TLS: one server process; each arrival a whole TLS handshake, a thread per arrival."""
    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    server = spawn.Process(target=batch_signing_server.serve_tls, args=(child,))
    server.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("tls server did not start")
        _, address, material = parent.recv()
        credential = _credential("tls", material)
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()

        def arrive(scheduled: float) -> None:
            try:
                _tls_client(address, credential)
            except Exception as error:
                with lock:
                    failures.append(f"{type(error).__name__}: {error}")
                return
            with lock:
                latencies.append(time.perf_counter() - scheduled)

        parent.send("start")
        parent.send("handshakes-done")
        began = time.perf_counter()
        with ThreadPoolExecutor(count) as pool:
            for index in range(count):
                scheduled = began + index / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(arrive, scheduled)
        elapsed = time.perf_counter() - began
        time.sleep(0.05)
        parent.send("stop")
        measured: dict[str, Any] = parent.recv()
    finally:
        server.join(30)
        if server.is_alive():
            server.kill()
            server.join()
    measured.update(latencies=latencies, failures=failures, elapsed_s=elapsed, workers=1)
    return {"tls": measured}


def run_point(method: str, rate: float, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One authenticated method at one arrival rate, interleaved with unauthenticated
    arrivals (`none_share` of the stream; not for TLS): per method in the point, every server
    process's measurements summed and the clients' latencies; the figures of the point as a
    whole (process CPU, CPUs busy) are in every method's entry."""
    count = int(params["connections"])
    if method == "tls":
        return _tls_point(rate, count)
    plan = arrival_plan(method, rate, count, float(params.get("none_share", 0.0)), 0.0)
    methods = tuple(sorted({kind for _, kind in plan}))
    servers = _Servers(methods, params)
    try:
        first = servers.mark("start")
        clients = _Clients(servers.address, len(plan), params,
                           {name: _public_pem(key) for name, key in servers.public_keys.items()})
        try:
            second = servers.mark("handshakes-done")
            began = time.monotonic() + 0.1  # every client process has its schedule by then
            machine = machine_busy_jiffies()
            arrivals, client_cpu = clients.arrive([(began + at, kind) for at, kind in plan])
            busy, total = (after - before for after, before in zip(machine_busy_jiffies(),
                                                                  machine, strict=True))
        finally:
            clients.close()
        time.sleep(0.05)  # the workers' last DELIVERED reports reach the signer
        third = servers.mark("stop")
        parts = servers.collect()
    finally:
        servers.close()
    shared: dict[str, Any] = {
        "workers": len(parts), "point_connections": len(plan),
        "handshake_process_cpu_s": sum(part["handshake_process_cpu_s"] for part in parts),
        "process_cpu_s": sum(part["process_cpu_s"] for part in parts),
        "wall_s": max(part["wall_s"] for part in parts),
        "elapsed_s": arrivals.elapsed_s, "client_cpu_s": client_cpu,
        "client_signature_checks": arrivals.signature_checks,
        "machine_busy": busy / max(1, total),
    }
    result: dict[str, dict[str, Any]] = {}
    for name in methods:
        stats = [part["methods"][name] for part in parts]
        measured = dict(shared)
        measured.update(
            connections=sum(stat["answered"] for stat in stats),
            send_cpu_ns=sum(stat["send_cpu_ns"] for stat in stats),
            auth_cpu_ns=sum(stat["auth_cpu_ns"] for stat in stats),
            server_waits_s=[wait for part in parts for wait in part["waits_s"][name]],
            latencies=arrivals.latencies.get(name, []),
            failures=arrivals.failures.get(name, []))
        if name == "sign-each":
            measured["batches"] = sum(stat["signatures"] for stat in stats)
            measured["sign_cpu_ns"] = sum(stat["sign_cpu_ns"] for stat in stats)
        result[name] = measured
    if first is not None and second is not None and third is not None:
        signer_auth_s = third["process_cpu_s"] - second["process_cpu_s"]
        for measured in result.values():  # the signer is a server process of the point
            measured["handshake_process_cpu_s"] += (second["process_cpu_s"]
                                                    - first["process_cpu_s"])
            measured["process_cpu_s"] += signer_auth_s
        batch = result["batch-sign"]
        batch["auth_cpu_ns"] += int(signer_auth_s * 1e9)  # the whole signer process
        batch["signer_cpu_ns"] = int(signer_auth_s * 1e9)
        batch["signer_wakes"] = third.get("wakes", 0) - second.get("wakes", 0)
        batch["batches"] = third.get("batches", 0) - second.get("batches", 0)
        batch["sign_cpu_ns"] = third.get("sign_cpu_ns", 0) - second.get("sign_cpu_ns", 0)
        batch["margin_ms"] = third["margin_ms"]
        batch["queued_batches"] = third["queued_batches"] - second["queued_batches"]
        batch["queued_ns"] = third["queued_ns"] - second["queued_ns"]
    unattributed_s = result[methods[0]]["process_cpu_s"] - sum(
        measured["auth_cpu_ns"] for measured in result.values()) / 1e9
    for measured in result.values():
        # the point's server CPU outside the counted authentication work (loop wake-ups,
        # reads, closes), shared equally per connection of the point
        measured["unattributed_process_cpu_s"] = unattributed_s
    return result
