"""Server authentication by batch signing, over a connection: the two sides.

The server hands its connection's session ID to a shared `Batcher` (or, across server
processes, to the shared signer through a `SignerClient`) and sends the proof it gets
back in one BATCH_PROOF message; the client checks it against the server public key it trusts
(`batch_proof.check_proof`). Half a round trip, no client secret: like a TLS certificate, but
the server's signature is shared by every connection of its batch.
"""

from __future__ import annotations

from typing import Protocol

from tcpcrypt.auth.batch_proof import BatchProof, check_proof, encode_proof, parse_proof
from tcpcrypt.auth.session import SessionIdSource, guarded, session_id_of
from tcpcrypt.auth.signing import PublicKey, scheme_of
from tcpcrypt.auth.wire import MessageType, StreamLike, receive_message, send_message


class ProofSigner(Protocol):
    """Where a server gets its proofs: an in-process `Batcher`, or a `SignerClient` of a
    signer shared by several server processes (`shared_signer`)."""

    def sign(self, session_id: bytes, timeout: float | None = None) -> BatchProof: ...

    def delivered(self, proof: BatchProof) -> None: ...


def serve_batch_signed(stream: StreamLike, batcher: ProofSigner, *,
                       session_id: SessionIdSource | None = None,
                       timeout: float | None = 10.0) -> bytes:
    """Send this connection's proof (within one batching window of its batch's first ID, once
    the batcher has learned its close-to-sent time; see `batch_schedule`)."""
    with guarded(stream, timeout):
        sid = session_id_of(stream, session_id)
        proof = batcher.sign(sid, timeout)
        send_message(stream, MessageType.BATCH_PROOF, encode_proof(proof))
        batcher.delivered(proof)  # the batcher learns how long closing to sending takes
    return sid


def verify_batch_signed(stream: StreamLike, trusted: PublicKey, *,
                        session_id: SessionIdSource | None = None,
                        timeout: float | None = 10.0) -> bytes:
    """Receive and check the server's proof; returns the session ID it authenticated."""
    scheme_of(trusted)  # refuses an unsupported or short key before anything is read
    with guarded(stream, timeout):
        sid = session_id_of(stream, session_id)
        proof = parse_proof(receive_message(stream, MessageType.BATCH_PROOF))
        check_proof(proof, trusted, sid)
    return sid
