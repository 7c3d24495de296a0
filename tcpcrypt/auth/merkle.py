"""A SHA-256 Merkle tree over a batch of session IDs, shaped like RFC 9162's (Certificate
Transparency v2): leaf hash H(0x00 | data), node hash H(0x01 | left | right), a tree of n leaves
split at the largest power of two below n; inclusion paths and their verification follow that
RFC's algorithm, so a path only verifies for the leaf index and tree size it was made for.
"""

from __future__ import annotations

import hashlib

HASH_LENGTH = 32


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def root_of(leaves: list[bytes]) -> bytes:
    """The root over leaf hashes (at least one)."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def inclusion_path(leaves: list[bytes], index: int) -> list[bytes]:
    """The sibling hashes from leaf `index` up to the root (RFC 9162 PATH)."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf {index} outside a tree of {len(leaves)}")
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return inclusion_path(leaves[:k], index) + [root_of(leaves[k:])]
    return inclusion_path(leaves[k:], index - k) + [root_of(leaves[:k])]


def all_paths(leaves: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root and every leaf's inclusion path, in one pass over the tree."""
    if len(leaves) == 1:
        return leaves[0], [[]]
    k = _split(len(leaves))
    left_root, left_paths = all_paths(leaves[:k])
    right_root, right_paths = all_paths(leaves[k:])
    paths = [path + [right_root] for path in left_paths]
    paths += [path + [left_root] for path in right_paths]
    return node_hash(left_root, right_root), paths


def root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    """The root `path` leads to from `leaf` at `index` of `size`; None for a wrong shape."""
    if not 0 <= index < size:
        return None
    fn, sn, running = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            running = node_hash(sibling, running)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            running = node_hash(running, sibling)
        fn >>= 1
        sn >>= 1
    return running if sn == 0 else None
