"""RFC 6962 Merkle tree hashing, proofs and their verification (pure functions, no I/O).

Leaves hash as ``sha256(0x00 || data)``, interior nodes as ``sha256(0x01 || left || right)``, and a
tree of ``n`` leaves splits at the largest power of two below ``n``. Proof builders take a
``Subtree`` function giving ``MTH(D[start:end])``, so the same code serves an in-memory list and a
database of stored perfect subtrees. Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

Subtree = Callable[[int, int], bytes]  # (start, end) -> MTH(D[start:end])
Perfect = Callable[[int, int], bytes]  # (level, index) -> hash of leaves [index*2**level, ...)
Nodes = dict[tuple[int, int], bytes]  # (level, index) -> perfect subtree hash

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_from_perfect(perfect: Perfect) -> Subtree:
    """``MTH(D[start:end])`` from stored perfect, aligned subtrees (every left split is one)."""

    def subtree(start: int, end: int) -> bytes:
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return perfect(n.bit_length() - 1, start // n)
        k = split(n)
        return node_hash(subtree(start, start + k), subtree(start + k, end))

    return subtree


def append_siblings(index: int) -> list[tuple[int, int]]:
    """The (level, index) perfect subtrees that appending a leaf at ``index`` hashes with."""
    siblings = []
    level, i = 0, index
    while i & 1:
        siblings.append((level, i - 1))
        level, i = level + 1, i // 2
    return siblings


def new_perfect_nodes(index: int, leaf: bytes, perfect: Perfect) -> list[tuple[int, int, bytes]]:
    """The (level, index, hash) perfect subtrees completed by appending ``leaf`` at ``index``."""
    nodes = [(0, index, leaf)]
    level, i, h = 0, index, leaf
    while i & 1:
        h = node_hash(perfect(level, i - 1), h)
        level, i = level + 1, i // 2
        nodes.append((level, i, h))
    return nodes


def root(size: int, subtree: Subtree) -> bytes:
    return subtree(0, size) if size else EMPTY_ROOT


def inclusion_proof(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """RFC 6962 PATH(index, D[0:size])."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split(end - start)
        if index < start + k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            start += k
    proof.reverse()
    return proof


def consistency_proof(first: int, second: int, subtree: Subtree) -> list[bytes]:
    """RFC 6962 PROOF(first, D[0:second])."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to {second}")
    if first == 0 or first == second:
        return []
    proof: list[bytes] = []
    start, end, m, whole = 0, second, first, True
    while True:
        n = end - start
        if m == n:
            if not whole:
                proof.append(subtree(start, end))
            break
        k = split(n)
        if m <= k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            start, m, whole = start + k, m - k, False
    proof.reverse()
    return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """True if ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree ``(size, root_hash)``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root_hash


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True if ``proof`` shows tree ``(second, second_root)`` extends ``(first, first_root)``."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


class MemoryTree:
    """An in-memory log over a list of leaf hashes (tests, and clients auditing a copy)."""

    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        self.leaves = list(leaves)

    def subtree(self, start: int, end: int) -> bytes:
        if end - start == 1:
            return self.leaves[start]
        k = split(end - start)
        return node_hash(self.subtree(start, start + k), self.subtree(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        return root(len(self.leaves) if size is None else size, self.subtree)
