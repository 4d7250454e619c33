"""Deterministic per-stage seeds derived from the master seed.

Each stage (and each shard of a stage) gets its own stream, so adding a shard or a
sample never changes the random numbers of the others.
"""

from __future__ import annotations

import hashlib

# Pythia's Random:seed accepts 0 ... 900 000 000.
MAX_SEED = 900_000_000


def derive_seed(master: int, *labels: object, modulus: int = MAX_SEED) -> int:
    """A seed in ``[1, modulus)`` from the master seed and stage labels (stable across runs)."""
    text = "/".join([str(int(master)), *map(str, labels)])
    digest = hashlib.sha256(text.encode()).digest()
    return 1 + int.from_bytes(digest[:8], "little") % (modulus - 1)
