"""One point of the `batch-signing` experiment (not an experiment: no SPEC): a method at an
arrival rate. Starts the server processes (the workers around the shared signer, or the TLS
server), the client processes, marks the phases, and sums every server process's figures.
"""

from __future__ import annotations

import multiprocessing
import os
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


class _Servers:
    """The shared signer (signing methods) and the workers around it, all processes."""

    def __init__(self, method: str, params: dict[str, Any]) -> None:
        self.spawn = multiprocessing.get_context("spawn")
        self.signer: SignerProcess | None = None
        self.workers: list[tuple[Any, Connection]] = []
        key_pem: bytes | None = None
        self.public_key: PublicKey | None = None
        if method == "batch-sign":
            self.signer = SignerProcess("rsa-2048", max_batch=int(params["max_batch"]),
                                        window_s=float(params["window_ms"]) / 1000)
            self.public_key = self.signer.public_key
        elif method == "sign-each":  # every worker signs its own IDs with the same key
            key = SigningKey.generate("rsa-2048")
            key_pem, self.public_key = key.private_pem(), key.public_key()
        port = 0
        for cpu in worker_cpus(int(params["workers"]), bool(params.get("pin_workers", 1))):
            parent, child = self.spawn.Pipe()
            process = self.spawn.Process(
                target=batch_signing_worker.serve_worker,
                args=(child, method, port, self.signer.path if self.signer else None, key_pem,
                      cpu))
            process.start()
            self.workers.append((process, parent))
            if not parent.poll(60):
                raise RuntimeError(f"{method} worker did not start")
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


def _public_pem(key: PublicKey | None) -> bytes | None:
    if key is None:
        return None
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def client_processes(asked: int) -> int:
    return asked or len(os.sched_getaffinity(0))


class _Clients:
    """The client processes, each with its share of the connections opened."""

    def __init__(self, address: tuple[str, int], count: int, params: dict[str, Any],
                 public_pem: bytes | None) -> None:
        spawn = multiprocessing.get_context("spawn")
        processes = min(count, client_processes(int(params["client_processes"])))
        threads = max(1, int(params["clients"]) // processes)
        self.shares = [len(range(index, count, processes)) for index in range(processes)]
        self.members: list[tuple[Any, Connection]] = []
        for share in self.shares:
            parent, child = spawn.Pipe()
            process = spawn.Process(target=batch_signing_clients.client_main,
                                    args=(child, address, share, threads, public_pem))
            process.start()
            self.members.append((process, parent))
        for _, pipe in self.members:
            if not pipe.poll(120) or pipe.recv() != "open":
                raise RuntimeError("a client process did not open its connections")

    def arrive(self, schedule: list[float]) -> tuple[batch_signing_clients.Arrivals, float]:
        """Arrival i goes to process i mod n; all their arrivals and CPU time together."""
        count = len(self.members)
        for index, (_, pipe) in enumerate(self.members):
            pipe.send(("go", schedule[index::count]))
        merged, cpu = batch_signing_clients.Arrivals(), 0.0
        for _, pipe in self.members:
            part, part_cpu = pipe.recv()
            merged.latencies += part.latencies
            merged.failures += part.failures
            merged.elapsed_s = max(merged.elapsed_s, part.elapsed_s)
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
    return measured


def run_point(method: str, rate: float, params: dict[str, Any]) -> dict[str, Any]:
    """One method at one arrival rate: every server process's measurements, summed, and the
    clients' latencies."""
    count = int(params["connections"])
    if method == "tls":
        return _tls_point(rate, count)
    servers = _Servers(method, params)
    try:
        first = servers.mark("start")
        clients = _Clients(servers.address, count, params, _public_pem(servers.public_key))
        try:
            second = servers.mark("handshakes-done")
            began = time.monotonic() + 0.1  # every client process has its schedule by then
            machine = machine_busy_jiffies()
            arrivals, client_cpu = clients.arrive([began + index / rate
                                                   for index in range(count)])
            busy, total = (after - before for after, before in zip(machine_busy_jiffies(),
                                                                  machine, strict=True))
        finally:
            clients.close()
        time.sleep(0.05)  # the workers' last DELIVERED reports reach the signer
        third = servers.mark("stop")
        parts = servers.collect()
    finally:
        servers.close()
    measured: dict[str, Any] = {
        "workers": len(parts),
        "connections": sum(part["answered"] for part in parts),
        "send_cpu_ns": sum(part["send_cpu_ns"] for part in parts),
        "handshake_process_cpu_s": sum(part["handshake_process_cpu_s"] for part in parts),
        "process_cpu_s": sum(part["process_cpu_s"] for part in parts),
        "wall_s": max(part["wall_s"] for part in parts),
        "auth_cpu_ns": sum(part["auth_cpu_ns"] for part in parts),
        "server_waits_s": [wait for part in parts for wait in part["waits_s"]],
    }
    if method == "sign-each":
        measured["batches"] = sum(part["signatures"] for part in parts)
        measured["sign_cpu_ns"] = sum(part["sign_cpu_ns"] for part in parts)
    if first is not None and second is not None and third is not None:
        signer_auth_s = third["process_cpu_s"] - second["process_cpu_s"]
        measured["handshake_process_cpu_s"] += second["process_cpu_s"] - first["process_cpu_s"]
        measured["process_cpu_s"] += signer_auth_s
        measured["auth_cpu_ns"] += int(signer_auth_s * 1e9)  # the whole signer process
        measured["signer_cpu_ns"] = int(signer_auth_s * 1e9)
        measured["signer_wakes"] = third.get("wakes", 0) - second.get("wakes", 0)
        measured["batches"] = third.get("batches", 0) - second.get("batches", 0)
        measured["sign_cpu_ns"] = third.get("sign_cpu_ns", 0) - second.get("sign_cpu_ns", 0)
        measured["margin_ms"] = third["margin_ms"]
        measured["queued_batches"] = third["queued_batches"] - second["queued_batches"]
        measured["queued_ns"] = third["queued_ns"] - second["queued_ns"]
    measured.update(latencies=arrivals.latencies, failures=arrivals.failures,
                    elapsed_s=arrivals.elapsed_s, client_cpu_s=client_cpu,
                    machine_busy=busy / max(1, total))
    return measured
