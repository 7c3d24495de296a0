"""The batcher: a batch closes at N IDs or after the window, whichever first; many threads and
asyncio tasks share signatures; each caller gets the proof for its own session ID."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tcpcrypt.auth.batch_proof import check_proof
from tcpcrypt.auth.batcher import Batcher, BatcherClosed
from tcpcrypt.auth.errors import AuthConfigError
from tcpcrypt.auth.signing import SigningKey


def sid(index: int) -> bytes:
    return b"\x23" + index.to_bytes(32, "big")


def test_a_full_batch_is_signed_once_without_waiting_for_the_window(
        ed25519_key: SigningKey) -> None:
    with Batcher(ed25519_key, max_batch=8, window_s=1.0) as batcher:
        futures = [batcher.submit(sid(i)) for i in range(9)]  # the 9th opens a second batch
        proofs = [future.result(timeout=30) for future in futures[:8]]
        assert not futures[8].done()  # still inside its window
    assert futures[8].result().tree_size == 1  # signed by close()
    assert batcher.stats["batches"] == 2 and batcher.stats["session_ids"] == 9
    for index, proof in enumerate(proofs):
        assert proof.tree_size == 8
        check_proof(proof, ed25519_key.public_key(), sid(index))


def test_a_lone_session_id_is_signed_when_its_window_ends(ed25519_key: SigningKey) -> None:
    with Batcher(ed25519_key, max_batch=64, window_s=0.02) as batcher:
        proof = batcher.sign(sid(1), timeout=5)
    assert proof.tree_size == 1
    check_proof(proof, ed25519_key.public_key(), sid(1))


def test_threads_share_signatures_and_get_their_own_proofs(rsa_key: SigningKey) -> None:
    results: dict[int, bool] = {}
    with Batcher(rsa_key, max_batch=16, window_s=0.05) as batcher:
        def connect(index: int) -> None:
            proof = batcher.sign(sid(index), timeout=10)
            check_proof(proof, rsa_key.public_key(), sid(index))
            results[index] = True

        threads = [threading.Thread(target=connect, args=(i,)) for i in range(48)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 48
    assert batcher.stats["session_ids"] == 48
    assert batcher.stats["batches"] < 48  # signatures were shared


def test_asyncio_tasks_await_their_proofs(ed25519_key: SigningKey) -> None:
    async def main(batcher: Batcher) -> None:
        proofs = await asyncio.gather(*(batcher.sign_async(sid(i)) for i in range(10)))
        for index, proof in enumerate(proofs):
            check_proof(proof, ed25519_key.public_key(), sid(index))

    with Batcher(ed25519_key, max_batch=10, window_s=0.5) as batcher:
        asyncio.run(main(batcher))
    assert batcher.stats["batches"] == 1


def test_max_batch_one_signs_each_session_id(ed25519_key: SigningKey) -> None:
    with Batcher(ed25519_key, max_batch=1, window_s=0.0) as batcher:
        futures = [batcher.submit(sid(i)) for i in range(5)]
        assert all(future.result(timeout=5).tree_size == 1 for future in futures)
    assert batcher.stats["batches"] == 5


def test_a_closed_batcher_refuses_new_ids(ed25519_key: SigningKey) -> None:
    batcher = Batcher(ed25519_key)
    batcher.close()
    with pytest.raises(BatcherClosed):
        batcher.submit(sid(0))


@pytest.mark.parametrize("kwargs", [{"max_batch": 0}, {"window_s": -1.0}, {"window_s": 5.0}])
def test_bad_parameters_are_refused(ed25519_key: SigningKey, kwargs: dict[str, float]) -> None:
    with pytest.raises(AuthConfigError):
        Batcher(ed25519_key, **kwargs)  # type: ignore[arg-type]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_window_runs_on_the_batchers_clock(ed25519_key: SigningKey) -> None:
    clock = FakeClock()  # frozen: the warm-up measures nothing, the margin stays 0
    with Batcher(ed25519_key, max_batch=64, window_s=0.05, clock=clock) as batcher:
        future = batcher.submit(sid(1))
        assert not future.done()
        threading.Event().wait(0.3)  # real time passes, the batcher's does not
        assert not future.done() and batcher.margin_s == 0.0
        clock.now += 0.05
        proof = future.result(timeout=10)
    check_proof(proof, ed25519_key.public_key(), sid(1))


def test_proofs_reported_sent_teach_the_batcher_to_close_earlier(
        ed25519_key: SigningKey) -> None:
    clock = FakeClock()
    with Batcher(ed25519_key, max_batch=2, window_s=0.5, clock=clock) as batcher:
        futures = [batcher.submit(sid(i)) for i in range(2)]  # full: closes at once
        proofs = [future.result(timeout=10) for future in futures]
        clock.now += 0.004  # both proofs sent 4 ms (on this clock) after the close
        for proof in proofs:
            batcher.delivered(proof)
        # the warm-up took 0 on this clock (mean 0, deviation 0); then one 4 ms sample:
        # mean 0 + 4/8 ms, deviation 0 + (4 - 0)/4 ms, margin mean + 2 deviations
        assert batcher.margin_s == pytest.approx(0.0005 + 2 * 0.001)
