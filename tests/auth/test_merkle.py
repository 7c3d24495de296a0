"""The Merkle tree: every leaf of every tree size verifies against the root, and nothing else
does (another leaf, index or a shortened path)."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from tcpcrypt.auth.merkle import all_paths, inclusion_path, leaf_hash, root_from_path, root_of


def leaves(count: int) -> list[bytes]:
    return [leaf_hash(index.to_bytes(4, "big")) for index in range(count)]


def test_every_leaf_of_trees_up_to_40_verifies_and_paths_agree() -> None:
    for size in range(1, 41):
        tree = leaves(size)
        root, paths = all_paths(tree)
        assert root == root_of(tree)
        for index in range(size):
            assert paths[index] == inclusion_path(tree, index)
            assert root_from_path(tree[index], index, size, paths[index]) == root


def test_tree_shape_follows_rfc_9162() -> None:
    a, b, c = leaves(3)
    assert root_of([a, b, c]) == hashlib.sha256(
        b"\x01" + hashlib.sha256(b"\x01" + a + b).digest() + c).digest()


@given(st.integers(2, 70), st.data())
def test_a_path_verifies_only_for_its_own_leaf_and_index(size: int, data: st.DataObject
                                                              ) -> None:
    tree = leaves(size)
    root, paths = all_paths(tree)
    index = data.draw(st.integers(0, size - 1))
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    assert root_from_path(tree[other], index, size, paths[index]) != root
    assert root_from_path(tree[index], other, size, paths[index]) != root
    # (the tree size is not bound by the path alone: the signed message carries it)
    assert root_from_path(tree[index], index, size, paths[index][:-1]) != root


def test_an_index_outside_the_tree_has_no_root() -> None:
    tree = leaves(4)
    assert root_from_path(tree[0], 4, 4, inclusion_path(tree, 0)) is None
