"""The transparency log: Merkle tree hashes and proofs (RFC 6962) and signed checkpoints.

The collector appends and proves; the probe's ``verify`` checks. It imports nothing of ours.
"""
