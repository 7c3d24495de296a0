"""The shared signer: one signer process batches the session IDs of several server workers
over real sockets; each client's proof verifies for its own session ID only; a worker that
dies or sends garbage does not hang it; closing it leaves no process and no socket behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tcpcrypt.auth.batch_proof import BatchProof, check_proof
from tcpcrypt.auth.batch_sign import serve_batch_signed, verify_batch_signed
from tcpcrypt.auth.errors import AuthConfigError, NotCovered, SessionIdMismatch
from tcpcrypt.auth.loopback import LoopbackServer, connect_inband
from tcpcrypt.auth.shared_signer import SignerProcess
from tcpcrypt.auth.signer_client import SignerClient, SignerUnavailable
from tcpcrypt.auth.signer_wire import Frame, FrameKind, FrameReader, encode_frame

# a worker process that asks for one signature and then hangs until it is killed
_DYING_WORKER = """
import socket, sys, time
from tcpcrypt.auth.signer_wire import Frame, FrameKind, encode_frame
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
sock.sendall(encode_frame(Frame(FrameKind.SIGN, 7, payload=b"\\x21" * 33)))
print("asked", flush=True)
time.sleep(60)
"""


def test_workers_on_real_sockets_share_batches_and_each_client_checks_its_own_id() -> None:
    with SignerProcess("ed25519", max_batch=64, window_s=1.0) as signer, \
            SignerClient(signer.path) as first, SignerClient(signer.path) as second:
        proofs: list[BatchProof] = []

        def handler_for(client: SignerClient):  # type: ignore[no-untyped-def]
            return lambda sock: serve_batch_signed(sock, client, timeout=10)

        with LoopbackServer(handler_for(first)) as one, LoopbackServer(handler_for(second)) as two:
            sessions = [connect_inband(server.address) for server in (one, two) for _ in range(3)]
            ids = [sock.getsessid() or b"" for sock in sessions]
            results: dict[int, bytes | Exception] = {}

            def verify(index: int) -> None:
                try:
                    results[index] = verify_batch_signed(sessions[index], signer.public_key)
                except Exception as error:
                    results[index] = error

            threads = [threading.Thread(target=verify, args=(i,)) for i in range(len(sessions))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert results == dict(enumerate(ids))  # every client authenticated its own ID
            for sock in sessions:
                sock.close()
        for client in (first, second):  # the same signer answers each worker directly too
            proofs.append(client.sign(b"\x22" * 33, timeout=10))
        stats = signer.stats()
    assert stats["workers_connected"] == 2
    assert stats["session_ids"] == 8
    assert stats["batches"] < 8  # IDs from both workers shared signatures
    check_proof(proofs[0], signer.public_key, b"\x22" * 33)
    with pytest.raises(SessionIdMismatch):  # a proof is for its own session ID only
        check_proof(proofs[0], signer.public_key, b"\x23" * 33)
    forged = BatchProof(proofs[0].scheme, b"\x23" * 33, proofs[0].leaf_index,
                        proofs[0].tree_size, proofs[0].root, proofs[0].path,
                        proofs[0].signature)
    with pytest.raises(NotCovered):  # relabelled for another ID: its leaf is not in the tree
        check_proof(forged, signer.public_key, b"\x23" * 33)


def test_a_worker_that_dies_or_sends_garbage_does_not_hang_the_signer() -> None:
    with SignerProcess("ed25519", max_batch=64, window_s=0.05) as signer:
        dying = subprocess.Popen([sys.executable, "-c", _DYING_WORKER, signer.path],
                                 stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        try:
            assert dying.stdout is not None and dying.stdout.readline().strip() == "asked"
        finally:
            dying.send_signal(signal.SIGKILL)
            dying.wait(10)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as garbage:
            garbage.connect(signer.path)
            garbage.sendall(b"\xff" * 32)
            garbage.settimeout(10)
            assert garbage.recv(1) == b""  # dropped: the signer closed it
        with SignerClient(signer.path) as client:
            proof = client.sign(b"\x24" * 33, timeout=10)
        check_proof(proof, signer.public_key, b"\x24" * 33)
        stats = signer.stats()
    assert stats["workers_dropped"] >= 2


def test_closing_the_signer_leaves_no_process_or_socket_and_fails_waiting_workers() -> None:
    signer = SignerProcess("ed25519", max_batch=64, window_s=1.0)
    pid, folder = signer.pid, Path(signer.path).parent
    client = SignerClient(signer.path)
    waiting: list[BaseException | BatchProof] = []
    thread = threading.Thread(target=lambda: waiting.append(_sign_or_error(client)))
    thread.start()
    deadline = time.monotonic() + 30  # until the signer holds the request (or already signed it)
    while time.monotonic() < deadline:
        counts = signer.stats()
        if counts.get("waiting_ids") or counts.get("session_ids"):
            break
        time.sleep(0.01)
    signer.close()  # signs what waits, then stops
    thread.join(10)
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not folder.exists()
    assert waiting and isinstance(waiting[0], BatchProof)  # answered before it stopped
    with pytest.raises(SignerUnavailable):
        client.sign(b"\x26" * 33, timeout=5)
    client.close()
    with pytest.raises(SignerUnavailable):
        SignerClient(signer.path)


def _sign_or_error(client: SignerClient) -> BaseException | BatchProof:
    try:
        return client.sign(b"\x25" * 33, timeout=10)
    except Exception as error:
        return error


def test_a_bad_batch_size_or_scheme_is_refused_before_a_process_starts() -> None:
    with pytest.raises(AuthConfigError):
        SignerProcess("ed25519", max_batch=0)
    with pytest.raises(AuthConfigError):
        SignerProcess("rsa-1024")


def test_frames_split_across_reads_are_reassembled_and_garbage_is_refused() -> None:
    data = b"".join(encode_frame(Frame(FrameKind.PROOF, i, 3, i, b"p" * i)) for i in range(4))
    reader = FrameReader()
    frames = [frame for offset in range(0, len(data), 5) for frame in reader.feed(
        data[offset:offset + 5])]
    assert [(f.request, f.leaf, f.payload) for f in frames] == [
        (i, i, b"p" * i) for i in range(4)]
    with pytest.raises(ValueError):
        FrameReader().feed(b"\x09" + b"\x00" * 22)
