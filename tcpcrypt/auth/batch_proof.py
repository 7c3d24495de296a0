"""Batch signing on the wire: what a server signs, the proof each client gets, its check.

The server signs `"tcpcrypt-auth v1 batch root" | scheme (1) | tree size (4) | root (32)` once
per batch; the leaves are H(0x00 | "tcpcrypt-auth v1 batch leaf" | 0x00 | "server" | 0x00 |
session ID). Each client gets one BATCH_PROOF message:

    scheme (1) | session ID (2-byte length, value) | leaf index (4) | tree size (4) | root (32)
    | path length (1) | path hashes (32 each) | signature (2-byte length, value)

and checks, in order: the session ID the server vouches for is its own (else
`SessionIdMismatch`: a relay in the middle, or a proof replayed from another connection), the
signature verifies under the key it trusts (`BadSignature`), and its own session ID's leaf with
the path leads to the signed root (`NotCovered`).
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass

from tcpcrypt.auth.errors import BadSignature, MessageMalformed, NotCovered, SessionIdMismatch
from tcpcrypt.auth.merkle import HASH_LENGTH, all_paths, leaf_hash, root_from_path
from tcpcrypt.auth.session import Role
from tcpcrypt.auth.signing import PublicKey, SigningKey, signature_valid
from tcpcrypt.auth.wire import BodyReader, prefixed

ROOT_LABEL = b"tcpcrypt-auth v1 batch root"
LEAF_LABEL = b"tcpcrypt-auth v1 batch leaf"
MAX_PATH = 32
MAX_SESSION_ID = 255


@dataclass(frozen=True, slots=True)
class BatchProof:
    scheme: int
    session_id: bytes
    leaf_index: int
    tree_size: int
    root: bytes
    path: tuple[bytes, ...]
    signature: bytes


def leaf_for(session_id: bytes) -> bytes:
    return leaf_hash(LEAF_LABEL + b"\x00" + Role.SERVER.label + b"\x00" + session_id)


def signed_message(scheme: int, tree_size: int, root: bytes) -> bytes:
    return ROOT_LABEL + struct.pack("!BI", scheme, tree_size) + root


def sign_batch(key: SigningKey, session_ids: list[bytes]) -> list[BatchProof]:
    """One signature over the batch's root; one proof per session ID, in order."""
    root, paths = all_paths([leaf_for(sid) for sid in session_ids])
    signature = key.sign(signed_message(key.scheme, len(session_ids), root))
    return [
        BatchProof(key.scheme, sid, index, len(session_ids), root, tuple(path), signature)
        for index, (sid, path) in enumerate(zip(session_ids, paths, strict=True))
    ]


def encode_proof(proof: BatchProof) -> bytes:
    head = struct.pack("!B", proof.scheme) + prefixed(proof.session_id)
    head += struct.pack("!II", proof.leaf_index, proof.tree_size) + proof.root
    path = struct.pack("!B", len(proof.path)) + b"".join(proof.path)
    return head + path + prefixed(proof.signature)


def parse_proof(body: bytes) -> BatchProof:
    reader = BodyReader(body)
    scheme = reader.byte("scheme")
    session_id = reader.prefixed("session ID")
    if not 1 <= len(session_id) <= MAX_SESSION_ID:
        raise MessageMalformed(f"session ID of {len(session_id)} bytes")
    leaf_index, tree_size = reader.u32("leaf index"), reader.u32("tree size")
    root = reader.take(HASH_LENGTH, "root")
    count = reader.byte("path length")
    if count > MAX_PATH:
        raise MessageMalformed(f"path of {count} hashes")
    path = tuple(reader.take(HASH_LENGTH, "path hash") for _ in range(count))
    signature = reader.prefixed("signature")
    reader.finish()
    return BatchProof(scheme, session_id, leaf_index, tree_size, root, path, signature)


def check_proof(proof: BatchProof, trusted: PublicKey, session_id: bytes) -> None:
    """Raise the matching AuthError unless `proof` shows a trusted signature over our ID."""
    if not hmac.compare_digest(proof.session_id, session_id):
        raise SessionIdMismatch("the server vouched for another session ID")
    message = signed_message(proof.scheme, proof.tree_size, proof.root)
    if not signature_valid(trusted, proof.scheme, proof.signature, message):
        raise BadSignature("the batch signature does not verify under the trusted key")
    root = root_from_path(leaf_for(session_id), proof.leaf_index, proof.tree_size,
                          list(proof.path))
    if root is None or not hmac.compare_digest(root, proof.root):
        raise NotCovered("the signed batch does not contain our session ID")


class ProofChecker:
    """`check_proof` for a party checking many proofs under one trusted key (a client
    process holding many connections to one server): every proof's session ID and Merkle
    path are checked, and a batch signature is verified once, then remembered by the exact
    bytes it signs and its own bytes (only after it verified), so the other proofs of the
    same batch cost hashes, not a public-key operation. At most `remember` signatures kept."""

    def __init__(self, trusted: PublicKey, remember: int = 1024) -> None:
        self.trusted = trusted
        self.remember = remember
        self.verifications = 0
        self._verified: dict[tuple[bytes, bytes], None] = {}  # insertion-ordered

    def check(self, proof: BatchProof, session_id: bytes) -> None:
        """Raise the matching AuthError unless `proof` covers `session_id` under the key."""
        if not hmac.compare_digest(proof.session_id, session_id):
            raise SessionIdMismatch("the server vouched for another session ID")
        message = signed_message(proof.scheme, proof.tree_size, proof.root)
        if (message, proof.signature) not in self._verified:
            self.verifications += 1
            if not signature_valid(self.trusted, proof.scheme, proof.signature, message):
                raise BadSignature("the batch signature does not verify under the trusted key")
            if len(self._verified) >= self.remember:
                del self._verified[next(iter(self._verified))]
            self._verified[(message, proof.signature)] = None
        root = root_from_path(leaf_for(session_id), proof.leaf_index, proof.tree_size,
                              list(proof.path))
        if root is None or not hmac.compare_digest(root, proof.root):
            raise NotCovered("the signed batch does not contain our session ID")
