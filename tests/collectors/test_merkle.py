"""RFC 6962 tree hashing and proofs, checked with hypothesis against a reference definition."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from translog import merkle


def reference_mth(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 section 2.1, over leaf data."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + reference_mth(leaves[:k]) + reference_mth(leaves[k:])).digest()


# certificate-transparency's merkle_tree_test.cc vectors.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOT_8 = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def tree_of(n: int) -> merkle.MemoryTree:
    return merkle.MemoryTree([merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)])


def test_known_vectors() -> None:
    """The empty root, the empty-string leaf and CT's eight-leaf root."""
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT
    assert (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        == merkle.leaf_hash(b"").hex()
    )
    tree = merkle.MemoryTree([merkle.leaf_hash(d) for d in CT_LEAVES])
    assert CT_ROOT_8 == tree.root().hex()
    assert reference_mth(CT_LEAVES) == tree.root()


@given(st.lists(st.binary(max_size=8), max_size=70))
def test_root_matches_the_rfc_definition(data: list[bytes]) -> None:
    """MemoryTree and the stored-perfect-subtree construction both give RFC 6962's MTH."""
    leaves = [merkle.leaf_hash(d) for d in data]
    nodes: dict[tuple[int, int], bytes] = {}
    for i, leaf in enumerate(leaves):
        for level, idx, h in merkle.new_perfect_nodes(i, leaf, lambda lv, j: nodes[(lv, j)]):
            nodes[(level, idx)] = h
    stored = merkle.subtree_from_perfect(lambda lv, j: nodes[(lv, j)])
    expected = reference_mth(data)
    assert expected == merkle.MemoryTree(leaves).root()
    assert expected == merkle.root(len(leaves), stored)
    for size in range(len(leaves) + 1):
        assert reference_mth(data[:size]) == merkle.root(size, stored)


@settings(max_examples=300)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_proofs_verify_and_bind(case: tuple[int, int]) -> None:
    """A proof verifies for its leaf and index only, and not against another root."""
    size, index = case
    tree = tree_of(size)
    root = tree.root()
    proof = merkle.inclusion_proof(index, size, tree.subtree)
    leaf = tree.leaves[index]
    assert merkle.verify_inclusion(leaf, index, size, proof, root)
    assert not merkle.verify_inclusion(merkle.leaf_hash(b"other"), index, size, proof, root)
    assert not merkle.verify_inclusion(leaf, index, size, proof, merkle.leaf_hash(b"x"))
    if size > 1:
        other = (index + 1) % size
        assert not merkle.verify_inclusion(leaf, other, size, proof, root)
        assert not merkle.verify_inclusion(leaf, index, size, proof[:-1], root)
        bad = [bytes(32)] + proof[1:]
        assert not merkle.verify_inclusion(leaf, index, size, bad, root)
    assert not merkle.verify_inclusion(leaf, size, size, proof, root)


@settings(max_examples=300)
@given(st.integers(0, 300).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_consistency_proofs_verify_and_bind(case: tuple[int, int]) -> None:
    """A consistency proof verifies between the two roots, and fails for a forked history."""
    first, second = case
    tree = tree_of(second)
    proof = merkle.consistency_proof(first, second, tree.subtree)
    r1, r2 = tree.root(first), tree.root(second)
    assert merkle.verify_consistency(first, second, r1, r2, proof)
    if 0 < first < second:
        forked = merkle.MemoryTree([merkle.leaf_hash(b"fork")] + tree.leaves[1:])
        assert not merkle.verify_consistency(first, second, forked.root(first), r2, proof)
        assert not merkle.verify_consistency(first, second, r1, forked.root(second), proof)
        assert not merkle.verify_consistency(first, second, r1, r2, proof[:-1])
        if second > first + 1:
            assert not merkle.verify_consistency(first + 1, second, r1, r2, proof)


@given(st.integers(1, 40), st.data())
def test_proofs_are_the_same_from_stored_nodes(size: int, data: st.DataObject) -> None:
    """Proofs built from stored perfect subtrees equal those from the full leaf list."""
    tree = tree_of(size)
    nodes: dict[tuple[int, int], bytes] = {}
    for i, leaf in enumerate(tree.leaves):
        for level, idx, h in merkle.new_perfect_nodes(i, leaf, lambda lv, j: nodes[(lv, j)]):
            nodes[(level, idx)] = h
    stored = merkle.subtree_from_perfect(lambda lv, j: nodes[(lv, j)])
    index = data.draw(st.integers(0, size - 1))
    first = data.draw(st.integers(0, size))
    assert merkle.inclusion_proof(index, size, tree.subtree) == merkle.inclusion_proof(
        index, size, stored
    )
    assert merkle.consistency_proof(first, size, tree.subtree) == merkle.consistency_proof(
        first, size, stored
    )
